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
from dlmi_utils.pretrained import load_meta, load_pretrained


class ConvBlock(nn.Module):
    """Two ``3x3 conv (no bias) -> InstanceNorm -> LeakyReLU(0.2) -> Dropout`` layers."""

    def __init__(self, in_chans: int, out_chans: int, drop_prob: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_chans, out_chans):
            layers += [
                nn.Conv2d(c_in, out_chans, kernel_size=3, padding=1, bias=False),
                nn.InstanceNorm2d(out_chans),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout2d(drop_prob),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UpBlock(nn.Module):
    """``2x2`` transposed convolution (stride 2) -> InstanceNorm -> LeakyReLU(0.2)."""

    def __init__(self, in_chans: int, out_chans: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2, bias=False),
            nn.InstanceNorm2d(out_chans),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UNet(nn.Module):
    """``(B, in_chans, H, W) -> (B, out_chans, H, W)`` real; any ``H, W`` (padded inside).

    ``chans`` channels at the first level, doubled at each of the ``num_pool_layers`` levels.
    """

    def __init__(
        self, in_chans: int = 1, out_chans: int = 1, chans: int = 16, num_pool_layers: int = 3,
        drop_prob: float = 0.0,
    ):
        super().__init__()
        if num_pool_layers < 1 or chans < 1:
            raise ValueError(
                f"UNet needs chans >= 1 and num_pool_layers >= 1, got {chans}, {num_pool_layers}"
            )
        self.config: dict[str, Any] = dict(
            in_chans=in_chans, out_chans=out_chans, chans=chans,
            num_pool_layers=num_pool_layers, drop_prob=drop_prob,
        )
        self.down = nn.ModuleList([ConvBlock(in_chans, chans, drop_prob)])
        ch = chans
        for _ in range(num_pool_layers - 1):
            self.down.append(ConvBlock(ch, ch * 2, drop_prob))
            ch *= 2
        self.bottom = ConvBlock(ch, ch * 2, drop_prob)
        self.up_conv = nn.ModuleList()
        self.up = nn.ModuleList()
        for _ in range(num_pool_layers):
            self.up_conv.append(UpBlock(ch * 2, ch))
            self.up.append(ConvBlock(ch * 2, ch, drop_prob))
            ch //= 2
        self.out = nn.Conv2d(chans, out_chans, kernel_size=1)

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

    ``forward(x_u, s0=None, mask=None) -> x_rec``, ``(B, H, W)`` complex (real and imaginary
    parts as two channels); ``s0`` and ``mask`` are accepted for a common signature with
    :class:`~dlmi_utils.mri.cascade.DeepCascade` and ignored: the network never sees the
    measured samples again. Residual (``x_u + UNet(x_u)``) and scaled by ``max |x_u|``.
    """

    def __init__(self, chans: int = 16, num_pool_layers: int = 3, drop_prob: float = 0.0):
        super().__init__()
        self.unet = UNet(2, 2, chans, num_pool_layers, drop_prob)
        self.config: dict[str, Any] = dict(
            chans=chans, num_pool_layers=num_pool_layers, drop_prob=drop_prob
        )

    def forward(
        self, x_u: torch.Tensor, s0: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not (isinstance(x_u, torch.Tensor) and x_u.is_complex() and x_u.ndim == 3):
            raise ValueError(
                "UNetRecon expects the zero-filled image as a complex (B, H, W) tensor"
            )
        scale = x_u.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        x = complex_to_channels(x_u / scale)
        return channels_to_complex(x + self.unet(x)) * scale


def pretrained_unet(acceleration: int = 4, device: torch.device | str = "cpu") -> UNetRecon:
    """The shipped U-Net baseline (no data consistency) for ``acceleration`` 4 or 8, eval mode.

    Trained by ``scripts/train_cascade.py --model unet`` on the same data as the cascade.
    """
    name = f"unet_r{acceleration}"
    model = UNetRecon(**load_meta(name)["model_kwargs"])
    return load_pretrained(name, model, device)[0]
