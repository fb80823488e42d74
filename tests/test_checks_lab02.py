"""checks.lab02: right answers pass (self-check and strict), usual slips get the hint."""

import numpy as np
import pytest

from dlmi_utils.course.checks import lab02
from dlmi_utils.fourier import fft2c, ifft2c
from dlmi_utils.mri import cs, data_consistency


# ----------------------------------------------------------------------------- right answers
def _soft_threshold(z, t):
    mag = np.abs(z)
    return np.where(mag > t, (1 - t / np.maximum(mag, 1e-30)) * z, 0)


def _soft_threshold_polar(z, t):
    return np.maximum(np.abs(z) - t, 0) * np.exp(1j * np.angle(z))


def _ista_step(x, y, physics, wavelet, lam, alpha):
    z = x - alpha * physics.A_adjoint(physics.A(x) - y)
    return wavelet.inverse(cs.soft_threshold(wavelet.forward(z), lam * alpha))


def _dc_step(x_d, y, physics, nu=None):
    k = fft2c(x_d)
    if nu is None:
        k = np.where(physics.mask, y, k)
    else:
        k = np.where(physics.mask, (k + nu * y) / (1 + nu), k)
    return ifft2c(k)


def _dc_step_with_operator(x_d, y, physics, nu=None):
    """The hard form as a projection: x_d + A^H (y - A x_d); the soft one in k-space."""
    if nu is None:
        return x_d + physics.A_adjoint(y - physics.A(x_d))
    return _dc_step(x_d, y, physics, nu)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "check,fn",
    [
        (lab02.check_soft_threshold, _soft_threshold),
        (lab02.check_soft_threshold, _soft_threshold_polar),
        (lab02.check_soft_threshold, cs.soft_threshold),
        (lab02.check_ista_step, _ista_step),
        (lab02.check_dc_step, _dc_step),
        (lab02.check_dc_step, _dc_step_with_operator),
        (lab02.check_dc_step, data_consistency),
    ],
)
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict, seed=3)
    assert result.ok, result.report()


def _not_implemented(*args):
    raise NotImplementedError("soft_threshold is not implemented yet")


@pytest.mark.parametrize(
    "check", [lab02.check_soft_threshold, lab02.check_ista_step, lab02.check_dc_step]
)
def test_stub_reports_not_implemented(check):
    result = check(_not_implemented)
    assert result.status == "not_implemented" and "not implemented yet" in result.report()


@pytest.mark.parametrize(
    "check", [lab02.check_soft_threshold, lab02.check_ista_step, lab02.check_dc_step]
)
def test_a_raising_answer_is_caught_and_summarised(check):
    def broken(*args):
        return args[0] @ np.ones(3)  # a shape error inside the student's code

    result = check(broken)
    assert result.status == "error", result.report()
    assert "ValueError" in result.report() or "matmul" in result.report()


def _fails_with(result, hint):
    assert not result.ok
    assert hint in result.report(), result.report()


# ----------------------------------------------------------------------------- soft threshold
def _separately(z, t):
    def soft(v):
        return np.sign(v) * np.maximum(np.abs(v) - t, 0)

    return soft(z.real) + 1j * soft(z.imag)


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (_separately, "shrinks real and imaginary parts separately"),
        (lambda z, t: z * (1 + t / np.maximum(np.abs(z), 1e-30)), "wrong sign"),
        (lambda z, t: z * (1 - t / np.maximum(np.abs(z), 1e-30)), "wrong sign for the small"),
        (lambda z, t: z * (np.abs(z) > t), "hard threshold instead of soft"),
        (lambda z, t: np.maximum(np.abs(z) - t, 0), "real array"),
        (lambda z, t: z / np.abs(z) * np.maximum(np.abs(z) - t, 0), "NaN"),
        (lambda z, t: np.maximum(np.abs(z) - t, 0).ravel() * np.exp(1j * np.angle(z)).ravel(),
         "shape"),
    ],
    ids=["real-imag", "grows", "no-clamp", "hard", "magnitude", "nan-at-zero", "flattened"],
)
def test_soft_threshold_slips_get_their_hint(wrong, hint):
    with np.errstate(invalid="ignore", divide="ignore"):
        _fails_with(lab02.check_soft_threshold(wrong), hint)


def test_soft_threshold_that_edits_its_input_fails():
    def in_place(z, t):
        z *= np.maximum(1 - t / np.maximum(np.abs(z), 1e-30), 0)
        return z

    _fails_with(lab02.check_soft_threshold(in_place), "in place")


