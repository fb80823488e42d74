"""Noise level and texture of CT images: where to measure, the SD of a region and the noise
power spectrum.

Where: the body (:func:`body_mask`, the patient without the table or the air around) and, in
it, the flattest squares of soft tissue (:func:`flat_rois`, found on a noiseless image), so
that an SD measured there is noise, not anatomy.

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
:func:`mean_frequency` sums the grain up in one number, the NPS-weighted mean frequency
``f_av`` (as in AAPM TG-233).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

BODY_THRESHOLD_HU = -500.0  # above: the patient (and the table), below: air


def body_mask(image_hu: np.ndarray, threshold_hu: float = BODY_THRESHOLD_HU) -> np.ndarray:
    """The body in a slice ``(H, W)`` in HU: ``(H, W)`` bool.

    Pixels above ``threshold_hu``, opened by 2 pixels (which cuts the thin supports between
    the patient and the table, and the noise outside), the largest connected part, its holes
    (gas, lungs) filled.
    """
    image = np.asarray(image_hu)
    if image.ndim != 2:
        raise ValueError(f"body_mask expects one slice (H, W) in HU, got shape {image.shape}")
    inside = ndimage.binary_opening(image > threshold_hu, iterations=2)
    labels, n = ndimage.label(inside)
    if n == 0:
        raise ValueError(f"no body in the image: nothing above {threshold_hu:g} HU is thicker "
                         "than an opening by 2 pixels")
    largest = 1 + int(np.argmax(ndimage.sum_labels(inside, labels, range(1, n + 1))))
    return ndimage.binary_fill_holes(labels == largest)


def flat_rois(
    noiseless_hu: np.ndarray,
    body: np.ndarray,
    pixel_size_mm: float,
    size_mm: float = 20.0,
    mean_hu: tuple[float, float] = (0.0, 150.0),
    count: int = 1,
) -> list[tuple[tuple[int, int], int]]:
    """The ``count`` flattest squares of soft tissue in the body, ``[(centre, side), ...]``.

    ``side`` is ``round(size_mm / pixel_size_mm)`` pixels (8 at least), made odd so that the
    square has a centre pixel (:func:`square_roi`). A square qualifies when it lies inside
    ``body`` ``(H, W)`` bool and its mean in ``noiseless_hu`` ``(H, W)`` is within the open
    interval ``mean_hu`` (the default: organs and muscle, not fat, gas or bone); the squares
    come by increasing variance in ``noiseless_hu``, each one not overlapping those before
    (centres at least ``side`` apart along a row or a column). ``centre`` is ``(row, column)``.
    """
    image = np.asarray(noiseless_hu, dtype=np.float64)
    body = np.asarray(body)
    if image.ndim != 2:
        raise ValueError(f"flat_rois expects one noiseless slice (H, W) in HU, got shape "
                         f"{image.shape}")
    if body.shape != image.shape:
        raise ValueError(f"body {body.shape} and noiseless_hu {image.shape} differ in shape")
    if not np.isfinite(image).all():
        raise ValueError("noiseless_hu contains NaN or inf")
    if not body.any():
        raise ValueError("the body mask is empty")
    if not all(np.isfinite(v) and v > 0 for v in (pixel_size_mm, size_mm)):
        raise ValueError(f"pixel_size_mm and size_mm must be positive, got {pixel_size_mm!r} "
                         f"and {size_mm!r}")
    if not (mean_hu[0] < mean_hu[1]):
        raise ValueError(f"mean_hu must be (low, high) with low < high, got {tuple(mean_hu)}")
    if not (isinstance(count, (int, np.integer)) and count >= 1):
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    side = max(8, round(size_mm / pixel_size_mm))
    side += 1 - side % 2  # odd: the filters below are centred on the square's centre pixel
    mean = ndimage.uniform_filter(image, side, mode="constant")
    var = ndimage.uniform_filter(image**2, side, mode="constant") - mean**2
    inside = ndimage.uniform_filter(body.astype(np.float64), side, mode="constant") > 1 - 1e-9
    free = inside & (mean > mean_hu[0]) & (mean < mean_hu[1])
    half = side // 2
    free[:half], free[-half:], free[:, :half], free[:, -half:] = False, False, False, False
    rois = []
    while len(rois) < count:
        if not free.any():
            what = (f"square of {side} pixels of soft tissue (mean in {tuple(mean_hu)} HU) "
                    "inside the body")
            if not rois:
                raise ValueError(f"no {what}")
            raise ValueError(f"{count} non-overlapping squares asked, only {len(rois)} found: "
                             f"no other {what}")
        row, col = np.unravel_index(np.argmin(np.where(free, var, np.inf)), var.shape)
        rois.append(((int(row), int(col)), side))
        free[max(row - side + 1, 0) : row + side, max(col - side + 1, 0) : col + side] = False
    return rois


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


def mean_frequency(nps: NoisePowerSpectrum) -> float:
    """The NPS-weighted mean spatial frequency ``f_av = sum f NPS(f) / sum NPS(f)`` of the
    radial NPS (cycles/mm): one number for the grain of a noise texture. A denoiser that leaves
    blotches (low frequencies) lowers it; FBP's ramp-coloured noise has it high."""
    if not isinstance(nps, NoisePowerSpectrum):
        raise TypeError(f"mean_frequency takes a NoisePowerSpectrum (noise_power_spectrum), got "
                        f"{type(nps).__name__}")
    total = float(nps.radial.sum())
    if not total > 0:
        raise ValueError("the NPS is zero: there is no noise to describe")
    return float((nps.frequencies * nps.radial).sum() / total)
