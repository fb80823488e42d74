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
- ``add_complex_gaussian_noise(y, sigma)``: complex white noise of MR k-space (thermal noise
  of the receive chain), ``E|n|^2 = sigma^2``.
- ``add_poisson_noise(x, photons)``: quantum (shot) noise of photon counting; ``x`` in [0, 1]
  is the expected fraction of the ``photons`` that reach a detector pixel, the counts are
  ``k ~ Poisson(photons x)`` and ``y = k / photons``: unbiased, variance ``x / photons``,
  so fewer photons (a lower dose) mean more noise.
- ``add_transmission_noise(p, photons)``: the same counting behind a body, as a radiograph
  shows it. ``p`` is the attenuation line integral, ``k ~ Poisson(photons exp(-p))``
  (Beer-Lambert), and the image is the log transform ``p_hat = -log(k / photons)``, whose
  variance is about ``exp(p) / photons``: largest where the body attenuates most (dense
  tissue, bone), which the fewest photons cross.

The noisy images are not clipped: ``np.clip(y, 0, 1)`` (``y.clamp(0, 1)``) if you need it.

The noise a denoiser is trained for and benchmarked on is a *noise model*, an object with:

- ``noise(x, seed)``: the noisy image ``y``;
- ``noise.stabilise(y)``: what the network sees (``y``, or ``anscombe(y)`` for quantum noise,
  whose noise is then close to Gaussian of std ``noise.level``), and
  ``noise.stable_target(x)``: what it should output there (``x``, or ``E[anscombe(y) | x]``);
- ``noise.through(denoise)``: ``y -> unstabilise(denoise(stabilise(y)))``, a denoiser of
  Gaussian noise of std ``level`` applied to this noise.

:class:`GaussianNoise` (``sigma``, or a range of ``sigma`` for blind training) and
:class:`PoissonNoise` (``photons``, through the Anscombe transform) are the two; the patch
datasets of :mod:`dlmi_utils.denoising.patches` and ``benchmarks/denoise.py`` use them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from scipy.special import gammaln

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


def numpy_generator(seed: Seed, name: str) -> np.random.Generator:
    """The numpy generator a noise function of ``name`` draws from: ``seed`` itself when it is
    one, else a new one seeded with the int (or fresh entropy for ``None``)."""
    if isinstance(seed, torch.Generator):
        raise TypeError(f"{name}: numpy input takes an int seed or an np.random.Generator")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def torch_generator(seed: Seed, name: str) -> torch.Generator:
    """The CPU torch generator a noise function of ``name`` draws from (same numbers on any
    device): ``seed`` itself when it is one, else a new one seeded with the int."""
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
        g = torch_generator(seed, "add_gaussian_noise")
        x = x if x.is_floating_point() else x.float()
        return x + sigma * _randn(x, g)
    rng = numpy_generator(seed, "add_gaussian_noise")
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    return (x + sigma * rng.standard_normal(x.shape)).astype(x.dtype, copy=False)


def add_rician_noise(x: Array, sigma: float, seed: Seed = None) -> Array:
    """``|x + n1 + i n2|`` with ``n1, n2 ~ N(0, sigma^2)``: a noisy MR magnitude image.

    ``x`` real (a magnitude image) or complex (the complex image before the magnitude); the
    result is real, non-negative.
    """
    _check(x, sigma, "add_rician_noise", allow_complex=True)
    if isinstance(x, torch.Tensor):
        g = torch_generator(seed, "add_rician_noise")
        x = x if (x.is_floating_point() or x.is_complex()) else x.float()
        n1, n2 = _randn(x, g), _randn(x, g)
        return torch.abs(x + sigma * torch.complex(n1, n2))
    rng = numpy_generator(seed, "add_rician_noise")
    if not (np.issubdtype(x.dtype, np.floating) or np.iscomplexobj(x)):
        x = x.astype(np.float32)
    real_dtype = np.abs(np.zeros(1, dtype=x.dtype)).dtype
    n = rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
    return np.abs(x + sigma * n).astype(real_dtype, copy=False)


