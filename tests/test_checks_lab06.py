"""checks.lab06: right answers pass (self-check and strict), usual slips get the hint."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlmi_utils import ct
from dlmi_utils.course.checks import LAST_RESULTS, lab06, yours_or_reference
from dlmi_utils.ct.filters import padded_length
from dlmi_utils.losses import PerceptualLoss

CHECKS = (lab06.check_line_integrals, lab06.check_ramp_filter, lab06.check_roi_mean_sd,
          lab06.check_noise_power_spectrum_2d, lab06.check_perceptual_loss,
          lab06.check_generator_loss)


# ----------------------------------------------------------------------------- right answers
def _line_integrals(hu, projector, pixel_size_mm):
    return pixel_size_mm * projector.A(np.maximum(ct.MU_WATER * (1 + hu / 1000), 0))


def _ramp_filter(sinogram):
    n = sinogram.shape[-1]
    size = padded_length(n)
    spectrum = np.fft.rfft(sinogram, n=size, axis=-1) * ct.fbp_filter(size, "ramp")
    return np.fft.irfft(spectrum, n=size, axis=-1)[..., :n]


def _roi_mean_sd(image, center, size):
    top, left = center[0] - size // 2, center[1] - size // 2
    roi = image[top:top + size, left:left + size]
    return roi.mean(), roi.std(ddof=1)


def _nps(noise, pixel_size_mm):
    n = noise.shape[-1]
    centred = noise - noise.mean(axis=(-2, -1), keepdims=True)
    power = (np.abs(np.fft.fft2(centred)) ** 2).mean(axis=0)
    return np.fft.fftshift(power) * pixel_size_mm**2 / n**2


def _features_at(features, layer, x):
    for name, child in features.named_children():
        x = child(x)
        if name == layer:
            return x
    raise KeyError(layer)


def _perceptual_loss(features, layer, x, target):
    with torch.no_grad():
        reference = _features_at(features, layer, target)
    return F.mse_loss(_features_at(features, layer, x), reference)


def _generator_loss(critic, fake, target, content_loss, content_weight):
    return -critic(fake).mean() + content_weight * content_loss(fake, target)


RIGHT = [
    (lab06.check_line_integrals, _line_integrals),
    (lab06.check_line_integrals,
     lambda hu, a, d: ct.line_integrals(ct.hu_to_mu(hu), a, d)),
    (lab06.check_ramp_filter, _ramp_filter),
    (lab06.check_roi_mean_sd, _roi_mean_sd),
    (lab06.check_roi_mean_sd,
     lambda image, center, size: (float(ct.square_roi(image, center, size).mean()),
                                  ct.roi_sd(image, center, size))),
    (lab06.check_noise_power_spectrum_2d, _nps),
    (lab06.check_noise_power_spectrum_2d,
     lambda noise, px: ct.noise_power_spectrum(noise, px).nps_2d),
    (lab06.check_perceptual_loss, _perceptual_loss),
    (lab06.check_perceptual_loss,
     lambda features, layer, x, target: PerceptualLoss(features, [layer])(x, target)),
    (lab06.check_generator_loss, _generator_loss),
    (lab06.check_generator_loss, lab06.wgan_generator_loss),
]
IDS = ["line_integrals", "package_line_integrals", "ramp", "roi", "square_roi", "nps",
       "package_nps", "perceptual", "PerceptualLoss", "generator", "wgan_generator_loss"]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("check,fn", RIGHT, ids=IDS)
def test_right_answers_pass(check, fn, strict):
    for seed in (0, 1):
        result = check(fn, strict=strict, seed=seed)
        assert result.status == "passed", result.report()


def test_checks_leave_the_students_random_stream_alone():
    """The checks seed their own networks: a student's torch.manual_seed still holds after."""
    torch.manual_seed(123)
    state = torch.get_rng_state()
    lab06.check_perceptual_loss(_perceptual_loss)
    lab06.check_generator_loss(_generator_loss)
    assert torch.equal(torch.get_rng_state(), state)


