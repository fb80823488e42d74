"""Low-dose CT from a full-dose slice: HU to attenuation, Beer-Lambert, photon counts, FBP.

A CT image holds the linear attenuation ``mu`` (1/mm) in Hounsfield units, relative to water::

    HU = 1000 (mu - mu_water) / mu_water          mu = mu_water (1 + HU / 1000), clipped at 0

with ``MU_WATER = 0.0193 /mm``: water at 70 keV, the effective energy of a 120 kVp beam
(mass attenuation 0.193 cm^2/g, NIST XCOM). Air (-1000 HU) has ``mu = 0``.

A scan at ``I0`` photons per ray (per detector and view), with ``Delta`` the pixel size in mm
and ``A`` the projector in pixels (:class:`dlmi_utils.ct.ParallelBeamProjector`)::

    p     = Delta A(mu)                               line integrals (Beer-Lambert exponent)
    k     ~ Poisson(I0 exp(-p)) + N(0, sigma_e^2)     detected counts: quantum + electronic noise
    y     = -log(max(k, k_min) / I0)                  the measured sinogram
    mu^   = fbp(y) / Delta                            back to HU with mu_to_hu

A count below ``k_min`` (1 photon by default; electronic noise can make ``k`` zero or negative)
is read as ``k_min``: the line integral of a photon-starved ray saturates at ``log(I0 / k_min)``.
``var(y) ~ 1 / (I0 exp(-p))``: the noise is largest along the rays that cross the most
tissue, so FBP spreads it into streaks along them, and the ramp filter colours it (its noise
power spectrum rises from 0 at zero frequency): the texture of real low-dose CT, not white
noise. A quarter of the dose doubles the noise SD. At a given ``I0`` the noise depends on the
patient and the pixel: a thick or dense section (the shoulders, a large abdomen) lets few
photons through, and since ``mu^ = fbp(y) / Delta``, the same counts on pixels half as large
(a small field of view) give twice the SD in HU.

:func:`simulate_dose_pair` gives a low-dose image, its reference and the noiseless FBP, all in
HU. The reference of a denoiser is the full-dose FBP at ``dose_factor`` times the photons (its
own, lower noise: the setting of the low-dose CT data that Yang et al., IEEE TMI 2018, train
on), not the noiseless image; ``low - noiseless`` is the noise alone, whose texture
:mod:`dlmi_utils.ct.noise_texture` measures.

Randomness follows :mod:`dlmi_utils.noise`: ``seed`` is an int, ``None`` or a generator
(``np.random.Generator`` for numpy input, ``torch.Generator`` for torch input), and the
Poisson counts are drawn by :func:`dlmi_utils.noise.add_poisson_noise`.
"""

from __future__ import annotations

import math
from typing import NamedTuple, TypeVar

import numpy as np
import torch

from dlmi_utils.ct.physics import ParallelBeamProjector
from dlmi_utils.noise import (
    Seed,
    add_gaussian_noise,
    add_poisson_noise,
    numpy_generator,
    torch_generator,
)

Array = TypeVar("Array", np.ndarray, torch.Tensor)

MU_WATER = 0.0193
"""Linear attenuation of water at 70 keV, in 1/mm."""
ELECTRONIC_SIGMA = 3.0
"""Default SD of the electronic noise, in counts: a few counts, the order of clinical
detectors; it matters on photon-starved rays only."""
_MU_MAX = 10.0  # 1/mm: denser than gold at 70 keV; larger values are HU passed as mu


def hu_to_mu(hu: Array, mu_water: float = MU_WATER) -> Array:
    """``mu = mu_water (1 + HU / 1000)`` in 1/mm, clipped at 0 (nothing attenuates less than
    vacuum); the kind and shape of ``hu`` (float)."""
    _check_mu_water(mu_water)
    if isinstance(hu, torch.Tensor):
        hu = hu if hu.is_floating_point() else hu.float()
        return torch.clamp(mu_water * (1.0 + hu / 1000.0), min=0.0)
    hu = np.asarray(hu)
    hu = hu if np.issubdtype(hu.dtype, np.floating) else hu.astype(np.float32)
    return np.maximum(mu_water * (1.0 + hu / 1000.0), 0.0).astype(hu.dtype, copy=False)


