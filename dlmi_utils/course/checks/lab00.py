"""Checks of Lab 00 (metrics and losses): ``psnr``, ``dice`` and ``coc`` written by the student.

Each check runs the student's function on small cases with known answers, compares it with
``dlmi_utils.metrics`` on random images, and recognises the usual slips (RMSE for MSE, the
natural log, the image maximum for ``data_range``, Jaccard for Dice, ``ref + est`` on boolean
masks, a correlation without centring) to say what is off.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from dlmi_utils import metrics
from dlmi_utils.course.checks import CheckFailed, CheckResult, run_check


def _rng(seed: int, strict: bool) -> np.random.Generator:
    return np.random.default_rng(seed + (7919 if strict else 0))


def _shape(strict: bool) -> tuple[int, int]:
    return (45, 37) if strict else (32, 32)


def _number(value, what: str) -> float:
    """The student's return value as a float, or a hint on what was returned instead."""
    if hasattr(value, "detach"):
        raise CheckFailed(f"{what} returned a torch tensor: return a Python float (use .item())")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return float(value)
        raise CheckFailed(
            f"{what} returned an array of shape {value.shape}, not one number: "
            "did you forget to average (np.mean) or sum over all pixels?"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a float")
    return float(value)


def _close(a: float, b: float, tol: float) -> bool:
    if math.isinf(b):
        return math.isinf(a) and (a > 0) == (b > 0)
    return abs(a - b) <= tol * max(1.0, abs(b))


def _smooth_image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    img = ndimage.gaussian_filter(rng.random(shape), 2)
    return (img - img.min()) / (img.max() - img.min())


def _blob(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return ndimage.gaussian_filter(rng.random(shape), 2) > 0.5


# ----------------------------------------------------------------------------- psnr
def _psnr_hint(got: float, mse: float, data_range: float, ref: np.ndarray) -> str:
    right = 10 * math.log10(data_range**2 / mse)
    slips = [
        (right / 2, "off by a factor ~2 (too small): 10 log10 goes with the MSE and "
                    "data_range^2: did you take the RMSE instead of the MSE?"),
        (2 * right, "off by a factor ~2 (too large): 20 log10 goes with the RMSE, "
                    "10 log10 with the MSE"),
        (-right, "wrong sign: the PSNR is data_range^2 over the MSE, not the other way"),
        (right * math.log(10), "use the base-10 logarithm (np.log10), not np.log"),
        (10 * math.log10(float(ref.max()) ** 2 / mse),
         "use the data_range argument, not the maximum of the image"),
        (10 * math.log10(data_range / mse), "data_range must be squared (peak power)"),
    ]
    for value, hint in slips:
        if abs(got - value) < 1e-3 * max(1.0, abs(value)):
            return hint
    return (f"expected {right:.2f} dB (MSE = {mse:g}, data_range = {data_range:g}), "
            f"got {got:.2f} dB")


def check_psnr(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``psnr(ref, x, data_range) -> float`` in dB, ``10 log10(data_range^2 / MSE)``."""
    rng = _rng(seed, strict)
    shape = _shape(strict)

    def constant_error(f):
        ref = 0.5 * _smooth_image(rng, shape)  # max 0.5: a data_range taken from it is wrong
        x = ref + 0.1
        got = _number(f(ref, x, 1.0), "psnr")
        if not _close(got, 20.0, 1e-6):
            raise CheckFailed(_psnr_hint(got, 0.01, 1.0, ref))

    def uses_data_range(f):
        ref = _smooth_image(rng, shape)
        x = ref + 0.05 * rng.standard_normal(shape)
        a, b = _number(f(ref, x, 1.0), "psnr"), _number(f(ref, x, 2.0), "psnr")
        if not _close(b - a, 20 * math.log10(2), 1e-6):
            raise CheckFailed(
                "doubling data_range must add 20 log10(2) = 6.02 dB: "
                + _psnr_hint(b, float(np.mean((x - ref) ** 2)), 2.0, ref)
            )

    def random_images(f):
        ref = 255 * _smooth_image(rng, shape)
        x = ref + 20 * rng.standard_normal(shape)
        got = _number(f(ref, x, 255.0), "psnr")
        expected = metrics.psnr(ref, x, data_range=255.0)
        if not _close(got, expected, 1e-6):
            raise CheckFailed(_psnr_hint(got, float(np.mean((x - ref) ** 2)), 255.0, ref))

    def does_not_modify_inputs(f):
        ref = _smooth_image(rng, shape)
        x = ref + 0.1 * rng.standard_normal(shape)
        ref0, x0 = ref.copy(), x.copy()
        f(ref, x, 1.0)
        if not (np.array_equal(ref, ref0) and np.array_equal(x, x0)):
            raise CheckFailed("psnr changed its input arrays in place: compute on a copy")

    return run_check("psnr", fn, [
        ("constant error 0.1, data_range 1", constant_error),
        ("data_range is used", uses_data_range),
        ("random 8-bit-like images", random_images),
        ("inputs left untouched", does_not_modify_inputs),
    ])


# ----------------------------------------------------------------------------- dice
def _dice_hint(got: float, ref: np.ndarray, est: np.ndarray) -> str:
    inter = float(np.logical_and(ref, est).sum())
    a, b = float(ref.sum()), float(est.sum())
    union = float(np.logical_or(ref, est).sum())
    right = 2 * inter / (a + b)
    slips = [
        (inter / union, "that is the Jaccard index |A & B| / |A | B|; Dice is "
                        "2 |A & B| / (|A| + |B|)"),
        (inter / (a + b), "missing the factor 2 in the numerator"),
        (2 * inter / union, "with boolean arrays `ref + est` is a logical OR: "
                            "add the counts, ref.sum() + est.sum()"),
    ]
    for value, hint in slips:
        if abs(got - value) < 1e-6:
            return hint
    return f"expected {right:.4f}, got {got:.4f}"


def check_dice(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``dice(ref, est) -> float`` of two boolean masks, ``2 |A & B| / (|A| + |B|)``."""
    rng = _rng(seed, strict)
    shape = _shape(strict)

    def overlapping_squares(f):
        ref = np.zeros(shape, bool)
        est = np.zeros(shape, bool)
        ref[2:12, 2:12] = True  # 100 pixels
        est[7:17, 2:12] = True  # 100 pixels, overlap 50
        got = _number(f(ref, est), "dice")
        if not _close(got, 0.5, 1e-9):
            raise CheckFailed(_dice_hint(got, ref, est))

    def identical_and_disjoint(f):
        ref = _blob(rng, shape)
        if not _close(_number(f(ref, ref), "dice"), 1.0, 1e-9):
            raise CheckFailed("a mask compared with itself must give 1.0")
        if not _close(_number(f(ref, ~ref), "dice"), 0.0, 1e-9):
            raise CheckFailed("a mask and its complement (no overlap) must give 0.0")

    def two_empty_masks(f):
        empty = np.zeros(shape, bool)
        got = _number(f(empty, empty), "dice")
        if math.isnan(got) or not _close(got, 1.0, 1e-9):
            raise CheckFailed(
                f"two empty masks agree perfectly: return 1.0 there (got {got}); "
                "0 / 0 needs a special case"
            )

    def random_masks_2d_and_3d(f):
        for sh in (shape, (6, *shape)):
            ref, est = _blob(rng, sh), _blob(rng, sh)
            got = _number(f(ref, est), "dice")
            if not _close(got, metrics.dice(ref, est), 1e-9):
                raise CheckFailed(f"{len(sh)}D masks: " + _dice_hint(got, ref, est))

    return run_check("dice", fn, [
        ("two squares overlapping by half", overlapping_squares),
        ("identical and disjoint masks", identical_and_disjoint),
        ("two empty masks", two_empty_masks),
        ("random 2D and 3D masks", random_masks_2d_and_3d),
    ])


# ----------------------------------------------------------------------------- coc
def _coc_hint(got: float, ref: np.ndarray, x: np.ndarray) -> str:
    r, e = ref.ravel(), x.ravel()
    right = float(np.corrcoef(r, e)[0, 1])
    cov = float(np.mean((r - r.mean()) * (e - e.mean())))
    slips = [
        (float(r @ e / (np.linalg.norm(r) * np.linalg.norm(e))),
         "subtract the means first: without centring this is the cosine similarity"),
        (cov, "that is the covariance: divide by the two standard deviations"),
        (right**2, "that is r^2: return the correlation itself (it can be negative)"),
        (abs(right), "the correlation keeps its sign: do not take the absolute value"),
    ]
    for value, hint in slips:
        if abs(got - value) < 1e-6 and abs(value - right) > 1e-6:
            return hint
    return f"expected {right:.4f}, got {got:.4f}"


def check_coc(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``coc(ref, x) -> float``: Pearson's correlation coefficient of the pixel values."""
    rng = _rng(seed, strict)
    shape = _shape(strict)

    def affine_copy_gives_one(f):
        ref = _smooth_image(rng, shape)
        for a, b, expected in ((3.0, 2.0, 1.0), (-0.5, 1.0, -1.0)):
            x = a * ref + b
            got = _number(f(ref, x), "coc")
            if not _close(got, expected, 1e-6):
                raise CheckFailed(
                    f"x = {a} * ref + {b} must give {expected:+.0f} (a correlation ignores "
                    f"offset and scale, keeps the sign): {_coc_hint(got, ref, x)}"
                )

    def noisy_image(f):
        ref = _smooth_image(rng, shape) + 2.0  # a large mean: centring matters
        x = ref + 0.2 * rng.standard_normal(shape)
        got = _number(f(ref, x), "coc")
        if not _close(got, metrics.coc(ref, x), 1e-6):
            raise CheckFailed(_coc_hint(got, ref, x))

    def anticorrelated_noise(f):
        ref = _smooth_image(rng, shape)
        x = 1 - ref + 0.3 * rng.standard_normal(shape)
        got = _number(f(ref, x), "coc")
        if not _close(got, metrics.coc(ref, x), 1e-6):
            raise CheckFailed(_coc_hint(got, ref, x))

    return run_check("coc", fn, [
        ("affine copies: +1 and -1", affine_copy_gives_one),
        ("noisy image with a large mean", noisy_image),
        ("inverted contrast", anticorrelated_noise),
    ])
