"""Checks of Lab 01 (k-space and undersampling), written by the student:

- ``fft2c(x) -> k``: the centred orthonormal 2D FFT over the last two axes;
- ``ifft2c(k) -> x``: its inverse;
- ``random_cartesian_mask(shape, acceleration, center_fraction, seed) -> mask``: fully sampled
  central columns plus columns drawn uniformly at random, ``round(W / R)`` columns in all;
- ``zero_filled(kspace, mask) -> x_u``: the zero-filled image ``x_u = F^H M s``.

Each check compares with :mod:`dlmi_utils.fourier`, :mod:`dlmi_utils.mri.sampling` and
:class:`dlmi_utils.mri.MRIForward` on small problems (odd sizes included) and recognises the usual
slips: a missing ``ifftshift`` / ``fftshift`` ("off by an fftshift"), a norm that is not
orthonormal ("scale off by sqrt(N)"), the inverse transform for the forward one, a real output
(``.real``, ``np.abs``) where k-space or ``x_u`` is complex, rows instead of columns, the wrong
number of columns, an unsampled or off-centre centre, an unapplied or transposed mask.

:func:`random_cartesian_mask` and :func:`zero_filled` are the package's own rules
(``sampling.RandomCartesianMask``, ``MRIForward.zero_filled``) with the exercises' signatures:
the lab goes on with them until the student's functions pass their checks
(:func:`dlmi_utils.course.checks.yours_or_reference`). The FFT exercises need no such reference:
:mod:`dlmi_utils.fourier` has the same signatures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlmi_utils import fourier
from dlmi_utils.course.checks import CheckFailed, CheckResult, numpy_result, run_check
from dlmi_utils.mri import MRIForward
from dlmi_utils.mri.sampling import RandomCartesianMask

_AXES = (-2, -1)


def _rng(seed: int, strict: bool) -> np.random.Generator:
    return np.random.default_rng(seed + (7919 if strict else 0))


def _shapes(strict: bool) -> list[tuple[int, int]]:
    """Image sizes of the cases: one even, one with odd sides (where the shifts differ)."""
    return [(20, 14), (15, 21)] if strict else [(16, 16), (9, 12)]


def _complex_image(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _array(value, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """The student's return value as a numpy array of ``shape``, or a hint on what it is."""
    return numpy_result(value, what, shape, " (the input's): transform over the last two axes "
                        "only (axes=(-2, -1))")


def _complex_array(value, what: str, shape: tuple[int, ...], right: np.ndarray) -> np.ndarray:
    got = _array(value, what, shape)
    if not np.iscomplexobj(got):
        tol = 1e-6 * _scale(right)
        if np.allclose(got, np.abs(right), atol=tol) and not np.allclose(got, right.real, atol=tol):
            raise CheckFailed(
                f"{what} returned the magnitude (dtype {got.dtype}): return the complex values; "
                "take np.abs only to display them"
            )
        raise CheckFailed(
            f"{what} returned dtype {got.dtype}, real instead of complex: keep the complex "
            "values (no .real, no np.abs)"
        )
    return got


def _scale(a: np.ndarray) -> float:
    return max(float(np.abs(a).max()), 1e-12)


def _close(got: np.ndarray, expected: np.ndarray, tol: float = 1e-5) -> bool:
    if got.shape != expected.shape:
        return False
    error = float(np.linalg.norm(got - expected))
    return error <= tol * max(float(np.linalg.norm(expected)), 1e-12)


# ----------------------------------------------------------------------------- references
def random_cartesian_mask(shape: tuple[int, int], acceleration: float,
                          center_fraction: float = 0.08, seed: int = 0) -> np.ndarray:
    """``(H, W)`` bool: the package's random Cartesian mask, with the exercise's signature.

    ``N_low = round(W * center_fraction)`` central columns plus ``round(W / R) - N_low`` others
    drawn uniformly without replacement with ``np.random.default_rng(seed)``.
    """
    return RandomCartesianMask(acceleration, center_fraction)(shape, seed=seed)


