"""The filters of filtered back-projection: the ramp ``|f|`` and its apodisation windows.

Each projection (a row of the sinogram, detectors of unit spacing) is zero-padded to
``P = max(64, 2^ceil(log2(2 n)))`` samples, so that the circular convolution of the FFT is a
linear one, and multiplied in the frequency domain by

    H(f) = R(f) W(f),      f in [0, 1/2] cycles per detector,

where ``R`` is the ramp, computed as the DFT of its band-limited kernel sampled on the
detectors (Kak & Slaney, *Principles of Computerized Tomographic Imaging*, ch. 3 eq. 61)::

    h[0] = 1/4,   h[n] = -1 / (pi n)^2 for odd n,   h[n] = 0 for even n != 0
    R = 2 DFT(h)        (close to 2 |f|; sampling the kernel, not |f|, avoids a DC shift)

and ``W`` the window, which trades resolution for noise:

    ====================  ==========================
    ``"ramp"``            ``1``
    ``"shepp-logan"``     ``sinc(f) = sin(pi f) / (pi f)``
    ``"cosine"``          ``cos(pi f)``
    ``"hamming"``         ``0.54 + 0.46 cos(2 pi f)``
    ``"hann"``            ``0.5 + 0.5 cos(2 pi f)``
    ====================  ==========================

These are scikit-image's ``iradon`` filters (whose Hamming and Hann windows are sampled on
``P - 1`` instead of ``P`` intervals, a difference of order ``1 / P``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def padded_length(n_detectors: int) -> int:
    """``P = max(64, 2^ceil(log2(2 n)))``: the zero-padded length of a projection."""
    return max(64, 2 ** math.ceil(math.log2(2 * n_detectors)))


def check_filter(name: str) -> str:
    """``name`` if it is one of :data:`FILTERS`, else a ``ValueError`` listing them."""
    if name not in FILTERS:
        raise ValueError(f"unknown FBP filter {name!r}; choose one of {FILTERS}")
    return name


@functools.lru_cache(maxsize=16)
def fbp_filter(size: int, name: str = "ramp") -> np.ndarray:
    """``H`` at the ``size // 2 + 1`` frequencies of ``rfft`` of length ``size`` (even):
    ``(size // 2 + 1,)`` float64, real (every filter is even in ``f``)."""
    check_filter(name)
    if size % 2 or size < 2:
        raise ValueError(f"size must be even and positive, got {size}")
    n = np.arange(size)
    distance = np.minimum(n, size - n)  # the kernel is periodic and even
    h = np.where(distance % 2 == 1, -1.0 / (np.pi * np.maximum(distance, 1)) ** 2, 0.0)
    h[0] = 0.25
    ramp = 2.0 * np.fft.rfft(h).real
    f = np.fft.rfftfreq(size)
    window = {
        "ramp": np.ones_like(f),
        "shepp-logan": np.sinc(f),
        "cosine": np.cos(np.pi * f),
        "hamming": 0.54 + 0.46 * np.cos(2 * np.pi * f),
        "hann": 0.5 + 0.5 * np.cos(2 * np.pi * f),
    }[name]
    out = ramp * window
    out.setflags(write=False)  # cached: shared by every caller
    return out


def filter_sinogram(
    y: torch.Tensor, name: str = "ramp", first: int = 0, n_out: int | None = None
) -> torch.Tensor:
    """Each projection of ``y`` ``(..., n)`` filtered by ``H`` (zero-padded FFT, see above).

    Returns ``(..., n_out)`` (default ``n``): the filtered projection on detectors ``first``
    to ``first + n_out - 1``, which may reach past the measured ones on either side (the filter
    spreads the data). The padded length is :func:`padded_length` of that whole span, so the
    circular convolution of the FFT equals the linear one there. Differentiable; the dtype and
    device of ``y``.
    """
    n = y.shape[-1]
    n_out = n if n_out is None else n_out
    size = padded_length(max(n, first + n_out) - min(0, first))
    h = torch.tensor(fbp_filter(size, name), dtype=y.dtype, device=y.device)
    filtered = torch.fft.irfft(torch.fft.rfft(y, n=size, dim=-1) * h, n=size, dim=-1)
    if first == 0:
        return filtered[..., :n_out]
    return filtered[..., (torch.arange(n_out, device=y.device) + first) % size]