def add_complex_gaussian_noise(y: Array, sigma: float, seed: Seed = None) -> Array:
    """``y + n`` with complex white noise, ``E|n|^2 = sigma^2``: thermal noise of MR k-space.

    The real and imaginary parts of ``n`` are independent ``N(0, sigma^2 / 2)``; with the
    orthonormal FFT the image gets the same noise level. ``y`` real or complex, any shape;
    returns complex (``complex128`` for float64 / complex128 input, else ``complex64``).
    """
    _check(y, sigma, "add_complex_gaussian_noise", allow_complex=True)
    scale = sigma / math.sqrt(2)
    if isinstance(y, torch.Tensor):
        g = torch_generator(seed, "add_complex_gaussian_noise")
        double = y.dtype in (torch.float64, torch.complex128)
        y = y.to(torch.complex128 if double else torch.complex64)
        return y + scale * torch.complex(_randn(y, g), _randn(y, g))
    rng = numpy_generator(seed, "add_complex_gaussian_noise")
    dtype = np.complex128 if y.dtype in (np.float64, np.complex128) else np.complex64
    n = rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)
    return (y.astype(dtype) + (n * scale).astype(dtype)).astype(dtype, copy=False)


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
        g = torch_generator(seed, "add_poisson_noise")
        x = x if x.is_floating_point() else x.float()
        # float64 rate: float32 counts would lose precision above 2^24 photons
        rate = (photons * x.detach()).to(device=g.device, dtype=torch.float64)
        counts = torch.poisson(rate, generator=g)
        return (counts / photons).to(device=x.device, dtype=x.dtype)
    rng = numpy_generator(seed, "add_poisson_noise")
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    return (rng.poisson(photons * x.astype(np.float64)) / photons).astype(x.dtype, copy=False)


def add_transmission_noise(p: Array, photons: float, seed: Seed = None) -> Array:
    """``p_hat = -log(k / photons)``, ``k ~ Poisson(photons exp(-p))``: a radiograph of the
    attenuation line integrals ``p >= 0`` with ``photons`` per pixel in the unattenuated beam.

    A pixel that counts no photon is given one (the log of 0 is undefined): ``p_hat`` is at
    most ``log(photons)``. Variance about ``exp(p) / photons`` (delta method).
    """
    _check(p, 0.0, "add_transmission_noise")
    if (p.min() < 0).item() if isinstance(p, torch.Tensor) else p.min() < 0:
        raise ValueError("add_transmission_noise: p is an attenuation line integral, >= 0")
    transmitted = torch.exp(-p) if isinstance(p, torch.Tensor) else np.exp(-p)
    fraction = add_poisson_noise(transmitted, photons, seed)
    floor = 1.0 / photons
    if isinstance(fraction, torch.Tensor):
        return -torch.log(fraction.clamp_min(floor))
    return -np.log(np.maximum(fraction, floor))


# --------------------------------------------------- the Anscombe transform (Poisson -> Gaussian)
def _check_photons(photons: float) -> None:
    if not (photons > 0 and math.isfinite(photons)):
        raise ValueError(f"photons must be a positive number, got {photons}")


def vst_sigma(photons: float) -> float:
    """Std of the noise after :func:`anscombe` at ``photons`` per unit signal:
    ``1 / (2 sqrt(photons))`` (times 255 for the 8-bit level)."""
    _check_photons(photons)
    return 0.5 / math.sqrt(photons)


def anscombe(y: np.ndarray, photons: float) -> np.ndarray:
    """Anscombe transform of ``y = k / photons`` (``k`` Poisson counts), scaled to [0, ~1]:

    ``z = 2 sqrt(k + 3/8) / (2 sqrt(photons)) = sqrt(y + 3 / (8 photons))``; the noise of ``z``
    is close to Gaussian with std :func:`vst_sigma` whatever the signal (for counts >~ 4).
    """
    _check_photons(photons)
    y = np.asarray(y, dtype=np.float64)
    return np.sqrt(np.maximum(y + 3.0 / (8.0 * photons), 0.0))


