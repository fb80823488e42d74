"""checks.lab01: right answers pass (self-check and strict), usual slips get the hint."""

import numpy as np
import pytest

from dlmi_utils import fourier
from dlmi_utils.course.checks import lab01, yours_or_reference
from dlmi_utils.mri.sampling import EquispacedCartesianMask, RandomCartesianMask, center_columns

AX = (-2, -1)


# ----------------------------------------------------------------------------- right answers
def _fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=AX), norm="ortho"), axes=AX)


def _ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=AX), norm="ortho"), axes=AX)


def _random_cartesian_mask(shape, acceleration, center_fraction=0.08, seed=0):
    h, w = shape
    rng = np.random.default_rng(seed)
    n_low, n = round(w * center_fraction), round(w / acceleration)
    cols = np.zeros(w, bool)
    cols[w // 2 - n_low // 2: w // 2 - n_low // 2 + n_low] = True
    cols[rng.choice(np.flatnonzero(~cols), n - n_low, replace=False)] = True
    return np.tile(cols, (h, 1))


def _zero_filled(kspace, mask):
    return _ifft2c(kspace * mask)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "check,fn",
    [
        (lab01.check_fft2c, _fft2c),
        (lab01.check_fft2c, fourier.fft2c),
        (lab01.check_ifft2c, _ifft2c),
        (lab01.check_ifft2c, fourier.ifft2c),
        (lab01.check_random_cartesian_mask, _random_cartesian_mask),
        (lab01.check_random_cartesian_mask, lab01.random_cartesian_mask),
        (lab01.check_zero_filled, _zero_filled),
        (lab01.check_zero_filled, lab01.zero_filled),
    ],
    ids=["fft2c", "fft2c-pkg", "ifft2c", "ifft2c-pkg", "mask", "mask-pkg", "zero-filled",
         "zero-filled-pkg"],
)
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict, seed=3)
    assert result.ok, result.report()


def test_references_are_the_package_rules_with_the_exercise_signatures():
    mask = lab01.random_cartesian_mask((12, 40), 4, 0.1, seed=5)
    np.testing.assert_array_equal(mask, RandomCartesianMask(4, 0.1)((12, 40), seed=5))
    kspace = np.random.default_rng(1).standard_normal((2, 12, 40)) + 0j
    np.testing.assert_allclose(lab01.zero_filled(kspace, mask), fourier.ifft2c(kspace * mask))


def test_the_lab_goes_on_with_the_reference_until_the_check_passes(capsys):
    lab01.check_random_cartesian_mask(_not_implemented)
    fn = yours_or_reference("random_cartesian_mask", _not_implemented, lab01.random_cartesian_mask)
    assert fn is lab01.random_cartesian_mask
    assert "the package's random_cartesian_mask" in capsys.readouterr().out
    lab01.check_zero_filled(_zero_filled)
    assert yours_or_reference("zero_filled", _zero_filled, lab01.zero_filled) is _zero_filled


