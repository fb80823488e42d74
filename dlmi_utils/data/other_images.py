"""Images of other anatomy and modalities, and photographs, that ship with installed packages:
extra training signal for a network that must work beyond its own data (the MR cascades, the
X-ray denoisers), and the training images of the course's feature network.

:data:`OTHER_IMAGES` lists them by split, ``kind:name`` (``ct``: a slice of
:func:`dlmi_utils.data.load_ct_slice` in the soft-tissue window :data:`CT_WINDOW_HU`;
``dicom``: :func:`dlmi_utils.data.load_dicom_example`; ``mammo``: a split of
:func:`dlmi_utils.data.load_mammograms`; ``photo``: an image of ``skimage.data``), and
:func:`load_other_images` loads them as square crops. The MR images of pydicom-data are never
among them: they are the MR networks' out-of-distribution test.
"""

from __future__ import annotations

import numpy as np
import skimage.data
from skimage.color import rgb2gray
from skimage.transform import resize

from dlmi_utils.data.ct import load_ct_slice
from dlmi_utils.data.dicom import load_dicom_example
from dlmi_utils.data.intensity import to_unit_range
from dlmi_utils.data.mammo import load_mammograms

OTHER_IMAGES: dict[str, tuple[str, ...]] = {
    "train": ("ct:ct_head", "ct:ct_skull_base", "ct:ct_abdomen", "ct:ct_small",
              "dicom:cr_chest", "mammo:train", "photo:astronaut", "photo:brick",
              "photo:cat", "photo:coffee", "photo:coins", "photo:grass", "photo:gravel",
              "photo:rocket", "photo:clock", "photo:immunohistochemistry", "photo:retina",
              "photo:cell", "photo:hubble_deep_field", "photo:page", "photo:text"),
    "val": ("dicom:cr_leg", "photo:camera", "photo:moon"),
}
CT_WINDOW_HU = (-200.0, 300.0)  # a soft-tissue window: organs get the grey levels, as in MR


def _source_images(source: str) -> list[np.ndarray]:
    """The grey images ``(H, W)`` in [0, 1] of one ``kind:name`` entry of OTHER_IMAGES."""
    kind, name = source.split(":")
    if kind == "ct":
        lo, hi = CT_WINDOW_HU
        return [np.clip((load_ct_slice(name).hu - lo) / (hi - lo), 0, 1)]
    if kind == "dicom":
        return [load_dicom_example(name)]
    if kind == "mammo":
        return [m.image for m in load_mammograms(name)]
    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
    if image.ndim == 3:
        image = rgb2gray(image[..., :3] / 255.0 if image.max() > 1 else image[..., :3])
    return [to_unit_range(image)]


def _crops(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Square ``size`` crops of ``image`` at two scales: the whole image with its shorter side
    resized to ``size`` (centre crop), and at twice that, a 2 x 2 grid of crops."""
    out = []
    for scale, grid in ((1, 1), (2, 2)):
        short = scale * size
        h, w = image.shape
        shape = (max(short, round(h * short / min(h, w))), max(short, round(w * short / min(h, w))))
        big = resize(image, shape, anti_aliasing=True, preserve_range=True)
        for top in np.linspace(0, shape[0] - size, grid).round().astype(int):
            for left in np.linspace(0, shape[1] - size, grid).round().astype(int):
                out.append(big[top : top + size, left : left + size])
    return out


def load_other_images(split: str, size: int = 256,
                      kinds: tuple[str, ...] | None = None) -> np.ndarray:
    """The images of :data:`OTHER_IMAGES` (``split`` ``"train"`` or ``"val"``, by source, never
    by crop) as ``(N, size, size)`` float32 in [0, 1]: CT slices in a soft-tissue window
    (:data:`CT_WINDOW_HU`), radiographs and mammograms, scikit-image's photographs; each in the
    crops of two scales (the whole image, and a 2 x 2 grid at twice the size). ``kinds`` keeps
    the sources of those kinds only (``"ct"``, ``"dicom"``, ``"mammo"``, ``"photo"``)."""
    if split not in OTHER_IMAGES:
        raise ValueError(f"split must be one of {tuple(OTHER_IMAGES)}, got {split!r}")
    sources = OTHER_IMAGES[split]
    if kinds is not None:
        known = {s.split(":")[0] for s in sources}
        if unknown := set(kinds) - known:
            raise ValueError(f"unknown kinds {sorted(unknown)}; the {split} sources are of the "
                             f"kinds {sorted(known)}")
        sources = tuple(s for s in sources if s.split(":")[0] in kinds)
    crops = [c for source in sources for image in _source_images(source)
             for c in _crops(np.asarray(image, dtype=np.float32), size)]
    return np.stack(crops).astype(np.float32)