def mu_to_hu(mu: Array, mu_water: float = MU_WATER) -> Array:
    """``HU = 1000 (mu - mu_water) / mu_water``: the inverse of :func:`hu_to_mu` above air."""
    _check_mu_water(mu_water)
    return 1000.0 * (mu - mu_water) / mu_water


def line_integrals(mu: Array, projector: ParallelBeamProjector, pixel_size_mm) -> Array:
    """``p = Delta A(mu)``: the line integrals of ``mu`` (1/mm) along every ray, dimensionless.

    ``mu`` ``(H, W)`` or ``(B, H, W)``, non-negative; ``pixel_size_mm``: ``Delta``, a number or
    the DICOM's ``(row, column)`` spacing (square pixels). Returns the sinogram
    ``(B, n_angles, n_detectors)`` (or unbatched) of the kind of ``mu``.
    """
    _check_mu(mu)
    return projector.A(mu) * _pixel_size(pixel_size_mm)


def noisy_sinogram(
    p: Array,
    I0: float,
    electronic_sigma: float = ELECTRONIC_SIGMA,
    seed: Seed = None,
    min_count: float = 1.0,
) -> Array:
    """The measured sinogram ``y = -log(max(k, min_count) / I0)`` of the counts
    ``k ~ Poisson(I0 exp(-p)) + N(0, electronic_sigma^2)`` (see the module's doc).

    ``p``: noiseless line integrals (:func:`line_integrals`), any shape; ``I0`` photons per
    ray, positive. Returns the kind, shape and float dtype of ``p``; ``E[y] ~ p`` and
    ``var(y) ~ 1 / (I0 exp(-p))`` while ``I0 exp(-p)`` is large.
    """
    if not (isinstance(I0, (int, float, np.number)) and math.isfinite(I0) and I0 > 0):
        raise ValueError(f"I0 must be a positive number of photons per ray, got {I0!r} (a dose "
                         "of 0 measures nothing)")
    if not (electronic_sigma >= 0 and math.isfinite(electronic_sigma)):
        raise ValueError(f"electronic_sigma must be a non-negative number of counts, got "
                         f"{electronic_sigma!r}")
    if not (min_count > 0 and math.isfinite(min_count)):
        raise ValueError(f"min_count must be a positive number of counts, got {min_count!r}")
    if isinstance(p, torch.Tensor):
        rng = torch_generator(seed, "noisy_sinogram")
        p = p.detach() if p.is_floating_point() else p.float()
        transmitted = torch.exp(-p.double())  # float64: exp and log of long rays stay exact
        detected = add_gaussian_noise(add_poisson_noise(transmitted, float(I0), rng),
                                      electronic_sigma / I0, rng)
        return (-torch.log(torch.clamp(detected, min=min_count / I0))).to(p.dtype)
    rng = numpy_generator(seed, "noisy_sinogram")
    p = np.asarray(p)
    dtype = p.dtype if np.issubdtype(p.dtype, np.floating) else np.float32
    transmitted = np.exp(-p.astype(np.float64))
    detected = add_gaussian_noise(add_poisson_noise(transmitted, float(I0), rng),
                                  electronic_sigma / I0, rng)
    return (-np.log(np.maximum(detected, min_count / I0))).astype(dtype)


def simulate_low_dose(
    mu: Array,
    projector: ParallelBeamProjector,
    pixel_size_mm,
    I0: float,
    electronic_sigma: float = ELECTRONIC_SIGMA,
    seed: Seed = None,
    min_count: float = 1.0,
) -> Array:
    """The measured sinogram of ``mu`` (1/mm) at ``I0`` photons per ray:
    :func:`noisy_sinogram` of :func:`line_integrals`. Reconstruct it with
    :func:`reconstruct_hu`."""
    p = line_integrals(mu, projector, pixel_size_mm)
    return noisy_sinogram(p, I0, electronic_sigma, seed, min_count)


def reconstruct_hu(
    y: Array,
    projector: ParallelBeamProjector,
    pixel_size_mm,
    filter: str = "ramp",
    mu_water: float = MU_WATER,
) -> Array:
    """FBP of a measured sinogram, in HU: ``mu_to_hu(fbp(y) / Delta)``."""
    return mu_to_hu(projector.fbp(y, filter) / _pixel_size(pixel_size_mm), mu_water)


