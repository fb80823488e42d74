"""Real clinical DICOM images from pydicom's test files and the ``pydicom-data`` and
``deid-data`` packages.

:data:`DICOM_EXAMPLES` is a curated list (MR, CT, CR radiographs, NM): ``name -> (file,
description)``. :func:`read_dicom` turns any single-image or multi-frame DICOM into a
``(H, W)`` float32 image in ``[0, 1]``: stored values go through ``RescaleSlope`` /
``RescaleIntercept``, multi-frame files give their middle frame, ``MONOCHROME1`` (where white
means *low* values) is inverted so that bright means dense everywhere, and compressed transfer
syntaxes are decoded when a decoder is installed (JPEG 2000 through Pillow; JPEG lossless and
JPEG-LS need ``pylibjpeg`` / ``pyjpegls``, otherwise a clear error says so).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_rescale, get_decoder

from dlmi_utils.data.intensity import to_unit_range

DICOM_EXAMPLES: dict[str, tuple[str, str]] = {
    "mr_small": ("MR_small.dcm", "MR, small 64 x 64 crop"),
    "mr_shoulder": ("MR2_UNCI.dcm", "MR of a shoulder, 1024 x 1024"),
    "mr_abdomen": ("MR-SIEMENS-DICOM-WithOverlays.dcm", "MR of the abdomen (liver), Siemens"),
    "mr_multiframe": ("emri_small.dcm", "enhanced MR, 10 frames of 64 x 64 (middle frame)"),
    "ct_small": ("CT_small.dcm", "CT of a vertebra, 128 x 128, in Hounsfield units"),
    "ct_head": ("693_UNCI.dcm", "CT of a head, 512 x 512"),
    "ct_head_jpeg2000": ("693_J2KR.dcm", "the same CT head, JPEG 2000 lossless"),
    "cr_chest": ("RG1_UNCI.dcm", "computed radiography of a chest (MONOCHROME1)"),
    "cr_leg": ("RG3_UNCI.dcm", "computed radiography of a lower leg (MONOCHROME1)"),
    "dx_cat": ("deid_data:animals/cat.dcm",
               "digital radiograph (DX) of a cat's thorax and abdomen, 0.14 mm (deid-data)"),
    "nm_whole_body": ("JPEG2000_UNC.dcm", "nuclear medicine whole-body bone scan"),
    "mr_small_jpeg_ls": ("MR_small_jpeg_ls_lossless.dcm", "MR_small, JPEG-LS lossless"),
}


@dataclass(frozen=True)
class DicomExample:
    """One entry of :func:`list_dicom_examples`: ``shape`` is that of the image returned."""

    name: str
    modality: str
    shape: tuple[int, int]
    description: str
    path: Path
    decodable: bool


def decoder_available(ds) -> bool:
    """Whether the pixel data of the dataset ``ds`` can be decoded here (uncompressed, or a
    decoder for its transfer syntax is installed)."""
    uid = ds.file_meta.TransferSyntaxUID
    if not uid.is_compressed:
        return True
    try:
        return get_decoder(uid).is_available
    except Exception:  # a transfer syntax pydicom has no decoder for at all
        return False


def missing_decoder_message(ds, path: Path) -> str:
    """What to install, or what to pick instead, when ``path`` cannot be decoded."""
    uid = ds.file_meta.TransferSyntaxUID
    return (
        f"cannot decode {path.name}: its pixel data is compressed as {uid.name!r} and no "
        "decoder for it is installed (for JPEG lossless / JPEG-LS: pip install pylibjpeg "
        "pylibjpeg-libjpeg pyjpegls). Pick another example: list_dicom_examples()"
    )


def _example_path(name: str) -> Path:
    if name not in DICOM_EXAMPLES:
        raise ValueError(f"unknown DICOM example {name!r}; available: {sorted(DICOM_EXAMPLES)}")
    file = DICOM_EXAMPLES[name][0]
    if file.startswith("deid_data:"):
        try:
            import deid_data
        except ImportError:
            raise FileNotFoundError(f"{name} ships with deid-data: pip install deid-data") from None
        return Path(deid_data.__file__).parent / "data" / file.split(":", 1)[1]
    path = get_testdata_file(file)
    if path is None:
        raise FileNotFoundError(
            f"{DICOM_EXAMPLES[name][0]} is not installed: pip install pydicom-data"
        )
    return Path(path)


@functools.lru_cache(maxsize=2)
def list_dicom_examples(decodable_only: bool = False) -> tuple[DicomExample, ...]:
    """The curated examples that are installed, with modality and image shape (no decoding)."""
    out = []
    for name, (_, description) in DICOM_EXAMPLES.items():
        try:
            path = _example_path(name)
        except FileNotFoundError:
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ok = decoder_available(ds)
        if decodable_only and not ok:
            continue
        shape = (int(ds.Rows), int(ds.Columns))
        out.append(DicomExample(name, str(ds.get("Modality", "")), shape, description, path, ok))
    return tuple(out)


def read_dicom(path: str | Path, frame: int | None = None) -> np.ndarray:
    """A DICOM file -> ``(H, W)`` float32 in ``[0, 1]`` (min-max scaled after the rescale).

    Multi-frame: ``frame`` (default the middle one). Colour images are turned to grey by
    their mean over the channels.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no DICOM file at {path}")
    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise ValueError(f"{path.name} holds no image (no PixelData)")
    if not decoder_available(ds):
        raise RuntimeError(missing_decoder_message(ds, path))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    index = frames // 2 if frame is None else int(frame)
    if not 0 <= index < frames:
        raise IndexError(f"frame {index} out of range: {path.name} has {frames} frames")
    pixels = ds.pixel_array
    if frames > 1:
        pixels = pixels[index]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3:  # colour (H, W, 3)
        pixels = pixels.astype(np.float32).mean(axis=-1)
    elif photometric.startswith("MONOCHROME"):
        pixels = apply_rescale(pixels, ds)
    image = to_unit_range(pixels)
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    return image


def load_dicom_example(name: str) -> np.ndarray:
    """One curated example (see :func:`list_dicom_examples`): ``(H, W)`` float32 in [0, 1]."""
    return read_dicom(_example_path(name))
