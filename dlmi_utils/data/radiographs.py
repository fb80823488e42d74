"""Projection radiographs of other anatomy than the breast, for the denoisers of Lab 04.

Three real radiographs ship with installed packages: a human chest (CR, ``pydicom-data``),
a cat's thorax and abdomen (DX, ``deid-data``) and a human lower leg (CR, ``pydicom-data``).
The first two are training data; the leg is never trained on and tells how a denoiser
does on anatomy it has not seen. Each is read with :func:`~dlmi_utils.data.read_dicom`
(``[0, 1]``, bright = dense) and averaged over 3 x 3 pixels: the files are 0.14-0.2 mm
detector images, and the averaging lowers the noise they carry themselves (a denoiser
trained to reproduce them would learn to keep it).
"""

from __future__ import annotations

import functools

import numpy as np
from skimage.transform import downscale_local_mean

from dlmi_utils.data.dicom import load_dicom_example

RADIOGRAPHS: dict[str, tuple[str, ...]] = {"train": ("cr_chest", "dx_cat"), "test": ("cr_leg",)}
DOWNSCALE = 3


@functools.lru_cache(maxsize=4)
def _load(name: str) -> np.ndarray:
    image = load_dicom_example(name)
    h, w = (s - s % DOWNSCALE for s in image.shape)
    out = downscale_local_mean(image[:h, :w], (DOWNSCALE, DOWNSCALE)).astype(np.float32)
    out.setflags(write=False)
    return out


def load_radiographs(split: str) -> dict[str, np.ndarray]:
    """``{name: (H, W) float32 in [0, 1]}`` of the radiographs of ``split`` (``"train"``:
    chest and cat; ``"test"``: the leg), at half their detector resolution. Read-only."""
    if split not in RADIOGRAPHS:
        raise ValueError(f"split must be one of {tuple(RADIOGRAPHS)}, got {split!r}")
    return {name: _load(name) for name in RADIOGRAPHS[split]}
