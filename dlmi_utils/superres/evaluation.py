"""The template split into regions, and the scores of a super-resolved volume.

**Volumes here are ``(Z, Y, X)``**: axial slices ``vol[z]``, coronal ``vol[:, y]``, sagittal
``vol[:, :, x]``, with ``z`` the slice-select axis of the thick-slice acquisition (the
template's RAS ``(X, Y, Z)`` transposed by :func:`to_zyx`).

**Regions.** One template is one brain: training and testing on it is only honest on
disjoint parts of it, and says nothing yet of another head, contrast or scanner. The regions
are coronal slabs (ranges of ``y``), those of
:func:`dlmi_utils.data.brain_split_indices` ``("coronal")``: training the front and the back of
the brain, validation and test two slabs in between, each 5 mm away from any training slice.
Not hemispheres: the template is exactly left-right symmetric, so one hemisphere is the
mirror image of the other and would test on the training data.

**Scores** (:func:`score_volume`): PSNR and SSIM inside the brain mask of the reference
(voxels above 2 % of its maximum, :func:`dlmi_utils.superres.tissue.brain_mask`), with
``data_range`` the reference's maximum, and the tissue maps' Dice and HD95 against those of
the reference (:mod:`dlmi_utils.superres.tissue`).
"""

from __future__ import annotations

import numpy as np

from dlmi_utils.data import brain_split_indices, load_brain_volume
from dlmi_utils.metrics import psnr, ssim
from dlmi_utils.superres.physics import check_factor
from dlmi_utils.superres.tissue import brain_mask, tissue_labels, tissue_scores, tissue_thresholds


def to_zyx(volume_xyz: np.ndarray) -> np.ndarray:
    """A RAS volume ``(X, Y, Z)`` as a contiguous float32 ``(Z, Y, X)`` array (a copy)."""
    volume_xyz = np.asarray(volume_xyz)
    if volume_xyz.ndim != 3:
        raise ValueError(f"expected a volume (X, Y, Z), got shape {volume_xyz.shape}")
    return np.ascontiguousarray(volume_xyz.transpose(2, 1, 0), dtype=np.float32)


def orthogonal_views(volume: np.ndarray, z: int | None = None, y: int | None = None,
                     x: int | None = None) -> dict[str, np.ndarray]:
    """The axial (``z``), coronal (``y``) and sagittal (``x``) slices through a ``(Z, Y, X)``
    volume (its centre by default), each the radiologist's way up: anterior or superior at
    the top, the subject's left on the left (neurological) or posterior on the left."""
    nz, ny, nx = volume.shape
    z, y, x = (n // 2 if i is None else i for n, i in ((nz, z), (ny, y), (nx, x)))
    return {"axial": volume[z][::-1], "coronal": volume[:, y][::-1],
            "sagittal": volume[:, :, x][::-1]}


def crop_to_slabs(volume: np.ndarray, factor: int) -> np.ndarray:
    """The first ``(Z // F) F`` slices of ``(Z, Y, X)``: those the thick slices cover."""
    factor = check_factor(factor)
    n = (volume.shape[0] // factor) * factor
    if n == 0:
        raise ValueError(f"a volume of {volume.shape[0]} slices has no slab of {factor}")
    return volume[:n]


def template_regions() -> dict[str, list[slice]]:
    """``{"train", "val", "test"}`` -> the ranges of ``y`` (slices) of each region (module doc)."""
    idx = brain_split_indices("coronal")
    out = {}
    for name in ("train", "val", "test"):
        runs = np.split(idx[name], np.flatnonzero(np.diff(idx[name]) > 1) + 1)
        out[name] = [slice(int(r[0]), int(r[-1]) + 1) for r in runs]
    return out


def template_region(name: str, factor: int) -> np.ndarray:
    """The MNI152 template's ``"val"`` or ``"test"`` region ``(K F, Y, X)``, a new array."""
    regions = template_regions()
    if name not in ("val", "test"):
        raise ValueError(f"name must be 'val' or 'test' (training uses template_regions()), "
                         f"got {name!r}")
    (ys,) = regions[name]
    return crop_to_slabs(to_zyx(load_brain_volume()[0])[:, ys], factor).copy()


def score_volume(reference: np.ndarray, estimate: np.ndarray,
                 spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 tissues: bool = True) -> dict[str, float]:
    """``{"psnr", "ssim"}`` in the reference's brain mask and, with ``tissues``, ``"dice"``
    and ``"hd95"`` (mean over CSF, GM, WM; mm) of the tissue maps, per tissue in
    ``"tissue"``."""
    reference = np.asarray(reference, dtype=np.float32)
    estimate = np.asarray(estimate, dtype=np.float32)
    mask = brain_mask(reference)
    data_range = float(reference.max())
    scores: dict = {"psnr": psnr(reference, estimate, data_range=data_range, mask=mask),
                    "ssim": ssim(reference, estimate, data_range=data_range, mask=mask)}
    if tissues:
        thresholds = tissue_thresholds(reference)
        per_tissue = tissue_scores(tissue_labels(reference, thresholds),
                                   tissue_labels(estimate, thresholds), spacing)
        scores.update(dice=per_tissue["mean"]["dice"], hd95=per_tissue["mean"]["hd95"],
                      tissue={k: v for k, v in per_tissue.items() if k != "mean"})
    return scores