def test_wgan_generator_loss_is_the_exercise_formula():
    critic = lab06._MeanCritic(2.0)
    fake, target = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    got = lab06.wgan_generator_loss(critic, fake, target, F.mse_loss, 0.25)
    want = -2.0 * fake.mean() + 0.25 * F.mse_loss(fake, target)
    assert torch.allclose(got, want)


def test_a_failed_check_falls_back_on_the_reference():
    def wrong(critic, fake, target, content_loss, content_weight):
        return critic(fake).mean() + content_weight * content_loss(fake, target)
    assert not lab06.check_generator_loss(wrong).ok
    fallback = yours_or_reference("generator_loss", wrong, lab06.wgan_generator_loss)
    assert fallback is lab06.wgan_generator_loss
    assert lab06.check_generator_loss(_generator_loss).ok and LAST_RESULTS["generator_loss"].ok


def _stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet")


@pytest.mark.parametrize("check", CHECKS)
def test_stub_reads_as_not_implemented(check):
    result = check(_stub)
    assert result.status == "not_implemented" and "not implemented yet" in result.report()


@pytest.mark.parametrize("check", CHECKS)
def test_no_function_asks_to_run_the_exercise_cell(check):
    result = check(None)
    assert result.status == "error" and "did you run the exercise cell?" in result.report()


@pytest.mark.parametrize("check", CHECKS)
def test_checks_survive_exceptions_in_student_code(check):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    result = check(broken)
    assert result.status == "error" and "RuntimeError: boom" in result.report()


def _fails_with(result, hint):
    assert not result.ok
    assert hint in result.report(), result.report()


# ----------------------------------------------------------------------------- line integrals
def _mu(hu):
    return np.maximum(ct.MU_WATER * (1 + hu / 1000), 0)


@pytest.mark.parametrize("wrong,hint", [
    (lambda hu, a, d: d * a.A(ct.MU_WATER * (1 + hu / 1000)), "clip mu at 0"),
    (lambda hu, a, d: a.A(_mu(hu)), "multiply by the pixel size in mm"),
    (lambda hu, a, d: d * a.A(np.maximum(1 + hu / 1000, 0)), "mu_water"),
    (lambda hu, a, d: d * a.A(hu), "not the HU"),
    (lambda hu, a, d: d * a.A(np.maximum(ct.MU_WATER * (1 - hu / 1000), 0)), "the sign"),
    (lambda hu, a, d: a.A(_mu(hu)) / d, "do not divide"),
    (lambda hu, a, d: torch.as_tensor(_line_integrals(hu, a, d)), "numpy"),
    (lambda hu, a, d: _line_integrals(hu, a, d).T, "shape"),
], ids=["unclipped", "no-pixel", "no-mu-water", "hu", "sign", "divided", "torch", "transposed"])
def test_line_integrals_slips_get_their_hint(wrong, hint):
    _fails_with(lab06.check_line_integrals(wrong), hint)


def test_line_integrals_that_edit_hu_fail():
    def in_place(hu, a, d):
        np.maximum(hu, -1000, out=hu)
        return _line_integrals(hu, a, d)
    _fails_with(lab06.check_line_integrals(in_place), "changed hu in place")


# ----------------------------------------------------------------------------- ramp filter
def _filtered(sinogram, size, response, axis=-1):
    response = response if axis == -1 else response[:, None]
    return np.fft.irfft(np.fft.rfft(sinogram, n=size, axis=axis) * response, n=size, axis=axis)


def _sampled_ramp(sinogram):
    n = sinogram.shape[-1]
    size = padded_length(n)
    return _filtered(sinogram, size, 2 * np.abs(np.fft.rfftfreq(size)))[..., :n]


def _unpadded(sinogram):
    n = sinogram.shape[-1]
    return _filtered(sinogram, n, lab06._band_limited_ramp(n))


def _along_angles(sinogram):
    n = sinogram.shape[0]
    size = padded_length(n)
    return _filtered(sinogram, size, ct.fbp_filter(size), axis=0)[:n]


def _last_samples(sinogram):
    n = sinogram.shape[-1]
    size = padded_length(n)
    return _filtered(sinogram, size, ct.fbp_filter(size))[..., -n:]


