"""Checks of Lab 02 (compressed sensing), written by the student:

- ``soft_threshold(z, t) -> array``: complex soft-thresholding, the proximal operator of
  ``t ||z||_1``: shrink the magnitude by ``t``, keep the phase;
- ``ista_step(x, y, physics, wavelet, lam, alpha) -> x_new``: one ISTA iteration
  ``x <- W^H soft(W (x - alpha A^H (A x - y)), lam alpha)``;
- ``dc_step(x_d, y, physics, nu=None) -> x``: the data consistency of the dictionary method,
  in k-space: measured samples (``physics.mask``) put back (``nu=None``) or averaged with
  weight ``nu``; the signature of the package's :func:`dlmi_utils.mri.data_consistency`, so
  a lab can go on with either.

Each check compares with :mod:`dlmi_utils.mri.cs` (``soft_threshold``, ``ista_wavelet``,
``OrthoWavelet``) and the package's DC layer (:func:`dlmi_utils.mri.data_consistency`, whose
``lam`` is the slides' ``nu``) on small random problems and recognises the usual
slips (real and imaginary parts shrunk separately, the wrong sign, a hard threshold, the
adjoint left out, an ascent step, the threshold ``lam`` without ``alpha``, the mask
inverted, an uncentred FFT, k-space returned instead of the image).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from dlmi_utils.course.checks import CheckFailed, CheckResult, numpy_result, run_check
from dlmi_utils.fourier import fft2c, ifft2c
from dlmi_utils.mri import MRIForward, add_smooth_phase, birdcage_maps, cs, data_consistency


def _rng(seed: int, strict: bool) -> np.random.Generator:
    return np.random.default_rng(seed + (7919 if strict else 0))


def _array(value, what: str, shape: tuple[int, ...], complex_out: bool = True) -> np.ndarray:
    """The student's return value as a numpy array of ``shape``, or a hint on what is off."""
    numpy_result(value, what, shape, torch_hint="work with numpy arrays here")
    if complex_out and not np.iscomplexobj(value):
        raise CheckFailed(
            f"{what} returned a real array ({value.dtype}) for complex data: the phase is lost"
        )
    if np.isnan(value).any():
        raise CheckFailed(f"{what} returned NaN values (a division by zero?)")
    return value


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tol, rtol=tol))


