"""Checks of Lab 04 (denoising mammograms), written by the student:

- ``dilated_block(in_channels, out_channels, dilation) -> nn.Module``: 3x3 conv with dilation
  ``d`` (padded to keep the size), batch norm, ReLU;
- ``residual_loss(R, y, x) -> tensor``: DnCNN's loss ``1/(2N) sum_i ||R(y_i) - (y_i - x_i)||^2``;
- ``receptive_field_of(model) -> int``: ``1 + sum_l (k_l - 1) d_l`` over the ``nn.Conv2d``
  layers of a stride-1 network, nested ones included;
- ``breast_psnr(ref, x, data_range, mask) -> float``: the PSNR over the pixels of ``mask``.

Each check compares with the package (:mod:`dlmi_utils.denoising.models`,
:mod:`dlmi_utils.denoising.geometry`, :mod:`dlmi_utils.metrics`) on small cases and recognises
the usual slips (padding 1 with a dilation, the noise ``x - y`` for ``y - x``, the 1/2 or the
batch mean forgotten, an off-by-one receptive field, nested convolutions missed, the background
averaged into the PSNR). :func:`reference_residual_loss` is the loss the lab trains with until
the student's passes its check (the package has no residual loss of this form).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dlmi_utils import metrics
from dlmi_utils.course.checks import CheckFailed, CheckResult, run_check
from dlmi_utils.denoising.models import DilatedDenoiser, DnCNN


def _generator(seed: int, strict: bool) -> torch.Generator:
    return torch.Generator().manual_seed(seed + (7919 if strict else 0))


def _number(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{what} returned a tensor of shape {tuple(value.shape)}, "
                              "expected one number: did you forget to sum or average?")
        return float(value.detach())
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise CheckFailed(f"{what} returned an array of shape {value.shape}, expected "
                              "one number: did you forget to average over the mask?")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a number")
    return float(value)


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


# ----------------------------------------------------------------------------- residual loss
def reference_residual_loss(R: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor,
                            x: torch.Tensor) -> torch.Tensor:
    """DnCNN's loss ``1/(2N) sum_i ||R(y_i) - (y_i - x_i)||_F^2`` for batches ``(N, C, H, W)``
    of noisy ``y`` and clean ``x``: a 0-d tensor, differentiable through ``R``."""
    return ((R(y) - (y - x)) ** 2).sum() / (2 * y.shape[0])


def _loss_hint(got: float, R, y, x) -> str:
    n = y.shape[0]
    r = R(y)
    right = float(reference_residual_loss(R, y, x))
    slips = [
        (float(((r - (x - y)) ** 2).sum() / (2 * n)),
         "the noise is y - x (noisy minus clean), not x - y"),
        (float(((r - x) ** 2).sum() / (2 * n)),
         "R predicts the noise y - x, so compare R(y) with y - x, not with the clean x"),
        (2 * right, "missing the 1/2 in 1/(2N)"),
        (right * 2 * n, "missing the 1/(2N) normalisation"),
        (right * n, "divide by N, the number of images in the batch"),
        (float(((r - (y - x)) ** 2).mean() / 2), "sum over the pixels of each image "
         "(squared Frobenius norm), then divide by 2N: not the mean over pixels"),
        (float(((r - (y - x)) ** 2).mean()), "sum over the pixels of each image "
         "(squared Frobenius norm), then divide by 2N: not the mean over pixels"),
        (math.sqrt(2 * n * right) / (2 * n), "square the norm: ||.||_F^2"),
    ]
    for value, hint in slips:
        if math.isfinite(value) and abs(got - value) <= 1e-4 * max(1.0, abs(value)):
            return hint
    return f"expected {right:.6g}, got {got:.6g}"


def check_residual_loss(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``residual_loss(R, y, x)``: ``1/(2N) sum_i ||R(y_i) - (y_i - x_i)||_F^2`` (a 0-d tensor)."""
    g = _generator(seed, strict)
    n, h, w = (3, 11, 13) if strict else (2, 8, 8)

    def data():
        x = torch.rand(n, 1, h, w, generator=g)
        y = x + 0.1 * torch.randn(n, 1, h, w, generator=g)
        return y, x

    def half_noise(t):
        return 0.5 * t

    def perfect_estimator(f):
        y, x = data()
        noise = y - x
        value = _number(f(lambda t: noise, y, x), "residual_loss")
        if abs(value) > 1e-10:
            raise CheckFailed(f"an R that returns exactly the noise must give 0, got {value:.3g}: "
                              "the target of R is y - x")

    def known_value(f):
        y, x = data()
        got = _number(f(half_noise, y, x), "residual_loss")
        right = float(reference_residual_loss(half_noise, y, x))
        if abs(got - right) > 1e-5 * max(1.0, right):
            raise CheckFailed(_loss_hint(got, half_noise, y, x))

    def differentiable(f):
        y, x = data()
        conv = nn.Conv2d(1, 1, 3, padding=1)
        loss = f(conv, y, x)
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            raise CheckFailed("return a torch tensor connected to R's parameters (no .item(), "
                              "no numpy): training calls loss.backward()")
        loss.backward()
        with torch.no_grad():
            got, expected = float(loss.detach()), float(reference_residual_loss(conv, y, x))
            if abs(got - expected) > 1e-5 * max(1.0, expected):
                raise CheckFailed(_loss_hint(got, conv, y, x))

    return run_check("residual_loss", fn, [
        ("R(y) = y - x gives zero", perfect_estimator),
        ("R(y) = y / 2, known value", known_value),
        ("differentiable through a conv", differentiable),
    ])


