"""A small U-Net in the style of the fastMRI baseline (Ronneberger et al. 2015; Zbontar et al.
2018), and its use as a reconstruction network without data consistency.

Each level: two ``3x3 conv -> instance norm -> LeakyReLU(0.2)`` blocks; max-pooling down,
transposed convolution up, skip connections by concatenation, a final ``1x1`` convolution.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlmi_utils.fourier import channels_to_complex, complex_to_channels
from dlmi_utils.mri.physics import MRIForward, zero_filled_input


class ConvBlock(nn.Module):
    """Two ``3x3 conv (no bias) -> InstanceNorm -> LeakyReLU(0.2) -> Dropout`` layers."""

    def __init__(self, in_channels: int, out_channels: int, drop_prob: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers += [
                nn.Conv2d(c_in, out_channels, kernel_size=3, padding=1, bias=False),
                nn.InstanceNorm2d(out_channels),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout2d(drop_prob),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UpBlock(nn.Module):
    """``2x2`` transposed convolution (stride 2) -> InstanceNorm -> LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False),
            nn.InstanceNorm2d(out_channels),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UNet(nn.Module):
    """``(B, in_channels, H, W) -> (B, out_channels, H, W)`` real; any ``H, W`` (padded inside).

    ``features`` channels at the first level, doubled at each of the ``n_pools`` levels.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, features: int = 16, n_pools: int = 3,
        drop_prob: float = 0.0,
    ):
        super().__init__()
        if n_pools < 1 or features < 1:
            raise ValueError(
                f"UNet needs features >= 1 and n_pools >= 1, got {features}, {n_pools}"
            )
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, features=features,
            n_pools=n_pools, drop_prob=drop_prob,
        )
        self.down = nn.ModuleList([ConvBlock(in_channels, features, drop_prob)])
        ch = features
        for _ in range(n_pools - 1):
            self.down.append(ConvBlock(ch, ch * 2, drop_prob))
            ch *= 2
        self.bottom = ConvBlock(ch, ch * 2, drop_prob)
        self.up_conv = nn.ModuleList()
        self.up = nn.ModuleList()
        for _ in range(n_pools):
            self.up_conv.append(UpBlock(ch * 2, ch))
            self.up.append(ConvBlock(ch * 2, ch, drop_prob))
            ch //= 2
        self.out = nn.Conv2d(features, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"UNet expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        f = 2 ** len(self.down)
        pad_h, pad_w = (-h) % f, (-w) % f
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up_conv, block in zip(self.up_conv, self.up, strict=True):
            x = block(torch.cat([up_conv(x), skips.pop()], dim=1))
        return self.out(x)[..., :h, :w]


class UNetRecon(nn.Module):
    """A U-Net that maps the zero-filled image to the reconstruction, with no data consistency.

    ``forward(y, physics) -> x_rec`` ``(B, H, W)`` complex, with the signature of
    :class:`~dlmi_utils.mri.cascade.DeepCascade`: ``y`` the measured k-space, ``physics`` the
    :class:`~dlmi_utils.mri.MRIForward` that measured it. Its only input is the zero-filled
    image ``x_u = physics.A_adjoint(y)`` (real and imaginary parts as two channels): the
    network never sees the measured samples again. Residual (``x_u + UNet(x_u)``) and scaled
    by ``max |x_u|``.
    """

    def __init__(self, features: int = 16, n_pools: int = 3, drop_prob: float = 0.0):
        super().__init__()
        self.unet = UNet(2, 2, features, n_pools, drop_prob)
        self.config: dict[str, Any] = dict(features=features, n_pools=n_pools,
                                           drop_prob=drop_prob)

    def forward(self, y: torch.Tensor, physics: MRIForward) -> torch.Tensor:
        x_u = zero_filled_input(y, physics, type(self).__name__)
        scale = x_u.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        x = complex_to_channels(x_u / scale)
        return channels_to_complex(x + self.unet(x)) * scale
