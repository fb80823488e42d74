"""CNN denoisers ``x_noisy -> x_hat`` for ``(B, C, H, W)`` real images.

All three learn the *residual* (Zhang et al. 2017): the last convolution predicts the noise
``v = y - x`` and the network returns ``x_hat = y - R(y)``. The noise is a simpler function
of ``y`` than the clean image, and at initialisation ``x_hat`` is already ``y``.

- :class:`DnCNN` (Zhang et al., IEEE TIP 2017; used on X-rays by Sori et al. 2017):
  ``depth`` 3x3 convolutions, ``Conv+ReLU``, ``depth - 2`` times ``Conv+BN+ReLU``, ``Conv``.
  With depth 17 its receptive field is 35 x 35 pixels.
- :class:`DilatedDenoiser` (the denoiser prior of IRCNN, Zhang et al., CVPR 2017): seven 3x3
  convolutions with dilations ``1, 2, 3, 4, 3, 2, 1``: the receptive field of a 17-layer
  plain net (33 x 33) with 7 layers, no pooling and the parameters of a 7-layer plain net;
  ``unshuffle=2`` runs it on the 2 x 2 pixel-unshuffled image (FFDNet).
- :class:`ResUNetDenoiser` (DRUNet, Zhang et al., IEEE TPAMI 2022): a U-Net of residual
  blocks, whose receptive field grows with its levels.

:func:`fold_batch_norm` merges the batch norms into the convolutions for inference; the
receptive field is computed by :mod:`dlmi_utils.denoising.geometry`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

IRCNN_DILATIONS = (1, 2, 3, 4, 3, 2, 1)


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


def initialise(model: nn.Module, identity: bool = False) -> nn.Module:
    """He (Kaiming) initialisation of the convolutions of ``model``, zero biases, and zeros
    for its last convolution; returns ``model``.

    The zero last layer starts a residual network at ``x_hat = y`` (no noise estimated yet)
    rather than at a random image of the scale of the features: training on a CPU gets going
    in a few dozen steps instead of first unlearning that output. ``identity=True`` starts
    every other convolution with as many outputs as inputs as the identity
    (``nn.init.dirac_``, Yu & Koltun 2016's choice for dilated networks): each such layer
    first passes its features through, whatever its dilation.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution to initialise")
    for m in convs:
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if identity and m.in_channels == m.out_channels and m.groups == 1:
            nn.init.dirac_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    nn.init.zeros_(convs[-1].weight)
    if convs[-1].bias is not None:
        nn.init.zeros_(convs[-1].bias)
    return model


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
        initialise(self)


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
        initialise(self)

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


class NoiseAwareDenoiser(DilatedDenoiser):
    """The dilated denoiser told the noise level: ``model(y, sigma) -> x_hat`` (FFDNet's idea,
    Zhang, Zuo & Zhang, IEEE TIP 2018).

    The noise std enters as one more input channel, a map of ``sigma`` at the resolution the
    convolutions run at (after the ``unshuffle`` of :class:`DilatedDenoiser`, whose layout it
    otherwise keeps). One network then covers a range of levels, and the level is a knob:
    a larger ``sigma`` smooths more. ``sigma`` (on the scale of ``y``, ``25 / 255`` for [0, 1]
    images) is a number, a ``(B,)`` tensor (one level per image) or a ``(B, 1, H, W)`` map
    (noise that varies across the image, averaged over each ``unshuffle`` block).

    :meth:`at` fixes the level: ``model.at(sigma)`` is a plain ``y -> x_hat`` module for the
    code that denoises with any network (tiling, benchmarks).
    """

    def __init__(self, channels: int = 1, features: int = 64,
                 dilations: Sequence[int] = IRCNN_DILATIONS, batch_norm: bool = True,
                 residual: bool = True, unshuffle: int = 2):
        super().__init__(channels, features, dilations, batch_norm, residual, unshuffle)
        first = self.body[0][0]
        self.body[0][0] = nn.Conv2d(first.in_channels + 1, first.out_channels, 3,
                                    padding=first.padding, dilation=first.dilation,
                                    bias=first.bias is not None)
        nn.init.kaiming_normal_(self.body[0][0].weight, nonlinearity="relu")
        if self.body[0][0].bias is not None:
            nn.init.zeros_(self.body[0][0].bias)

    @classmethod
    def from_dilated(cls, model: DilatedDenoiser) -> NoiseAwareDenoiser:
        """A noise-aware net that starts as ``model`` (a trained :class:`DilatedDenoiser`):
        same weights, and a zero weight on the noise-level channel, so it first ignores it."""
        if type(model) is not DilatedDenoiser:
            raise TypeError(f"from_dilated takes a DilatedDenoiser, got {type(model).__name__}")
        net = cls(**model.config)
        state = model.state_dict()
        w = state["body.0.0.weight"]
        state["body.0.0.weight"] = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)
        net.load_state_dict(state)
        return net

    def forward(self, y: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if y.ndim != 4 or y.shape[1] != self.config["channels"]:
            raise ValueError(
                f"NoiseAwareDenoiser expects (B, {self.config['channels']}, H, W) images, got "
                f"shape {tuple(y.shape)}; add the axes with x[None, None]"
            )
        self._sigma = noise_level_map(sigma, y)
        try:
            out = self.residual_map(y)
        finally:
            del self._sigma
        return y - out if self.config["residual"] else out

    def residual_map(self, y: torch.Tensor) -> torch.Tensor:
        s = self.config["unshuffle"]
        h, w = y.shape[-2:]
        pad_h, pad_w = -h % s, -w % s
        sigma = self._sigma
        if pad_h or pad_w:
            y = nn.functional.pad(y, (0, pad_w, 0, pad_h), mode="replicate")
            sigma = nn.functional.pad(sigma, (0, pad_w, 0, pad_h), mode="replicate")
        z = self.space_to_depth(y) if s > 1 else y
        level = nn.functional.avg_pool2d(sigma, s) if s > 1 else sigma
        z = torch.cat([z, level], dim=1)
        if self.body[0][0].weight.is_contiguous(memory_format=torch.channels_last):
            z = z.contiguous(memory_format=torch.channels_last)  # as fold_batch_norm stores it
        r = self.body(z)
        return (self.depth_to_space(r) if s > 1 else r)[..., :h, :w]

    def at(self, sigma: float | torch.Tensor) -> FixedLevel:
        """This network at the noise level ``sigma``: a module ``y -> x_hat``."""
        return FixedLevel(self, sigma)


def noise_level_map(sigma: float | torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sigma`` (a number, ``(B,)`` or ``(B, 1, H, W)``) as a ``(B, 1, H, W)`` map like ``y``."""
    b, _, h, w = y.shape
    s = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError("the noise level sigma must be finite and >= 0 (the std of the noise "
                         "on the scale of the image, e.g. 25 / 255)")
    if s.ndim == 0:
        return s.expand(b, 1, h, w)
    if s.ndim == 1 and s.shape[0] in (1, b):
        return s.reshape(-1, 1, 1, 1).expand(b, 1, h, w)
    if s.shape == (b, 1, h, w):
        return s
    raise ValueError(f"sigma must be a number, a (B,) tensor or a (B, 1, H, W) map for images "
                     f"{tuple(y.shape)}, got shape {tuple(s.shape)}")


class FixedLevel(nn.Module):
    """A :class:`NoiseAwareDenoiser` at one noise level: ``y -> model(y, sigma)``."""

    def __init__(self, model: NoiseAwareDenoiser, sigma: float | torch.Tensor):
        super().__init__()
        self.model, self.sigma = model, sigma
        self.train(model.training)  # a new module is in training mode: keep the model's

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.model(y, self.sigma)


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
        # every block starts as the identity and the net at x_hat = y (as initialise)
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


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


DENOISER_KINDS = {"dncnn": DnCNN, "dilated": DilatedDenoiser, "resunet": ResUNetDenoiser,
                  "noise_aware": NoiseAwareDenoiser}


def build_denoiser(kind: str, **kwargs: Any) -> nn.Module:
    """``"dncnn"`` -> :class:`DnCNN`, ``"dilated"`` -> :class:`DilatedDenoiser`, ``"resunet"`` ->
    :class:`ResUNetDenoiser`, with ``kwargs``."""
    if kind not in DENOISER_KINDS:
        raise ValueError(f"kind must be one of {tuple(DENOISER_KINDS)}, got {kind!r}")
    return DENOISER_KINDS[kind](**kwargs)
