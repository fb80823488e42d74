"""``read_image``: any 2-D image file the labs and benchmarks take, as float32 in ``[0, 1]``."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from dlmi_utils.data.dicom import read_dicom
from dlmi_utils.data.intensity import to_unit_range

IMAGE_SUFFIXES = (".dcm", ".dicom", ".nii", ".nii.gz", ".png", ".jpg", ".jpeg", ".pgm", ".tif",
                  ".tiff", ".bmp", ".npy")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def _read_nifti(path: Path) -> np.ndarray:
    data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    data = np.squeeze(data)
    while data.ndim > 3:  # 4-D (time, echoes): the first volume
        data = data[..., 0]
    if data.ndim == 3:
        data = data[:, :, data.shape[2] // 2]
    return data


def _read_picture(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        data = np.asarray(img)
    if data.ndim == 3:  # RGB(A): grey as the mean of the colour channels
        data = data[..., :3].astype(np.float32).mean(axis=-1)
    return data


def read_image(path: str | Path) -> np.ndarray:
    """Read a 2-D image: ``(H, W)`` float32 in ``[0, 1]``.

    DICOM (``.dcm``; see :func:`dlmi_utils.data.dicom.read_dicom`), NIfTI (``.nii``,
    ``.nii.gz``: the middle slice along the last axis), pictures (PNG, JPEG, PGM, TIFF, BMP;
    colour is averaged to grey) and ``.npy`` (2-D, or 3-D: its middle slice; complex: the
    magnitude). Values are min-max scaled to ``[0, 1]``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image file at {path}")
    suffix = _suffix(path)
    if suffix in (".dcm", ".dicom"):
        return read_dicom(path)
    if suffix in (".nii", ".nii.gz"):
        data = _read_nifti(path)
    elif suffix == ".npy":
        data = np.load(path, allow_pickle=False)
        if np.iscomplexobj(data):
            data = np.abs(data)
        if data.ndim == 3:
            data = data[data.shape[0] // 2]
    elif suffix in IMAGE_SUFFIXES:
        data = _read_picture(path)
    else:
        raise ValueError(
            f"cannot read {path.name}: unknown suffix {suffix!r}; read_image takes "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    if data.ndim != 2:
        raise ValueError(f"{path.name} is not a 2-D image (shape {data.shape})")
    return to_unit_range(data)