def zero_filled(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``x_u = F^H M s`` ``(..., H, W)`` complex of k-space ``s`` ``(..., H, W)`` and one mask
    ``(H, W)``: the package's operator ``MRIForward(mask)``, with the exercise's signature."""
    return MRIForward(mask).zero_filled(kspace)


# ----------------------------------------------------------------------------- fft2c, ifft2c
def _fft_hint(got: np.ndarray, x: np.ndarray, inverse: bool) -> str:
    """Which slip turns ``x`` into ``got``: shifts, norm, direction, axes."""
    name = "ifft2c" if inverse else "fft2c"
    transform, other = (np.fft.ifft2, np.fft.fft2) if inverse else (np.fft.fft2, np.fft.ifft2)

    def t(a, norm="ortho", fn=transform):
        return fn(a, axes=_AXES, norm=norm)

    def shift(a):
        return np.fft.fftshift(a, axes=_AXES)

    def ishift(a):
        return np.fft.ifftshift(a, axes=_AXES)

    right = shift(t(ishift(x)))
    n = x.shape[-2] * x.shape[-1]
    where = "k-space" if not inverse else "the image"
    slips = [
        (shift(t(ishift(x), norm="backward")),
         f"scale off by sqrt(N) = sqrt(H W) = {np.sqrt(n):.2f}: use norm=\"ortho\" "
         "(orthonormal, so that ||fft2c(x)|| = ||x||)"),
        (shift(t(ishift(x), norm="forward")),
         f"scale off by sqrt(N) = sqrt(H W) = {np.sqrt(n):.2f}: use norm=\"ortho\" "
         "(orthonormal, so that ||fft2c(x)|| = ||x||)"),
        (t(x), "off by an fftshift: no shift at all; ifftshift before the FFT (the centre to "
               "index 0), fftshift after (index 0 back to the centre (H // 2, W // 2))"),
        (shift(t(x)), "off by an fftshift: the ifftshift before the FFT is missing (the centre "
                      "of the input must move to index 0 first)"),
        (t(ishift(x)), f"off by an fftshift: the fftshift after the FFT is missing (the centre of "
                       f"{where} ends up at index (0, 0) instead of (H // 2, W // 2))"),
        (shift(t(shift(x))), "off by an fftshift: ifftshift before the FFT, fftshift after "
                             "(you used fftshift twice; they differ for odd sizes)"),
        (ishift(t(ishift(x))), "off by an fftshift: ifftshift before the FFT, fftshift after "
                               "(you used ifftshift twice; they differ for odd sizes)"),
        (ishift(t(shift(x))), "fftshift and ifftshift swapped: ifftshift before the FFT, "
                              "fftshift after (they differ for odd sizes)"),
        (shift(t(ishift(x), fn=other)),
         "that is the inverse transform: fft2c uses np.fft.fft2" if not inverse else
         "that is the forward transform: ifft2c uses np.fft.ifft2"),
    ]
    if x.ndim > 2:
        slips.append((np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x), norm="ortho") if not inverse
                                      else np.fft.ifftn(np.fft.ifftshift(x), norm="ortho")),
                      "transform the last two axes only (axes=(-2, -1)), not the batch axis"))
    for value, hint in slips:
        if _close(got, value, 1e-5) and not _close(right, value, 1e-5):
            return hint
    if _close(np.conj(got), right, 1e-5):
        return f"{name} returned the complex conjugate of the right answer"
    ratio = float(np.linalg.norm(got)) / max(float(np.linalg.norm(right)), 1e-12)
    if abs(ratio - 1) > 1e-3:
        return (f"||{name}(x)|| / ||x|| = {ratio:.3g}, expected 1 (orthonormal): check the "
                "normalisation")
    return f"{name} differs from the centred orthonormal FFT (relative error " \
           f"{np.linalg.norm(got - right) / np.linalg.norm(right):.2g})"


def _check_transform(fn: Callable, inverse: bool, strict: bool, seed: int) -> CheckResult:
    name = "ifft2c" if inverse else "fft2c"
    reference = fourier.ifft2c if inverse else fourier.fft2c
    rng = _rng(seed + (1 if inverse else 0), strict)
    shapes = _shapes(strict)
    domain, other_domain = ("k-space", "image") if inverse else ("image", "k-space")

    def compare(f, x, what):
        right = reference(x)
        got = _complex_array(f(x.copy()), name, x.shape, right)
        if not _close(got, right):
            raise CheckFailed(f"{what}: {_fft_hint(got, x, inverse)}")

    def centred_point(f):
        for shape in shapes:
            x = np.zeros(shape, complex)
            x[shape[0] // 2, shape[1] // 2] = 1.0
            right = np.full(shape, 1 / np.sqrt(shape[0] * shape[1]), complex)
            got = _complex_array(f(x.copy()), name, shape, right)
            if not _close(got, right):
                raise CheckFailed(
                    f"shape {shape}: a point at the centre (H // 2, W // 2) of the {domain} must "
                    f"give a flat {other_domain} of value 1 / sqrt(H W); "
                    + _fft_hint(got, x, inverse)
                )

    def constant(f):
        for shape in shapes:
            x = np.full(shape, 2.0 + 1.0j)
            right = np.zeros(shape, complex)
            right[shape[0] // 2, shape[1] // 2] = (2.0 + 1.0j) * np.sqrt(shape[0] * shape[1])
            got = _complex_array(f(x.copy()), name, shape, right)
            if not _close(got, right):
                raise CheckFailed(
                    f"shape {shape}: a constant {domain} must give a single sample at the centre "
                    f"(H // 2, W // 2) of the {other_domain}; " + _fft_hint(got, x, inverse)
                )

    def random_complex(f):
        for shape in shapes:
            compare(f, _complex_image(rng, shape), f"random complex {domain} {shape}")

    def real_input(f):
        x = rng.random(shapes[1])
        compare(f, x, f"a real {domain} (the output is still complex)")

    def batch(f):
        shape = (3, *shapes[1]) if strict else (2, *shapes[0])
        compare(f, _complex_image(rng, shape), f"a batch {shape}, each {domain} on its own")

    cases = [
        (f"a point at the centre of the {domain}", centred_point),
        (f"a constant {domain}", constant),
        (f"random complex {domain}s, even and odd sizes", random_complex),
        (f"a real-valued {domain}", real_input),
        ("a batch (B, H, W)", batch),
    ]
    if inverse:
        def round_trip(f):
            x = _complex_image(rng, shapes[1])
            got = _complex_array(f(fourier.fft2c(x)), name, x.shape, x)
            if not _close(got, x):
                raise CheckFailed("ifft2c(fft2c(x)) must give x back: "
                                  + _fft_hint(got, fourier.fft2c(x), inverse))

        cases.append(("ifft2c(fft2c(x)) = x", round_trip))
    return run_check(name, fn, cases)


def check_fft2c(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``fft2c(x) -> fftshift(fft2(ifftshift(x), norm="ortho"))`` over the last two axes."""
    return _check_transform(fn, inverse=False, strict=strict, seed=seed)


def check_ifft2c(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``ifft2c(k) -> fftshift(ifft2(ifftshift(k), norm="ortho"))`` over the last two axes."""
    return _check_transform(fn, inverse=True, strict=strict, seed=seed)


# ----------------------------------------------------------------------------- random mask
def _mask(value, shape: tuple[int, int]) -> np.ndarray:
    """The student's mask as a boolean ``(H, W)`` array of whole columns, or a hint."""
    if hasattr(value, "detach"):
        raise CheckFailed("random_cartesian_mask returned a torch tensor: return a numpy array")
    if not isinstance(value, np.ndarray):
        raise CheckFailed(
            f"random_cartesian_mask returned {type(value).__name__}, expected a numpy array")
    if value.shape == (shape[1],):
        raise CheckFailed(
            f"returned the {shape[1]} columns only, shape {value.shape}: return the mask of "
            f"shape {shape} (the same columns repeated on every row, np.broadcast_to or np.tile)"
        )
    if value.shape != shape:
        raise CheckFailed(f"returned shape {value.shape}, expected {shape} (the shape argument)")
    if value.dtype != bool:
        if np.iscomplexobj(value) or not np.isin(np.unique(value), (0, 1)).all():
            raise CheckFailed(f"the mask must be boolean (True = measured), got dtype "
                              f"{value.dtype} with values other than 0 and 1")
        value = value.astype(bool)
    columns_constant = bool((value == value[:1]).all())
    rows_constant = bool((value == value[:, :1]).all())
    if not columns_constant:
        if rows_constant:
            raise CheckFailed(
                "the mask selects rows (the first axis): phase-encode lines are the columns "
                "(the last axis, W), each repeated over every row (the read-out)"
            )
        raise CheckFailed(
            "a Cartesian mask samples whole columns (phase-encode lines): every row of the mask "
            "must be the same"
        )
    return value


def _centre_core(width: int, n_low: int) -> slice:
    """The columns that any centred block of ``n_low`` columns around ``W // 2`` contains.

    ``W // 2 - N_low // 2`` (the package's start) and ``(W - N_low) // 2`` differ by one column
    for some sizes: both are accepted, the core is what they share (and at least ``W // 2``).
    """
    start = width // 2 - (n_low - 1) // 2
    return slice(start, max(width // 2 + n_low // 2, start + 1))


def _count_hint(count: int, width: int, acceleration: float, n_low: int) -> str:
    n = max(round(width / acceleration), 1)
    base = (f"W = {width}, R = {acceleration:g}: expected round(W / R) = {n} sampled columns, "
            f"got {count}")
    if count == width - n:
        return base + ": the mask is inverted (True marks a measured column)"
    if count == n_low + n:
        return (base + ": the central columns count towards the total; draw "
                "round(W / R) - N_low other columns")
    if count == round(width * acceleration) or count == width:
        return base + ": R = 4 keeps a quarter of the columns"
    if count < n:
        return (base + ": some columns were drawn twice or fell into the centre; draw the "
                "others among the non-central columns, without replacement "
                "(rng.choice(..., replace=False))")
    return base + ": too many; the total, central columns included, is round(W / R)"


def check_random_cartesian_mask(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``random_cartesian_mask(shape, acceleration, center_fraction, seed) -> (H, W) bool``.

    ``N_low = round(W * center_fraction)`` central columns (a block around ``W // 2``) plus
    ``round(W / acceleration) - N_low`` others drawn uniformly at random without replacement.
    """
    shape = (27, 45) if strict else (32, 64)
    width = shape[1]
    seeds = [seed + 101 + i for i in range(3)] if strict else [seed + i for i in range(3)]

    def call(f, acceleration, center_fraction, s, sh=shape):
        return _mask(f(sh, acceleration=acceleration, center_fraction=center_fraction, seed=s), sh)

    def shape_and_columns(f):
        call(f, 4, 0.08, seeds[0])

    def counts(f, acceleration, center_fraction):
        """The number of columns of the masks of ``seeds``, the same for every seed."""
        got = [int(call(f, acceleration, center_fraction, s)[0].sum()) for s in seeds]
        if len(set(got)) > 1:
            raise CheckFailed(
                f"W = {width}, R = {acceleration:g}: the number of columns changes with the seed "
                f"({', '.join(map(str, got))}): draw exactly round(W / R) - N_low others "
                "(rng.choice(..., replace=False)), not each column with a probability"
            )
        return got[0]

    def acceleration(f):
        for r in ((3, 5, 8) if strict else (2, 4, 6)):
            count = counts(f, r, 0.08)
            if count != max(round(width / r), 1):
                raise CheckFailed(_count_hint(count, width, r, round(width * 0.08)))

    def centre(f):
        for cf, r in ((0.1, 4), (0.3, 3)) if strict else ((0.08, 4), (0.25, 3)):
            n_low = round(width * cf)
            for s in seeds:
                cols = call(f, r, cf, s)[0]
                if not cols[width // 2]:
                    raise CheckFailed(
                        f"center_fraction = {cf}: the DC column W // 2 = {width // 2} (the centre "
                        "of k-space in the fft2c convention) is not sampled"
                    )
                core = cols[_centre_core(width, n_low)]
                if not core.all():
                    raise CheckFailed(
                        f"center_fraction = {cf}, W = {width}: the N_low = round(W * "
                        f"center_fraction) = {n_low} central columns must all be sampled, a block "
                        f"centred on W // 2 = {width // 2} (it starts at W // 2 - N_low // 2); "
                        f"{int(core.size - core.sum())} of its central {core.size} are not"
                    )
            count = counts(f, r, cf)
            if count != round(width / r):
                raise CheckFailed(_count_hint(count, width, r, n_low))

    def no_centre(f):
        count = counts(f, 4, 0.0)
        if count != round(width / 4):
            raise CheckFailed("center_fraction = 0 (no central block): "
                              + _count_hint(count, width, 4, 0))

    def seeded(f):
        a, b = call(f, 4, 0.08, seeds[0]), call(f, 4, 0.08, seeds[0])
        if not np.array_equal(a, b):
            raise CheckFailed(
                "two calls with the same seed gave different masks: draw with "
                "rng = np.random.default_rng(seed), not the global np.random state"
            )
        masks = [call(f, 4, 0.08, s)[0] for s in range(seed + 11, seed + 16)]
        if all(np.array_equal(masks[0], m) for m in masks[1:]):
            raise CheckFailed("every seed gives the same columns: draw the non-central columns "
                              "at random with np.random.default_rng(seed)")
        core = _centre_core(width, round(width * 0.08))
        # the gaps between sampled columns on each side of the centre: a grid has 1 or 2 sizes
        gaps = [np.unique(np.r_[np.diff(np.flatnonzero(m[: core.start - 1])),
                                np.diff(np.flatnonzero(m[core.stop + 1:]))]) for m in masks]
        if all(len(g) <= 3 for g in gaps):
            raise CheckFailed("the columns are (nearly) equispaced: that is the equispaced mask; "
                              "draw the non-central columns uniformly at random")

    def uniform(f):
        r, cf, n_draws = 4, 0.08, 400
        n_low, n = round(width * cf), round(width / r)
        freq = np.mean([call(f, r, cf, seed + 1000 + i)[0] for i in range(n_draws)], axis=0)
        # the always-sampled block near W // 2 (one column of slack for its convention)
        near = np.zeros(width, bool)
        near[width // 2 - n_low // 2 - 1: width // 2 + n_low - n_low // 2 + 1] = True
        centre_block = near & (freq == 1)
        others = freq[~centre_block]
        p = (n - centre_block.sum()) / (width - centre_block.sum())
        tol = 5 * np.sqrt(p * (1 - p) / n_draws) + 0.01
        worst = int(np.argmax(np.abs(others - p)))
        if abs(others[worst] - p) > tol:
            k = int(np.flatnonzero(~centre_block)[worst])
            raise CheckFailed(
                f"over {n_draws} seeds, column {k} is sampled {100 * others[worst]:.0f}% of the "
                f"time, expected (N / R - N_low) / (N - N_low) = {100 * p:.0f}% for every "
                "non-central column: choose uniformly among them (no density, no preference)"
            )

    return run_check("random_cartesian_mask", fn, [
        ("shape (H, W), whole columns", shape_and_columns),
        ("round(W / R) columns for each R", acceleration),
        ("central columns fully sampled", centre),
        ("center_fraction = 0", no_centre),
        ("reproducible with a seed, random across seeds", seeded),
        ("non-central columns drawn uniformly", uniform),
    ])


# ----------------------------------------------------------------------------- zero-filled
def _zf_hint(got: np.ndarray, kspace: np.ndarray, mask: np.ndarray) -> str:
    m = mask.astype(float)
    right = fourier.ifft2c(kspace * m)
    acceleration = m.size / max(m.sum(), 1)
    slips = [
        (fourier.ifft2c(kspace), "the mask is not applied: zero the unmeasured samples first "
                                 "(kspace * mask), then go back to the image"),
        (fourier.fft2c(kspace * m), "that is the forward FFT: the image is x_u = F^H M s, "
                                    "ifft2c(kspace * mask)"),
        (acceleration * right, f"scale off by R = {acceleration:.2f}: no density compensation, "
                               "x_u = F^H M s"),
        (np.fft.ifft2(kspace * m, norm="ortho"), "off by an fftshift: k-space is centred; use the "
                                                 "centred ifft2c (fourier.ifft2c)"),
        (np.fft.ifft2(kspace * m), "off by an fftshift and not orthonormal: use fourier.ifft2c"),
        (fourier.ifft2c(kspace * m) / np.sqrt(m.shape[-1] * m.shape[-2]),
         "scale off by sqrt(N): use the orthonormal ifft2c"),
        (fourier.ifft2c(kspace) * m, "the mask multiplies k-space, not the image: "
                                     "ifft2c(kspace * mask)"),
    ]
    if m.shape[-1] == m.shape[-2]:
        slips.append((fourier.ifft2c(kspace * m.T), "the mask is transposed: it selects columns "
                                                    "(the last axis); use it as it is"))
    for value, hint in slips:
        if _close(got, value):
            return hint
    return (f"differs from ifft2c(kspace * mask) (relative error "
            f"{np.linalg.norm(got - right) / np.linalg.norm(right):.2g})")


def check_zero_filled(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``zero_filled(kspace, mask) -> x_u = ifft2c(mask * kspace)``, complex, ``(..., H, W)``."""
    rng = _rng(seed + 2, strict)
    rect, square = ((15, 22), (18, 18)) if strict else ((12, 16), (16, 16))

    def problem(shape, acceleration=4, batch=None):
        image = _complex_image(rng, shape if batch is None else (batch, *shape))
        mask = RandomCartesianMask(acceleration, 0.125)(shape, seed=int(rng.integers(1 << 30)))
        return fourier.fft2c(image), mask

    def compare(f, kspace, mask, what):
        right = MRIForward(mask).zero_filled(kspace)
        got = _complex_array(f(kspace.copy(), mask.copy()), "zero_filled", kspace.shape, right)
        if not _close(got, right):
            raise CheckFailed(f"{what}: {_zf_hint(got, kspace, mask)}")

    def full_mask(f):
        image = _complex_image(rng, rect)
        kspace, mask = fourier.fft2c(image), np.ones(rect, bool)
        got = _complex_array(f(kspace.copy(), mask), "zero_filled", rect, image)
        if not _close(got, image):
            raise CheckFailed(
                "a full mask must give the image back: " + _zf_hint(got, kspace, mask))

    def random_mask(f):
        for shape in (rect, square):
            kspace, mask = problem(shape)
            compare(f, kspace, mask, f"random Cartesian mask, R = 4, shape {shape}")

    def float_mask(f):
        kspace, mask = problem(square, acceleration=3)
        compare(f, kspace, mask.astype(np.float32), "a 0/1 float mask")

    def batch(f):
        kspace, mask = problem(rect, batch=3 if strict else 2)
        compare(f, kspace, mask, f"a batch {kspace.shape} of k-spaces, one mask {mask.shape}")

    return run_check("zero_filled", fn, [
        ("a full mask gives the image back", full_mask),
        ("random Cartesian masks, rectangular and square", random_mask),
        ("a 0/1 float mask", float_mask),
        ("a batch of k-spaces, one mask", batch),
    ])
