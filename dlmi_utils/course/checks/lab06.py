"""Checks of Lab 06 (low-dose CT), written by the student:

- ``line_integrals(hu, projector, pixel_size_mm) -> p``: the line integrals ``Delta A(mu)`` of
  a slice in HU, ``mu = mu_water (1 + HU / 1000)`` clipped at 0 (air), ``(n_angles,
  n_detectors)``;
- ``ramp_filter(sinogram) -> filtered``: each projection zero-padded to
  ``P = padded_length(n)`` samples and multiplied in the frequency domain by the band-limited
  ramp ``R = 2 Re DFT(h)`` of Kak & Slaney's kernel ``h``, the first ``n`` samples kept;
- ``roi_mean_sd(image, center, size) -> (mean, sd)``: the mean and the SD (``ddof=1``) of the
  ``size x size`` region whose centre pixel is ``center = (row, col)``;
- ``noise_power_spectrum_2d(noise, pixel_size_mm) -> nps``: ``Delta^2 / N^2 mean_r
  |DFT(n_r - mean(n_r))|^2`` of ``R`` noise regions ``(R, N, N)``, zero frequency at the centre;
- ``perceptual_loss(features, layer, x, target) -> tensor``: the mean squared difference of
  the feature maps of ``x`` and ``target`` at the child ``layer`` of ``features``;
- ``generator_loss(critic, fake, target, content_loss, content_weight) -> tensor``: Yang et
  al.'s WGAN-VGG generator loss ``-mean(critic(fake)) + content_weight content_loss(fake,
  target)``.

Each check compares with the package (:func:`dlmi_utils.ct.line_integrals`,
:func:`dlmi_utils.ct.filter_sinogram`, :func:`dlmi_utils.ct.square_roi`,
:func:`dlmi_utils.ct.noise_power_spectrum`, :class:`dlmi_utils.losses.PerceptualLoss`,
:func:`dlmi_utils.gan.losses.g_loss_wasserstein`) on small cases and recognises the usual slips
(air not clipped, the pixel size or ``mu_water`` missing, HU projected; the sampled ``|f|``
instead of the band-limited ramp, no zero padding, the filter along the angles; ``ddof=0``, a
region one pixel off, rows and columns swapped; no ``fftshift``, the mean not subtracted, a
missing ``Delta^2`` or ``1 / N^2``; the layer one child off, the pixel MSE, a sum instead of a
mean; the adversarial term's sign or weight).

:func:`wgan_generator_loss` is ``generator_loss``'s reference, which the lab goes on with until
the student's function passes (:func:`dlmi_utils.course.checks.yours_or_reference`).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlmi_utils import ct
from dlmi_utils.course.checks import (
    CheckFailed,
    CheckResult,
    number_result,
    numpy_result,
    run_check,
    scalar_result,
)
from dlmi_utils.ct.filters import padded_length
from dlmi_utils.features import FeatureNet
from dlmi_utils.gan.losses import g_loss_wasserstein
from dlmi_utils.gan.models import Discriminator
from dlmi_utils.losses import PerceptualLoss


def _offset(seed: int, strict: bool) -> int:
    return seed + (7919 if strict else 0)


def _rng(seed: int, strict: bool) -> np.random.Generator:
    return np.random.default_rng(_offset(seed, strict))


def _float_array(value, what: str, shape: tuple[int, ...], shape_hint: str = "") -> np.ndarray:
    numpy_result(value, what, shape, shape_hint, torch_hint="work with numpy arrays here")
    if np.iscomplexobj(value):
        raise CheckFailed(f"{what} returned complex values: return the real result "
                          "(np.fft.irfft, or the real part)")
    if not np.issubdtype(value.dtype, np.floating):
        raise CheckFailed(f"{what} returned dtype {value.dtype}, expected a float array")
    return value


def _close(got: np.ndarray, right: np.ndarray, rtol: float = 1e-6) -> bool:
    """Equal up to ``rtol`` relative to the norm of ``right`` (the scale of the whole array)."""
    if got.shape != right.shape or not np.isfinite(got).all():
        return False
    return float(np.linalg.norm(got - right)) <= rtol * max(float(np.linalg.norm(right)), 1e-12)


def _first_slip(got: np.ndarray, slips: list[tuple[np.ndarray | None, str]], fallback: str) -> str:
    for value, hint in slips:
        if value is not None and _close(got, value, 1e-5):
            return hint
    return fallback


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with torch's global generator seeded, leaving the student's stream as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# ----------------------------------------------------------------------------- line integrals
def _body_phantom(side: int, rng: np.random.Generator) -> np.ndarray:
    """A slice in HU: air at -1024 (as the slices are stored), a disc of soft tissue with some
    texture, a bone at one side (so that a sign or a transpose shows)."""
    r, c = np.mgrid[:side, :side] - (side - 1) / 2
    hu = np.full((side, side), -1024.0)
    disc = np.hypot(r, c) < 0.4 * side
    hu[disc] = 40.0 + 20.0 * rng.standard_normal(int(disc.sum()))
    hu[np.hypot(r - 0.15 * side, c + 0.1 * side) < 0.08 * side] = 1000.0
    return hu


def _line_integral_hint(got: np.ndarray, hu: np.ndarray, projector, pixel: float) -> str:
    mu_water = ct.MU_WATER
    unclipped = pixel * projector.A(mu_water * (1 + hu / 1000))
    slips = [
        (unclipped, "air at -1024 HU gives a negative mu: clip mu at 0 (np.maximum) before "
                    "projecting"),
        (projector.A(np.maximum(mu_water * (1 + hu / 1000), 0)),
         "the projector sums in pixels: multiply by the pixel size in mm to get the line "
         "integral of mu (1/mm)"),
        (pixel * projector.A(np.maximum(1 + hu / 1000, 0)),
         "mu = mu_water (1 + HU / 1000): the factor mu_water (ct.MU_WATER, per mm) is missing"),
        (pixel * projector.A(hu), "project the attenuation mu (1/mm), not the HU"),
        (pixel * projector.A(np.maximum(mu_water * (1 - hu / 1000), 0)),
         "the sign of HU / 1000: bone (positive HU) attenuates more than water"),
        (projector.A(np.maximum(mu_water * (1 + hu / 1000), 0)) / pixel,
         "multiply by the pixel size, do not divide by it"),
    ]
    return _first_slip(got, slips, "the line integrals differ from Delta A(mu)")


def check_line_integrals(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``line_integrals(hu, projector, pixel_size_mm) -> p``: ``Delta A(mu)`` with
    ``mu = mu_water (1 + HU / 1000)`` clipped at 0, numpy ``(n_angles, n_detectors)``."""
    rng = _rng(seed, strict)
    side, n_angles = (24, 30) if strict else (16, 18)
    pixel = 0.7 if strict else 0.5
    projector = ct.ParallelBeamProjector((side, side), n_angles)
    shape = projector.sinogram_shape

    def call(f, hu):
        before = hu.copy()
        got = _float_array(f(hu, projector, pixel), "line_integrals", shape,
                           " (the projector's sinogram_shape)")
        if not np.array_equal(hu, before):
            raise CheckFailed("line_integrals changed hu in place: work on a copy")
        return got

    def water(f):
        hu = np.zeros((side, side))
        got = call(f, hu)
        right = ct.line_integrals(ct.hu_to_mu(hu), projector, pixel)
        if not _close(got, right, 1e-4):
            raise CheckFailed(_line_integral_hint(got, hu, projector, pixel)
                              + f" (a square of water: the central ray at 0 degrees crosses "
                              f"{side} pixels of {pixel} mm, p = {right[0, shape[1] // 2]:.4f})")

    def air(f):
        got = call(f, np.full((side, side), -1024.0))
        if not np.allclose(got, 0, atol=1e-6):
            raise CheckFailed("air (-1024 HU) must give p = 0 on every ray, got values down to "
                              f"{float(got.min()):.3g}: clip mu at 0")

    def body(f):
        hu = _body_phantom(side, rng)
        got = call(f, hu)
        right = ct.line_integrals(ct.hu_to_mu(hu), projector, pixel)
        if not _close(got, right, 1e-4):
            raise CheckFailed(_line_integral_hint(got, hu, projector, pixel))

    return run_check("line_integrals", fn, [
        ("a square of water", water),
        ("air only", air),
        ("a body with a bone, in air", body),
    ])


