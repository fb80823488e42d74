"""CNN denoisers ``x_noisy -> x_hat`` for ``(B, C, H, W)`` real images, and their receptive field.

Both learn the *residual* (Zhang et al. 2017): the last convolution predicts the noise
``v = y - x`` and the network returns ``x_hat = y - R(y)``. The noise is a simpler function
of ``y`` than the clean image, and at initialisation ``x_hat`` is already ``y``.

- :class:`DnCNN` (Zhang et al., IEEE TIP 2017; used on X-rays by Sori et al. 2017):
  ``depth`` 3x3 convolutions, ``Conv+ReLU``, ``depth - 2`` times ``Conv+BN+ReLU``, ``Conv``.
  With depth 17 its receptive field is 35 x 35 pixels.
- :class:`DilatedDenoiser` (the denoiser prior of IRCNN, Zhang et al., CVPR 2017): seven 3x3
  convolutions with dilations ``1, 2, 3, 4, 3, 2, 1``: the receptive field of a 17-layer
  plain net (33 x 33) with 7 layers, no pooling and the parameters of a 7-layer plain net.

Receptive field of a chain of convolutions (kernel ``k_l``, dilation ``d_l``, stride ``s_l``):

    r = 1 + sum_l (k_l - 1) d_l prod_{m < l} s_m

so every 3x3 layer adds ``2 d`` pixels: ``1 + 2 * 17 = 35`` for DnCNN-17 and
``1 + 2 * (1+2+3+4+3+2+1) = 33`` for the dilated net (:func:`receptive_field`).

Quantum (Poisson) noise has a variance proportional to the signal; the Anscombe transform
(:func:`dlmi_utils.noise.anscombe`) makes it nearly Gaussian of constant variance, so a
denoiser trained for Gaussian noise of std :func:`~dlmi_utils.noise.vst_sigma` applies,
followed by :func:`~dlmi_utils.noise.inverse_anscombe`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from dlmi_utils.pretrained import available, load_meta, load_pretrained

IRCNN_DILATIONS = (1, 2, 3, 4, 3, 2, 1)

# Weights that :func:`pretrained_name` returns for a level ahead of ``{kind}_s{sigma}``: the
# FFDNet layout (the film 2x2 pixel-unshuffled, 64 features, receptive field 66 px), trained
# with film-edge lines and a tenth of the patches anywhere on the film (the black film around
# the breast included); on the held-out crops they beat ``dilated_s15`` / ``dilated_s25``
# (32 features, 33 px) by 0.31 / 0.39 dB (benchmarks/README.md). Those stay shipped, by name.
# ``(kind, "blind")``: the blind net, for ``sigma="blind"`` and any level without a net of its
# own. ``dncnn_blindB`` is ``dncnn_blind`` (400 steps) trained on for 6000 more, with the edge
# and anywhere patches of the dilated nets.
PREFERRED_WEIGHTS: dict[tuple[str, float | str], str] = {
    ("dilated", 15.0): "dilated2x_s15B",
    ("dilated", 25.0): "dilated2x_s25B",
    ("dncnn", "blind"): "dncnn_blindB",
}


def dilated_block(in_channels: int, out_channels: int, dilation: int = 1,
                  batch_norm: bool = True) -> nn.Sequential:
    """``Conv3x3(dilation) [+ BN] + ReLU``, padded so ``(B, C_in, H, W) -> (B, C_out, H, W)``.

    A 3x3 kernel with dilation ``d`` samples the input at offsets ``{-d, 0, d}``: it spans
    ``2 d + 1`` pixels with 9 weights, so the padding that keeps the size is ``d``.
    """
    if dilation < 1:
        raise ValueError(f"dilation must be a positive integer, got {dilation}")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation,
                  bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _ResidualDenoiser(nn.Module):
    """``x_hat = y - R(y)`` (``residual=True``) or ``x_hat = R(y)``; ``R`` is ``self.body``."""

    body: nn.Sequential
    config: dict[str, Any]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 4 or y.shape[1] != self.config["channels"]:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.config['channels']}, H, W) images, "
                f"got shape {tuple(y.shape)}; add the axes with x[None, None]"
            )
        out = self.residual_map(y)
        return y - out if self.config["residual"] else out

    def residual_map(self, y: torch.Tensor) -> torch.Tensor:
        """``R(y)``, ``(B, C, H, W) -> (B, C, H, W)``: the noise estimate when residual."""
        return self.body(y)


def _init_weights(model: _ResidualDenoiser) -> None:
    """He (Kaiming) initialisation for the ReLU convolutions, zeros for the last one.

    The zero last layer starts the network at ``x_hat = y`` (no noise estimated yet) rather
    than at a random image of the scale of the features: training on a CPU gets going in a
    few dozen steps instead of first unlearning that output.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    last = model.body[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


class DnCNN(_ResidualDenoiser):
    """DnCNN: ``depth`` 3x3 conv layers with ``features`` channels, batch norm, residual.

    ``(B, channels, H, W) -> (B, channels, H, W)``; ``depth=17, features=64`` is the paper's
    network for a known noise level (556k parameters).
    """

    def __init__(self, channels: int = 1, features: int = 64, depth: int = 17,
                 batch_norm: bool = True, residual: bool = True):
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN needs depth >= 2 (first and last conv), got {depth}")
        self.config = dict(channels=channels, features=features, depth=depth,
                           batch_norm=batch_norm, residual=residual)
        layers: list[nn.Module] = [dilated_block(channels, features, 1, batch_norm=False)]
        layers += [dilated_block(features, features, 1, batch_norm) for _ in range(depth - 2)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        _init_weights(self)


class DilatedDenoiser(_ResidualDenoiser):
    """IRCNN-style denoiser: one 3x3 conv per entry of ``dilations`` (the first without batch
    norm, the last without BN and ReLU), ``features`` channels, residual learning.

    ``dilations=(1,) * 7`` gives the plain 7-layer network with the same parameters.

    ``unshuffle=s > 1`` runs the convolutions on the ``s x s`` pixel-unshuffled image
    (FFDNet, Zhang et al. 2018): ``(B, C, H, W) -> (B, C s^2, H/s, W/s)``, convolutions,
    then back. Each convolution costs ``s^2`` times less per pixel for the same width, so
    a ``2 x`` wider net runs at the same speed, and the receptive field is ``s`` times wider
    (``s (1 + 2 sum d)`` pixels). Odd sizes are padded by edge replication and cropped back.
    """

    def __init__(self, channels: int = 1, features: int = 64,
                 dilations: Sequence[int] = IRCNN_DILATIONS, batch_norm: bool = True,
                 residual: bool = True, unshuffle: int = 1):
        super().__init__()
        dilations = tuple(int(d) for d in dilations)
        if len(dilations) < 2:
            raise ValueError(f"give at least two dilations (first and last conv), got {dilations}")
        if int(unshuffle) != unshuffle or unshuffle < 1:
            raise ValueError(f"unshuffle must be a positive integer, got {unshuffle}")
        unshuffle = int(unshuffle)
        self.config = dict(channels=channels, features=features, dilations=list(dilations),
                           batch_norm=batch_norm, residual=residual, unshuffle=unshuffle)
        if unshuffle > 1:  # registered before the body: receptive_field walks in this order
            self.space_to_depth = nn.PixelUnshuffle(unshuffle)
        inner = channels * unshuffle**2
        layers: list[nn.Module] = [dilated_block(inner, features, dilations[0], False)]
        layers += [dilated_block(features, features, d, batch_norm) for d in dilations[1:-1]]
        layers.append(nn.Conv2d(features, inner, 3, padding=dilations[-1],
                                dilation=dilations[-1]))
        self.body = nn.Sequential(*layers)
        if unshuffle > 1:
            self.depth_to_space = nn.PixelShuffle(unshuffle)
        _init_weights(self)

    def residual_map(self, y: torch.Tensor) -> torch.Tensor:
        s = self.config["unshuffle"]
        if s == 1:
            return self.body(y)
        h, w = y.shape[-2:]
        pad_h, pad_w = -h % s, -w % s
        if pad_h or pad_w:
            y = nn.functional.pad(y, (0, pad_w, 0, pad_h), mode="replicate")
        z = self.space_to_depth(y)
        if self.body[0][0].weight.is_contiguous(memory_format=torch.channels_last):
            z = z.contiguous(memory_format=torch.channels_last)  # as fold_batch_norm stores it
        return self.depth_to_space(self.body(z))[..., :h, :w]


class _ResidualBlock(nn.Module):
    """``x + Conv3x3(ReLU(Conv3x3(x)))``, ``(B, C, H, W) -> (B, C, H, W)`` (DRUNet's block)."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class _EncoderLevel(nn.Module):
    """Residual blocks, then a 2x2 stride-2 convolution to the next, coarser level."""

    def __init__(self, features: int, coarser: int, blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[_ResidualBlock(features) for _ in range(blocks)])
        self.down = nn.Conv2d(features, coarser, 2, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.blocks(x)
        return skip, self.down(skip)


class _DecoderLevel(nn.Module):
    """A 2x2 stride-2 transposed convolution from the coarser level, plus the skip, then
    residual blocks."""

    def __init__(self, coarser: int, features: int, blocks: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(coarser, features, 2, stride=2)
        self.blocks = nn.Sequential(*[_ResidualBlock(features) for _ in range(blocks)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.up(x) + skip)


class ResUNetDenoiser(_ResidualDenoiser):
    """A multi-scale residual denoiser in the style of DRUNet (Zhang et al., IEEE TPAMI 2022):
    a U-Net whose levels are residual blocks, with no normalisation, on the ``unshuffle x
    unshuffle`` pixel-unshuffled image.

    ``features[l]`` channels at level ``l`` (each level half the resolution of the one
    before, reached by a 2x2 stride-2 convolution and left by a 2x2 transposed one), ``blocks``
    residual blocks per level on the way down and on the way up, skips added (not
    concatenated). ``(B, C, H, W) -> (B, C, H, W)``, any ``H, W`` (padded by edge replication
    to a multiple of ``unshuffle * 2^(levels - 1)`` and cropped back). Where the dilated net
    widens its view with dilations, this one does with resolution: ``(32, 64, 128)`` sees
    ~180 px for the cost per pixel of the 64-channel dilated net on the 2 x 2 grid.
    """

    def __init__(self, channels: int = 1, features: Sequence[int] = (32, 64, 128),
                 blocks: int = 2, unshuffle: int = 2, residual: bool = True):
        super().__init__()
        features = [int(f) for f in features]
        if len(features) < 2 or min(features) < 1:
            raise ValueError(f"give at least two levels of positive widths, got {features}")
        if int(blocks) != blocks or blocks < 1:
            raise ValueError(f"blocks must be a positive integer, got {blocks}")
        if int(unshuffle) != unshuffle or unshuffle < 1:
            raise ValueError(f"unshuffle must be a positive integer, got {unshuffle}")
        blocks, unshuffle = int(blocks), int(unshuffle)
        self.config = dict(channels=channels, features=features, blocks=blocks,
                           unshuffle=unshuffle, residual=residual)
        inner = channels * unshuffle**2
        # registered in the order of the computation along the deepest path, the order
        # receptive_field walks
        self.space_to_depth = nn.PixelUnshuffle(unshuffle)
        self.head = nn.Conv2d(inner, features[0], 3, padding=1)
        pairs = list(zip(features[:-1], features[1:], strict=True))  # (finer, coarser) widths
        self.encoder = nn.ModuleList([_EncoderLevel(f, g, blocks) for f, g in pairs])
        self.middle = nn.Sequential(*[_ResidualBlock(features[-1]) for _ in range(blocks)])
        self.decoder = nn.ModuleList([_DecoderLevel(g, f, blocks) for f, g in pairs[::-1]])
        self.tail = nn.Conv2d(features[0], inner, 3, padding=1)
        self.depth_to_space = nn.PixelShuffle(unshuffle)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        # every block starts as the identity and the net at x_hat = y (as _init_weights)
        for m in self.modules():
            if isinstance(m, _ResidualBlock):
                nn.init.zeros_(m.conv2.weight)
        nn.init.zeros_(self.tail.weight)

    def residual_map(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        grid = self.config["unshuffle"] * 2 ** len(self.encoder)
        pad_h, pad_w = -h % grid, -w % grid
        if pad_h or pad_w:
            y = nn.functional.pad(y, (0, pad_w, 0, pad_h), mode="replicate")
        z = self.space_to_depth(y)
        if self.head.weight.is_contiguous(memory_format=torch.channels_last):
            z = z.contiguous(memory_format=torch.channels_last)  # as fold_batch_norm stores it
        x, skips = self.head(z), []
        for level in self.encoder:
            skip, x = level(x)
            skips.append(skip)
        x = self.middle(x)
        for level in self.decoder:
            x = level(x, skips.pop())
        return self.depth_to_space(self.tail(x))[..., :h, :w]


def _pair(v: int | tuple[int, ...]) -> int:
    """The vertical entry of a kernel size / dilation / stride (square kernels assumed)."""
    return int(v[0]) if isinstance(v, tuple) else int(v)


_WINDOW_LAYERS = (nn.PixelUnshuffle, nn.PixelShuffle, nn.Conv2d, nn.ConvTranspose2d,
                  nn.MaxPool2d, nn.AvgPool2d)


def layer_geometry(m: nn.Module) -> tuple[int, int, int, int]:
    """``(kernel, dilation, stride, padding)`` of a layer along the rows (square assumed); a
    pixel (un)shuffle by ``s`` is a kernel ``s`` of stride ``s``."""
    if isinstance(m, nn.PixelUnshuffle):
        return int(m.downscale_factor), 1, int(m.downscale_factor), 0
    if isinstance(m, nn.PixelShuffle):
        return int(m.upscale_factor), 1, int(m.upscale_factor), 0
    k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
    d = _pair(getattr(m, "dilation", 1))
    pad = m.padding
    if isinstance(pad, str):  # "same" / "valid"
        pad = (k - 1) * d // 2 if pad == "same" else 0
    return k, d, s, _pair(pad)


def _widest_window(layers: list[nn.Module], n: int) -> int:
    """The widest span of the ``n`` input rows that one output row depends on, following
    each row's interval ``[lo, hi]`` of input rows through ``layers`` (zero padding depends on
    nothing)."""
    empty = np.iinfo(np.int64).max
    lo, hi = np.arange(n), np.arange(n)
    for m in layers:
        k, d, s, pad = layer_geometry(m)
        length = lo.size
        if isinstance(m, (nn.ConvTranspose2d, nn.PixelShuffle)):
            out = (length - 1) * s - 2 * pad + d * (k - 1) + 1
            if isinstance(m, nn.ConvTranspose2d):
                out += _pair(m.output_padding)
            # output u takes input i through tap t where u + pad = i s + t d
            num = np.arange(out)[:, None] + pad - np.arange(k)[None, :] * d
            idx = num // s
            valid = (num % s == 0) & (idx >= 0) & (idx < length)
        else:
            out = (length + 2 * pad - d * (k - 1) - 1) // s + 1
            idx = np.arange(out)[:, None] * s - pad + np.arange(k)[None, :] * d
            valid = (idx >= 0) & (idx < length)
        idx = np.clip(idx, 0, length - 1)
        lo = np.where(valid, lo[idx], empty).min(axis=1)
        hi = np.where(valid, hi[idx], -empty).max(axis=1)
    seen = lo != empty
    return int((hi[seen] - lo[seen]).max()) + 1


def receptive_field(model: nn.Module) -> int:
    """Side (pixels) of the receptive field of a chain of conv / pooling / pixel-shuffle
    layers: the most input pixels, along a row, that one output pixel depends on.

    Walks ``model.modules()`` in definition order, which is the order of the computation for
    the sequential networks of this module, and for :class:`ResUNetDenoiser` the order along
    its deepest path (its skips and residual branches see less; not so for a U-Net in
    general). For stride-1 layers this is ``r = 1 + sum_l (k_l - 1) d_l``, and with strides
    ``r = 1 + sum_l (k_l - 1) d_l j_l`` (``j_l`` the product of the strides before layer
    ``l``). After an upsampling (a transposed convolution) neighbouring pixels no longer see
    evenly shifted windows, so the span is found exactly, by following the interval of input
    rows of every output row of a long enough image through the layers.
    """
    layers = [m for m in model.modules() if isinstance(m, _WINDOW_LAYERS)]
    if not any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d))
               for m in layers):
        raise ValueError(f"{type(model).__name__} has no Conv2d or pooling layer")
    n = 256
    while True:  # an image 4 x the field: rows untouched by the borders set the maximum
        r = _widest_window(layers, n)
        if 4 * r <= n:
            return r
        n *= 4


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference: each ``Conv2d`` followed by a ``BatchNorm2d`` becomes
    one ``Conv2d`` with a bias, and the weights are stored channels-last.

    In eval mode a batch norm is an affine map per channel, ``g (z - mu) / sqrt(var + eps) + b``,
    so it folds into the convolution before it: ``W' = W s``, ``b' = (b_conv - mu) s + b`` with
    ``s = g / sqrt(var + eps)`` (torch's ``fuse_conv_bn_eval``). The outputs equal the model's
    in eval mode (to float rounding); one pass over each feature map less, and channels-last
    convolutions are faster on a CPU. The copy is in eval mode, keeps ``config`` and
    ``weights_name``, and is not for training.
    """
    folded = copy.deepcopy(model).eval()
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            seq._modules[a], seq._modules[b] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return folded.to(memory_format=torch.channels_last).requires_grad_(False)


def matched_layers(dilations: Sequence[int], deeper: Sequence[int]) -> list[int]:
    """Where each layer of a net with ``dilations`` goes in one with ``deeper`` (indices into
    ``deeper``, the leftmost match of each in order); a ``ValueError`` when ``deeper`` does not
    contain them all in order, with the same first and last."""
    old, new = [int(d) for d in dilations], [int(d) for d in deeper]
    match, j = [], 0
    for d in old:
        while j < len(new) and new[j] != d:
            j += 1
        match.append(j)
        j += 1
    if match[0] != 0 or match[-1] != len(new) - 1:
        raise ValueError(f"dilations {new} must contain the model's {old} in order, with the "
                         "same first and last (e.g. (1, 2, 3, 4, 5, 4, 3, 2, 1))")
    return match


@torch.no_grad()
def deepen(model: DilatedDenoiser, dilations: Sequence[int], calibration: torch.Tensor
           ) -> DilatedDenoiser:
    """A deeper copy of a trained ``model`` that computes the same function (Net2DeeperNet,
    Chen et al. 2016): more layers to train on, without starting over.

    ``dilations`` must contain the model's own, in order, its first and last included
    (:func:`matched_layers`). Each layer of ``model`` is copied to its match; each new
    ``Conv + BN + ReLU`` layer starts as the identity: the kernel's centre tap passes channel
    ``c`` to channel ``c``, and the batch norm undoes its own normalisation
    (``gamma = sqrt(var + eps)``, ``beta = mean``, running statistics ``mean``, ``var``: those
    of its input on ``calibration``, noisy images ``(B, C, H, W)``). Its input is a ReLU's
    output, so the ReLU after it changes nothing. In eval mode the outputs equal the model's
    (to float rounding); in training mode, to the difference between the batch's statistics
    and the calibration's.
    """
    if not isinstance(model, DilatedDenoiser):
        raise TypeError(f"deepen takes a DilatedDenoiser, got {type(model).__name__}")
    new = [int(d) for d in dilations]
    if not model.config["batch_norm"]:
        raise ValueError("deepen needs a net with batch norm (its new layers use it)")
    match = matched_layers(model.config["dilations"], new)
    deeper = DilatedDenoiser(**{**model.config, "dilations": new}).to(calibration.device)
    for o, n in enumerate(match):
        deeper.body[n].load_state_dict(model.body[o].state_dict())
    deeper.eval()
    s = deeper.config["unshuffle"]
    z = deeper.space_to_depth(calibration) if s > 1 else calibration
    for n, block in enumerate(deeper.body):
        if n not in match:
            conv, bn = block[0], block[1]
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = torch.eye(conv.out_channels, conv.in_channels,
                                                dtype=conv.weight.dtype, device=conv.weight.device)
            mean, var = z.mean(dim=(0, 2, 3)), z.var(dim=(0, 2, 3), unbiased=False)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.copy_(mean)
        z = block(z)
    return deeper.train(model.training)


@torch.no_grad()
def widen(model: DilatedDenoiser, features: int, seed: int = 0) -> DilatedDenoiser:
    """A wider copy of a trained ``model`` (``features`` channels per hidden layer) that
    computes the same function: more channels to train on, without starting over.

    The model's channels keep their weights and batch norms. Each new channel gets a He
    initialised kernel over all the inputs of its layer (drawn from ``seed``, layer by layer),
    and the kernel weights *from* new channels to the model's channels, and to the output,
    start at zero: the old outputs do not see them yet, in eval and in training mode, but the
    gradients into those zeros do not vanish (the new channels are active), so training brings
    them in. Net2WiderNet (Chen et al. 2016) splits copies of units instead; zeros keep the
    function exactly, batch norm included.
    """
    if not isinstance(model, DilatedDenoiser):
        raise TypeError(f"widen takes a DilatedDenoiser, got {type(model).__name__}")
    old = int(model.config["features"])
    if int(features) != features or features < old:
        raise ValueError(f"features must be an integer >= the model's {old}, got {features}")
    wider = DilatedDenoiser(**{**model.config, "features": int(features)})
    wider = wider.to(next(model.parameters()).device)
    gen = torch.Generator().manual_seed(seed)
    for blk, src_blk in zip(wider.body, model.body, strict=True):
        # conv [, BN], ReLU blocks, and the last conv alone
        conv, src = (blk[0], src_blk[0]) if isinstance(blk, nn.Sequential) else (blk, src_blk)
        o, i = src.weight.shape[:2]
        fan_in = conv.weight.shape[1] * 9
        w = torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
        w[:o, i:] = 0.0  # the old channels, and the output, do not see the new ones yet
        w[:o, :i] = src.weight.cpu()
        conv.weight.copy_(w)
        if conv.bias is not None:
            conv.bias.zero_()
            conv.bias[:o] = src.bias
        if isinstance(blk, nn.Sequential) and isinstance(blk[1], nn.BatchNorm2d):
            bn, src_bn = blk[1], src_blk[1]
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name)[:o] = getattr(src_bn, name)
            bn.num_batches_tracked.copy_(src_bn.num_batches_tracked)
    return wider.train(model.training)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


