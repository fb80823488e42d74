"""DCGAN generator and discriminator for grayscale images (Radford et al. 2016), and an
exponential moving average of the generator's weights.

The generator maps a latent code ``z ~ N(0, I)`` of size ``nz`` to an image in ``[-1, 1]``:
a ``4x4`` transposed convolution to a ``4x4`` map of ``ngf * 2^(L-1)`` channels, then ``L - 1``
blocks ``4x4 transposed conv, stride 2 -> BatchNorm -> ReLU`` that double the size and halve
the channels, then a last stride-2 transposed convolution to one channel and ``tanh``
(``L = 4`` for ``64x64``, ``5`` for ``128x128``).

The discriminator mirrors it with ``4x4`` stride-2 convolutions and LeakyReLU(0.2) and returns
one real number per image: a logit for the non-saturating loss, a critic score for WGAN-GP.
Its normalisation is ``"batch"`` (DCGAN), ``"layer"`` or ``"none"`` (WGAN-GP needs a
per-sample critic: batch statistics would couple the samples of its gradient penalty), and
``spectral_norm=True`` wraps each convolution in spectral normalisation (Miyato et al. 2018).

The shipped generators load with ``dlmi_utils.pretrained.load_pretrained("gan_brain")`` (or
``"gan_mammo"``).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

SIZES = (32, 64, 128)
NORMS = ("batch", "layer", "none")


def _levels(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"image size must be one of {SIZES}, got {size}")
    return int(math.log2(size)) - 2  # 64 -> 4 stride-2 stages after the 4x4 map


def latent(n: int, nz: int = 64, seed: int | None = 0, device: torch.device | str = "cpu"):
    """``(n, nz)`` float32 standard-normal latent codes, reproducible for a given ``seed``."""
    if n < 1 or nz < 1:
        raise ValueError(f"n and nz must be positive, got n={n}, nz={nz}")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(n, nz, generator=g).to(device)


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, n: int = 8,
                        spherical: bool = True) -> torch.Tensor:
    """``n`` codes from ``z0`` to ``z1`` (both ``(nz,)``), ends included: ``(n, nz)``.

    ``spherical``: slerp, ``z(t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1`` with
    ``w`` the angle between the codes. A Gaussian code of size ``nz`` has norm close to
    ``sqrt(nz)``; the straight line between two of them passes through shorter codes than the
    generator ever saw in training, slerp stays at their typical norm.
    """
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise ValueError(f"expected two codes of the same shape (nz,), got {tuple(z0.shape)}, "
                         f"{tuple(z1.shape)}")
    if n < 2:
        raise ValueError(f"n must be at least 2 (the two ends), got {n}")
    t = torch.linspace(0, 1, n, dtype=z0.dtype, device=z0.device)[:, None]
    if not spherical:
        return (1 - t) * z0 + t * z1
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (almost) the same direction: slerp is the straight line
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


class Generator(nn.Module):
    """``(B, nz)`` latent codes -> ``(B, 1, size, size)`` images in ``[-1, 1]``."""

    def __init__(self, nz: int = 64, ngf: int = 32, size: int = 64):
        super().__init__()
        levels = _levels(size)
        self.nz, self.ngf, self.size = nz, ngf, size
        self.config = dict(nz=nz, ngf=ngf, size=size)
        chans = [ngf * 2 ** (levels - 1 - i) for i in range(levels)]  # e.g. 256, 128, 64, 32
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, chans[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(chans[-1], 1, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"expected latent codes of shape (B, {self.nz}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """``(B, 1, size, size)`` images -> ``(B,)`` scores (logits, or critic values for WGAN)."""

    def __init__(
        self, ndf: int = 32, size: int = 64, norm: str = "batch", spectral_norm: bool = False
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        levels = _levels(size)
        self.size = size
        wrap = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        chans = [ndf * 2**i for i in range(levels)]  # e.g. 32, 64, 128, 256
        layers: list[nn.Module] = [wrap(nn.Conv2d(1, chans[0], 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        res = size // 2
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            res //= 2
            layers.append(wrap(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none")))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            elif norm == "layer":
                layers.append(nn.GroupNorm(1, c_out))  # LayerNorm over (C, H, W), per sample
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(wrap(nn.Conv2d(chans[-1], 1, res, 1, 0)))  # 4x4 map -> one number
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, self.size, self.size):
            raise ValueError(
                f"expected images of shape (B, 1, {self.size}, {self.size}), got {tuple(x.shape)}"
            )
        return self.net(x).flatten()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ``N(0, 0.02)``, norm scales ``N(1, 0.02)``, biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        weight = getattr(module, "parametrizations", None)
        w = weight.weight.original if weight is not None else module.weight
        nn.init.normal_(w, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class EMA:
    """An exponential moving average of a model's weights: ``w_ema <- d w_ema + (1 - d) w``.

    Averaging the generator over the last ~``1 / (1 - decay)`` steps smooths out the
    oscillation of the adversarial game and gives cleaner samples (Yazici et al. 2019).
    ``ema.model`` is a frozen copy in eval mode; its BatchNorm buffers are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for p_ema, p in zip(self.model.parameters(), model.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)