def _complex(sinogram):
    n = sinogram.shape[-1]
    size = padded_length(n)
    half = ct.fbp_filter(size)
    response = np.concatenate([half, half[1:-1][::-1]])
    return np.fft.ifft(np.fft.fft(sinogram, n=size, axis=-1) * response, axis=-1)[..., :n]


@pytest.mark.parametrize("wrong,hint", [
    (_sampled_ramp, "the sampled |f| is 0 at f = 0"),
    (_unpadded, "no zero padding"),
    (lambda y: _ramp_filter(y) / 2, "a factor 2 is missing"),
    (lambda y: _ramp_filter(y) * 2, "a factor 2 too many"),
    (_along_angles, "along the angles"),
    (_last_samples, "keep the first n samples"),
    (_complex, "complex"),
], ids=["sampled-ramp", "no-padding", "half", "double", "angles", "last-samples", "complex"])
def test_ramp_filter_slips_get_their_hint(wrong, hint):
    for strict in (False, True):
        _fails_with(lab06.check_ramp_filter(wrong, strict=strict), hint)


def test_ramp_filter_pads_to_any_length_of_at_least_2n():
    """Past 2n - 1 samples the filtered projection no longer depends on the padding."""
    def twice_n(sinogram):
        n = sinogram.shape[-1]
        return _filtered(sinogram, 2 * n, lab06._band_limited_ramp(2 * n))[..., :n]
    for strict in (False, True):
        assert lab06.check_ramp_filter(twice_n, strict=strict).ok


# ----------------------------------------------------------------------------- ROI
def _roi_variant(ddof=1, dr=0, dc=0, grow=0, swap=False, corner=False, order=False,
                 arrays=False):
    def roi_mean_sd(image, center, size):
        row, col = (center[1], center[0]) if swap else center
        top = row if corner else row - size // 2 + dr
        left = col if corner else col - size // 2 + dc
        roi = image[top:top + size + grow, left:left + size + grow]
        if arrays:
            return roi.mean(axis=0), roi.std(axis=0, ddof=1)
        mean, sd = roi.mean(), roi.std(ddof=ddof)
        return (sd, mean) if order else (mean, sd)
    return roi_mean_sd


@pytest.mark.parametrize("wrong,hint", [
    (_roi_variant(ddof=0), "ddof=1"),
    (_roi_variant(dr=1), "one pixel off"),
    (_roi_variant(dc=-1), "one pixel off"),
    (_roi_variant(grow=1), "must be"),
    (_roi_variant(grow=-1), "must be"),
    (_roi_variant(swap=True), "rows and columns swapped"),
    (_roi_variant(corner=True), "not its top-left corner"),
    (_roi_variant(order=True), "(mean, sd)"),
    (_roi_variant(arrays=True), "reduce the region to one number"),
], ids=["ddof0", "row-off", "col-off", "size-plus", "size-minus", "swapped", "corner", "order",
        "arrays"])
@pytest.mark.filterwarnings("ignore:(Mean of empty slice|Degrees of freedom):RuntimeWarning")
def test_roi_mean_sd_slips_get_their_hint(wrong, hint):
    with np.errstate(all="ignore"):
        _fails_with(lab06.check_roi_mean_sd(wrong), hint)