DENOISER_KINDS = {"dncnn": DnCNN, "dilated": DilatedDenoiser, "resunet": ResUNetDenoiser}


def build_denoiser(kind: str, **kwargs: Any) -> nn.Module:
    """``"dncnn"`` -> :class:`DnCNN`, ``"dilated"`` -> :class:`DilatedDenoiser`, ``"resunet"`` ->
    :class:`ResUNetDenoiser`, with ``kwargs``."""
    if kind not in DENOISER_KINDS:
        raise ValueError(f"kind must be one of {tuple(DENOISER_KINDS)}, got {kind!r}")
    return DENOISER_KINDS[kind](**kwargs)


def pretrained_name(kind: str, sigma: float | str) -> str:
    """The shipped weights for ``kind`` at the 8-bit noise level ``sigma``.

    The level's entry of :data:`PREFERRED_WEIGHTS`, else ``{kind}_s{sigma}`` (trained for
    that level) when either exists, else the blind net (trained on a range of levels:
    the ``(kind, "blind")`` entry, else ``{kind}_blind``) when ``sigma`` lies in its range;
    ``sigma="blind"`` asks for the latter.
    """
    if kind not in DENOISER_KINDS:
        raise ValueError(f"kind must be one of {tuple(DENOISER_KINDS)}, got {kind!r}")
    names = available()
    if sigma != "blind":
        preferred = PREFERRED_WEIGHTS.get((kind, float(sigma)))
        for specific in (preferred, f"{kind}_s{float(sigma):g}"):
            if specific in names:
                return specific
    blind = PREFERRED_WEIGHTS.get((kind, "blind"))
    if blind not in names:
        blind = f"{kind}_blind"
    if blind in names:
        lo, hi = load_meta(blind)["sigma_range_8bit"]
        if sigma == "blind" or lo <= float(sigma) <= hi:
            return blind
    shipped = [n for n in names if n.startswith(f"{kind}_")]
    raise FileNotFoundError(
        f"no shipped {kind} denoiser for sigma={sigma}; available: {shipped}. Train one with "
        f"scripts/train_denoisers.py --kind {kind} --sigma {sigma}"
    )