def anscombe_mean(x: np.ndarray, photons: float) -> np.ndarray:
    """``E[anscombe(y) | x]`` for quantum noise ``y = Poisson(photons x) / photons``, ``x >= 0``.

    What a denoiser of the Anscombe domain should output: the exact unbiased inverse
    (:func:`inverse_anscombe`) maps this expectation, not ``anscombe(x)``, back to ``x``. The
    two differ by about ``1 / (8 photons sqrt(x))`` (0.002 at 100 photons and ``x = 0.3``), a
    bias that a denoiser trained to output ``anscombe(x)`` carries into every pixel.

    Computed as ``sum_k P(k; lam) sqrt((k + 3/8) / photons)`` on a grid of ``lam = photons x``
    (once per ``photons``) and interpolated; same shape as ``x``, float64.
    """
    _check_photons(photons)
    x = np.asarray(x, dtype=np.float64)
    if x.size and (not np.isfinite(x).all() or x.min() < 0):
        raise ValueError("anscombe_mean: x must be finite and non-negative (a fraction of "
                         "photons, in [0, 1])")
    top = max(1, math.ceil(float(x.max()))) if x.size else 1
    lam, mean = _anscombe_mean_table(float(photons), top)
    return np.interp(photons * x, lam, mean)


@functools.lru_cache(maxsize=16)
def _anscombe_mean_table(photons: float, top: int) -> tuple[np.ndarray, np.ndarray]:
    """``lam`` on ``[0, photons * top]`` and ``E[sqrt((k + 3/8) / photons)]``, ``k ~ P(lam)``."""
    lam_max = photons * top
    # dense where the square root bends (low counts), then evenly in sqrt(lam)
    lam = np.unique(np.concatenate([np.linspace(0, min(lam_max, 64.0), 1025),
                                    np.linspace(0, np.sqrt(lam_max), 2049) ** 2]))
    k = np.arange(int(np.ceil(lam_max + 12 * np.sqrt(lam_max) + 30)) + 1, dtype=np.float64)
    root, log_k_factorial = np.sqrt((k + 0.375) / photons), gammaln(k + 1)
    mean = np.empty_like(lam)
    for i in range(0, lam.size, 256):  # bounded memory for large photon counts
        chunk = lam[i : i + 256, None]
        log_pmf = k * np.log(np.maximum(chunk, 1e-300)) - chunk - log_k_factorial
        mean[i : i + 256] = np.exp(log_pmf) @ root
    mean[lam == 0] = root[0]
    return lam, mean


def inverse_anscombe(z: np.ndarray, photons: float) -> np.ndarray:
    """Back from :func:`anscombe`'s domain to ``y`` with the closed-form approximation of the
    exact unbiased inverse (Mäkitalo & Foi, IEEE TIP 2011), better than the algebraic
    ``z^2 - 3 / (8 photons)`` at low counts: with ``D = 2 sqrt(photons) z``,

    ``k = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5 sqrt(3/2)/8 D^-3 - 1/8``, ``y = k / photons``.
    """
    _check_photons(photons)
    d = np.maximum(2.0 * math.sqrt(photons) * np.asarray(z, dtype=np.float64), 1e-3)
    c = math.sqrt(1.5)
    k = d**2 / 4 + c / 4 / d - 11 / 8 / d**2 + 5 * c / 8 / d**3 - 1 / 8
    return np.maximum(k, 0.0) / photons


# ------------------------------------------------------------------------ noise models
def _like(values: np.ndarray, like: Array, keep_dtype: bool = False) -> Array:
    """``values`` (float64 numpy) as a tensor of the dtype and device of ``like`` when it is
    one, else as numpy: of ``like``'s dtype with ``keep_dtype``, float64 otherwise."""
    if isinstance(like, torch.Tensor):
        return torch.from_numpy(np.asarray(values)).to(dtype=like.dtype, device=like.device)
    return np.asarray(values).astype(like.dtype, copy=False) if keep_dtype else values


