"""Grey matter, white matter and CSF from a T1 volume by a documented rule, and their overlap.

Anatomy-aware evaluation in the spirit of ACNN (Oktay et al. 2017): a super-resolved volume
is good if the tissue maps drawn from it are those of the thin-slice volume, not only if its
PSNR is high. The rule (the same for every method's volume, so differences come from the
volumes alone):

- the brain is every voxel above ``2 %`` of the reference's maximum (:data:`BRAIN_FRACTION`;
  the background of a skull-stripped T1 is 0);
- inside it, two thresholds ``t1 < t2`` split T1 intensities into CSF (dark), grey matter and
  white matter (bright). They are fitted once, on the **thin-slice reference**, by three-class
  Otsu (``skimage.filters.threshold_multiotsu``: the thresholds that maximise the variance
  between the classes), then applied unchanged to each method's volume.

Labels follow :data:`dlmi_utils.data.TISSUES`: 0 background, 1 CSF, 2 GM, 3 WM. On the
MNI152 template the rule agrees with the template's own tissue probability maps
(:func:`dlmi_utils.data.load_brain_tissue_masks`) with a Dice of about 0.9 for GM and WM
(``tests/test_superres_tissue.py``). Scores per tissue: Dice and the 95th-percentile Hausdorff
distance in mm (:func:`dlmi_utils.metrics.dice`, :func:`dlmi_utils.metrics.hausdorff_distance`).
"""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_multiotsu

from dlmi_utils.data import TISSUES
from dlmi_utils.metrics import dice, hausdorff_distance

BRAIN_FRACTION = 0.02
TISSUE_LABELS = {name: k for k, name in enumerate(TISSUES) if name != "background"}


def brain_mask(volume: np.ndarray, fraction: float = BRAIN_FRACTION) -> np.ndarray:
    """``volume > fraction * volume.max()`` (bool): the brain of a skull-stripped volume."""
    volume = np.asarray(volume)
    if volume.max() <= 0:
        raise ValueError("brain_mask: the volume has no positive voxel: no brain to find")
    return volume > fraction * float(volume.max())


def tissue_thresholds(reference: np.ndarray) -> tuple[float, float, float]:
    """``(t_brain, t1, t2)`` fitted on the reference: the brain threshold and the two Otsu
    thresholds CSF | GM and GM | WM of its brain voxels."""
    reference = np.asarray(reference, dtype=np.float64)
    mask = brain_mask(reference)
    t1, t2 = threshold_multiotsu(reference[mask], classes=3)
    return BRAIN_FRACTION * float(reference.max()), float(t1), float(t2)


def tissue_labels(volume: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
    """Labels ``uint8`` of ``volume``'s shape: 0 at or below ``t_brain``, then 1 (CSF) below
    ``t1``, 2 (GM) below ``t2`` and 3 (WM) from ``t2`` up."""
    t_brain, t1, t2 = thresholds
    volume = np.asarray(volume)
    labels = np.digitize(volume, [t1, t2]).astype(np.uint8) + 1
    labels[volume <= t_brain] = 0
    return labels


def tissue_scores(ref_labels: np.ndarray, est_labels: np.ndarray,
                  spacing: tuple[float, ...] | None = None) -> dict[str, dict[str, float]]:
    """``{"csf", "gm", "wm"} -> {"dice", "hd95"}`` (HD95 in the unit of ``spacing``, mm)
    between two label volumes, and ``"mean" -> {"dice", "hd95"}`` over the three tissues."""
    scores = {}
    for name, k in TISSUE_LABELS.items():
        ref, est = ref_labels == k, est_labels == k
        hd = hausdorff_distance(ref, est, spacing, percentile=95) if ref.any() and est.any() \
            else float("inf")
        scores[name] = {"dice": dice(ref, est), "hd95": hd}
    scores["mean"] = {m: float(np.mean([scores[n][m] for n in TISSUE_LABELS]))
                      for m in ("dice", "hd95")}
    return scores
