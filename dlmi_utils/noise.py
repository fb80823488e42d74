"""Noise models of medical images, for numpy arrays and torch tensors alike.

Each function returns the same kind (and dtype, and device) as its input and is reproducible:
``seed`` is an int, ``None`` (fresh randomness) or a generator (``np.random.Generator`` for
numpy input, ``torch.Generator`` for torch input) to draw several noises in a row.

- ``add_gaussian_noise(x, sigma)``: ``y = x + n``, ``n ~ N(0, sigma^2)`` (white, additive);
  the model of denoising benchmarks. ``sigma`` is on the scale of ``x``: for images in [0, 1]
  the classic 8-bit levels 15, 25, 50 are ``sigma_8bit(15) = 15 / 255`` etc.
- ``add_rician_noise(x, sigma)``: ``y = |x + n1 + i n2|``, ``n1, n2 ~ N(0, sigma^2)``: an MR
  magnitude image, whose noise is Gaussian on the real and imaginary channels. In the
  background (``x = 0``) it is Rayleigh: biased, of mean ``sigma sqrt(pi / 2)``.
- ``add_poisson_noise(x, photons)``: quantum (shot) noise of X-ray imaging; ``x`` in [0, 1] is
  the expected fraction of the ``photons`` that reach a detector pixel, the counts are
  ``k ~ Poisson(photons x)`` and ``y = k / photons``: unbiased, variance ``x / photons``,
  so fewer photons (a lower dose) mean more noise.

The noisy images are not clipped: ``np.clip(y, 0, 1)`` (``y.clamp(0, 1)``) if you need it.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
Seed = int | None | np.random.Generator | torch.Generator


def sigma_8bit(level: float) -> float:
    """The 8-bit noise level ``level`` (of 0..255) for images in [0, 1]: ``level / 255``."""
    if level < 0:
        raise ValueError(f"the noise level must be non-negative, got {level}")
    return level / 255.0


def _check(x, sigma: float, name: str, allow_complex: bool = False) -> None:
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} expects a numpy array or a torch tensor, got {type(x).__name__}")
    is_complex = x.is_complex() if isinstance(x, torch.Tensor) else np.iscomplexobj(x)
    if is_complex and not allow_complex:
        raise TypeError(
            f"{name} adds real noise to a real image, got a complex one; for a complex MR image "
            "use add_rician_noise (noise on the real and imaginary parts, then the magnitude), "
            "or take np.abs(x) first"
        )
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"{name}: sigma must be a non-negative number, got {sigma}")


def _numpy_rng(seed: Seed, name: str) -> np.random.Generator:
    if isinstance(seed, torch.Generator):
        raise TypeError(f"{name}: numpy input takes an int seed or an np.random.Generator")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _torch_generator(seed: Seed, name: str) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, np.random.Generator):
        raise TypeError(f"{name}: torch input takes an int seed or a torch.Generator")
    g = torch.Generator()  # noise drawn on the CPU: the same numbers on every device
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    if x.is_complex():
        return torch.float64 if x.dtype == torch.complex128 else torch.float32
    return x.dtype if x.is_floating_point() else torch.float32


def _randn(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = torch.randn(x.shape, generator=g, device=g.device, dtype=_float_dtype(x))
    return n.to(x.device)


def add_gaussian_noise(x: Array, sigma: float, seed: Seed = None) -> Array:
    """``x + n`` with ``n ~ N(0, sigma^2)`` i.i.d. per pixel; ``x`` real, any shape."""
    _check(x, sigma, "add_gaussian_noise")
    if isinstance(x, torch.Tensor):
        g = _torch_generator(seed, "add_gaussian_noise")
        x = x if x.is_floating_point() else x.float()
        return x + sigma * _randn(x, g)
    rng = _numpy_rng(seed, "add_gaussian_noise")
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    return (x + sigma * rng.standard_normal(x.shape)).astype(x.dtype, copy=False)


def add_rician_noise(x: Array, sigma: float, seed: Seed = None) -> Array:
    """``|x + n1 + i n2|`` with ``n1, n2 ~ N(0, sigma^2)``: a noisy MR magnitude image.

    ``x`` real (a magnitude image) or complex (the complex image before the magnitude); the
    result is real, non-negative.
    """
    _check(x, sigma, "add_rician_noise", allow_complex=True)
    if isinstance(x, torch.Tensor):
        g = _torch_generator(seed, "add_rician_noise")
        x = x if (x.is_floating_point() or x.is_complex()) else x.float()
        n1, n2 = _randn(x, g), _randn(x, g)
        return torch.abs(x + sigma * torch.complex(n1, n2))
    rng = _numpy_rng(seed, "add_rician_noise")
    if not (np.issubdtype(x.dtype, np.floating) or np.iscomplexobj(x)):
        x = x.astype(np.float32)
    real_dtype = np.abs(np.zeros(1, dtype=x.dtype)).dtype
    n = rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
    return np.abs(x + sigma * n).astype(real_dtype, copy=False)


def add_poisson_noise(x: Array, photons: float, seed: Seed = None) -> Array:
    """Quantum noise: ``Poisson(photons * x) / photons`` for ``x >= 0`` (the expected fraction
    of ``photons`` detected, in [0, 1]); the variance is ``x / photons``, proportional to the
    signal. ``photons`` plays the role of the dose: halving it doubles the variance.
    """
    if not (isinstance(photons, (int, float)) and photons > 0 and math.isfinite(photons)):
        raise ValueError(f"add_poisson_noise: photons must be a positive number, got {photons}")
    _check(x, 0.0, "add_poisson_noise")
    if (x.min() < 0).item() if isinstance(x, torch.Tensor) else x.min() < 0:
        raise ValueError(
            "add_poisson_noise: x must be non-negative (an expected fraction of photons, "
            "in [0, 1]); rescale the image first"
        )
    if isinstance(x, torch.Tensor):
        g = _torch_generator(seed, "add_poisson_noise")
        x = x if x.is_floating_point() else x.float()
        # float64 rate: float32 counts would lose precision above 2^24 photons
        rate = (photons * x.detach()).to(device=g.device, dtype=torch.float64)
        counts = torch.poisson(rate, generator=g)
        return (counts / photons).to(device=x.device, dtype=x.dtype)
    rng = _numpy_rng(seed, "add_poisson_noise")
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    return (rng.poisson(photons * x.astype(np.float64)) / photons).astype(x.dtype, copy=False)