# ----------------------------------------------------------------------------- ISTA step
def _prox(wavelet, z, t):
    return wavelet.inverse(cs.soft_threshold(wavelet.forward(z), t))


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda x, y, P, W, lam, a: _prox(W, x + a * P.A_adjoint(P.A(x) - y), lam * a),
         "wrong step sign"),
        (lambda x, y, P, W, lam, a: _prox(W, x - a * (P.A(x) - y), lam * a), "missing adjoint"),
        (lambda x, y, P, W, lam, a: _prox(W, x - a * P.A_adjoint(P.A(x) - y), lam),
         "lam * alpha"),
        (lambda x, y, P, W, lam, a: x - a * P.A_adjoint(P.A(x) - y), "gradient step only"),
        (lambda x, y, P, W, lam, a: cs.soft_threshold(x - a * P.A_adjoint(P.A(x) - y), lam * a),
         "not the pixels"),
        (lambda x, y, P, W, lam, a: _prox(W, x - P.A_adjoint(P.A(x) - y), lam * a),
         "scaled by the step size"),
        (lambda x, y, P, W, lam, a: W.inverse(_separately(W.forward(
            x - a * P.A_adjoint(P.A(x) - y)), lam * a)), "not the real and imaginary parts"),
        (lambda x, y, P, W, lam, a: _prox(W, x - a * ifft2c(P.A(x) - y), lam * a), "coils"),
    ],
    ids=["ascent", "no-adjoint", "threshold-lam", "no-prox", "pixel-prox", "no-alpha",
         "real-imag", "fft-not-physics"],
)
def test_ista_step_slips_get_their_hint(wrong, hint):
    _fails_with(lab02.check_ista_step(wrong), hint)


def test_ista_step_missing_adjoint_with_coils_is_explained():
    result = lab02.check_ista_step(
        lambda x, y, P, W, lam, a: _prox(W, x - a * (P.A(x) - y), lam * a))
    assert "multi-coil physics: with coils y is (C, H, W)" in result.report(), result.report()


def test_ista_step_that_edits_its_input_fails():
    def in_place(x, y, physics, wavelet, lam, alpha):
        x -= alpha * physics.A_adjoint(physics.A(x) - y)
        return wavelet.inverse(cs.soft_threshold(wavelet.forward(x), lam * alpha))

    _fails_with(lab02.check_ista_step(in_place), "in place")


# ----------------------------------------------------------------------------- DC step
def _dc_with(rule):
    def dc(x_d, y, physics, nu=None):
        return ifft2c(rule(fft2c(x_d), y, physics.mask.astype(bool), nu))

    return dc


def _hard_or_soft(k, y, m, nu):
    return np.where(m, y if nu is None else (k + nu * y) / (1 + nu), k)


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda x, y, P, nu=None: _hard_or_soft(fft2c(x), y, P.mask, nu), "you returned k-space"),
        (_dc_with(lambda k, y, m, nu: _hard_or_soft(k, y, ~m, nu)), "mask inverted"),
        (_dc_with(lambda k, y, m, nu: _hard_or_soft(k, y, m, nu) * m), "must not be set to zero"),
        (lambda x, y, P, nu=None: np.fft.ifft2(_hard_or_soft(np.fft.fft2(x), y, P.mask, nu)),
         "centred orthonormal FFT"),
        (_dc_with(lambda k, y, m, nu: np.where(m, y if nu is None else (nu * k + y) / (1 + nu), k)),
         "nu weighs the measured data"),
        (_dc_with(lambda k, y, m, nu: np.where(m, y if nu is None else k + nu * y, k)),
         "divide by (1 + nu)"),
        (_dc_with(lambda k, y, m, nu: np.where(m, y, k)), "not y itself"),
        (lambda x, y, P, nu=None: x.copy(), "nothing changed"),
    ],
    ids=["kspace", "inverted", "zeroed", "uncentred", "swapped", "no-division", "hard-always",
         "identity"],
)
def test_dc_step_slips_get_their_hint(wrong, hint):
    _fails_with(lab02.check_dc_step(wrong), hint)


def test_dc_step_that_edits_its_input_fails():
    def in_place(x_d, y, physics, nu=None):
        y[~physics.mask] = fft2c(x_d)[~physics.mask]
        return ifft2c(y)

    _fails_with(lab02.check_dc_step(in_place), "in place")


# ----------------------------------------------------------------------------- strict
def test_strict_uses_other_sizes_and_seeds():
    """An answer that only works on the self-check's sizes fails the grader's checks."""

    def only_for_16x16(x_d, y, physics, nu=None):
        return data_consistency(x_d, y, physics, nu) if x_d.shape == (16, 16) else x_d

    def only_for_32x32(x, y, physics, wavelet, lam, alpha):
        if x.shape != (32, 32):
            return x
        return _ista_step(x, y, physics, wavelet, lam, alpha)

    assert lab02.check_dc_step(only_for_16x16).ok
    assert not lab02.check_dc_step(only_for_16x16, strict=True).ok
    assert lab02.check_ista_step(only_for_32x32).ok
    assert not lab02.check_ista_step(only_for_32x32, strict=True).ok
    soft = lab02.check_soft_threshold
    only_6x8 = lambda z, t: cs.soft_threshold(z, t) if z.shape in ((6, 8), (6,)) else z  # noqa: E731
    assert soft(only_6x8).ok and not soft(only_6x8, strict=True).ok
