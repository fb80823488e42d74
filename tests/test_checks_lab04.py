"""Lab 04 checks: the reference answers pass, the usual slips fail with a useful hint."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlmi_utils import metrics, noise
from dlmi_utils.course.checks import LAST_RESULTS, yours_or_reference
from dlmi_utils.course.checks.lab04 import (
    check_dilated_block,
    check_dilated_denoiser,
    check_masked_psnr,
    check_mc_sure,
    check_receptive_field_of,
    check_transmission_noise,
)
from dlmi_utils.denoising.geometry import receptive_field
from dlmi_utils.denoising.models import DilatedDenoiser, dilated_block
from dlmi_utils.losses import mc_sure_loss

CHECKS = (check_transmission_noise, check_masked_psnr, check_receptive_field_of,
          check_dilated_block, check_dilated_denoiser, check_mc_sure)


# ----------------------------------------------------------------------------- right answers
def _transmission(p, photons, seed=None):
    k = np.random.default_rng(seed).poisson(photons * np.exp(-p))
    return -np.log(np.maximum(k, 1) / photons)


def _stride_one_field(model):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return 1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in convs)


class _Denoiser(nn.Module):
    """A student's net: its own blocks, x_hat = y - R(y)."""

    def __init__(self, features, dilations, block=dilated_block):
        super().__init__()
        first = nn.Sequential(nn.Conv2d(1, features, 3, padding=dilations[0],
                                        dilation=dilations[0]), nn.ReLU())
        middle = [block(features, features, d) for d in dilations[1:-1]]
        last = nn.Conv2d(features, 1, 3, padding=dilations[-1], dilation=dilations[-1])
        self.body = nn.Sequential(first, *middle, last)

    def forward(self, y):
        return y - self.body(y)


def _sure(denoise, y, sigma, eps=None, generator=None):
    eps = sigma / 100 if eps is None else eps
    b = torch.randn(y.shape, generator=generator)
    fy = denoise(y)
    n = y[0].numel()
    div = (b * (denoise(y + eps * b) - fy)).flatten(1).sum(1) / eps
    return ((y - fy).flatten(1).pow(2).mean(1) - sigma**2 + 2 * sigma**2 * div / n).mean()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("check,fn", [
    (check_transmission_noise, _transmission),
    (check_masked_psnr, lambda r, x, dr, m: 10 * math.log10(dr**2 / np.mean((x - r)[m] ** 2))),
    (check_receptive_field_of, _stride_one_field),
    (check_dilated_block, lambda i, o, d: dilated_block(i, o, d)),
    (check_dilated_denoiser, lambda features, dilations: _Denoiser(features, dilations)),
    (check_mc_sure, _sure),
], ids=["transmission", "masked_psnr", "receptive_field", "block", "denoiser", "sure"])
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict, seed=3)
    assert result.ok, result.report()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("check,reference", [
    (check_transmission_noise, noise.add_transmission_noise),
    (check_masked_psnr, metrics.psnr),
    (check_receptive_field_of, receptive_field),
    (check_dilated_block, dilated_block),
    (check_dilated_denoiser, DilatedDenoiser),
    (check_mc_sure, mc_sure_loss),
], ids=["transmission", "masked_psnr", "receptive_field", "block", "denoiser", "sure"])
def test_the_references_the_lab_falls_back_on_pass(check, reference, strict):
    """The lab goes on with these until the student's function passes: they must pass too."""
    result = check(reference, strict=strict)
    assert result.ok, result.report()


def test_a_failed_check_falls_back_on_the_package():
    def wrong(model):
        return 0
    assert not check_receptive_field_of(wrong).ok
    assert not LAST_RESULTS["receptive_field_of"].ok
    assert yours_or_reference("receptive_field_of", wrong, receptive_field) is receptive_field


def _stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet")


@pytest.mark.parametrize("check", CHECKS)
def test_stub_reads_as_not_implemented(check):
    assert check(_stub).status == "not_implemented"


@pytest.mark.parametrize("check", CHECKS)
def test_checks_survive_exceptions_in_student_code(check):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    assert check(broken).status == "error"


def _fails_with(result, hint):
    assert not result.ok
    assert hint in result.report(), result.report()


# ----------------------------------------------------------------------------- transmission
def _counts(p, photons, seed=None):
    return np.random.default_rng(seed).poisson(photons * np.exp(-p))


