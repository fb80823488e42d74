"""Checks of Lab 07 (MR super-resolution through the plane), written by the student:

- ``thick_slices(x, factor) -> y``: the boxcar acquisition ``A`` along axis 0;
- ``thick_slices_adjoint(y, factor, n_slices) -> x``: its adjoint ``A^T``;
- ``cubic_along_z(y, factor) -> x``: cubic B-spline interpolation with each thick slice at
  its centre;
- ``consistency_projection(x_sr, y, factor) -> x``: the projection onto ``{x : A x = y}``;
- ``tissue_dice(ref_labels, est_labels) -> {"csf", "gm", "wm"}``: Dice per tissue.

Volumes are numpy ``(Z, Y, X)`` arrays with ``z`` (axis 0) the slice direction. Each check
compares with :mod:`dlmi_utils.superres` on small random volumes and recognises the usual
slips (one slice picked instead of the slab's mean, a sum instead of a mean, the weight
``1 / F`` of the adjoint forgotten, ``scipy.ndimage.zoom``'s placement, a slab overwritten
instead of shifted, IoU instead of Dice).

``reference_<exercise>`` is the package's counterpart with the exercise's signature: what the
checks compare with, and what the lab goes on with until the student's function passes
(:func:`dlmi_utils.course.checks.yours_or_reference`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from dlmi_utils.course.checks import CheckFailed, CheckResult, numpy_result, run_check
from dlmi_utils.metrics import dice
from dlmi_utils.superres import ThickSliceForward, interpolate_z


def _rng(seed: int, strict: bool) -> np.random.Generator:
    return np.random.default_rng(seed + (7919 if strict else 0))


def _factors(strict: bool) -> tuple[int, ...]:
    return (3, 5, 6) if strict else (2, 4)


def _array(value, what: str, shape: tuple[int, ...]) -> np.ndarray:
    numpy_result(value, what, shape)
    if not np.issubdtype(value.dtype, np.floating):
        raise CheckFailed(f"{what} returned dtype {value.dtype}: return a float array")
    return value


def _close(a, b, tol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tol, rtol=tol))


def _physics(factor: int) -> ThickSliceForward:
    return ThickSliceForward(factor, "boxcar", axis=0)


# ----------------------------------------------------------------------------- references
TISSUES = {"csf": 1, "gm": 2, "wm": 3}


def reference_thick_slices(x: np.ndarray, factor: int) -> np.ndarray:
    """``thick_slices``: the boxcar ``ThickSliceForward(factor).A`` along axis 0."""
    return _physics(factor).A(x)


def reference_thick_slices_adjoint(y: np.ndarray, factor: int, n_slices: int) -> np.ndarray:
    """``thick_slices_adjoint``: ``ThickSliceForward(factor).A_adjoint`` along axis 0."""
    return _physics(factor).A_adjoint(y, n_slices)


def reference_cubic_along_z(y: np.ndarray, factor: int) -> np.ndarray:
    """``cubic_along_z``: ``interpolate_z(y, factor, "cubic")`` along axis 0."""
    return interpolate_z(y, factor, "cubic", axis=0)


def reference_consistency_projection(x_sr: np.ndarray, y: np.ndarray,
                                     factor: int) -> np.ndarray:
    """``consistency_projection``: ``ThickSliceForward(factor).project`` along axis 0."""
    return _physics(factor).project(x_sr, y)


def reference_tissue_dice(ref_labels: np.ndarray, est_labels: np.ndarray) -> dict[str, float]:
    """``tissue_dice``: :func:`dlmi_utils.metrics.dice` of labels 1 (CSF), 2 (GM), 3 (WM)."""
    return {name: dice(ref_labels == k, est_labels == k) for name, k in TISSUES.items()}


# ----------------------------------------------------------------------------- A
def _forward_hint(x, f, got) -> str:
    k = x.shape[0] // f
    slabs = x[: k * f].reshape(k, f, *x.shape[1:])
    slips = [
        (slabs.sum(1), "you summed the slab: the profile sums to 1, so divide by F (a mean)"),
        (slabs[:, 0], "you picked one thin slice per slab: a thick slice integrates all F of "
                      "them (their mean)"),
        (slabs[:, f // 2], "you picked the middle slice: a thick slice is the mean of its F "
                           "thin slices"),
        (x[: k * f].reshape(f, k, *x.shape[1:]).mean(0),
         "slab k is the contiguous block x[F k : F k + F], not every F-th slice"),
    ]
    for value, hint in slips:
        if _close(got, value):
            return hint
    return "thick slice k is the mean of thin slices F k, ..., F k + F - 1"


def check_thick_slices(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``thick_slices(x, factor) -> y``: ``y[k] = mean(x[F k : F k + F])`` along axis 0."""
    rng = _rng(seed, strict)

    def known_answer(f):
        x = np.arange(8.0)[:, None, None] * np.ones((1, 2, 3))
        got = _array(f(x.copy(), 4), "thick_slices", (2, 2, 3))
        if not _close(got[:, 0, 0], np.array([1.5, 5.5])):
            raise CheckFailed(_forward_hint(x, 4, got))

    def random_volumes(f):
        for factor in _factors(strict):
            x = rng.normal(size=(7 * factor, 4, 5))
            got = _array(f(x.copy(), factor), "thick_slices", (7, 4, 5))
            if not _close(got, reference_thick_slices(x, factor)):
                raise CheckFailed(f"factor {factor}: " + _forward_hint(x, factor, got))

    def remainder_dropped(f):
        factor = 3 if strict else 4
        x = rng.normal(size=(5 * factor + factor - 1, 3, 3))
        got = f(x.copy(), factor)
        if isinstance(got, np.ndarray) and got.shape[0] == 6:
            raise CheckFailed(f"{x.shape[0]} thin slices make {x.shape[0] // factor} whole thick "
                              "slices: drop the last incomplete slab")
        got = _array(got, "thick_slices", (5, 3, 3))
        if not _close(got, reference_thick_slices(x, factor)):
            raise CheckFailed(_forward_hint(x, factor, got))

    def input_untouched(f):
        x = rng.normal(size=(12, 3, 3))
        before = x.copy()
        f(x, 3)
        if not np.array_equal(x, before):
            raise CheckFailed("thick_slices changed its input in place: work on a copy")

    return run_check("thick_slices", fn, [
        ("known answer (a ramp)", known_answer),
        ("random volumes, several factors", random_volumes),
        ("an incomplete last slab", remainder_dropped),
        ("input left untouched", input_untouched),
    ])


