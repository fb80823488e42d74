"""Checks of the template lab's example exercise, ``to_unit_range`` (``solutions/_template.ipynb``).

A new lab made with ``dlmi-labs new`` starts with this exercise so that it runs, generates and
grades from its first minute; replace it with the lab's own exercises and their checks in
``dlmi_utils/course/checks/labNN.py``. It also shows the shape of a check: small cases with known
answers, hints for the usual slips, other sizes and seeds when ``strict``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlmi_utils.course.checks import CheckFailed, CheckResult, numpy_result, run_check
from dlmi_utils.data import to_unit_range


def _array(value, what: str, shape: tuple[int, ...]) -> np.ndarray:
    numpy_result(value, what, shape, " (the input's)")
    if not np.issubdtype(value.dtype, np.floating):
        raise CheckFailed(f"{what} returned dtype {value.dtype}: scale to a float array")
    return value


def _hint(x: np.ndarray, got: np.ndarray) -> str:
    lo, hi = float(x.min()), float(x.max())
    slips = [
        (x / hi, "divided by the maximum only: subtract the minimum first"),
        ((x - lo) / hi, "divide by the range (max - min), not by the maximum"),
        ((x - lo) / (hi - lo) * 255, "the range is [0, 1], not [0, 255]"),
        ((hi - x) / (hi - lo), "the scale is inverted: the minimum must map to 0"),
    ]
    for value, hint in slips:
        if np.allclose(got, value, atol=1e-5):
            return hint
    return f"expected values in [0, 1] with the minimum at 0 and the maximum at 1, got " \
           f"[{float(np.nanmin(got)):.3g}, {float(np.nanmax(got)):.3g}]"


def check_to_unit_range(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``to_unit_range(image) -> (image - min) / (max - min)``, float, zeros if constant."""
    rng = np.random.default_rng(seed + (7919 if strict else 0))
    shape = (13, 21) if strict else (8, 8)

    def known_answer(f):
        x = np.array([[10.0, 15.0], [20.0, 30.0]]) + (5.0 if strict else 0.0)
        got = _array(f(x.copy()), "to_unit_range", x.shape)
        if not np.allclose(got, [[0, 0.25], [0.5, 1]], atol=1e-6):
            raise CheckFailed(_hint(x, got))

    def hounsfield_units(f):  # a CT slice: negative values, a range of thousands
        x = rng.uniform(-1024, 3071, size=shape)
        got = _array(f(x.copy()), "to_unit_range", shape)
        if not np.allclose(got, to_unit_range(x), atol=1e-5):
            raise CheckFailed(_hint(x, got))

    def integer_image(f):  # stored DICOM pixels are integers
        x = rng.integers(0, 4096, size=shape).astype(np.uint16)
        got = _array(f(x.copy()), "to_unit_range", shape)
        if not np.allclose(got, to_unit_range(x), atol=1e-5):
            raise CheckFailed("on a uint16 image: " + _hint(x.astype(np.float64), got))

    def constant_image(f):
        x = np.full(shape, 7.0)
        got = _array(f(x.copy()), "to_unit_range", shape)
        if not np.all(np.isfinite(got)) or np.any(got != 0):
            raise CheckFailed("a constant image has max == min: return zeros instead of "
                              "dividing by zero")

    def does_not_modify_input(f):
        x = rng.normal(size=shape)
        x0 = x.copy()
        f(x)
        if not np.array_equal(x, x0):
            raise CheckFailed("to_unit_range changed its input in place: work on a copy")

    return run_check("to_unit_range", fn, [
        ("known answer", known_answer),
        ("Hounsfield units", hounsfield_units),
        ("integer image", integer_image),
        ("constant image", constant_image),
        ("input unchanged", does_not_modify_input),
    ])
