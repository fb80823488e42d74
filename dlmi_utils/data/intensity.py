"""Intensity scaling shared by the image readers."""

from __future__ import annotations

import numpy as np


def to_unit_range(image: np.ndarray) -> np.ndarray:
    """Min-max scaling to ``[0, 1]`` float32 (a constant image gives zeros)."""
    image = np.asarray(image, dtype=np.float32)
    lo, hi = float(np.min(image)), float(np.max(image))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("the image holds NaN or infinite values")
    if hi <= lo:
        return np.zeros_like(image)
    return (image - lo) / (hi - lo)