@pytest.mark.parametrize("wrong,hint", [
    # the detected signal grows with p: the model this lab replaces
    (lambda p, n, seed=None: np.random.default_rng(seed).poisson(n * p) / n, "the counts grow"),
    (lambda p, n, seed=None: np.log(np.maximum(_counts(p, n, seed), 1) / n), "sign"),
    (lambda p, n, seed=None: -np.log(np.maximum(
        np.random.default_rng(seed).poisson(n * np.exp(p)), 1) / n), "not exp(+p)"),
    (lambda p, n, seed=None: _counts(p, n, seed) / n, "transmitted fraction"),
    (lambda p, n, seed=None: -np.log10(np.maximum(_counts(p, n, seed), 1) / n), "natural log"),
    (lambda p, n, seed=None: -np.log(_counts(p, n, seed) / n), "inf or NaN"),
    (lambda p, n, seed=None: _transmission(p, n, None), "same seed differ"),
    (lambda p, n, seed=None: _transmission(p, n, 0), "different seeds"),
    (lambda p, n, seed=None: _transmission(p, n, seed).ravel(), "shape"),
], ids=["inverted", "sign", "exp-plus", "no-log", "log10", "no-floor", "unseeded",
        "fixed-seed", "flattened"])
def test_transmission_slips_get_their_hint(wrong, hint):
    with np.errstate(divide="ignore"):
        _fails_with(check_transmission_noise(wrong), hint)


def test_transmission_that_edits_its_input_fails():
    def in_place(p, photons, seed=None):
        p *= 1.0
        p += 0.0
        np.exp(-p, out=p)
        return -np.log(np.maximum(np.random.default_rng(seed).poisson(photons * p), 1) / photons)
    _fails_with(check_transmission_noise(in_place), "in place")


# ----------------------------------------------------------------------------- masked PSNR
def test_masked_psnr_slips_get_their_hint():
    def zeros_kept(r, x, dr, m):
        return 10 * math.log10(dr**2 / np.mean(((x - r) * m) ** 2))
    _fails_with(check_masked_psnr(zeros_kept), "zeros in the mean")
    _fails_with(check_masked_psnr(
        lambda r, x, dr, m: 10 * math.log10(dr**2 / np.mean((x - r) ** 2))), "mask is not used")
    _fails_with(check_masked_psnr(
        lambda r, x, dr, m: 20 * math.log10(dr**2 / np.mean((x - r)[m] ** 2))), "RMSE")


# ----------------------------------------------------------------------------- receptive field
def test_receptive_field_off_by_one_gets_its_hint():
    _fails_with(check_receptive_field_of(lambda model: _stride_one_field(model) - 1), "off by one")


def test_receptive_field_of_top_level_convolutions_only_gets_the_nesting_hint():
    def top_level(model):
        convs = [m for m in model.children() if isinstance(m, nn.Conv2d)]
        return 1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in convs)
    _fails_with(check_receptive_field_of(top_level), "model.modules()")


def test_receptive_field_without_dilations_gets_its_hint():
    def no_dilation(model):
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        return 1 + sum(m.kernel_size[0] - 1 for m in convs)
    _fails_with(check_receptive_field_of(no_dilation), "dilation matters")


# ----------------------------------------------------------------------------- dilated block
def test_dilated_block_slips_get_their_hint():
    def padding_one(i, o, d):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, dilation=d), nn.BatchNorm2d(o),
                             nn.ReLU())

    def no_relu(i, o, d):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=d, dilation=d), nn.BatchNorm2d(o))
    _fails_with(check_dilated_block(padding_one), "padding must be")
    _fails_with(check_dilated_block(lambda i, o, d: dilated_block(i, o, 1)), "dilation")
    _fails_with(check_dilated_block(no_relu), "ReLU")


# ----------------------------------------------------------------------------- dilated denoiser
class _NotResidual(_Denoiser):
    def forward(self, y):
        return self.body(y)


def _with_biases(i, o, d):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=d, dilation=d), nn.BatchNorm2d(o), nn.ReLU())


def _no_batch_norm(i, o, d):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=d, dilation=d, bias=False), nn.ReLU())


@pytest.mark.parametrize("wrong,hint", [
    (lambda features, dilations: _NotResidual(features, dilations), "not R(y)"),
    (lambda features, dilations: _Denoiser(features, dilations, _with_biases), "bias=False"),
    (lambda features, dilations: _Denoiser(features, dilations, _no_batch_norm), "batch norms"),
    (lambda features, dilations: _Denoiser(features, (1,) * len(dilations)), "dilations are"),
    (lambda features, dilations: _Denoiser(features, dilations[:-1]), "convolutions, found"),
    (lambda features, dilations: _Denoiser(features, dilations).body, "not R(y)"),
    (lambda features, dilations: None, "returned NoneType"),
], ids=["not-residual", "biases", "no-bn", "undilated", "one-layer-short", "body-only", "none"])
def test_dilated_denoiser_slips_get_their_hint(wrong, hint):
    _fails_with(check_dilated_denoiser(wrong), hint)


