"""Brain MR from the MNI152 T1 template (ICBM 2009a symmetric, 1 mm) shipped with nilearn.

The template is skull-stripped and sampled on a ``197 x 233 x 189`` grid of 1 mm voxels, in
RAS order: axis 0 runs from the subject's left to right (x), axis 1 from posterior to
anterior (y), axis 2 from inferior to superior (z). Its grey- and white-matter probability
maps are on the same grid. Intensities are stored as 8-bit and scaled here to ``[0, 1]``.

Slices (:func:`load_brain_slices`) are displayed the radiologist's way up: axial slices with
anterior at the top, coronal and sagittal slices with superior at the top; columns run along
x (axial, coronal: the subject's left on the left, neurological convention) or along y
(sagittal: posterior on the left). Each slice is zero-padded, centred, into a ``size x size``
square: no interpolation, so a pixel is 1 mm (or ``pixel_size_mm`` after an anti-aliased
downsampling in the slice plane; slices stay 1 mm apart).

Split (deterministic, by contiguous slabs): slices with fewer than 15 % brain pixels (of the
native slice) are dropped; of the ``n`` kept slices, counted along the slicing axis, the
validation slab holds ``round(0.12 n)`` slices from position ``round(0.35 n)``, the test slab
the next ``round(0.18 n)`` after a gap of 5 slices (5 mm), and training is everything else
except 5 slices on each side of the held-out slabs. So no held-out slice has a training
neighbour closer than 6 mm. :func:`brain_split_indices` tells which slices went where.

The template is exactly left-right symmetric (``vol == vol[::-1]``): a sagittal slice of the
left hemisphere is the mirror image of one of the right. Sagittal slices therefore come from
the midline and the right hemisphere only, so no slice has its mirror twin in another split.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

SPACING_MM = (1.0, 1.0, 1.0)
MIN_BRAIN_FRACTION = 0.15
SPLIT_GAP = 5
SPLITS = ("train", "val", "test", "all")
ORIENTATIONS = {"sagittal": 0, "coronal": 1, "axial": 2}
TISSUES = ("background", "csf", "gm", "wm")

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def _nilearn_data_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the MNI152 brain template comes with nilearn: pip install nilearn"
        )
    return Path(spec.origin).parent / "datasets" / "data"


def _read_map(kind: str) -> np.ndarray:
    """One template map as float32 in [0, 1], shape (197, 233, 189)."""
    path = _nilearn_data_dir() / _FILES[kind]
    if path.exists():
        import nibabel as nib

        data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        return data / 255.0
    # nilearn moved its files: fall back on its public loaders (slower: they import nilearn)
    from nilearn import datasets

    loader = {
        "t1": datasets.load_mni152_template,
        "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template,
    }[kind]
    return np.asarray(loader(resolution=1).get_fdata(), dtype=np.float32)


@functools.cache
def _maps() -> dict[str, np.ndarray]:
    maps = {kind: np.clip(_read_map(kind), 0.0, 1.0) for kind in _FILES}
    for m in maps.values():
        m.setflags(write=False)
    return maps


def load_brain_volume() -> tuple[np.ndarray, tuple[float, float, float]]:
    """The MNI152 T1 template: ``(197, 233, 189)`` float32 in ``[0, 1]`` and its spacing in mm.

    The array is cached and read-only: ``.copy()`` it before changing it.
    """
    return _maps()["t1"], SPACING_MM


def _check(orientation: str, split: str | None = None) -> int:
    if orientation not in ORIENTATIONS:
        raise ValueError(
            f"orientation must be one of {sorted(ORIENTATIONS)}, got {orientation!r}"
        )
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return ORIENTATIONS[orientation]


def _to_display(volume: np.ndarray, axis: int) -> np.ndarray:
    """Volume -> stack of slices along ``axis``, ``(N, rows, cols)`` in display orientation."""
    stack = np.moveaxis(volume, axis, 0)  # (N, a, b) with a, b the two remaining RAS axes
    # rows: the second remaining axis (y for axial, z otherwise) reversed, so up is anterior or
    # superior; columns: the first remaining axis.
    return np.ascontiguousarray(np.flip(np.swapaxes(stack, 1, 2), axis=1))


def brain_split_indices(orientation: str = "axial") -> dict[str, np.ndarray]:
    """Indices along the slicing axis of the slices in each split (see the module doc).

    Returns ``{"train", "val", "test", "all"}`` -> sorted int arrays of voxel indices.
    """
    _check(orientation)
    return dict(_split_indices(orientation))


@functools.cache
def _split_indices(orientation: str) -> dict[str, np.ndarray]:
    axis = ORIENTATIONS[orientation]
    brain = _maps()["t1"] > 0
    other = tuple(i for i in range(3) if i != axis)
    kept = np.flatnonzero(brain.mean(axis=other) >= MIN_BRAIN_FRACTION)
    if axis == 0:  # symmetric template: the left hemisphere mirrors the right one
        kept = kept[kept >= (brain.shape[0] - 1) // 2]
    n = len(kept)
    v0 = round(0.35 * n)
    v1 = v0 + round(0.12 * n)
    t0 = v1 + SPLIT_GAP
    t1 = t0 + round(0.18 * n)
    pos = np.arange(n)
    train = (pos < v0 - SPLIT_GAP) | (pos >= t1 + SPLIT_GAP)
    out = {
        "train": kept[train],
        "val": kept[(pos >= v0) & (pos < v1)],
        "test": kept[(pos >= t0) & (pos < t1)],
        "all": kept,
    }
    for a in out.values():
        a.setflags(write=False)
    return out


def _pad_centre(stack: np.ndarray, size: int, what: str) -> np.ndarray:
    n, h, w = stack.shape
    if h > size or w > size:
        raise ValueError(
            f"{what} slices are {h} x {w} pixels and do not fit in size={size}: "
            f"ask for size >= {max(h, w)} or a larger pixel_size_mm"
        )
    out = np.zeros((n, size, size), dtype=stack.dtype)
    top, left = (size - h) // 2, (size - w) // 2
    out[:, top : top + h, left : left + w] = stack
    return out


def _downsample(stack: np.ndarray, pixel_size_mm: float) -> np.ndarray:
    """Anti-aliased in-plane resampling of ``(N, H, W)`` 1 mm slices to ``pixel_size_mm``."""
    if pixel_size_mm == 1.0:
        return stack
    from skimage.transform import rescale

    scale = (1.0, 1.0 / pixel_size_mm, 1.0 / pixel_size_mm)
    return rescale(stack, scale, order=1, anti_aliasing=pixel_size_mm > 1.0,
                   preserve_range=True).astype(np.float32)


def _check_pixel_size(pixel_size_mm: float) -> float:
    pixel_size_mm = float(pixel_size_mm)
    if not 0.25 <= pixel_size_mm <= 8.0:
        raise ValueError(f"pixel_size_mm must be between 0.25 and 8 mm, got {pixel_size_mm}")
    return pixel_size_mm


@functools.lru_cache(maxsize=16)
def _stack(kind: str, orientation: str, size: int, pixel_size_mm: float) -> np.ndarray:
    """All kept slices of one map, padded: ``(N, size, size)`` float32 (cached, read-only)."""
    axis = ORIENTATIONS[orientation]
    idx = brain_split_indices(orientation)["all"]
    stack = _to_display(np.take(_maps()[kind], idx, axis=axis), axis)
    stack = np.clip(_downsample(stack, pixel_size_mm), 0.0, 1.0)
    out = _pad_centre(stack, size, orientation)
    out.setflags(write=False)
    return out


def _rows(orientation: str, split: str) -> np.ndarray:
    idx = brain_split_indices(orientation)
    return np.searchsorted(idx["all"], idx[split])


def load_brain_slices(
    split: str = "train",
    orientation: str = "axial",
    size: int = 256,
    pixel_size_mm: float = 1.0,
) -> np.ndarray:
    """Slices of the MNI152 T1 template: ``(N, size, size)`` float32 in ``[0, 1]``.

    Pixel size 1 mm by default (``pixel_size_mm`` resamples in the slice plane with
    anti-aliasing). Slices are zero-padded and centred, never stretched; ``split`` is one of
    ``"train"``, ``"val"``, ``"test"`` (contiguous slabs with 5 mm gaps, see the module doc)
    or ``"all"``. Deterministic; a new array each call.
    """
    _check(orientation, split)
    stack = _stack("t1", orientation, int(size), _check_pixel_size(pixel_size_mm))
    return stack[_rows(orientation, split)].copy()


def _tissue_labels(maps: dict[str, np.ndarray]) -> np.ndarray:
    """Argmax over (background, csf, gm, wm) probabilities -> uint8 labels 0..3."""
    gm, wm = maps["gm"], maps["wm"]
    brain = (maps["t1"] > 0).astype(np.float32)
    csf = brain * np.clip(1.0 - gm - wm, 0.0, 1.0)
    prob = np.stack([1.0 - brain, csf, gm * brain, wm * brain])
    return np.argmax(prob, axis=0).astype(np.uint8)


def load_brain_tissue_masks(
    split: str | None = "all",
    orientation: str = "axial",
    size: int = 256,
    index: int | None = None,
    pixel_size_mm: float = 1.0,
) -> dict[str, np.ndarray]:
    """Tissue masks ``{"background", "csf", "gm", "wm"}`` (bool, disjoint, covering everything).

    From the template's tissue probability maps: CSF is the brain's remainder
    ``1 - p_gm - p_wm`` inside the brain, background outside it, and each pixel takes the most
    probable class (so a class above 0.5 always wins). The masks line up with
    ``load_brain_slices(split, orientation, size, pixel_size_mm)``: shape ``(N, size, size)``,
    or ``(size, size)`` for the slice ``index`` of that split. ``split=None`` gives the 3-D
    masks on the volume grid ``(197, 233, 189)`` instead.
    """
    if split is None:
        labels = _tissue_labels(_maps())
        if index is not None:
            raise ValueError("index selects a slice of a split: give split= too")
        return {name: labels == k for k, name in enumerate(TISSUES)}
    _check(orientation, split)
    args = (orientation, int(size), _check_pixel_size(pixel_size_mm))
    rows = _rows(orientation, split)
    if index is not None:
        if not -len(rows) <= index < len(rows):
            raise IndexError(f"index {index} out of range for the {len(rows)} {split} slices")
        rows = rows[index]
    maps = {kind: _stack(kind, *args)[rows] for kind in _FILES}
    labels = _tissue_labels(maps)
    return {name: labels == k for k, name in enumerate(TISSUES)}


def load_nifti_volume(path: str | Path, spacing_mm: float | None = 1.0
                      ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A 3-D NIfTI brain volume laid out like :func:`load_brain_volume`, and its spacing in mm.

    The voxel axes are put in the closest RAS order by the file's affine
    (``nibabel.as_closest_canonical``: axis 0 left to right, 1 posterior to anterior, 2
    inferior to superior), resampled to ``spacing_mm`` isotropic voxels when they differ
    (cubic spline, field of view kept; ``None`` keeps them), and scaled to ``[0, 1]``:
    negative values are clipped, then intensities are divided by the 99.9th percentile of
    the non-zero voxels and clipped at 1. Returns ``(X, Y, Z)`` float32 and the spacing.

    Raises ``ValueError`` for a file that is not one 3-D volume (a 2-D image, a 4-D series)
    or whose header has no affine (``sform_code`` and ``qform_code`` both 0): then the
    orientation of the voxel axes is unknown, and so is the through-plane axis.
    """
    image = nib.load(str(path))
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        image = image.slicer[..., 0]
    elif len(shape) != 3:
        raise ValueError(f"{Path(path).name}: expected one 3-D volume, got shape {shape}"
                         + (": a 2-D image has no through-plane axis" if len(shape) < 3 else ""))
    header = image.header
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise ValueError(f"{Path(path).name} has no affine (sform_code and qform_code are 0): "
                         "the orientation of its voxel axes is unknown, so is the slice "
                         "direction; fix the header (e.g. nibabel's set_sform)")
    image = nib.as_closest_canonical(image)
    data = np.asarray(image.dataobj, dtype=np.float32)
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=np.float64)
    if spacing_mm is not None and not np.allclose(zooms, spacing_mm, rtol=1e-3):
        data = ndimage.zoom(data, zooms / spacing_mm, order=3, grid_mode=True,
                            mode="grid-constant")
        zooms = np.full(3, float(spacing_mm))
    data = np.clip(data, 0.0, None)
    nonzero = data[data > 0]
    if nonzero.size == 0:
        raise ValueError(f"{Path(path).name}: the volume has no positive voxel")
    data = np.clip(data / np.percentile(nonzero, 99.9), 0.0, 1.0).astype(np.float32)
    return data, tuple(float(z) for z in zooms)
