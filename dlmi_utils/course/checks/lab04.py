"""Checks of Lab 04 (denoising mammograms), written by the student:

- ``transmission_noise(p, photons, seed=None) -> p_hat``: an X-ray projection behind a body of
  attenuation line integrals ``p``: ``k ~ Poisson(photons exp(-p))`` (Beer-Lambert), a pixel
  with no photon counted as one, ``p_hat = -log(k / photons)``;
- ``masked_psnr(ref, x, data_range, mask) -> float``: the PSNR over the pixels of ``mask``;
- ``receptive_field_of(model) -> int``: ``1 + sum_l (k_l - 1) d_l`` over the ``nn.Conv2d``
  layers of a stride-1 network, nested ones included;
- ``dilated_block(in_channels, out_channels, dilation) -> nn.Module``: 3x3 conv with dilation
  ``d`` (padded to keep the size), batch norm, ReLU;
- ``dilated_denoiser(features, dilations) -> nn.Module``: one 3x3 conv per dilation (the
  first ``Conv + ReLU``, the middle ones ``Conv + BN + ReLU``, the last a plain conv back to
  one channel) and residual learning, ``x_hat = y - R(y)``: the layout of the package's
  ``DilatedDenoiser(features=..., dilations=...)``, parameter for parameter;
- ``mc_sure(denoise, y, sigma, eps=None, generator=None) -> tensor``: Monte-Carlo SURE of a
  denoiser at noisy images ``(B, C, H, W)``, its divergence estimated with one probe
  ``b = torch.randn(y.shape, generator=generator)`` and ``eps = sigma / 100`` by default.

Each check compares with the package (:func:`dlmi_utils.noise.add_transmission_noise`,
:func:`dlmi_utils.metrics.psnr`, :mod:`dlmi_utils.denoising.geometry`,
:mod:`dlmi_utils.denoising.models`, :func:`dlmi_utils.losses.mc_sure_loss`) on small cases and
recognises the usual slips (counts that grow with the attenuation, the log or its sign
forgotten, the background averaged into the PSNR, an off-by-one receptive field, padding 1 with
a dilation, ``R(y)`` returned instead of ``y - R(y)``, a bias before batch norm, the factor 2
or the ``- sigma^2`` of SURE forgotten, the divergence not divided by ``eps``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlmi_utils import metrics
from dlmi_utils.course.checks import (
    CheckFailed,
    CheckResult,
    number_result,
    numpy_result,
    run_check,
)
from dlmi_utils.denoising.geometry import receptive_field
from dlmi_utils.denoising.models import DilatedDenoiser, DnCNN, count_parameters
from dlmi_utils.losses import mc_sure_loss

_OVER_MASK = "did you forget to average over the mask?"


def _offset(seed: int, strict: bool) -> int:
    return seed + (7919 if strict else 0)


def _generator(seed: int, strict: bool) -> torch.Generator:
    return torch.Generator().manual_seed(_offset(seed, strict))


# ----------------------------------------------------------------------------- transmission
def _radiograph(f: Callable, p: np.ndarray, photons: float, seed: int) -> np.ndarray:
    got = numpy_result(f(p.copy(), photons, seed), "transmission_noise", p.shape,
                       torch_hint="work with numpy arrays here")
    if not np.issubdtype(got.dtype, np.floating):
        raise CheckFailed(f"transmission_noise returned dtype {got.dtype}: the log of the counts "
                          "is a float image")
    if np.isinf(got).any() or np.isnan(got).any():
        raise CheckFailed("some pixels are inf or NaN: a pixel that counts no photon has "
                          "log(0); count it as one photon, np.maximum(k, 1)")
    return got


def _transmission_hint(mean: float, std: float, p: float, photons: float) -> str:
    lam = photons * math.exp(-p)
    slips = [  # (mean, std) that a slip gives, and its hint
        ((p, math.sqrt(p / photons)),
         "the counts grow with p: that is the detected dose of an emitter, not a body in the "
         "beam. Behind the body the expected count is photons * exp(-p) (Beer-Lambert): the "
         "fewest photons where p is largest"),
        ((-p, 1 / math.sqrt(lam)), "sign: the image is p_hat = -log(k / photons)"),
        ((-p, 1 / math.sqrt(photons * math.exp(p))),
         "the body removes photons: the expected count is photons * exp(-p), not exp(+p)"),
        ((math.exp(-p), math.sqrt(lam) / photons),
         "you returned the transmitted fraction k / photons: the image is its -log, "
         "the line integral p_hat"),
        ((p / math.log(10), 1 / math.sqrt(lam) / math.log(10)),
         "use the natural log (np.log): Beer-Lambert is exp(-p)"),
        ((lam, math.sqrt(lam)), "you returned the counts k: the image is -log(k / photons)"),
    ]
    for (m, s), hint in slips:
        if abs(mean - m) <= 0.02 * max(abs(m), 0.05) and abs(std - s) <= 0.08 * s:
            return hint
    return (f"at p = {p:g} with {photons:g} photons expected a mean near p and a std near "
            f"1 / sqrt(photons exp(-p)) = {1 / math.sqrt(lam):.4f}, got mean {mean:.4f}, "
            f"std {std:.4f}")


def check_transmission_noise(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``transmission_noise(p, photons, seed=None)``: ``-log(max(k, 1) / photons)`` with
    ``k ~ Poisson(photons exp(-p))``, ``p`` an ``(H, W)`` float array of line integrals."""
    s = _offset(seed, strict)
    shape = (150, 110) if strict else (120, 120)
    photons = 2000.0 if strict else 1000.0

    def constant_attenuation(f):
        p = 1.5 if strict else 1.0
        got = _radiograph(f, np.full(shape, p), photons, s)
        lam = photons * math.exp(-p)
        mean, std = float(got.mean()), float(got.std())
        expected_mean = p + 1 / (2 * lam)  # E[-log(k / N0)] to second order
        expected_std = 1 / math.sqrt(lam)
        if (abs(mean - expected_mean) > 5 * expected_std / math.sqrt(got.size) + 1e-3
                or abs(std - expected_std) > 0.06 * expected_std):
            raise CheckFailed(_transmission_hint(mean, std, p, photons))

    def noise_grows_with_attenuation(f):
        p = np.zeros(shape)
        p[:, shape[1] // 2 :] = 2.5  # dense tissue on the right half
        p[:, : shape[1] // 2] = 0.5
        got = _radiograph(f, p, photons, s + 1)
        ratio = got[:, shape[1] // 2 :].std() / got[:, : shape[1] // 2].std()
        if abs(ratio - math.exp(1.0)) > 0.12:
            raise CheckFailed(f"the noise std should grow as exp(p / 2): {math.exp(1):.2f} "
                              f"times larger at p = 2.5 than at p = 0.5, got {ratio:.2f}; "
                              + _transmission_hint(float(got[:, :10].mean()),
                                                   float(got[:, : shape[1] // 2].std()), 0.5,
                                                   photons))

    def no_photon_counted(f):
        few = 20.0 if strict else 50.0
        got = _radiograph(f, np.full((40, 40), 9.0), few, s + 2)  # ~0.006 photons expected
        top = math.log(few)
        if not np.allclose(got.max(), top) or (got > top + 1e-9).any():
            raise CheckFailed(f"where no photon arrives p_hat should be -log(1 / photons) = "
                              f"{top:.3f} (count it as one photon), got values up to "
                              f"{got.max():.3f}")

    def seeded(f):
        p = np.full((30, 30), 1.0)
        a, b = _radiograph(f, p, photons, s + 3), _radiograph(f, p, photons, s + 3)
        c = _radiograph(f, p, photons, s + 4)
        if not np.array_equal(a, b):
            raise CheckFailed("two calls with the same seed differ: draw the counts from "
                              "np.random.default_rng(seed)")
        if np.array_equal(a, c):
            raise CheckFailed("two different seeds gave the same image: pass the seed to "
                              "np.random.default_rng(seed)")

    def input_untouched(f):
        p = np.full((20, 20), 0.7)
        f(p, photons, s)
        if not np.all(p == 0.7):
            raise CheckFailed("transmission_noise changed p in place: compute on a copy")

    return run_check("transmission_noise", fn, [
        ("constant attenuation: mean and spread", constant_attenuation),
        ("the noise grows with the attenuation", noise_grows_with_attenuation),
        ("no photon counted", no_photon_counted),
        ("reproducible with a seed", seeded),
        ("input left untouched", input_untouched),
    ])


# ----------------------------------------------------------------------------- masked PSNR
def _psnr_hint(got: float, ref, x, mask, dr) -> str:
    right = metrics.psnr(ref, x, data_range=dr, mask=mask)
    mse_all = float(np.mean((x - ref) ** 2))
    mse_zeroed = float(np.mean(((x - ref) * mask) ** 2))
    slips = [
        (10 * math.log10(dr**2 / mse_all), "the mask is not used: average the squared error "
         "over the pixels of the mask only"),
        (10 * math.log10(dr**2 / mse_zeroed), "multiplying by the mask keeps the other pixels "
         "as zeros in the mean (too many pixels): average over mask pixels only, "
         "err[mask].mean()"),
        (10 * math.log(dr**2 / float(np.mean((x - ref)[mask] ** 2))), "use np.log10"),
        (20 * math.log10(dr**2 / float(np.mean((x - ref)[mask] ** 2))),
         "10 log10 goes with the MSE, 20 log10 with the RMSE"),
    ]
    for value, hint in slips:
        if abs(got - value) < 1e-6 * max(1.0, abs(value)):
            return hint
    return f"expected {right:.3f} dB, got {got:.3f} dB"


def check_masked_psnr(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``masked_psnr(ref, x, data_range, mask) -> float``: PSNR over the mask's pixels (the
    arguments of ``metrics.psnr``)."""
    rng = np.random.default_rng(_offset(seed, strict))
    shape = (37, 29) if strict else (24, 24)

    def problem():
        ref = rng.random(shape)
        mask = np.zeros(shape, bool)
        mask[:, : shape[1] // 2] = True
        x = ref + 0.02 * rng.standard_normal(shape)
        x[~mask] += 0.3  # bad outside the mask: it must not count
        return ref, x, mask

    def known_value(f):
        ref = np.full(shape, 0.5)
        mask = np.zeros(shape, bool)
        mask[3:-3, 3:-3] = True
        x = ref + np.where(mask, 0.1, 0.5)
        got = number_result(f(ref, x, 1.0, mask), "masked_psnr", _OVER_MASK)
        if abs(got - 20.0) > 1e-6:
            raise CheckFailed("error 0.1 inside the mask, 0.5 outside, data_range 1: expected "
                              f"20 dB; {_psnr_hint(got, ref, x, mask, 1.0)}")

    def matches_metrics(f):
        ref, x, mask = problem()
        dr = 2.0 if strict else 1.0
        got = number_result(f(ref, x, dr, mask), "masked_psnr", _OVER_MASK)
        if abs(got - metrics.psnr(ref, x, data_range=dr, mask=mask)) > 1e-6:
            raise CheckFailed(_psnr_hint(got, ref, x, mask, dr))

    def outside_ignored(f):
        ref, x, mask = problem()
        a = number_result(f(ref, x, 1.0, mask), "masked_psnr", _OVER_MASK)
        x2 = x.copy()
        x2[~mask] = rng.random(int((~mask).sum()))
        b = number_result(f(ref, x2, 1.0, mask), "masked_psnr", _OVER_MASK)
        if abs(a - b) > 1e-9:
            raise CheckFailed("changing the pixels outside the mask changed the PSNR: "
                              + _psnr_hint(a, ref, x, mask, 1.0))

    return run_check("masked_psnr", fn, [
        ("known value", known_value),
        ("same as metrics.psnr(mask=...)", matches_metrics),
        ("the pixels outside the mask do not count", outside_ignored),
    ])


# ----------------------------------------------------------------------------- receptive field
def _convolutions(model: nn.Module) -> tuple[list[int], list[int]]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return [m.kernel_size[0] for m in convs], [m.dilation[0] for m in convs]


def _rf(kernel_sizes, dilations) -> int:
    return 1 + sum((k - 1) * d for k, d in zip(kernel_sizes, dilations, strict=True))


def _rf_hint(got: int, model: nn.Module) -> str:
    ks, ds = _convolutions(model)
    right = _rf(ks, ds)
    top = [m for m in model.children() if isinstance(m, nn.Conv2d)]
    slips = [
        (right - 1, "off by one: the receptive field starts at 1 (the pixel itself)"),
        (right + 1, "off by one: start from 1, then add (k - 1) d per layer"),
        (1 + sum(ds), "each layer adds (k - 1) d: the kernel size matters"),
        (1 + sum(k - 1 for k in ks), "each layer adds (k - 1) d: the dilation matters "
         "(conv.dilation)"),
        (1 + sum(k * d for k, d in zip(ks, ds, strict=True)), "each layer adds (k - 1) d, "
         "not k d: a kernel of size k reaches k - 1 pixels beyond the centre pixel in total"),
        (right // 2, "that is the radius; return the side of the receptive field"),
        (1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in top),
         "some convolutions sit inside nested blocks (nn.Sequential in nn.Sequential): "
         "walk model.modules(), not model.children()"),
    ]
    for value, hint in slips:
        if got == value:
            return hint
    return (f"expected {right} pixels for convolutions of kernel sizes {ks} and dilations "
            f"{ds}, got {got}")


def _chain(kernel_sizes, dilations) -> nn.Sequential:
    """Stride-1 convolutions with batch norms and ReLUs between, padded to keep the size."""
    layers: list[nn.Module] = []
    for k, d in zip(kernel_sizes, dilations, strict=True):
        layers += [nn.Conv2d(2, 2, k, padding=(k - 1) * d // 2, dilation=d), nn.BatchNorm2d(2),
                   nn.ReLU()]
    return nn.Sequential(*layers[:-2])


def check_receptive_field_of(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``receptive_field_of(model) -> int``: ``1 + sum_l (k_l - 1) d_l`` over the model's
    ``nn.Conv2d`` layers (all of stride 1), nested ones included."""
    rng = np.random.default_rng(_offset(seed, strict))

    def case(build):
        def run(f):
            model = build()
            got = f(model)
            if isinstance(got, float) and got.is_integer():
                got = int(got)
            if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
                raise CheckFailed(f"return an int (a number of pixels), got {type(got).__name__}")
            if int(got) != _rf(*_convolutions(model)):
                raise CheckFailed(_rf_hint(int(got), model))
        return run

    n = int(rng.integers(3, 9))
    ks = [int(k) for k in rng.choice([3, 5, 7], size=n)]
    ds = [int(d) for d in rng.integers(1, 5, size=n)]
    depth = 11 if strict else 17
    dilations = (1, 3, 5, 3, 1) if strict else (1, 2, 3, 4, 3, 2, 1)
    return run_check("receptive_field_of", fn, [
        ("one 3x3 convolution", case(lambda: nn.Conv2d(1, 1, 5 if strict else 3))),
        (f"DnCNN, {depth} layers of 3x3 in nested blocks",
         case(lambda: DnCNN(features=4, depth=depth))),
        (f"dilated net, dilations {','.join(map(str, dilations))}",
         case(lambda: DilatedDenoiser(features=4, dilations=dilations))),
        ("random kernels and dilations, batch norms between", case(lambda: _chain(ks, ds))),
    ])


# ----------------------------------------------------------------------------- dilated block
def _block(fn, c_in: int, c_out: int, d: int) -> nn.Module:
    block = fn(c_in, c_out, d)
    if not isinstance(block, nn.Module):
        raise CheckFailed(f"dilated_block returned {type(block).__name__}: return an nn.Module "
                          "(e.g. nn.Sequential(conv, batch norm, ReLU))")
    return block


def _conv(block: nn.Module) -> nn.Conv2d:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != 1:
        raise CheckFailed(f"expected exactly one nn.Conv2d in the block, found {len(convs)}")
    return convs[0]


def check_dilated_block(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``dilated_block(in_channels, out_channels, dilation)``: Conv3x3(d) + BN + ReLU."""
    g = _generator(seed, strict)
    c_in, c_out = (3, 5) if strict else (2, 4)
    size = (19, 23) if strict else (16, 16)

    def keeps_size(f):
        for d in (1, 2, 4):
            block = _block(f, c_in, c_out, d).eval()
            out = block(torch.rand(2, c_in, *size, generator=g))
            if out.shape != (2, c_out, *size):
                conv = _conv(block)
                hint = (f"with dilation {d} the padding must be {d} (a 3x3 kernel dilated by d "
                        f"spans 2d + 1 pixels), yours is {conv.padding[0]}")
                raise CheckFailed(f"output shape {tuple(out.shape)}, expected "
                                  f"{(2, c_out, *size)}: {hint}")

    def dilation_is_used(f):
        d = 3 if strict else 2
        conv = _conv(_block(f, c_in, c_out, d))
        if conv.kernel_size != (3, 3):
            raise CheckFailed(f"the kernel must be 3x3, got {conv.kernel_size}")
        if conv.dilation != (d, d):
            raise CheckFailed(f"asked for dilation {d}, the conv has dilation {conv.dilation}: "
                              "pass dilation= to nn.Conv2d")
        if conv.in_channels != c_in or conv.out_channels != c_out:
            raise CheckFailed(f"the conv maps {conv.in_channels} -> {conv.out_channels} "
                              f"channels, expected {c_in} -> {c_out}")

    def impulse_response(f):
        d = 3 if strict else 2
        block = _block(f, 1, 1, d).eval()
        conv = _conv(block)
        with torch.no_grad():
            conv.weight.copy_(torch.rand(conv.weight.shape, generator=g) + 0.5)
            x = torch.zeros(1, 1, 17, 17)
            x[0, 0, 8, 8] = 1.0
            base = block(torch.zeros_like(x))
            hit = (block(x) - base).abs()[0, 0] > 0
        expected = torch.zeros(17, 17, dtype=torch.bool)
        for dy in (-d, 0, d):
            for dx in (-d, 0, d):
                expected[8 + dy, 8 + dx] = True
        if not torch.equal(hit, expected):
            raise CheckFailed(f"one bright input pixel should reach the 9 outputs at offsets "
                              f"{{-{d}, 0, {d}}}^2 (a 3x3 grid with holes), it reached "
                              f"{int(hit.sum())} pixels, not those")

    def batch_norm_and_relu(f):
        block = _block(f, c_in, c_out, 2)
        if not any(isinstance(m, nn.BatchNorm2d) for m in block.modules()):
            raise CheckFailed("add batch normalisation (nn.BatchNorm2d(out_channels)) after "
                              "the convolution")
        block.train()
        out = block(torch.randn(4, c_in, *size, generator=g))
        if (out < 0).any():
            raise CheckFailed("the block outputs negative values: end it with a ReLU")
        if (out == 0).all():
            raise CheckFailed("the block outputs only zeros: ReLU after batch norm, not before")

    return run_check("dilated_block", fn, [
        ("the spatial size is kept", keeps_size),
        ("3x3 conv with the dilation", dilation_is_used),
        ("impulse response on a dilated grid", impulse_response),
        ("batch norm then ReLU", batch_norm_and_relu),
    ])


# ----------------------------------------------------------------------------- dilated denoiser
def _denoiser(fn, features: int, dilations: tuple[int, ...]) -> nn.Module:
    net = fn(features=features, dilations=dilations)
    if not isinstance(net, nn.Module):
        raise CheckFailed(f"dilated_denoiser returned {type(net).__name__}: return an nn.Module "
                          "whose forward(y) returns x_hat")
    return net


def check_dilated_denoiser(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``dilated_denoiser(features, dilations) -> nn.Module``: ``(B, 1, H, W) -> (B, 1, H, W)``,
    the layout and parameters of ``DilatedDenoiser(features=..., dilations=...)``."""
    g = _generator(seed, strict)
    features = 6 if strict else 8
    dilations = (1, 3, 5, 3, 1) if strict else (1, 2, 3, 4, 3, 2, 1)
    size = (29, 35) if strict else (24, 24)

    def keeps_size(f):
        net = _denoiser(f, features, dilations).eval()
        for m in net.modules():
            if isinstance(m, nn.Conv2d) and m.padding[0] != m.dilation[0] * (m.kernel_size[0] // 2):
                raise CheckFailed(f"a 3x3 conv with dilation {m.dilation[0]} has padding "
                                  f"{m.padding[0]}: pad each conv by its dilation to keep the size")
        with torch.no_grad():
            out = net(torch.rand(2, 1, *size, generator=g))
        if not isinstance(out, torch.Tensor) or out.shape != (2, 1, *size):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CheckFailed(f"a batch (2, 1, {size[0]}, {size[1]}) gave {got}: pad each conv "
                              "by its dilation, and end with one output channel")

    def one_conv_per_dilation(f):
        convs = [m for m in _denoiser(f, features, dilations).modules()
                 if isinstance(m, nn.Conv2d)]
        if len(convs) != len(dilations):
            raise CheckFailed(f"{len(dilations)} dilations ask for {len(dilations)} convolutions, "
                              f"found {len(convs)}")
        got = tuple(m.dilation[0] for m in convs)
        if got != tuple(dilations):
            raise CheckFailed(f"the convolutions' dilations are {got}, expected {dilations} in "
                              "that order")
        if any(m.kernel_size != (3, 3) for m in convs):
            raise CheckFailed("every convolution is 3x3")
        flow = [(m.in_channels, m.out_channels) for m in convs]
        expected = [(1, features)] + [(features, features)] * (len(dilations) - 2) + [(features, 1)]
        if flow != expected:
            raise CheckFailed(f"channels {flow}, expected 1 -> {features} first, {features} -> "
                              f"{features} in the middle, {features} -> 1 last")

    def batch_norm_in_the_middle(f):
        net = _denoiser(f, features, dilations)
        norms = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        if norms != len(dilations) - 2:
            raise CheckFailed(f"found {norms} batch norms, expected {len(dilations) - 2}: one in "
                              "each middle layer, none after the first conv or the last")
        if not any(isinstance(m, nn.ReLU) for m in net.modules()):
            raise CheckFailed("no ReLU: the first and middle layers end with one")

    def residual(f):
        net = _denoiser(f, features, dilations).eval()
        last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
        y = torch.rand(2, 1, *size, generator=g)
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()
            out = net(y)
        if torch.allclose(out, torch.zeros_like(out)):
            raise CheckFailed("with the last conv at zero the output is 0: return y - R(y) "
                              "(the body predicts the noise), not R(y)")
        if not torch.allclose(out, y, atol=1e-6):
            raise CheckFailed("with the last conv at zero, R(y) = 0 and x_hat must be y: the "
                              "last layer is a plain conv (no ReLU after it), x_hat = y - R(y)")

    def same_parameters_as_the_package(f):
        net = _denoiser(f, features, dilations)
        got = count_parameters(net)
        right = count_parameters(DilatedDenoiser(features=features, dilations=dilations))
        if got == right + features * (len(dilations) - 2):
            raise CheckFailed("a conv followed by batch norm needs no bias (bias=False): the "
                              "batch norm's shift replaces it")
        if got != right:
            raise CheckFailed(f"{got} parameters, DilatedDenoiser has {right} for the same "
                              "features and dilations")
        if receptive_field(net) != 1 + 2 * sum(dilations):
            raise CheckFailed(f"receptive field {receptive_field(net)} px, expected "
                              f"{1 + 2 * sum(dilations)}")

    def trains(f):
        net = _denoiser(f, features, dilations).train()
        y = torch.rand(4, 1, *size, generator=g)
        loss = (net(y) ** 2).mean()
        loss.backward()
        first = [m for m in net.modules() if isinstance(m, nn.Conv2d)][0]
        if first.weight.grad is None:
            raise CheckFailed("no gradient reaches the first convolution: build the layers "
                              "from nn modules and keep the computation in torch")

    return run_check("dilated_denoiser", fn, [
        ("the size is kept", keeps_size),
        ("one 3x3 conv per dilation", one_conv_per_dilation),
        ("batch norm in the middle layers", batch_norm_in_the_middle),
        ("residual: x_hat = y - R(y)", residual),
        ("the parameters of DilatedDenoiser", same_parameters_as_the_package),
        ("a training step runs", trains),
    ])


# ----------------------------------------------------------------------------- MC-SURE
def _smooth_batch(g: torch.Generator, b: int, h: int, w: int) -> torch.Tensor:
    x = torch.rand(b, 1, h, w, generator=g)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), torch.ones(1, 1, 5, 5) / 25)


def _blur(y: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=y.dtype)[None, None] / 16
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kernel)


def _shrink(y: torch.Tensor) -> torch.Tensor:
    """A fixed non-linear denoiser: the blur plus the detail, softly clipped."""
    b = _blur(y)
    return b + 0.05 * torch.tanh((y - b) / 0.05)


def _sure_parts(denoise, y, sigma, eps, probe):
    fy = denoise(y)
    n = y[0].numel()
    quotient = (probe * (denoise(y + eps * probe) - fy)).flatten(1).sum(1)
    fit = (y - fy).flatten(1).pow(2)
    return fit.mean(1), fit.sum(1), quotient / eps, quotient, n


def _sure_hint(got: float, denoise, y, sigma, eps, seed) -> str | None:
    """The hint for a slip that gives ``got`` with the probe of ``seed``; ``None`` if none."""
    probe = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    fit, fit_sum, div, quotient, n = _sure_parts(denoise, y, sigma, eps, probe)
    s2 = sigma**2
    slips = [
        (fit - s2 + s2 * div / n, "the divergence term is 2 sigma^2 div / N: the factor 2 is "
         "missing"),
        (fit + 2 * s2 * div / n, "the - sigma^2 is missing (SURE of the identity must be "
         "sigma^2: the residual 0, minus sigma^2, plus 2 sigma^2)"),
        (fit - s2 - 2 * s2 * div / n, "sign: + 2 sigma^2 div / N (a denoiser that follows its "
         "input pays for it)"),
        (fit - sigma + 2 * sigma * div / n, "sigma is the std: the terms hold sigma^2"),
        (fit - s2 + 2 * s2 * div, "divide the divergence by N, the pixels per image, as the "
         "first term is a mean"),
        (fit - s2 + 2 * s2 * quotient / n, "divide b . (f(y + eps b) - f(y)) by eps: it is a "
         "difference quotient"),
        (fit_sum - s2 + 2 * s2 * div / n, "the first term is the mean over the pixels, "
         "||y - f(y)||^2 / N, not the sum"),
        (fit - s2 + 2 * s2 * div / n + 2 * s2, "compare with the formula: one term too many"),
    ]
    for value, hint in slips:
        v = float(value.mean())
        if abs(got - v) <= 1e-3 * max(abs(v), 1e-6):
            return hint
    return None


def check_mc_sure(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``mc_sure(denoise, y, sigma, eps=None, generator=None)``: the batch mean of
    ``||y - f(y)||^2 / N - sigma^2 + 2 sigma^2 div / N``, ``div = b . (f(y + eps b) - f(y))
    / eps`` with ``b = torch.randn(y.shape, generator=generator)``, ``eps = sigma / 100`` by
    default; the value of ``dlmi_utils.losses.mc_sure_loss`` for the same probe."""
    s = _offset(seed, strict)
    g = torch.Generator().manual_seed(s)
    b, h, w = (5, 21, 17) if strict else (4, 16, 16)
    sigma = 0.08 if strict else 0.1

    def noisy(batch: int, hh: int, ww: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = _smooth_batch(g, batch, hh, ww)
        return x + sigma * torch.randn(x.shape, generator=g), x

    def value(f, denoise, y, probe_seed, **kw):
        got = f(denoise, y, sigma, generator=torch.Generator().manual_seed(probe_seed), **kw)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"mc_sure returned {type(got).__name__}: return a torch tensor "
                              "(training back-propagates through it)")
        return number_result(got, "mc_sure")

    def same_probe_as_package(denoise, eps=None):
        def run(f):
            y, _ = noisy(b, h, w)
            got = value(f, denoise, y, s + 1, eps=eps)
            right = float(mc_sure_loss(denoise, y, sigma, eps=eps,
                                       generator=torch.Generator().manual_seed(s + 1)))
            if abs(got - right) > 1e-3 * abs(right):
                hint = _sure_hint(got, denoise, y, sigma, sigma / 100 if eps is None else eps,
                                  s + 1)
                if hint is None:
                    hint = (f"expected {right:.6g}, got {got:.6g}: draw the probe with "
                            "torch.randn(y.shape, generator=generator), eps = sigma / 100 "
                            "when eps is None")
                raise CheckFailed(hint)
        return run

    def unbiased(f):
        # the mean over many noisy images of SURE is the MSE against the clean images
        y, x = noisy(384, 24, 24)
        got = value(f, _shrink, y, s + 2)
        mse = float(((_shrink(y) - x) ** 2).mean())
        if abs(got - mse) > 0.06 * mse:
            raise CheckFailed(f"over 384 noisy images SURE should estimate the true MSE "
                              f"{mse:.3g}, got {got:.3g}")

    def differentiable(f):
        net = nn.Conv2d(1, 1, 3, padding=1)
        y, _ = noisy(2, h, w)
        loss = f(lambda t: t - net(t), y, sigma, generator=torch.Generator().manual_seed(s))
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise CheckFailed("return a 0-d tensor: the mean over the batch")
        loss.backward()
        if net.weight.grad is None or not torch.isfinite(net.weight.grad).all():
            raise CheckFailed("no gradient reached the denoiser: keep the computation in torch "
                              "(no .item(), no numpy)")

    return run_check("mc_sure", fn, [
        ("a linear denoiser, the package's probe", same_probe_as_package(_blur)),
        ("a non-linear denoiser, eps = sigma / 100", same_probe_as_package(_shrink)),
        ("a given eps is used", same_probe_as_package(_shrink, eps=0.5 * sigma)),
        ("unbiased: the mean over many images is the MSE", unbiased),
        ("differentiable through the denoiser", differentiable),
    ])