def test_dilated_denoiser_with_padding_one_keeps_no_size():
    def padding_one(i, o, d):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, dilation=d, bias=False),
                             nn.BatchNorm2d(o), nn.ReLU())
    _fails_with(check_dilated_denoiser(
        lambda features, dilations: _Denoiser(features, dilations, padding_one)), "pad each conv")


# ----------------------------------------------------------------------------- MC-SURE
def _sure_with(fit="mean", two=2.0, minus=True, sign=1.0, per_n=True, by_eps=True, power=2,
               use_generator=True):
    def sure(denoise, y, sigma, eps=None, generator=None):
        eps = sigma / 100 if eps is None else eps
        b = torch.randn(y.shape, generator=generator if use_generator else None)
        fy = denoise(y)
        n = y[0].numel()
        div = (b * (denoise(y + eps * b) - fy)).flatten(1).sum(1) / (eps if by_eps else 1.0)
        residual = (y - fy).flatten(1).pow(2)
        residual = residual.mean(1) if fit == "mean" else residual.sum(1)
        s = sigma**power
        return (residual - (s if minus else 0.0) + sign * two * s * div / (n if per_n else 1)
                ).mean()
    return sure


@pytest.mark.parametrize("wrong,hint", [
    (_sure_with(two=1.0), "factor 2"),
    (_sure_with(minus=False), "- sigma^2 is missing"),
    (_sure_with(sign=-1.0), "sign"),
    (_sure_with(power=1), "sigma is the std"),
    (_sure_with(per_n=False), "divide the divergence by N"),
    (_sure_with(by_eps=False), "divide b . (f(y + eps b) - f(y)) by eps"),
    (_sure_with(fit="sum"), "not the sum"),
    (_sure_with(use_generator=False), "generator=generator"),
], ids=["no-two", "no-minus", "sign", "sigma", "no-n", "no-eps", "sum", "own-probe"])
def test_mc_sure_slips_get_their_hint(wrong, hint):
    _fails_with(check_mc_sure(wrong), hint)


def test_mc_sure_that_ignores_eps_fails():
    def fixed_eps(denoise, y, sigma, eps=None, generator=None):
        return _sure(denoise, y, sigma, None, generator)
    result = check_mc_sure(fixed_eps)
    assert not result.ok and any(m.startswith("a given eps is used") for m in result.messages)


def test_mc_sure_per_image_values_ask_for_the_mean():
    def per_image(denoise, y, sigma, eps=None, generator=None):
        return mc_sure_loss(denoise, y, sigma, eps, generator, reduction="none")
    _fails_with(check_mc_sure(per_image), "forget to average")


# the float() slip is the student's: torch warns that it detaches the graph, the check says so
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True:UserWarning")
def test_mc_sure_as_a_float_asks_for_a_tensor():
    def as_float(*args, **kwargs):
        return float(_sure(*args, **kwargs))
    _fails_with(check_mc_sure(as_float), "return a torch tensor")


# ----------------------------------------------------------------------------- strict
def test_strict_uses_other_sizes_and_seeds():
    """An answer that only works on the self-check's cases fails the grader's checks."""
    def only_for_8_features(features, dilations):
        return DilatedDenoiser(features=features, dilations=dilations if features == 8 else (1, 1))

    def only_unit_sigma(denoise, y, sigma, eps=None, generator=None):
        return mc_sure_loss(denoise, y, 0.1, eps if eps is None else eps, generator)

    def not_for_2000_photons(p, photons, seed=None):
        if photons == 2000:
            return np.random.default_rng(seed).poisson(photons * p) / photons
        return noise.add_transmission_noise(p, photons, seed)

    assert check_dilated_denoiser(only_for_8_features).ok
    assert not check_dilated_denoiser(only_for_8_features, strict=True).ok
    assert check_mc_sure(only_unit_sigma).ok
    assert not check_mc_sure(only_unit_sigma, strict=True).ok
    assert check_transmission_noise(not_for_2000_photons).ok
    assert not check_transmission_noise(not_for_2000_photons, strict=True).ok