def test_a_centre_block_with_another_centring_passes():
    """(W - N_low) // 2 starts a centred block too (W // 2 - N_low // 2 differs for odd N_low)."""

    def other_centring(shape, acceleration, center_fraction=0.08, seed=0):
        h, w = shape
        rng = np.random.default_rng(seed)
        n_low, n = round(w * center_fraction), round(w / acceleration)
        cols = np.zeros(w, bool)
        cols[(w - n_low) // 2: (w - n_low) // 2 + n_low] = True
        cols[rng.choice(np.flatnonzero(~cols), n - n_low, replace=False)] = True
        return np.broadcast_to(cols, shape).astype(np.uint8)  # 0/1 integers are fine too

    for strict in (False, True):
        assert lab01.check_random_cartesian_mask(other_centring, strict=strict).ok


# ----------------------------------------------------------------------------- the not-yet-done
def _not_implemented(*args, **kwargs):
    raise NotImplementedError("fft2c is not implemented yet")


@pytest.mark.parametrize("check", [lab01.check_fft2c, lab01.check_ifft2c,
                                   lab01.check_random_cartesian_mask, lab01.check_zero_filled])
def test_stub_reports_not_implemented(check):
    result = check(_not_implemented)
    assert result.status == "not_implemented" and "not implemented yet" in result.report()


@pytest.mark.parametrize("check", [lab01.check_fft2c, lab01.check_random_cartesian_mask,
                                   lab01.check_zero_filled])
def test_a_raising_function_is_caught_and_summarised(check):
    def broken(*args, **kwargs):
        return undefined_name  # noqa: F821

    result = check(broken)
    assert result.status == "error" and "NameError" in result.report(), result.report()


def _fails_with(result, hint):
    assert not result.ok
    assert hint in result.report(), result.report()


# ----------------------------------------------------------------------------- fft2c / ifft2c
def _shifts(transform, pre, post, norm="ortho", axes=AX):
    def f(x):
        a = pre(x) if pre else x
        a = transform(a, axes=AX, norm=norm)
        return post(a) if post else a

    return f


SHIFT = lambda a: np.fft.fftshift(a, axes=AX)  # noqa: E731
ISHIFT = lambda a: np.fft.ifftshift(a, axes=AX)  # noqa: E731


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (_shifts(np.fft.fft2, ISHIFT, SHIFT, norm="backward"), "scale off by sqrt(N)"),
        (_shifts(np.fft.fft2, ISHIFT, SHIFT, norm="forward"), "scale off by sqrt(N)"),
        (_shifts(np.fft.fft2, None, None), "off by an fftshift"),
        (_shifts(np.fft.fft2, None, SHIFT), "ifftshift before the FFT is missing"),
        (_shifts(np.fft.fft2, ISHIFT, None), "fftshift after the FFT is missing"),
        (_shifts(np.fft.fft2, SHIFT, ISHIFT), "swapped"),
        (_shifts(np.fft.fft2, SHIFT, SHIFT), "fftshift twice"),
        (_shifts(np.fft.ifft2, ISHIFT, SHIFT), "inverse transform"),
        (lambda x: _fft2c(x).real, "real instead of complex"),
        (lambda x: np.abs(_fft2c(x)), "magnitude"),
        (lambda x: np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x), norm="ortho")), "batch axis"),
        (lambda x: _fft2c(x).astype(np.complex64)[..., :-1], "returned shape"),
    ],
    ids=["unnormalised", "forward-norm", "no-shift", "no-ifftshift", "no-fftshift", "swapped",
         "two-fftshifts", "ifft", "real", "abs", "all-axes", "shape"],
)
def test_fft2c_slips_get_their_hint(wrong, hint):
    _fails_with(lab01.check_fft2c(wrong), hint)


def test_shift_order_only_shows_on_odd_sizes_and_both_modes_have_them():
    swapped = _shifts(np.fft.fft2, SHIFT, ISHIFT)
    x = np.random.default_rng(0).standard_normal((16, 16))
    np.testing.assert_allclose(swapped(x), _fft2c(x))  # even sizes cannot tell
    _fails_with(lab01.check_fft2c(swapped), "swapped")
    _fails_with(lab01.check_fft2c(swapped, strict=True), "swapped")


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (_shifts(np.fft.ifft2, ISHIFT, SHIFT, norm="backward"), "scale off by sqrt(N)"),
        (_shifts(np.fft.ifft2, None, None), "off by an fftshift"),
        (_shifts(np.fft.ifft2, ISHIFT, None), "off by an fftshift"),
        (_shifts(np.fft.fft2, ISHIFT, SHIFT), "forward transform"),
        (lambda k: np.abs(_ifft2c(k)), "magnitude"),
    ],
    ids=["unnormalised", "no-shift", "no-fftshift", "fft", "abs"],
)
def test_ifft2c_slips_get_their_hint(wrong, hint):
    _fails_with(lab01.check_ifft2c(wrong), hint)


def test_a_torch_answer_asks_for_numpy():
    import torch

    _fails_with(lab01.check_fft2c(lambda x: fourier.fft2c(torch.as_tensor(x))), "numpy array")