def pretrained_denoiser(kind: str = "dilated", sigma: float | str = 25,
                        device: torch.device | str = "cpu") -> nn.Module:
    """A shipped denoiser of mammograms in eval mode: ``kind`` ``"dilated"``, ``"dncnn"`` or
    ``"resunet"`` (sigma 15 and 25 only) for the 8-bit Gaussian noise level ``sigma``
    (:func:`pretrained_name` picks the weights).

    Made by ``scripts/train_denoisers.py`` on the training case only;
    ``dlmi_utils.pretrained.load_meta(model.weights_name)`` tells how, on what data (pixel
    size included) and its validation PSNR.
    """
    return load_denoiser(pretrained_name(kind, sigma), device)


def load_denoiser(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The shipped denoiser weights ``name`` (``dlmi_utils.pretrained.available()``), in eval
    mode, built as their ``.json`` records; ``model.weights_name`` is ``name``."""
    meta = load_meta(name)
    if meta.get("kind") not in DENOISER_KINDS:
        raise ValueError(f"{name!r} are not denoiser weights (kind {meta.get('kind')!r}); "
                         f"the denoisers are the {tuple(DENOISER_KINDS)} weights")
    model = build_denoiser(meta["kind"], **meta["model_kwargs"])
    model = load_pretrained(name, model, device)[0]
    model.weights_name = name
    return model