# ----------------------------------------------------------------------------- ramp filter
def _reference_ramp_filter(sinogram: np.ndarray) -> np.ndarray:
    """``ramp_filter``'s reference: ``ct.filter_sinogram(y, "ramp")`` on a numpy sinogram."""
    return ct.filter_sinogram(torch.from_numpy(np.asarray(sinogram, np.float64)), "ramp").numpy()


def _band_limited_ramp(size: int) -> np.ndarray:
    """``2 Re DFT(h)`` for any ``size`` (the package's ``fbp_filter`` wants it even)."""
    k = np.arange(size)
    d = np.minimum(k, size - k)
    h = np.where(d % 2 == 1, -1.0 / (np.pi * np.maximum(d, 1)) ** 2, 0.0)
    h[0] = 0.25
    return 2.0 * np.fft.rfft(h).real


def _filtered_rows(y: np.ndarray, size: int, response: np.ndarray) -> np.ndarray:
    """Each row zero-padded to ``size``, times ``response``: all ``size`` samples."""
    return np.fft.irfft(np.fft.rfft(y, n=size, axis=-1) * response, n=size, axis=-1)


def _ramp_hint(got: np.ndarray, y: np.ndarray) -> str:
    n = y.shape[-1]
    size = padded_length(n)
    right = _reference_ramp_filter(y)
    sampled = 2 * np.abs(np.fft.rfftfreq(size))
    full = _filtered_rows(y, size, _band_limited_ramp(size))
    slips = [
        (_filtered_rows(y, size, sampled)[..., :n],
         "the sampled |f| is 0 at f = 0 but the band-limited ramp is not: the image's mean "
         "shifts by tens of HU; build R = 2 Re DFT(h) from the kernel h"),
        (_filtered_rows(y, size, sampled / 2)[..., :n],
         "the sampled |f| is 0 at f = 0 but the band-limited ramp is not (and is close to "
         "2|f|): build R = 2 Re DFT(h) from the kernel h"),
        (_filtered_rows(y, n, _band_limited_ramp(n)),
         "no zero padding: the FFT's convolution is circular and wraps the projection around; "
         "pad each row to P = padded_length(n) samples (np.fft.rfft(row, n=P))"),
        (_filtered_rows(y, n, 2 * np.abs(np.fft.rfftfreq(n))),
         "two slips: zero-pad each row to P = padded_length(n) samples (else the convolution "
         "wraps around), and build R = 2 Re DFT(h) from the kernel h (not the sampled |f|)"),
        (right / 2, "a factor 2 is missing: R = 2 Re DFT(h), close to 2|f|"),
        (right * 2, "a factor 2 too many: R = 2 Re DFT(h), close to 2|f|"),
        (_reference_ramp_filter(y.T).T,
         "you filtered along the angles (axis 0): filter each projection, i.e. each row, "
         "along the detectors (axis=-1)"),
        (full[..., size - n:], "keep the first n samples of the inverse FFT: the projection "
                               "starts at sample 0 of the padded row"),
        (full[..., (size - n) // 2:(size - n) // 2 + n],
         "keep the first n samples of the inverse FFT: the projection starts at sample 0 of the "
         "padded row"),
    ]
    return _first_slip(got, slips, "the filtered sinogram differs from the zero-padded "
                                   "projections times R = 2 Re DFT(h): check the padding, R "
                                   "and which samples you keep")


def _disc_phantom(side: int) -> np.ndarray:
    rows, cols = np.mgrid[:side, :side] / side
    image = 1.0 * ((rows - 0.5) ** 2 + (cols - 0.52) ** 2 < 0.4**2)
    image += 0.5 * (((rows - 0.4) / 0.12) ** 2 + ((cols - 0.6) / 0.2) ** 2 < 1)
    return image


def check_ramp_filter(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``ramp_filter(sinogram) -> filtered``: ``(n_angles, n)`` float64, each row filtered by
    the band-limited ramp, zero-padded to ``padded_length(n)``; equal to
    ``ct.filter_sinogram(torch.from_numpy(y), "ramp").numpy()``."""
    rng = _rng(seed, strict)

    def compare(f, y):
        got = _float_array(f(y.copy()), "ramp_filter", y.shape,
                           " (the sinogram's: filter each row, keep n samples)")
        if not _close(got, _reference_ramp_filter(y)):
            raise CheckFailed(_ramp_hint(got, y))
        return got

    def one_detector_hit(f):
        n_angles, n = (5, 26) if strict else (4, 32)
        y = np.zeros((n_angles, n))
        y[np.arange(n_angles), rng.integers(n // 4, 3 * n // 4, n_angles)] = 1.0
        compare(f, y)

    def phantom_sinogram(f):
        side, angles = (48, 45) if strict else (64, 60)
        y = np.asarray(ct.ParallelBeamProjector((side, side), angles).A(_disc_phantom(side)))
        compare(f, y)

    def random_projections(f):
        n_angles, n = (33, 45) if strict else (40, 24)  # odd n in strict
        y = rng.normal(size=(n_angles, n))
        before = y.copy()
        got = f(y)
        if not np.array_equal(y, before):
            raise CheckFailed("ramp_filter changed the sinogram in place: compute on new arrays")
        got = _float_array(got, "ramp_filter", y.shape,
                           " (the sinogram's: filter each row, keep n samples)")
        if not _close(got, _reference_ramp_filter(y)):
            raise CheckFailed(_ramp_hint(got, y))

    return run_check("ramp_filter", fn, [
        ("one detector hit per projection", one_detector_hit),
        ("the sinogram of a disc phantom", phantom_sinogram),
        ("random projections", random_projections),
    ])


# ----------------------------------------------------------------------------- ROI
_ONE_NUMBER = "reduce the region to one number (roi.mean(), roi.std(ddof=1) over all its pixels)"


def _window(image: np.ndarray, top: int, left: int, h: int, w: int) -> np.ndarray | None:
    rows, cols = image.shape
    if top < 0 or left < 0 or top + h > rows or left + w > cols or min(h, w) < 2:
        return None
    return image[top:top + h, left:left + w]


def _roi_hint(got: tuple[float, float], image: np.ndarray, center, size: int) -> str:
    r, c = center
    top, left = r - size // 2, c - size // 2
    roi = _window(image, top, left, size, size)
    mean, sd = float(roi.mean()), float(roi.std(ddof=1))
    off = "the region is one pixel off: its rows are row - size // 2 to row - size // 2 + " \
          "size - 1, its columns likewise (ct.square_roi)"
    regions = [
        (_window(image, c - size // 2, r - size // 2, size, size),
         "rows and columns swapped: center is (row, col), so image[row, col]"),
        (_window(image, r, c, size, size),
         "center is the region's centre pixel, not its top-left corner"),
        (_window(image, top - 1, left, size, size), off),
        (_window(image, top + 1, left, size, size), off),
        (_window(image, top, left - 1, size, size), off),
        (_window(image, top, left + 1, size, size), off),
        (_window(image, top + 1, left + 1, size, size), off),
        (_window(image, top - 1, left - 1, size, size), off),
    ]
    for d in (-1, 1):
        for t in (top, r - (size + d) // 2):
            for lft in (left, c - (size + d) // 2):
                regions.append((_window(image, t, lft, size + d, size + d),
                                f"the region must be {size} x {size} pixels: rows "
                                "row - size // 2 up to row - size // 2 + size - 1 (a slice "
                                "stops before its end)"))
    slips = [((float(region.mean()), float(region.std(ddof=1))), hint)
             for region, hint in regions if region is not None]
    slips = [
        ((mean, float(roi.std())), "use the sample SD, ddof=1 (np.std(roi, ddof=1)): the "
                                   "region's mean is estimated from the same pixels"),
        ((sd, mean), "return the pair in the order (mean, sd)"),
        ((mean, sd**2), "that is the variance: the SD is its square root"),
        ((mean, float(roi.var())), "that is the variance (and ddof=0): return the SD with "
                                   "ddof=1"),
        *slips,
    ]
    if not (math.isfinite(got[0]) and math.isfinite(got[1])):
        return ("got NaN: the region you took is empty or leaves the image; center is (row, "
                "col), the rows row - size // 2 to row - size // 2 + size - 1")
    for (m, s), hint in slips:
        if math.isclose(got[0], m, rel_tol=1e-7, abs_tol=1e-9) and math.isclose(
                got[1], s, rel_tol=1e-7, abs_tol=1e-9):
            return hint
    return (f"the {size} x {size} region around {tuple(center)} (row, col) has mean "
            f"{mean:.4f} and SD {sd:.4f}, got {got[0]:.4f} and {got[1]:.4f}")


def check_roi_mean_sd(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``roi_mean_sd(image, center, size) -> (mean, sd)``: the mean and the SD (``ddof=1``) of
    ``ct.square_roi(image, center, size)``, as numbers."""
    rng = _rng(seed, strict)
    shape = (33, 27) if strict else (24, 30)

    def test_image() -> np.ndarray:
        rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
        # a slope so that each region has its own mean, a spread that grows to the right
        return 40 + 3.0 * rows + 0.7 * cols + (2 + 0.5 * cols) * rng.normal(size=shape)

    def case(size: int, center: tuple[int, int]):
        def run(f):
            image = test_image()
            before = image.copy()
            got = f(image, center, size)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise CheckFailed(f"return the pair (mean, sd), got {type(got).__name__}")
            got = (number_result(got[0], "the mean", _ONE_NUMBER),
                   number_result(got[1], "the SD", _ONE_NUMBER))
            if not np.array_equal(image, before):
                raise CheckFailed("roi_mean_sd changed the image in place")
            roi = ct.square_roi(image, center, size)
            if not (math.isclose(got[0], float(roi.mean()), rel_tol=1e-7, abs_tol=1e-9)
                    and math.isclose(got[1], ct.roi_sd(image, center, size), rel_tol=1e-7)):
                raise CheckFailed(_roi_hint(got, image, center, size))
        return run

    odd, even = (7, 4) if strict else (5, 6)
    odd_center = (20, 11) if strict else (9, 17)
    even_center = (8, 19) if strict else (15, 8)
    corner = (odd // 2, shape[1] - odd + odd // 2)  # the region touches the top-right corner
    return run_check("roi_mean_sd", fn, [
        (f"a {odd} x {odd} region at {odd_center}", case(odd, odd_center)),
        (f"a {even} x {even} region at {even_center}", case(even, even_center)),
        (f"a {odd} x {odd} region in the image's top-right corner", case(odd, corner)),
    ])


# ----------------------------------------------------------------------------- NPS
def _nps_variant(noise: np.ndarray, px: float, shift=np.fft.fftshift, demean: str = "region",
                 power: int = 2, scale: float | None = None, reduce=np.mean) -> np.ndarray:
    n = noise.shape[-1]
    if demean == "region":
        noise = noise - noise.mean(axis=(-2, -1), keepdims=True)
    elif demean == "all":
        noise = noise - noise.mean()
    spectrum = np.abs(np.fft.fft2(noise)) ** power
    scale = px**2 / n**2 if scale is None else scale
    return shift(reduce(spectrum, axis=0)) * scale


def _nps_hint(got: np.ndarray, noise: np.ndarray, px: float) -> str:
    r, n = noise.shape[0], noise.shape[-1]
    mean_hint = ("subtract each region's mean first (n_r - n_r.mean()): a mean left in shows "
                 "as a spike at zero frequency")
    slips = [
        (_nps_variant(noise, px, shift=lambda a: a),
         "put the zero frequency at the centre: np.fft.fftshift of the averaged |DFT|^2"),
        (_nps_variant(noise, px, shift=np.fft.ifftshift),
         "use np.fft.fftshift: for odd N, ifftshift puts the zero frequency one pixel off "
         "the centre N // 2"),
        (_nps_variant(noise, px, demean="none"), mean_hint),
        (_nps_variant(noise, px, demean="all"),
         "subtract each region's own mean (axis=(-2, -1), keepdims=True), not one mean of all "
         "the regions"),
        (_nps_variant(noise, px, scale=1 / n**2),
         "multiply by Delta^2 (pixel_size_mm ** 2): the NPS is in HU^2 mm^2"),
        (_nps_variant(noise, px, scale=px / n**2), "the factor is Delta^2, not Delta"),
        (_nps_variant(noise, px, scale=1 / (px**2 * n**2)),
         "multiply by Delta^2 (pixel_size_mm ** 2), do not divide by it"),
        (_nps_variant(noise, px, scale=px**2),
         "divide by N^2, the number of pixels of a region"),
        (_nps_variant(noise, px, scale=px**2 / n), "divide by N^2, not N"),
        (_nps_variant(noise, px, power=1),
         "the power is |DFT|^2: you returned the amplitude |DFT|"),
        (_nps_variant(noise, px, reduce=np.sum),
         f"{r} times too large, {r} being the number of regions: average over the regions "
         "(mean over axis 0), not the sum, and take one 2-D DFT per region (np.fft.fft2), "
         "not one across the regions (np.fft.fftn)"),
    ]
    integral = float(got.sum()) / (n * px) ** 2
    variance = float(np.mean(noise.var(axis=(-2, -1))))
    if not math.isclose(integral, variance, rel_tol=1e-4):
        parseval = (f"by Parseval the NPS integrates to the noise's variance, sum NPS du dv = "
                    f"{variance:.4g} HU^2 here (du = dv = 1 / (N Delta)), yours gives "
                    f"{integral:.4g}: check the factor Delta^2 / N^2, the power |DFT|^2 and the "
                    "mean over the regions")
    else:
        parseval = ("the NPS integrates to the variance as it should (Parseval), but its shape "
                    "differs: zero frequency at the centre (np.fft.fftshift), each region minus "
                    "its own mean, one 2-D DFT per region")
    return _first_slip(got, slips, parseval)


def check_noise_power_spectrum_2d(fn: Callable, strict: bool = False,
                                  seed: int = 0) -> CheckResult:
    """``noise_power_spectrum_2d(noise, pixel_size_mm) -> nps``: ``(R, N, N)`` noise-only
    regions -> ``(N, N)`` float, ``Delta^2 / N^2 mean_r |DFT(n_r - mean(n_r))|^2``, zero
    frequency at ``N // 2``; ``ct.noise_power_spectrum(noise, pixel_size_mm).nps_2d``."""
    rng = _rng(seed, strict)
    r, n = (6, 24) if strict else (8, 32)
    n_odd = 25 if strict else 33

    def compare(f, noise, px):
        got = _float_array(f(noise.copy(), px), "noise_power_spectrum_2d", noise.shape[-2:],
                           " (one region's: average the |DFT|^2 over the regions)")
        if not _close(got, ct.noise_power_spectrum(noise, px).nps_2d):
            raise CheckFailed(_nps_hint(got, noise, px))
        return got

    def coloured(size: int) -> np.ndarray:
        w = rng.normal(0.0, 10.0, (r, size, size))
        # smoothed along the rows, sharpened along the columns: a spectrum that is not round
        return w + 0.7 * np.roll(w, 1, axis=-1) + 0.3 * np.roll(w, 2, axis=-1) \
            - 0.4 * np.roll(w, 1, axis=-2)

    def white(f):
        compare(f, rng.normal(0.0, 10.0, (r, n, n)), 0.8 if strict else 0.7)

    def coloured_odd(f):
        compare(f, coloured(n_odd), 0.6 if strict else 0.7)

    def offsets(f):
        noise = coloured(n) + 40.0 + 15.0 * np.arange(r)[:, None, None]  # each region its mean
        compare(f, noise, 1.0)

    def pixel_size(f):
        small, large = (0.45, 0.9) if strict else (0.6, 1.2)
        noise = coloured(n)
        a, b = compare(f, noise, small), compare(f, noise, large)
        if not np.allclose(a, (small / large) ** 2 * b, rtol=1e-6, atol=0.0):
            raise CheckFailed(f"the NPS scales as Delta^2: at {small} mm it is "
                              f"{(small / large) ** 2:.4g} times the one at {large} mm")

    return run_check("noise_power_spectrum_2d", fn, [
        (f"white noise, {r} regions of {n} x {n}", white),
        (f"coloured noise, odd N = {n_odd}", coloured_odd),
        ("regions with non-zero means", offsets),
        ("the pixel size", pixel_size),
    ])


# ----------------------------------------------------------------------------- perceptual loss
def _small_vgg(seed: int) -> nn.Sequential:
    return _seeded(seed, lambda: FeatureNet(widths=(8, 12, 16)).features)


def _named_net(seed: int) -> nn.Sequential:
    return _seeded(seed, lambda: nn.Sequential(OrderedDict([
        ("smooth", nn.Conv2d(1, 4, 5, padding=2)),
        ("bend", nn.Tanh()),
        ("mix", nn.Conv2d(4, 6, 3, padding=1)),
        ("shrink", nn.AvgPool2d(2)),
        ("spread", nn.Conv2d(6, 6, 3, padding=1)),
        ("soft", nn.Softplus()),
    ])))


def _maps(features: nn.Sequential, depth: int, x: torch.Tensor) -> torch.Tensor:
    for layer in list(features.children())[:depth]:
        x = layer(x)
    return x


def _perceptual_hint(got: torch.Tensor, features, layer, x, target, right) -> str:
    names = [name for name, _ in features.named_children()]
    i = names.index(layer)
    with torch.no_grad():
        def mse_at(depth):
            return (_maps(features, depth, x) - _maps(features, depth, target)).pow(2).mean()
        diff = _maps(features, i + 1, x) - _maps(features, i + 1, target)
        slips = [
            ((x - target).pow(2).mean(), "that is the pixel MSE: compare the feature maps of x "
                                         "and target at the layer"),
            (diff.pow(2).sum(), "take the mean over all elements (B, C, h, w), not the sum"),
            (diff.pow(2).flatten(1).sum(1).mean(),
             "take the mean over all elements (channels and pixels too), not only the batch"),
            (diff.abs().mean(), "the squared difference, not its absolute value"),
            (diff.norm(), "the mean of the squared difference, not the norm"),
        ]
        if i > 0:
            slips.append((mse_at(i), f"one child too early: the map of {layer!r} is the output "
                                      f"of {layer!r} itself (run the children up to and "
                                      "including it)"))
        if i + 1 < len(names):
            slips.append((mse_at(i + 2), f"one child too far: stop right after {layer!r}"))
            slips.append((mse_at(len(names)), f"you ran the whole network: stop after "
                                               f"{layer!r}"))
    for value, hint in slips:
        if torch.allclose(got, value.to(got.dtype), rtol=1e-4, atol=1e-8):
            return hint
    return f"expected {right.item():.6g}, got {got.item():.6g}"


def check_perceptual_loss(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``perceptual_loss(features, layer, x, target) -> scalar tensor``: the mean over all
    elements of ``(phi(x) - phi(target))^2``, ``phi`` the children of ``features`` up to and
    including ``layer``; ``losses.PerceptualLoss(features, [layer])(x, target)``."""
    s = _offset(seed, strict)
    g = torch.Generator().manual_seed(s)
    b, h, w = (3, 40, 36) if strict else (2, 32, 32)

    def images(batch=b):
        x = torch.rand(batch, 1, h, w, generator=g)
        return x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)

    def against_reference(build, layer):
        def run(f):
            features = build(s)
            x, target = images()
            right = PerceptualLoss(copy.deepcopy(features), [layer])(x, target)
            got = scalar_result(f(features, layer, x.clone(), target.clone()), "perceptual_loss")
            if not torch.allclose(got.detach(), right, rtol=1e-4, atol=1e-8):
                raise CheckFailed(_perceptual_hint(got.detach(), features, layer, x, target,
                                                   right))
        return run

    def zero_for_equal(f):
        x, _ = images()
        got = scalar_result(f(_small_vgg(s), "relu2_1", x, x.clone()), "perceptual_loss")
        if got.abs().item() > 1e-12:
            raise CheckFailed(f"x == target must give 0, got {got.item():.4g}")

    def gradient(f):
        features = _small_vgg(s).requires_grad_(False).eval()  # frozen, as in the lab
        before = copy.deepcopy(features.state_dict())
        x, target = images()
        x.requires_grad_(True)
        target.requires_grad_(True)
        got = scalar_result(f(features, "relu2_2", x, target), "perceptual_loss")
        if not got.requires_grad:
            raise CheckFailed("the loss is detached from x: keep x's path in torch (no "
                              ".detach(), .item(), numpy or torch.no_grad() on it)")
        got.backward()
        if x.grad is None or not torch.isfinite(x.grad).all() or x.grad.abs().sum() == 0:
            raise CheckFailed("no gradient reached x: keep x's path in torch")
        if target.grad is not None and target.grad.abs().sum() > 0:
            raise CheckFailed("the target's features are a fixed reference: compute them under "
                              "torch.no_grad() (or .detach() them)")
        after = features.state_dict()
        if any(not torch.equal(before[k], after[k]) for k in before):
            raise CheckFailed("the call changed the network's weights: only run it")

    layers = ("relu3_2", "pool2") if strict else ("relu2_1", "conv1_2")
    other = "mix" if strict else "shrink"
    return run_check("perceptual_loss", fn, [
        (f"a small VGG at {layers[0]!r}", against_reference(_small_vgg, layers[0])),
        (f"a small VGG at {layers[1]!r}", against_reference(_small_vgg, layers[1])),
        (f"another network, at {other!r}", against_reference(_named_net, other)),
        ("x == target gives 0", zero_for_equal),
        ("the gradient reaches x, not the network", gradient),
    ])


# ----------------------------------------------------------------------------- generator loss
def wgan_generator_loss(critic: Callable[[torch.Tensor], torch.Tensor], fake: torch.Tensor,
                        target: torch.Tensor, content_loss: Callable, content_weight: float
                        ) -> torch.Tensor:
    """``generator_loss``'s reference, Yang et al.'s WGAN-VGG generator loss:
    ``-mean(critic(fake)) + content_weight * content_loss(fake, target)`` (scalar tensor)."""
    return g_loss_wasserstein(critic(fake)) + content_weight * content_loss(fake, target)


class _MeanCritic(nn.Module):
    """A critic with a known score: ``scale`` times each image's mean pixel, ``(B,)`` or
    ``(B, 1)``."""

    def __init__(self, scale: float, keep_dim: bool = False):
        super().__init__()
        self.scale, self.keep_dim = scale, keep_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.scale * x.flatten(1).mean(1)
        return score[:, None] if self.keep_dim else score


def _generator_hint(got: torch.Tensor, critic, fake, target, content_loss, weight) -> str:
    with torch.no_grad():
        adv = critic(fake).mean()
        content = content_loss(fake, target)
        slips = [
            (adv + weight * content, "wrong sign of the adversarial term: the generator wants "
                                     "the critic's score of its output *high*, so minimise "
                                     "-mean(critic(fake))"),
            (-weight * adv + content, "content_weight multiplies the content term, not the "
                                      "adversarial one"),
            (-adv, "the content term content_weight * content_loss(fake, target) is missing"),
            (weight * content, "the adversarial term -mean(critic(fake)) is missing"),
            (-weight * adv + weight * content, "content_weight multiplies the content term "
                                               "only"),
            (-critic(target).mean() + weight * content,
             "score the generator's output: critic(fake), not critic(target)"),
            (critic(target).mean() - adv + weight * content,
             "that is the critic's loss: the generator's adversarial term is "
             "-mean(critic(fake)) alone"),
            (-critic(fake).sum() + weight * content,
             "take the mean of the critic's scores over the batch, not the sum"),
        ]
    right = wgan_generator_loss(critic, fake, target, content_loss, weight).detach()
    for value, hint in slips:
        if torch.allclose(got, value, rtol=1e-4, atol=1e-7):
            return hint
    return f"expected {right.item():.6g}, got {got.item():.6g}"


def _dcgan_critic(seed: int, size: int) -> Discriminator:
    """A small DCGAN critic with He-initialised convolutions: scores of order 1 (DCGAN's own
    N(0, 0.02) start gives scores of order 1e-5, too small for the adversarial term to show)."""
    def build():
        critic = Discriminator(ndf=4, size=size, norm="none")
        for m in critic.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
        return critic
    return _seeded(seed, build)


def _l1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (x - target).abs().mean()


def check_generator_loss(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``generator_loss(critic, fake, target, content_loss, content_weight) -> scalar tensor``:
    ``-mean(critic(fake)) + content_weight * content_loss(fake, target)``; the value of
    :func:`wgan_generator_loss`."""
    s = _offset(seed, strict)
    g = torch.Generator().manual_seed(s)
    b, size = (3, 64) if strict else (4, 32)

    def pair():
        fake = torch.rand(b, 1, size, size, generator=g)
        return fake, 0.3 + 0.5 * torch.rand(b, 1, size, size, generator=g)

    def compare(f, critic, content_loss, weight, grad: bool = False):
        fake, target = pair()
        mine = fake.clone().requires_grad_(grad)
        got = scalar_result(f(critic, mine, target.clone(), content_loss, weight), "generator_loss")
        ref = fake.clone().requires_grad_(grad)
        right = wgan_generator_loss(critic, ref, target, content_loss, weight)
        if not torch.allclose(got.detach(), right.detach(), rtol=1e-4, atol=1e-7):
            raise CheckFailed(_generator_hint(got.detach(), critic, fake, target, content_loss,
                                              weight))
        return got, mine, right, ref

    def mean_critic(f):
        compare(f, _MeanCritic(3.0 if strict else 2.0), F.mse_loss, 0.3 if strict else 0.5)

    def weight_zero(f):
        compare(f, _MeanCritic(-1.5 if strict else 4.0, keep_dim=True), F.mse_loss, 0.0)

    def dcgan_critic(f):
        compare(f, _dcgan_critic(s, size), _l1, 2.0 if strict else 0.1)

    def gradient(f):
        got, mine, right, ref = compare(f, _dcgan_critic(s + 1, size), F.mse_loss,
                                        0.2 if strict else 0.5, grad=True)
        if not got.requires_grad:
            raise CheckFailed("the loss is detached from fake: keep the computation in torch "
                              "(no .detach(), .item() or numpy)")
        got.backward()
        right.backward()
        if mine.grad is None or not torch.allclose(mine.grad, ref.grad, rtol=1e-3, atol=1e-9):
            raise CheckFailed("the gradient that reaches fake differs: both terms must "
                              "back-propagate into fake (do not detach it before the critic "
                              "or the content loss)")

    return run_check("generator_loss", fn, [
        ("a critic that scores the mean pixel, MSE content", mean_critic),
        ("content_weight = 0, scores of shape (B, 1)", weight_zero),
        (f"a DCGAN critic on {size} x {size} images, L1 content", dcgan_critic),
        ("the gradient reaches fake", gradient),
    ])