# ----------------------------------------------------------------------------- random mask
def _mask_variant(rows=False, inverted=False, extra=False, off_centre=False, no_centre=False,
                  probability=False, global_rng=False, fixed=False, columns_only=False):
    def f(shape, acceleration, center_fraction=0.08, seed=0):
        h, w = shape
        rng = np.random.default_rng(0 if fixed else seed)
        n_low, n = round(w * center_fraction), round(w / acceleration)
        cols = np.zeros(w, bool)
        start = w // 2 if off_centre else w // 2 - n_low // 2
        if not no_centre:
            cols[start:start + n_low] = True
        others = np.flatnonzero(~cols)
        k = n if extra else n - (0 if no_centre else n_low)
        if probability:
            cols[others[rng.random(others.size) < k / others.size]] = True
        elif global_rng:
            cols[np.random.choice(others, k, replace=False)] = True
        else:
            cols[rng.choice(others, k, replace=False)] = True
        if inverted:
            cols = ~cols
        if columns_only:
            return cols
        return np.tile(cols[:, None], (1, h)).T if not rows else np.tile(cols[:h, None], (1, w))
    return f


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (_mask_variant(rows=True), "selects rows"),
        (_mask_variant(inverted=True), "inverted"),
        (_mask_variant(extra=True), "count towards the total"),
        (_mask_variant(off_centre=True), "block centred on W // 2"),
        (_mask_variant(no_centre=True), "not sampled"),
        (_mask_variant(probability=True), "changes with the seed"),
        (_mask_variant(global_rng=True), "global np.random"),
        (_mask_variant(fixed=True), "every seed gives the same columns"),
        (_mask_variant(columns_only=True), "columns only"),
        (lambda shape, acceleration, center_fraction=0.08, seed=0:
         EquispacedCartesianMask(acceleration, center_fraction)(shape, seed=seed), "equispaced"),
        (lambda shape, acceleration, center_fraction=0.08, seed=0:
         make_variable_density(shape, acceleration, center_fraction, seed), "uniformly"),
    ],
    ids=["rows", "inverted", "extra", "off-centre", "no-centre", "probability", "global-rng",
         "fixed", "1d", "equispaced", "variable-density"],
)
def test_mask_slips_get_their_hint(wrong, hint):
    _fails_with(lab01.check_random_cartesian_mask(wrong), hint)


def make_variable_density(shape, acceleration, center_fraction, seed):
    from dlmi_utils.mri.sampling import VariableDensityCartesianMask

    return VariableDensityCartesianMask(acceleration, center_fraction, power=3)(shape, seed=seed)


def test_mask_centre_is_where_the_package_puts_it():
    mask = _random_cartesian_mask((8, 45), 4, 0.2, seed=1)
    assert mask[:, center_columns(45, 9)].all()


# ----------------------------------------------------------------------------- zero-filled
@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda k, m: np.abs(_ifft2c(k * m)), "magnitude"),
        (lambda k, m: _ifft2c(k * m).real, "real instead of complex"),
        (lambda k, m: _ifft2c(k), "the mask is not applied"),
        (lambda k, m: _fft2c(k * m), "forward FFT"),
        (lambda k, m: _ifft2c(k * m) * m.size / m.sum(), "scale off by R"),
        (lambda k, m: np.fft.ifft2(k * m, norm="ortho"), "off by an fftshift"),
        (lambda k, m: _ifft2c(k) * m, "not the image"),
        (lambda k, m: _ifft2c(k * m.T), "transposed"),
    ],
    ids=["abs", "real", "no-mask", "fft", "density", "no-shift", "image-mask", "transposed"],
)
def test_zero_filled_slips_get_their_hint(wrong, hint):
    _fails_with(lab01.check_zero_filled(wrong), hint)


# ----------------------------------------------------------------------------- strict mode
def test_strict_uses_other_sizes_and_seeds():
    """Answers hard-coded for the self-check's sizes or seeds fail the grader's checks."""

    def fft_for_self_check_sizes(x):
        return _fft2c(x) if x.shape[-2:] in ((16, 16), (9, 12)) else np.zeros_like(x, complex)

    assert lab01.check_fft2c(fft_for_self_check_sizes).ok
    assert not lab01.check_fft2c(fft_for_self_check_sizes, strict=True).ok

    def mask_for_width_64(shape, acceleration, center_fraction=0.08, seed=0):
        if shape[1] == 64:
            return _random_cartesian_mask(shape, acceleration, center_fraction, seed)
        return np.ones(shape, bool)

    assert lab01.check_random_cartesian_mask(mask_for_width_64).ok
    assert not lab01.check_random_cartesian_mask(mask_for_width_64, strict=True).ok

    def zf_for_small(k, m):
        return _zero_filled(k, m) if k.shape[-1] == 16 or k.shape[-1] == 12 else k

    assert lab01.check_zero_filled(zf_for_small).ok
    assert not lab01.check_zero_filled(zf_for_small, strict=True).ok