# ----------------------------------------------------------------------------- A^T
def check_thick_slices_adjoint(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``thick_slices_adjoint(y, factor, n_slices) -> x`` with ``<A x, y> = <x, A^T y>``."""
    rng = _rng(seed, strict)

    def _call(f, y, factor, n):
        return _array(f(y.copy(), factor, n), "thick_slices_adjoint", (n, *y.shape[1:]))

    def dot_test(f):
        for factor in _factors(strict):
            n = 6 * factor
            x, y = rng.normal(size=(n, 3, 4)), rng.normal(size=(6, 3, 4))
            got = _call(f, y, factor, n)
            lhs, rhs = np.vdot(_physics(factor).A(x), y), np.vdot(x, got)
            if not np.isclose(lhs, rhs, rtol=1e-6):
                ratio = rhs / lhs if lhs else np.inf
                if np.isclose(ratio, factor, rtol=1e-3) or _close(got, np.repeat(y, factor, 0)):
                    raise CheckFailed(f"the dot test is off by a factor F = {factor}: the adjoint "
                                      "of a mean spreads each thick slice with weight 1 / F")
                raise CheckFailed("<A x, y> differs from <x, A^T y>: thin slice F k + j gets "
                                  "y[k] / F")

    def matches_reference(f):
        factor = 5 if strict else 4
        y = rng.normal(size=(4, 2, 3))
        got = _call(f, y, factor, 4 * factor)
        if not _close(got, reference_thick_slices_adjoint(y, factor, 4 * factor)):
            if _close(got, np.tile(y, (factor, 1, 1)) / factor):
                raise CheckFailed("slab k is the contiguous block F k ... F k + F - 1: repeat "
                                  "each thick slice (np.repeat), do not tile the stack")
            raise CheckFailed("thin slices F k ... F k + F - 1 all get y[k] / F")

    def remainder_is_zero(f):
        factor = 3
        y = rng.normal(size=(4, 2, 2))
        got = _call(f, y, factor, 4 * factor + 2)
        if not np.all(got[4 * factor:] == 0):
            raise CheckFailed("the last n_slices - K F thin slices are measured by no thick "
                              "slice: the adjoint puts 0 there")
        if not _close(got, reference_thick_slices_adjoint(y, factor, 4 * factor + 2)):
            raise CheckFailed("thin slices F k ... F k + F - 1 all get y[k] / F")

    return run_check("thick_slices_adjoint", fn, [
        ("dot test <A x, y> = <x, A^T y>", dot_test),
        ("known operator", matches_reference),
        ("uncovered slices", remainder_is_zero),
    ])


# ----------------------------------------------------------------------------- interpolation
def _interp_hint(y, factor, got) -> str:
    n = y.shape[0] * factor
    zoom = ndimage.zoom(y, (factor, 1, 1), order=3)
    starts = ndimage.map_coordinates(
        y, np.meshgrid(np.arange(n) / factor, *map(np.arange, y.shape[1:]), indexing="ij"),
        order=3, mode="nearest")
    slips = [
        (zoom, "that is scipy.ndimage.zoom: it puts y[0] at z = 0 and y[K-1] at z = N - 1, up "
               "to (F - 1) / 2 slices away from the slab centres"),
        (starts, "each thick slice sits at its slab's centre F k + (F - 1) / 2, not at F k: "
                 "sample at t = (z - (F - 1) / 2) / F"),
        (interpolate_z(y, factor, "linear", axis=0), "that is linear interpolation: use order=3"),
        (interpolate_z(y, factor, "nearest", axis=0), "that is nearest-neighbour: use order=3"),
    ]
    for value, hint in slips:
        if _close(got, value, 1e-4):
            return hint
    ref = reference_cubic_along_z(y, factor)
    inner = slice(2 * factor, -2 * factor)
    if _close(got[inner], ref[inner], 1e-4):
        return "right inside, wrong near the first and last slices: use mode='nearest'"
    return "sample the cubic B-spline of the thick stack at t = (z - (F - 1) / 2) / F"


def check_cubic_along_z(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``cubic_along_z(y, factor) -> x`` ``(K F, Y, X)``: order-3 B-spline at the slab centres."""
    rng = _rng(seed, strict)

    def ramp_recovered(f):
        factor = 3 if strict else 4
        x = np.arange(16 * factor, dtype=np.float64)[:, None, None] * np.ones((1, 2, 2))
        y = _physics(factor).A(x)
        got = _array(f(y.copy(), factor), "cubic_along_z", x.shape)
        inner = slice(7 * factor, -7 * factor)
        if not np.allclose(got[inner], x[inner], atol=1e-3):
            raise CheckFailed("a linear ramp along z should come back exactly (away from the "
                              "ends): " + _interp_hint(y, factor, got))

    def random_volumes(f):
        for factor in _factors(strict):
            y = rng.uniform(size=(6, 3, 4))
            got = _array(f(y.copy(), factor), "cubic_along_z", (6 * factor, 3, 4))
            if not _close(got, reference_cubic_along_z(y, factor), 1e-4):
                raise CheckFailed(f"factor {factor}: " + _interp_hint(y, factor, got))

    return run_check("cubic_along_z", fn, [
        ("a ramp comes back", ramp_recovered),
        ("random volumes, several factors", random_volumes),
    ])


# ----------------------------------------------------------------------------- projection
def check_consistency_projection(fn: Callable, strict: bool = False,
                                 seed: int = 0) -> CheckResult:
    """``consistency_projection(x_sr, y, factor) -> x``: nearest ``x`` with ``A x = y``."""
    rng = _rng(seed, strict)

    def _case(factor, extra=0):
        x_true = rng.uniform(size=(5 * factor + extra, 3, 4))
        y = _physics(factor).A(x_true)
        return x_true + rng.normal(scale=0.1, size=x_true.shape), y

    def _hint(x_sr, y, factor, got) -> str:
        physics = _physics(factor)
        residual = physics.A_adjoint(y - physics.A(x_sr), x_sr.shape[0])
        if _close(got, x_sr + residual):
            return ("A A^T = I / F for the boxcar: divide by ||w||^2 = 1 / F, i.e. shift each "
                    "thin slice by the whole residual y[k] - mean(slab k)")
        if _close(got[: y.shape[0] * factor], np.repeat(y, factor, 0)):
            return ("you overwrote each slab with y[k]: that throws the CNN's detail away; "
                    "shift the slab by y[k] - its mean instead")
        return "x + A^T (y - A x) / ||w||^2: add y[k] - mean(slab k) to each slice of slab k"

    def exact(f):
        for factor in _factors(strict):
            x_sr, y = _case(factor)
            got = _array(f(x_sr.copy(), y.copy(), factor), "consistency_projection", x_sr.shape)
            if not _close(_physics(factor).A(got), y):
                raise CheckFailed(f"factor {factor}: A(output) differs from y: "
                                  + _hint(x_sr, y, factor, got))

    def nearest(f):
        factor = 3 if strict else 4
        x_sr, y = _case(factor)
        got = _array(f(x_sr.copy(), y.copy(), factor), "consistency_projection", x_sr.shape)
        if not _close(got, reference_consistency_projection(x_sr, y, factor)):
            raise CheckFailed("A(output) = y, but it is not the nearest such volume to x_sr: "
                              + _hint(x_sr, y, factor, got))

    def idempotent(f):
        factor = 2
        x_sr, y = _case(factor)
        once = _array(f(x_sr.copy(), y.copy(), factor), "consistency_projection", x_sr.shape)
        twice = _array(f(once.copy(), y.copy(), factor), "consistency_projection", x_sr.shape)
        if not _close(once, twice):
            raise CheckFailed("projecting twice must change nothing: a volume with A x = y is "
                              "already in the set")

    def remainder_untouched(f):
        factor = 4
        x_sr, y = _case(factor, extra=2)
        got = _array(f(x_sr.copy(), y.copy(), factor), "consistency_projection", x_sr.shape)
        if not _close(got[-2:], x_sr[-2:]):
            raise CheckFailed("the last thin slices, past K F, are measured by no thick slice: "
                              "leave them as they are")
        if not _close(got, reference_consistency_projection(x_sr, y, factor)):
            raise CheckFailed(_hint(x_sr, y, factor, got))

    def inputs_untouched(f):
        x_sr, y = _case(3)
        before = (x_sr.copy(), y.copy())
        f(x_sr, y, 3)
        if not (np.array_equal(x_sr, before[0]) and np.array_equal(y, before[1])):
            raise CheckFailed("x_sr or y was changed in place: build a new array")

    return run_check("consistency_projection", fn, [
        ("A(output) = y exactly", exact),
        ("the nearest consistent volume", nearest),
        ("idempotent", idempotent),
        ("slices past the last slab", remainder_untouched),
        ("inputs left untouched", inputs_untouched),
    ])


# ----------------------------------------------------------------------------- Dice


def check_tissue_dice(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``tissue_dice(ref_labels, est_labels) -> {"csf", "gm", "wm"}`` of labels 1, 2, 3."""
    rng = _rng(seed, strict)
    shape = (9, 11, 13) if strict else (6, 8, 8)

    def _call(f, ref, est) -> dict:
        got = f(ref.copy(), est.copy())
        if not isinstance(got, dict) or set(got) != set(TISSUES):
            raise CheckFailed(f"return a dict with the keys {sorted(TISSUES)}, got "
                              f"{sorted(got) if isinstance(got, dict) else type(got).__name__}")
        return got

    def random_labels(f):
        ref = rng.integers(0, 4, size=shape).astype(np.uint8)
        est = np.where(rng.random(shape) < 0.3, rng.integers(0, 4, size=shape), ref)
        est = est.astype(np.uint8)
        got, expected = _call(f, ref, est), reference_tissue_dice(ref, est)
        for name, k in TISSUES.items():
            value = float(got[name])
            if abs(value - expected[name]) < 1e-9:
                continue
            r, e = ref == k, est == k
            iou = (r & e).sum() / (r | e).sum()
            if abs(value - iou) < 1e-9:
                raise CheckFailed(f"{name}: that is the IoU |A & B| / |A | B|; Dice is "
                                  "2 |A & B| / (|A| + |B|)")
            for other, j in TISSUES.items():
                if other != name and abs(value - expected[other]) < 1e-9:
                    raise CheckFailed(f"{name} is label {k} (0 background, 1 CSF, 2 GM, 3 WM); "
                                      f"you scored label {j}")
            raise CheckFailed(f"{name}: expected Dice {expected[name]:.4f}, got {value:.4f}")

    def identical_and_disjoint(f):
        ref = rng.integers(1, 4, size=shape).astype(np.uint8)
        same = _call(f, ref, ref)
        if not all(abs(float(v) - 1.0) < 1e-12 for v in same.values()):
            raise CheckFailed("identical label maps must have Dice 1 for every tissue")
        shifted = _call(f, ref, ((ref % 3) + 1).astype(np.uint8))  # every voxel relabelled
        if not all(abs(float(v)) < 1e-12 for v in shifted.values()):
            raise CheckFailed("label maps that disagree everywhere must have Dice 0")

    def absent_tissue(f):
        ref = np.zeros(shape, np.uint8)
        ref[1:-1, 1:-1, 1:-1] = 2
        got = _call(f, ref, ref.copy())
        if not all(np.isfinite(float(v)) for v in got.values()):
            raise CheckFailed("a tissue absent from both maps gave NaN: two empty masks agree "
                              "(Dice 1; dlmi_utils.metrics.dice does this)")
        if abs(float(got["csf"]) - 1.0) > 1e-12:
            raise CheckFailed("a tissue absent from both maps has Dice 1 (they agree)")

    return run_check("tissue_dice", fn, [
        ("random label maps", random_labels),
        ("identical and disjoint maps", identical_and_disjoint),
        ("a tissue absent from both", absent_tissue),
    ])
