"""Real CT slices in Hounsfield units, from pydicom's test files and the ``pydicom-data`` package.

:data:`CT_EXAMPLES` is a curated list ``name -> (file, description)`` of single axial CT
slices; :func:`list_ct_examples` says which are installed and decodable, :func:`load_ct_slice`
reads one and :func:`read_ct_slice` any CT DICOM file. A slice comes as a :class:`CTSlice`:
the image in HU, ``(H, W)`` float32, and the pixel spacing ``(row, column)`` in mm.

Hounsfield units are the stored values through ``HU = RescaleSlope * stored +
RescaleIntercept``. Scanners store a padding value (-2000, -3024) outside the reconstructed
field of view; every value below -1024 HU is set to -1024 (air). A file that is not a CT image
(``Modality``), holds several frames or lacks the rescale tags or the pixel spacing is refused
with a ``ValueError``; a compressed one without an installed decoder with a ``RuntimeError``
naming the decoder to install (see :mod:`dlmi_utils.data.dicom`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from dlmi_utils.data.dicom import decoder_available, missing_decoder_message

AIR_HU = -1024.0
"""The lowest value a CT image keeps: air (padding values below it are set to it)."""

CT_EXAMPLES: dict[str, tuple[str, str]] = {
    "ct_small": ("CT_small.dcm", "a vertebra and its muscles, 128 x 128 crop of a body slice"),
    "ct_head": ("693_UNCR.dcm", "head through the lateral ventricles, 512 x 512"),
    "ct_skull_base": ("J2K_pixelrep_mismatch.dcm", "head at the skull base (petrous bones, "
                      "sinuses), 512 x 512, JPEG 2000"),
    "ct_abdomen": ("explicit_VR-UN.dcm", "abdomen at the pancreas, with the table, 512 x 512, "
                   "JPEG 2000"),
    "ct_neck": ("bad_sequence.dcm", "neck, small field of view (0.29 mm pixels), 512 x 512, "
                "JPEG lossless"),
}


class CTSlice(NamedTuple):
    """``hu``: ``(H, W)`` float32 in Hounsfield units; ``pixel_spacing``: ``(row, column)`` in
    mm."""

    hu: np.ndarray
    pixel_spacing: tuple[float, float]


@dataclass(frozen=True)
class CTExample:
    """One entry of :func:`list_ct_examples` (read from the header, nothing decoded)."""

    name: str
    shape: tuple[int, int]
    pixel_spacing: tuple[float, float]
    body_part: str
    description: str
    path: Path
    decodable: bool


def _example_path(name: str) -> Path:
    if name not in CT_EXAMPLES:
        raise ValueError(f"unknown CT example {name!r}; available: {sorted(CT_EXAMPLES)}")
    path = get_testdata_file(CT_EXAMPLES[name][0])
    if path is None:
        raise FileNotFoundError(f"{CT_EXAMPLES[name][0]} is not installed: pip install "
                                "pydicom-data")
    return Path(path)


def _check_ct_header(ds, path: Path) -> None:
    """A ``ValueError`` unless ``ds`` is one CT slice with rescale tags and pixel spacing."""
    modality = str(ds.get("Modality", ""))
    if modality != "CT":
        raise ValueError(f"{path.name} is not a CT image (Modality {modality!r})")
    if "PixelData" not in ds:
        raise ValueError(f"{path.name} holds no image (no PixelData)")
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise ValueError(f"{path.name} holds {ds.NumberOfFrames} frames, not a single slice")
    missing = [tag for tag in ("RescaleSlope", "RescaleIntercept", "PixelSpacing")
               if ds.get(tag) in (None, "")]
    if missing:
        raise ValueError(f"{path.name} lacks {', '.join(missing)}: its values cannot be read "
                         "as Hounsfield units at a known pixel size")


def _pixel_spacing(ds) -> tuple[float, float]:
    return float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])


@functools.lru_cache(maxsize=2)
def list_ct_examples(decodable_only: bool = False) -> tuple[CTExample, ...]:
    """The curated CT slices that are installed, with shape, pixel spacing and body part."""
    out = []
    for name, (_, description) in CT_EXAMPLES.items():
        try:
            path = _example_path(name)
        except FileNotFoundError:
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        decodable = decoder_available(ds)
        if decodable_only and not decodable:
            continue
        out.append(CTExample(name, (int(ds.Rows), int(ds.Columns)), _pixel_spacing(ds),
                             str(ds.get("BodyPartExamined", "")), description, path, decodable))
    return tuple(out)


def read_ct_slice(path: str | Path) -> CTSlice:
    """A single-slice CT DICOM file -> :class:`CTSlice` in HU (see the module's doc)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no DICOM file at {path}")
    ds = pydicom.dcmread(path)
    _check_ct_header(ds, path)
    if not decoder_available(ds):
        raise RuntimeError(missing_decoder_message(ds, path))
    stored = ds.pixel_array
    if stored.ndim != 2:
        raise ValueError(f"{path.name}: expected one greyscale slice, got pixels of shape "
                         f"{stored.shape}")
    hu = float(ds.RescaleSlope) * stored.astype(np.float64) + float(ds.RescaleIntercept)
    return CTSlice(np.maximum(hu, AIR_HU).astype(np.float32), _pixel_spacing(ds))


def load_ct_slice(name: str) -> CTSlice:
    """One curated example (see :data:`CT_EXAMPLES`, :func:`list_ct_examples`) in HU."""
    return read_ct_slice(_example_path(name))