class DosePair(NamedTuple):
    """Images in HU of one slice: ``low`` at ``I0`` photons per ray, ``full`` (the reference)
    at ``dose_factor * I0``, and ``noiseless``, the FBP of the noiseless sinogram; and
    ``sinogram``, the measured low-dose sinogram behind ``low`` (what a scanner records: the
    input of an iterative reconstruction, and of :func:`dlmi_utils.ct.fbp_noise_psd`)."""

    low: np.ndarray | torch.Tensor
    full: np.ndarray | torch.Tensor
    noiseless: np.ndarray | torch.Tensor
    sinogram: np.ndarray | torch.Tensor


def simulate_dose_pair(
    hu: Array,
    pixel_size_mm,
    I0: float,
    dose_factor: float = 4.0,
    projector: ParallelBeamProjector | None = None,
    filter: str = "ramp",
    electronic_sigma: float = ELECTRONIC_SIGMA,
    seed: Seed = None,
) -> DosePair:
    """A low-dose image and its full-dose reference from a slice ``hu`` ``(H, W)`` / ``(B, H, W)``.

    ``hu`` -> ``mu`` (:func:`hu_to_mu`) -> line integrals -> counts at ``I0`` and at
    ``dose_factor * I0`` (drawn in that order from ``seed``) -> FBP with ``filter``, in HU.
    ``projector``: default ``ParallelBeamProjector(hu.shape[-2:], 720)`` (the whole image seen,
    720 views over 180 degrees). Returns a :class:`DosePair` of the kind of ``hu``.
    """
    if not (dose_factor >= 1 and math.isfinite(dose_factor)):
        raise ValueError(f"dose_factor must be >= 1 (the reference has the higher dose), got "
                         f"{dose_factor!r}")
    if projector is None:
        projector = ParallelBeamProjector(tuple(hu.shape[-2:]), 720)
    p = line_integrals(hu_to_mu(hu), projector, pixel_size_mm)
    rng = torch_generator(seed, "simulate_dose_pair") if isinstance(hu, torch.Tensor) else (
        numpy_generator(seed, "simulate_dose_pair"))
    low = noisy_sinogram(p, I0, electronic_sigma, rng)
    full = noisy_sinogram(p, dose_factor * I0, electronic_sigma, rng)
    images = (reconstruct_hu(y, projector, pixel_size_mm, filter) for y in (low, full, p))
    return DosePair(*images, sinogram=low)


def _pixel_size(pixel_size_mm) -> float:
    """The pixel size in mm from a number or a ``(row, column)`` spacing of square pixels."""
    sizes = np.atleast_1d(np.asarray(pixel_size_mm, dtype=np.float64))
    if sizes.ndim != 1 or sizes.size not in (1, 2) or not (np.isfinite(sizes).all()
                                                          and (sizes > 0).all()):
        raise ValueError(f"pixel_size_mm must be a positive size in mm or a (row, column) "
                         f"spacing, got {pixel_size_mm!r}")
    if not math.isclose(sizes[0], sizes[-1], rel_tol=1e-3):
        raise ValueError(f"the projector needs square pixels, got a spacing of "
                         f"{tuple(sizes)} mm: resample the image first")
    return float(sizes[0])


def _check_mu(mu) -> None:
    if not isinstance(mu, (np.ndarray, torch.Tensor)):
        raise TypeError(f"mu must be a numpy array or a torch tensor, got {type(mu).__name__}")
    if (mu.numel() if isinstance(mu, torch.Tensor) else mu.size) == 0:
        return
    low, high = float(mu.min()), float(mu.max())
    if low < 0:
        raise ValueError("mu must be non-negative (an attenuation in 1/mm); from HU use hu_to_mu")
    if high > _MU_MAX:
        raise ValueError(f"mu reaches {high:g} per mm, denser than gold: is it in HU? "
                         "Convert with hu_to_mu")


def _check_mu_water(mu_water: float) -> None:
    if not (mu_water > 0 and math.isfinite(mu_water)):
        raise ValueError(f"mu_water must be a positive attenuation in 1/mm, got {mu_water!r}")