def test_roi_that_is_right_for_odd_sizes_only_fails_on_an_even_one():
    def odd_only(image, center, size):
        roi = image[center[0] - size // 2:center[0] + size // 2 + 1,
                    center[1] - size // 2:center[1] + size // 2 + 1]
        return roi.mean(), roi.std(ddof=1)
    result = lab06.check_roi_mean_sd(odd_only)
    assert result.passed == result.total - 1
    _fails_with(result, "must be 6 x 6")


# ----------------------------------------------------------------------------- NPS
def _nps_scaled(factor):
    return lambda noise, px: _nps(noise, px) * factor(noise, px)


@pytest.mark.parametrize("wrong,hint", [
    (lambda noise, px: lab06._nps_variant(noise, px, shift=lambda a: a), "np.fft.fftshift"),
    (lambda noise, px: lab06._nps_variant(noise, px, shift=np.fft.ifftshift), "ifftshift"),
    (lambda noise, px: lab06._nps_variant(noise, px, demean="none"), "spike at zero frequency"),
    (lambda noise, px: lab06._nps_variant(noise, px, demean="all"), "each region's own mean"),
    (_nps_scaled(lambda noise, px: 1 / px**2), "multiply by Delta^2"),
    (_nps_scaled(lambda noise, px: noise.shape[-1] ** 2), "divide by N^2"),
    (lambda noise, px: lab06._nps_variant(noise, px, power=1), "the amplitude"),
    (lambda noise, px: lab06._nps_variant(noise, px, reduce=np.sum), "not the sum"),
    (_nps_scaled(lambda noise, px: 1.5), "Parseval"),
    (lambda noise, px: _nps(noise, px)[None].repeat(noise.shape[0], 0), "average the |DFT|^2"),
], ids=["no-shift", "ifftshift", "mean-kept", "global-mean", "no-delta", "no-n2", "amplitude",
        "sum", "scale", "per-region"])
def test_nps_slips_get_their_hint(wrong, hint):
    _fails_with(lab06.check_noise_power_spectrum_2d(wrong), hint)


def test_nps_with_the_wrong_pixel_size_power_fails_the_pixel_size_case():
    result = lab06.check_noise_power_spectrum_2d(_nps_scaled(lambda noise, px: 1 / px))
    _fails_with(result, "Delta^2, not Delta")
    assert any(m.startswith("the pixel size") for m in result.messages)


# ----------------------------------------------------------------------------- perceptual
def _perceptual_variant(step=0, reduce="mean", target_grad=False, detach_x=False):
    def loss(features, layer, x, target):
        names = [name for name, _ in features.named_children()]
        children = list(features.children())[:names.index(layer) + 1 + step]
        if detach_x:
            x = x.detach()
        with torch.set_grad_enabled(target_grad and torch.is_grad_enabled()):
            reference = target
            for child in children:
                reference = child(reference)
        for child in children:
            x = child(x)
        squared = (x - reference) ** 2
        return squared.mean() if reduce == "mean" else squared.sum()
    return loss


@pytest.mark.parametrize("wrong,hint", [
    (lambda features, layer, x, target: F.mse_loss(x, target), "pixel MSE"),
    (_perceptual_variant(step=-1), "one child too early"),
    (_perceptual_variant(step=1), "one child too far"),
    (lambda features, layer, x, target: F.mse_loss(features(x), features(target)),
     "the whole network"),
    (_perceptual_variant(reduce="sum"), "not the sum"),
    (_perceptual_variant(detach_x=True), "detached from x"),
    (_perceptual_variant(target_grad=True), "torch.no_grad()"),
    (lambda *args: _perceptual_loss(*args).item(), "return a torch tensor"),
], ids=["pixel", "early", "late", "whole", "sum", "detached", "target-grad", "float"])
def test_perceptual_loss_slips_get_their_hint(wrong, hint):
    _fails_with(lab06.check_perceptual_loss(wrong), hint)


def test_perceptual_loss_that_changes_the_network_fails():
    def scaling(features, layer, x, target):
        with torch.no_grad():
            for p in features.parameters():
                p.mul_(1.001)
        return _perceptual_loss(features, layer, x, target)
    _fails_with(lab06.check_perceptual_loss(scaling), "changed the network's weights")


# ----------------------------------------------------------------------------- generator
def _generator_variant(sign=-1.0, weight_on="content", critic_on="fake", reduce="mean",
                       detach=False, content=True):
    def loss(critic, fake, target, content_loss, content_weight):
        scored = (target if critic_on == "target" else fake.detach() if detach else fake)
        scores = critic(scored)
        adversarial = sign * (scores.mean() if reduce == "mean" else scores.sum())
        term = content_loss(fake, target) if content else 0.0
        if weight_on == "adversarial":
            return content_weight * adversarial + term
        return adversarial + content_weight * term
    return loss


@pytest.mark.parametrize("wrong,hint", [
    (_generator_variant(sign=1.0), "*high*"),
    (_generator_variant(weight_on="adversarial"), "not the adversarial one"),
    (_generator_variant(content=False), "content term content_weight * content_loss"),
    (lambda critic, fake, target, content_loss, w: w * content_loss(fake, target),
     "adversarial term -mean(critic(fake)) is missing"),
    (_generator_variant(critic_on="target"), "not critic(target)"),
    (_generator_variant(reduce="sum"), "not the sum"),
    (_generator_variant(detach=True), "do not detach it"),
    (lambda critic, fake, target, content_loss, w: critic(target).mean() - critic(fake).mean()
     + w * content_loss(fake, target), "the critic's loss"),
    (lambda critic, fake, target, content_loss, w: -critic(fake) + w * content_loss(fake, target),
     "expected one number"),
], ids=["sign", "weight-on-adversarial", "no-content", "no-adversarial", "critic-on-target",
        "sum", "detached", "critic-loss", "per-sample"])
def test_generator_loss_slips_get_their_hint(wrong, hint):
    for strict in (False, True):
        _fails_with(lab06.check_generator_loss(wrong, strict=strict), hint)


# ----------------------------------------------------------------------------- strict
def _recording(right, sizes):
    def fn(*args):
        sizes.append(tuple(tuple(a.shape) if hasattr(a, "shape") else a for a in args
                           if isinstance(a, (np.ndarray, torch.Tensor, int, float, tuple))))
        return right(*args)
    return fn


@pytest.mark.parametrize("check,right", [
    (lab06.check_line_integrals, _line_integrals),
    (lab06.check_ramp_filter, _ramp_filter),
    (lab06.check_roi_mean_sd, _roi_mean_sd),
    (lab06.check_noise_power_spectrum_2d, _nps),
    (lab06.check_perceptual_loss, _perceptual_loss),
    (lab06.check_generator_loss, _generator_loss),
], ids=["line_integrals", "ramp", "roi", "nps", "perceptual", "generator"])
def test_strict_checks_use_other_cases_than_the_self_check(check, right):
    """The grader's cases are not the self-check's: an answer fitted to one fails the other."""
    own, grader = [], []
    assert check(_recording(right, own)).ok and check(_recording(right, grader), strict=True).ok
    assert own and grader and not set(grader) <= set(own)


def test_answers_fitted_to_the_self_check_fail_the_grader():
    def line_integrals_for_half_mm_pixels(hu, a, d):
        return _line_integrals(hu, a, 0.5)

    def ramp_for_self_check_sizes(sinogram):
        return _ramp_filter(sinogram) if sinogram.shape[-1] in (32, 91, 24) \
            else _unpadded(sinogram)

    def roi_for_size_5_and_6(image, center, size):
        return _roi_mean_sd(image, center, size) if size in (5, 6) else (0.0, 1.0)

    def nps_for_32_and_33(noise, px):
        return _nps(noise, px) if noise.shape[-1] in (32, 33) else _nps(noise, 1.0)

    def perceptual_for_batch_2(features, layer, x, target):
        return _perceptual_loss(features, layer, x, target) if x.shape[0] == 2 \
            else F.mse_loss(x, target)

    def generator_for_32px(critic, fake, target, content_loss, w):
        return _generator_loss(critic, fake, target, content_loss,
                               w if fake.shape[-1] == 32 else 0.1)

    for check, fitted in [
        (lab06.check_line_integrals, line_integrals_for_half_mm_pixels),
        (lab06.check_ramp_filter, ramp_for_self_check_sizes),
        (lab06.check_roi_mean_sd, roi_for_size_5_and_6),
        (lab06.check_noise_power_spectrum_2d, nps_for_32_and_33),
        (lab06.check_perceptual_loss, perceptual_for_batch_2),
        (lab06.check_generator_loss, generator_for_32px),
    ]:
        assert check(fitted).ok, check(fitted).report()
        assert not check(fitted, strict=True).ok, check.__name__