def _complex(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    return scale * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def _untouched(f: Callable, args: tuple, what: str) -> None:
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    f(*args)
    for a, c in zip(args, copies, strict=True):
        if isinstance(a, np.ndarray) and not np.array_equal(a, c):
            raise CheckFailed(f"{what} changed its input arrays in place: compute on a copy")


# ----------------------------------------------------------------------------- soft threshold
def _soft_real(v: np.ndarray, t: float) -> np.ndarray:
    return np.sign(v) * np.maximum(np.abs(v) - t, 0)


def _soft_hint(got: np.ndarray, z: np.ndarray, t: float) -> str:
    mag = np.maximum(np.abs(z), 1e-30)
    slips = [
        (_soft_real(z.real, t) + 1j * _soft_real(z.imag, t),
         "it shrinks real and imaginary parts separately: shrink the magnitude |z| by t and "
         "keep the phase z / |z| (the complex l1 norm is the sum of the moduli)"),
        (z * (1 + t / mag),
         "wrong sign: the magnitude grew by t; soft-thresholding makes it max(|z| - t, 0)"),
        (z * (1 - t / mag),
         "wrong sign for the small coefficients: where |z| < t the output must be 0, not a "
         "flipped copy; clamp the factor with max(0, 1 - t / |z|)"),
        (z * (np.abs(z) > t),
         "hard threshold instead of soft: the coefficients above t must also shrink by t "
         "(|z| -> |z| - t), not be kept as they are"),
        (np.maximum(np.abs(z) - t, 0),
         "you returned the shrunk magnitude only: multiply it by the phase z / |z|"),
    ]
    for value, hint in slips:
        if _close(got, value.astype(got.dtype, copy=False)):
            return hint
    return "expected z * max(0, 1 - t / |z|): magnitude max(|z| - t, 0), phase of z"


def check_soft_threshold(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``soft_threshold(z, t)``: complex ``z`` (any shape), ``t >= 0`` -> same shape."""
    rng = _rng(seed, strict)
    shape = (9, 13) if strict else (6, 8)

    def known_values(f):
        z = np.array([3 + 4j, 0.3 + 0.4j, -2.0 + 0j, 0j, 0.5j, -1.5 - 2j])
        expected = np.array([2.4 + 3.2j, 0, -1.0, 0, 0, -0.9 - 1.2j])
        got = _array(f(z, 1.0), "soft_threshold", z.shape)
        if not _close(got, expected):
            raise CheckFailed(f"t = 1: {_soft_hint(got, z, 1.0)}")

    def zero_threshold_is_identity(f):
        z = _complex(rng, shape)
        z[0, 0] = 0  # |z| = 0: t / |z| must not give NaN
        got = _array(f(z, 0.0), "soft_threshold", z.shape)
        if not _close(got, z):
            raise CheckFailed("t = 0 must return z unchanged (nothing to shrink)")

    def random_coefficients(f):
        z = _complex(rng, shape, scale=float(rng.uniform(0.5, 2.0)))
        z[1, 2] = 0
        t = float(np.median(np.abs(z)))  # about half of the coefficients are zeroed
        got = _array(f(z, t), "soft_threshold", z.shape)
        if not _close(got, cs.soft_threshold(z, t)):
            raise CheckFailed(f"t = {t:.3f}: {_soft_hint(got, z, t)}")

    def phase_is_kept(f):
        z = _complex(rng, shape)
        t = 0.5 * float(np.abs(z).min())  # every coefficient survives
        got = _array(f(z, t), "soft_threshold", z.shape)
        if not _close(np.angle(got), np.angle(z), 1e-6):
            raise CheckFailed(f"the phase of each coefficient must not change: "
                              f"{_soft_hint(got, z, t)}")
        if not _close(np.abs(got), np.abs(z) - t):
            raise CheckFailed(_soft_hint(got, z, t))

    def inputs_untouched(f):
        _untouched(f, (_complex(rng, shape), 0.3), "soft_threshold")

    return run_check("soft_threshold", fn, [
        ("known values, t = 1", known_values),
        ("t = 0 is the identity", zero_threshold_is_identity),
        ("random complex coefficients", random_coefficients),
        ("the phase is kept", phase_is_kept),
        ("inputs left untouched", inputs_untouched),
    ])


# ----------------------------------------------------------------------------- ISTA step
def _ista_problem(rng: np.random.Generator, strict: bool, coils: int = 0):
    """A smooth complex image, a random column mask and its physics, k-space ``y``."""
    h, w = (40, 48) if strict else (32, 32)
    img = ndimage.gaussian_filter(rng.random((h, w)), 1.5)
    img = (img - img.min()) / (img.max() - img.min())
    x_true = add_smooth_phase(img, seed=int(rng.integers(1 << 30))).astype(np.complex128)
    columns = rng.random(w) < 0.35
    columns[w // 2 - 1 : w // 2 + 2] = True
    mask = np.broadcast_to(columns, (h, w)).copy()
    maps = birdcage_maps(coils, (h, w), dtype=np.complex128) if coils else None
    physics = MRIForward(mask, maps)
    return x_true, physics, physics.A(x_true)


def _prox(wavelet: cs.OrthoWavelet, z: np.ndarray, t: float, soft=cs.soft_threshold):
    return wavelet.inverse(soft(wavelet.forward(z), t))


def _ista_hint(got, x, y, physics, wavelet, lam, alpha) -> str:
    grad = physics.A_adjoint(physics.A(x) - y)
    slips = [
        (lambda: _prox(wavelet, x + alpha * grad, lam * alpha),
         "wrong step sign: a gradient step descends, z = x - alpha * gradient"),
        (lambda: _prox(wavelet, x - alpha * (physics.A(x) - y), lam * alpha),
         "missing adjoint: A x - y lives in k-space; the gradient of 1/2 ||A x - y||^2 is "
         "the image A^H (A x - y) (physics.A_adjoint)"),
        (lambda: _prox(wavelet, x - alpha * grad, lam),
         "the threshold of the proximal step is lam * alpha (the step scales the l1 term "
         "too), not lam"),
        (lambda: _prox(wavelet, x - grad, lam * alpha),
         "the gradient step must be scaled by the step size: z = x - alpha * gradient"),
        (lambda: x - alpha * grad,
         "you returned the gradient step only: apply the proximal step too, "
         "W^H soft(W z, lam * alpha)"),
        (lambda: cs.soft_threshold(x - alpha * grad, lam * alpha),
         "soft-threshold the wavelet coefficients W z (wavelet.forward), not the pixels, "
         "then go back with wavelet.inverse"),
        (lambda: _prox(wavelet, x - alpha * grad, lam * alpha,
                       lambda c, t: _soft_real(c.real, t) + 1j * _soft_real(c.imag, t)),
         "threshold the complex coefficients by their magnitude (cs.soft_threshold), not "
         "the real and imaginary parts separately"),
    ]
    for value, hint in slips:
        try:
            candidate = value()
        except ValueError:  # the slip does not even run on this operator (coils)
            continue
        if candidate.shape == got.shape and _close(got, candidate, 1e-4):
            return hint
    return ("expected x_new = W^H soft(W (x - alpha A^H (A x - y)), lam * alpha) with "
            "W = wavelet.forward, W^H = wavelet.inverse")


def check_ista_step(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``ista_step(x, y, physics, wavelet, lam, alpha) -> x_new`` (``(H, W)`` complex)."""
    rng = _rng(seed, strict)
    lam, alpha = (0.03, 0.7) if strict else (0.05, 0.8)

    def run(f, x, y, physics, lam_, alpha_):
        wavelet = cs.OrthoWavelet(x.shape, "db4", levels=2)
        got = _array(f(x, y, physics, wavelet, lam_, alpha_), "ista_step", x.shape)
        if not _close(got, cs.ista_step(x, y, physics, wavelet, lam_, alpha_), 1e-4):
            raise CheckFailed(_ista_hint(got, x, y, physics, wavelet, lam_, alpha_))
        return got

    def first_step_matches_package(f):
        _, physics, y = _ista_problem(rng, strict)
        x_u = physics.A_adjoint(y)
        got = run(f, x_u, y, physics, lam, alpha)
        package = cs.ista_wavelet(physics, y, lam=lam, n_iter=1, step=alpha, levels=2).image
        if not _close(got, package, 1e-4):
            raise CheckFailed("one step from x_u differs from cs.ista_wavelet(n_iter=1)")

    def from_any_image(f):
        x_true, physics, y = _ista_problem(rng, strict)
        x = x_true + 0.2 * _complex(rng, x_true.shape)  # not the zero-filled image
        run(f, x, y, physics, lam, alpha)

    def no_regulariser_is_a_gradient_step(f):
        x_true, physics, y = _ista_problem(rng, strict)
        run(f, 0.5 * x_true, y, physics, 0.0, alpha)

    def multicoil_physics(f):
        x_true, physics, y = _ista_problem(rng, strict, coils=3 if strict else 2)
        x = x_true + 0.1 * _complex(rng, x_true.shape)
        try:
            run(f, x, y, physics, lam, alpha)
        except (ValueError, TypeError, RuntimeError) as e:
            single = MRIForward(physics.mask)
            f(x, single.A(x_true), single, cs.OrthoWavelet(x.shape, "db4", 2), lam, alpha)
            # it runs with one coil, not with several: the coil axis is the trouble
            raise CheckFailed(
                f"with coils y is (C, H, W): use physics.A and physics.A_adjoint, never "
                f"fft2c directly (your code raised {type(e).__name__}: {e})"
            ) from None

    def inputs_untouched(f):
        x_true, physics, y = _ista_problem(rng, strict)
        x = physics.A_adjoint(y)
        _untouched(f, (x, y, physics, cs.OrthoWavelet(x.shape, "db4", 2), lam, alpha),
                   "ista_step")

    return run_check("ista_step", fn, [
        ("one step from x_u, as cs.ista_wavelet", first_step_matches_package),
        ("a step from any image", from_any_image),
        ("lam = 0: a plain gradient step", no_regulariser_is_a_gradient_step),
        ("multi-coil physics", multicoil_physics),
        ("inputs left untouched", inputs_untouched),
    ])


# ----------------------------------------------------------------------------- DC step
def _dc_problem(rng: np.random.Generator, strict: bool):
    h, w = (18, 22) if strict else (16, 16)
    x_d = _complex(rng, (h, w))
    mask = np.zeros((h, w), dtype=bool)
    mask[rng.random((h, w)) < 0.4] = True
    mask[h // 2, w // 2] = True  # DC sampled
    mask[0, 0] = False
    y = fft2c(_complex(rng, (h, w))) * mask  # as physics.A returns it: zero off the mask
    return x_d, y, mask


def _dc_hint(got, x_d, y, mask, nu) -> str:
    def rule(k, y_, m):
        k = k.copy()
        k[m] = y_[m] if nu is None else (k[m] + nu * y_[m]) / (1 + nu)
        return k

    s = fft2c(x_d)
    plain = np.fft.ifft2(rule(np.fft.fft2(x_d), y, mask))
    slips = [
        (rule(s, y, mask), "you returned k-space: go back to the image with ifft2c"),
        (ifft2c(rule(s, y, ~mask)), "mask inverted: the measured y replaces F x_d where "
                                    "physics.mask is True (the sampled set Omega)"),
        (ifft2c(rule(s, y, mask) * mask), "off the mask keep F x_d: the unsampled entries "
                                          "must not be set to zero"),
        (plain, "use the centred orthonormal FFT (fft2c / ifft2c): the mask and y have the "
                "DC term at the centre of k-space"),
    ]
    if nu is not None:
        on = mask
        wrong = s.copy()
        wrong[on] = (nu * s[on] + y[on]) / (1 + nu)
        slips.append((ifft2c(wrong), "nu weighs the measured data: (s + nu y) / (1 + nu), "
                                     "not (nu s + y) / (1 + nu)"))
        wrong = s.copy()
        wrong[on] = s[on] + nu * y[on]
        slips.append((ifft2c(wrong), "divide by (1 + nu): the sampled entries are a weighted "
                                     "average of F x_d and y"))
        slips.append((ifft2c(np.where(on, y, s)), "with nu given the sampled entries are "
                                                  "(s + nu y) / (1 + nu), not y itself"))
    else:
        slips.append((x_d, "nothing changed: put the measured samples y back where the mask "
                           "is True"))
    for value, hint in slips:
        if _close(got, value):
            return hint
    return ("expected x = F^H s with s = F x_d, then on the mask s = y (nu=None) or "
            "(s + nu y) / (1 + nu), elsewhere s unchanged")


def check_dc_step(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``dc_step(x_d, y, physics, nu=None) -> x``: image ``(H, W)`` complex, like
    ``dlmi_utils.mri.data_consistency(x_d, y, physics, lam=nu)`` for a single-coil
    ``physics`` (an :class:`~dlmi_utils.mri.MRIForward`, whose ``mask`` is ``Omega``)."""
    rng = _rng(seed, strict)

    def run(f, x_d, y, mask, nu):
        got = _array(f(x_d, y, MRIForward(mask), nu), "dc_step", x_d.shape)
        if not _close(got, data_consistency(x_d, y, MRIForward(mask), nu)):
            raise CheckFailed(_dc_hint(got, x_d, y, mask, nu))
        return got

    def noiseless(f):
        run(f, *_dc_problem(rng, strict), None)

    def noisy(f):
        run(f, *_dc_problem(rng, strict), 0.6 if strict else 2.0)

    def limits_of_nu(f):
        x_d, y, mask = _dc_problem(rng, strict)
        if not _close(run(f, x_d, y, mask, 0.0), x_d):
            raise CheckFailed("nu = 0 trusts x_d only: the output must be x_d")
        big = _array(f(x_d, y, MRIForward(mask), 1e9), "dc_step", x_d.shape)
        if not _close(big, data_consistency(x_d, y, MRIForward(mask)), 1e-4):
            raise CheckFailed("a very large nu must give the noiseless result (nu=None)")

    def full_mask_returns_measured_image(f):
        x_d, _, mask = _dc_problem(rng, strict)
        x_true = _complex(rng, x_d.shape)
        full = np.ones_like(mask)
        got = _array(f(x_d, fft2c(x_true), MRIForward(full), None), "dc_step", x_d.shape)
        if not _close(got, x_true):
            raise CheckFailed("with every sample measured (full mask) the output is F^H y: "
                              + _dc_hint(got, x_d, fft2c(x_true), full, None))

    def inputs_untouched(f):
        x_d, y, mask = _dc_problem(rng, strict)
        _untouched(f, (x_d, y, MRIForward(mask), None), "dc_step")

    return run_check("dc_step", fn, [
        ("noiseless: measured samples put back", noiseless),
        ("noisy: weighted by nu", noisy),
        ("nu = 0 and a very large nu", limits_of_nu),
        ("full mask gives the measured image", full_mask_returns_measured_image),
        ("inputs left untouched", inputs_untouched),
    ])