def _numpy(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class GaussianNoise:
    """White Gaussian noise ``y = x + n``, ``n ~ N(0, sigma^2)`` (:func:`add_gaussian_noise`).

    ``sigma`` on the scale of ``x`` (``sigma_8bit(25)`` for images in [0, 1]), or a pair
    ``(lo, hi)``: each call draws its std uniformly in ``[lo, hi]`` first (blind training, one
    network for a range of levels), from the same generator as the noise. The denoiser sees
    ``y`` itself: ``stabilise``, ``stable_target`` and ``unstabilise`` are the identity.
    """

    def __init__(self, sigma: float | tuple[float, float]):
        lo, hi = (sigma, sigma) if np.isscalar(sigma) else (float(sigma[0]), float(sigma[1]))
        if not (0 <= lo <= hi and math.isfinite(hi)):
            raise ValueError(f"sigma must be >= 0 (or a range lo <= hi), got {sigma}")
        self.sigma_range = (float(lo), float(hi))

    @property
    def level(self) -> float:
        """The std of the noise (one level only: a blind model has none)."""
        lo, hi = self.sigma_range
        if lo != hi:
            raise ValueError(f"blind Gaussian noise (sigma in [{lo:g}, {hi:g}]) has no level")
        return lo

    def __call__(self, x: Array, seed: Seed = None) -> Array:
        return self.noisy_and_level(x, seed)[0]

    def noisy_and_level(self, x: Array, seed: Seed = None) -> tuple[Array, float]:
        """``(y, sigma)``: the noisy image and the std it was drawn with (from the range)."""
        lo, hi = self.sigma_range
        if lo == hi:
            return add_gaussian_noise(x, lo, seed=seed), lo
        if isinstance(x, torch.Tensor):
            g = torch_generator(seed, "GaussianNoise")
            sigma = lo + (hi - lo) * float(torch.rand((), generator=g))
            return add_gaussian_noise(x, sigma, g), sigma
        rng = numpy_generator(seed, "GaussianNoise")
        sigma = float(rng.uniform(lo, hi))
        return add_gaussian_noise(x, sigma, seed=rng), sigma

    def stabilise(self, y: Array) -> Array:
        return y

    def stable_target(self, x: Array) -> Array:
        return x

    def unstabilise(self, z: Array) -> Array:
        return z

    def through(self, denoise: Callable[[Array], Array]) -> Callable[[Array], Array]:
        """``denoise`` itself: it already sees this noise."""
        return denoise

    def __str__(self) -> str:
        lo, hi = self.sigma_range
        if lo == hi:
            return f"sigma = {255 * lo:g} / 255"
        return f"sigma in [{255 * lo:g}, {255 * hi:g}] / 255"


class PoissonNoise:
    """Quantum noise ``y = Poisson(photons x) / photons`` (:func:`add_poisson_noise`), denoised
    through the Anscombe transform.

    A denoiser sees ``z = anscombe(y)``, whose noise is close to Gaussian of std
    ``level = vst_sigma(photons)``, learns to output ``E[z | x] = anscombe_mean(x)``, and its
    output goes back with :func:`inverse_anscombe`. The three return the kind of their input,
    computed in float64: ``stabilise`` in the input's dtype (the network's input), the other two
    in float64 for numpy input and in the input's dtype for a tensor.
    """

    def __init__(self, photons: float):
        _check_photons(photons)
        self.photons = float(photons)
        self.level = vst_sigma(photons)

    def __call__(self, x: Array, seed: Seed = None) -> Array:
        return add_poisson_noise(x, self.photons, seed=seed)

    def noisy_and_level(self, x: Array, seed: Seed = None) -> tuple[Array, float]:
        """``(y, level)``: the noisy image and the std of its noise after ``stabilise``."""
        return self(x, seed), self.level

    def stabilise(self, y: Array) -> Array:
        return _like(anscombe(_numpy(y), self.photons), y, keep_dtype=True)

    def stable_target(self, x: Array) -> Array:
        return _like(anscombe_mean(_numpy(x), self.photons), x)

    def unstabilise(self, z: Array) -> Array:
        return _like(inverse_anscombe(_numpy(z), self.photons), z)

    def through(self, denoise: Callable[[Array], Array]) -> Callable[[Array], Array]:
        """``y -> inverse_anscombe(denoise(anscombe(y)))``: a denoiser of Gaussian noise of std
        ``level`` applied to quantum noise."""
        return lambda y: self.unstabilise(denoise(self.stabilise(y)))

    def __str__(self) -> str:
        return (f"quantum noise N0 = {self.photons:g} (Anscombe domain, sigma_z = "
                f"{255 * self.level:g} / 255)")


class TransmissionNoise:
    """X-ray quantum noise of a radiograph whose display value ``x`` in [0, 1] is taken to be
    proportional to the attenuation: ``p = attenuation * x`` (air 0, the densest tissue
    ``attenuation``; 3 means 5 % of the photons cross it). ``y = p_hat / attenuation``
    with ``p_hat`` from :func:`add_transmission_noise`, so ``y`` is on the scale of ``x``.

    The noise std of ``y`` is about ``sqrt(exp(p) / photons) / attenuation``
    (:meth:`std`): it grows with ``x``. A denoiser of Gaussian noise sees it stabilised:
    back to the transmitted fraction ``t = exp(-attenuation y) = k / photons`` and then the
    Anscombe transform, whose noise is close to Gaussian of std ``level = vst_sigma(photons)``
    whatever the signal (:class:`PoissonNoise` of ``t``).
    """

    def __init__(self, photons: float, attenuation: float = 3.0):
        _check_photons(photons)
        if not (attenuation > 0 and math.isfinite(attenuation)):
            raise ValueError(f"attenuation must be a positive number, got {attenuation}")
        self.photons, self.attenuation = float(photons), float(attenuation)
        self.counts = PoissonNoise(photons)
        self.level = self.counts.level

    def __call__(self, x: Array, seed: Seed = None) -> Array:
        return add_transmission_noise(self.attenuation * x, self.photons, seed) / self.attenuation

    def noisy_and_level(self, x: Array, seed: Seed = None) -> tuple[Array, float]:
        """``(y, level)``: the noisy image and the std of its noise after ``stabilise``."""
        return self(x, seed), self.level

    def std(self, x: Array) -> Array:
        """The std of the noise of ``y`` at the display values ``x`` (same kind as ``x``)."""
        p = self.attenuation * x
        e = torch.exp(p) if isinstance(p, torch.Tensor) else np.exp(p)
        return (e / self.photons) ** 0.5 / self.attenuation

    def _transmitted(self, y: Array) -> Array:
        """``exp(-attenuation y)``, of ``y``'s kind and float dtype."""
        if isinstance(y, torch.Tensor):
            return torch.exp(-self.attenuation * y)
        y = np.asarray(y)
        return np.exp(-self.attenuation * y).astype(np.result_type(y.dtype, np.float32))

    def stabilise(self, y: Array) -> Array:
        return self.counts.stabilise(self._transmitted(y))

    def stable_target(self, x: Array) -> Array:
        return self.counts.stable_target(self._transmitted(x))

    def unstabilise(self, z: Array) -> Array:
        t = self.counts.unstabilise(z)
        floor = 1.0 / self.photons
        if isinstance(t, torch.Tensor):
            return -torch.log(t.clamp_min(floor)) / self.attenuation
        return -np.log(np.maximum(t, floor)) / self.attenuation

    def through(self, denoise: Callable[[Array], Array]) -> Callable[[Array], Array]:
        """``y -> unstabilise(denoise(stabilise(y)))``."""
        return lambda y: self.unstabilise(denoise(self.stabilise(y)))

    def __str__(self) -> str:
        return (f"X-ray transmission noise, N0 = {self.photons:g} photons, p = "
                f"{self.attenuation:g} x (Anscombe domain, sigma_z = {255 * self.level:.3g} / 255)")


NoiseModel = GaussianNoise | PoissonNoise | TransmissionNoise