# ----------------------------------------------------------------------------- receptive field
def _convolutions(model: nn.Module) -> tuple[list[int], list[int]]:
    """Kernel sizes and dilations (along the rows) of every ``nn.Conv2d`` of ``model``."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return [int(m.kernel_size[0]) for m in convs], [int(m.dilation[0]) for m in convs]


def _rf(kernel_sizes, dilations) -> int:
    return 1 + sum((k - 1) * d for k, d in zip(kernel_sizes, dilations, strict=True))


def _rf_hint(got: int, model: nn.Module) -> str:
    ks, ds = _convolutions(model)
    right = _rf(ks, ds)
    top = [m for m in model.children() if isinstance(m, nn.Conv2d)]
    slips = [
        (right - 1, "off by one: a single 3x3 layer sees 3 pixels, r = 1 + sum (k - 1) d"),
        (sum((k - 1) * d for k, d in zip(ks, ds, strict=True)) + len(ks),
         "each layer adds (k - 1) d, not (k - 1) d + 1: start from r = 1"),
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
    rng = np.random.default_rng(seed + (7919 if strict else 0))

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


# ----------------------------------------------------------------------------- breast PSNR
def _breast_hint(got: float, ref, x, mask, dr) -> str:
    right = metrics.psnr(ref, x, data_range=dr, mask=mask)
    mse_all = float(np.mean((x - ref) ** 2))
    mse_zeroed = float(np.mean(((x - ref) * mask) ** 2))
    slips = [
        (10 * math.log10(dr**2 / mse_all), "the mask is not used: average the squared error "
         "over the pixels of the mask only"),
        (10 * math.log10(dr**2 / mse_zeroed), "multiplying by the mask keeps the background as "
         "zeros in the mean (too many pixels): average over mask pixels only, err[mask].mean()"),
        (10 * math.log(dr**2 / float(np.mean((x - ref)[mask] ** 2))), "use np.log10"),
        (20 * math.log10(dr**2 / float(np.mean((x - ref)[mask] ** 2))),
         "10 log10 goes with the MSE, 20 log10 with the RMSE"),
    ]
    for value, hint in slips:
        if abs(got - value) < 1e-6 * max(1.0, abs(value)):
            return hint
    return f"expected {right:.3f} dB, got {got:.3f} dB"


def check_breast_psnr(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``breast_psnr(ref, x, data_range, mask) -> float``: PSNR over the mask's pixels (the
    arguments of ``metrics.psnr``)."""
    rng = np.random.default_rng(seed + (7919 if strict else 0))
    shape = (37, 29) if strict else (24, 24)

    def problem():
        ref = rng.random(shape)
        mask = np.zeros(shape, bool)
        mask[:, : shape[1] // 2] = True
        x = ref + 0.02 * rng.standard_normal(shape)
        x[~mask] += 0.3  # a bad background: it must not count
        return ref, x, mask

    def known_value(f):
        ref = np.full(shape, 0.5)
        mask = np.zeros(shape, bool)
        mask[3:-3, 3:-3] = True
        x = ref + np.where(mask, 0.1, 0.5)
        got = _number(f(ref, x, 1.0, mask), "breast_psnr")
        if abs(got - 20.0) > 1e-6:
            raise CheckFailed("error 0.1 inside the mask, 0.5 outside, data_range 1: expected "
                              f"20 dB; {_breast_hint(got, ref, x, mask, 1.0)}")

    def matches_metrics(f):
        ref, x, mask = problem()
        dr = 2.0 if strict else 1.0
        got = _number(f(ref, x, dr, mask), "breast_psnr")
        if abs(got - metrics.psnr(ref, x, data_range=dr, mask=mask)) > 1e-6:
            raise CheckFailed(_breast_hint(got, ref, x, mask, dr))

    def background_ignored(f):
        ref, x, mask = problem()
        a = _number(f(ref, x, 1.0, mask), "breast_psnr")
        x2 = x.copy()
        x2[~mask] = rng.random(int((~mask).sum()))
        b = _number(f(ref, x2, 1.0, mask), "breast_psnr")
        if abs(a - b) > 1e-9:
            raise CheckFailed("changing the pixels outside the mask changed the PSNR: "
                              + _breast_hint(a, ref, x, mask, 1.0))

    return run_check("breast_psnr", fn, [
        ("known value", known_value),
        ("same as metrics.psnr(mask=...)", matches_metrics),
        ("the background does not count", background_ignored),
    ])
