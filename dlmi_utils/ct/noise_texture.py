"""Noise level and texture of CT images: the SD of a region and the noise power spectrum.

The noise SD of a flat region (:func:`roi_sd`, in HU) says how much noise; the noise power
spectrum (NPS) says which grain. For ``R`` noise-only square regions ``n_r`` of ``N x N``
pixels of size ``Delta`` mm (e.g. ``low - noiseless`` of :func:`dlmi_utils.ct.simulate_dose_pair`,
cut with :func:`square_roi`), each minus its mean::

    NPS(u, v) = Delta^2 / N^2  mean_r |DFT(n_r)(u, v)|^2          (HU^2 mm^2)

at the frequencies ``u, v = k / (N Delta)`` (cycles/mm). By Parseval its integral is the
variance: ``sum NPS(u, v) du dv = mean_r SD(n_r)^2`` with ``du = dv = 1 / (N Delta)``. The
radial average over rings ``|f| = k / (N Delta)`` gives the 1-D NPS. White noise has a flat
NPS; FBP noise is coloured: it rises from 0 at ``f = 0`` (the ramp filter) to a peak, and a
smoother window (``"hann"``) moves the peak to lower frequencies (a coarser grain).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def square_roi(image, center: tuple[int, int], size: int):
    """The ``size x size`` region of ``image`` ``(..., H, W)`` whose centre pixel is ``center``
    ``(row, column)`` (rows ``row - size // 2`` to ``row - size // 2 + size - 1``): a view,
    numpy or torch like ``image``."""
    if not isinstance(image, (np.ndarray, torch.Tensor)) or image.ndim < 2:
        raise ValueError("image must be a numpy array or a torch tensor (..., H, W)")
    if not (isinstance(size, (int, np.integer)) and size >= 2):
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    top, left = int(center[0]) - size // 2, int(center[1]) - size // 2
    h, w = image.shape[-2:]
    if top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"a {size} x {size} region centred on {tuple(center)} leaves the "
                         f"{h} x {w} image")
    return image[..., top : top + size, left : left + size]


def roi_sd(image, center: tuple[int, int], size: int) -> float:
    """The standard deviation (``ddof=1``) of the pixels of :func:`square_roi`, over every image
    of a batch ``(B, H, W)`` together; in the image's unit (HU)."""
    roi = square_roi(image, center, size)
    values = roi.detach().cpu().numpy() if isinstance(roi, torch.Tensor) else np.asarray(roi)
    return float(np.std(values.astype(np.float64), ddof=1))


class NoisePowerSpectrum(NamedTuple):
    """``nps_2d`` ``(N, N)`` (zero frequency at ``N // 2``, HU^2 mm^2) on the frequencies
    ``frequencies_2d`` ``(N,)`` (cycles/mm, per axis); ``radial`` ``(N // 2 + 1,)``, its average
    over the rings of ``frequencies`` ``k / (N Delta)``."""

    nps_2d: np.ndarray
    frequencies_2d: np.ndarray
    frequencies: np.ndarray
    radial: np.ndarray


def noise_power_spectrum(noise, pixel_size_mm: float) -> NoisePowerSpectrum:
    """The NPS of noise-only square regions ``(N, N)`` or ``(R, N, N)`` (see the module's doc).

    Each region loses its mean first; the NPS is averaged over the regions. float64 numpy.
    """
    values = noise.detach().cpu().numpy() if isinstance(noise, torch.Tensor) else noise
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3 or values.shape[-1] != values.shape[-2] or values.shape[-1] < 4:
        raise ValueError(f"noise must be square regions (N, N) or (R, N, N) with N >= 4, got "
                         f"shape {np.shape(noise)}")
    if not np.isfinite(values).all():
        raise ValueError("noise contains NaN or inf")
    if not (pixel_size_mm > 0 and np.isfinite(pixel_size_mm)):
        raise ValueError(f"pixel_size_mm must be positive, got {pixel_size_mm!r}")
    n = values.shape[-1]
    values = values - values.mean(axis=(-2, -1), keepdims=True)
    spectrum = np.abs(np.fft.fft2(values)) ** 2
    nps = np.fft.fftshift(spectrum.mean(axis=0)) * pixel_size_mm**2 / n**2
    f = np.fft.fftshift(np.fft.fftfreq(n, d=pixel_size_mm))
    ring = np.rint(np.hypot(*np.meshgrid(f, f, indexing="ij")) * n * pixel_size_mm).astype(int)
    n_rings = n // 2 + 1
    inside = ring < n_rings
    radial = np.bincount(ring[inside], nps[inside], n_rings) / np.bincount(ring[inside],
                                                                            minlength=n_rings)
    return NoisePowerSpectrum(nps, f, np.arange(n_rings) / (n * pixel_size_mm), radial)
