"""The empirical Wiener filter: a second denoising step guided by a first estimate (a pilot).

BM3D denoises twice (Dabov et al. 2007). Its first step gives a pilot estimate ``p`` of the
clean image; its second filters the *noisy* image ``y`` again, coefficient by coefficient, in
a transform of small windows, keeping of each coefficient the share a Wiener filter would if
the pilot were the truth:

.. math::  \\hat{x}_k = \\frac{P_k^2}{P_k^2 + \\sigma^2} \\, Y_k

where ``Y_k`` and ``P_k`` are the DCT coefficients of a window of ``y`` and of ``p``. A
coefficient the pilot says is signal (``P_k^2 >> sigma^2``) is kept, one it says is noise is
removed; the pilot decides, but the values come from ``y``, so its own errors (blur, a
network's texture) are not copied. The windows overlap (``patch`` pixels, every ``stride``);
each pixel is the weighted mean of the windows that cover it, with BM3D's weight
``1 / ||W||^2`` (a window whose filter keeps less noise counts more).

:func:`wiener_refine` is that step with any pilot, e.g. a network's output, on windows around
each pixel (BM3D also stacks similar windows from elsewhere in the image, which this does
not). ``pilot_weight`` averages the result with the pilot itself: their errors differ, so the
mean can beat both.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def dct_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``(n, n)``: row ``k`` is the ``k``-th basis vector,
    ``sqrt(c_k / n) cos(pi k (2 i + 1) / (2 n))`` with ``c_0 = 1``, ``c_k = 2`` otherwise
    (``scipy.fft.dct(np.eye(n), norm="ortho", axis=0)``)."""
    if n < 1:
        raise ValueError(f"the DCT size must be at least 1, got {n}")
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(torch.pi * k * (2 * i + 1) / (2 * n)) * (2.0 / n) ** 0.5
    d[0] /= 2**0.5
    return d.to(dtype)


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if np.iscomplexobj(x):
            raise TypeError(f"wiener_refine: {name} must be real, got {x.dtype}")
        return torch.from_numpy(np.asarray(x, dtype=np.float32))
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"wiener_refine: {name} must be real, got {x.dtype}")
        return x.detach().to("cpu", torch.float32)
    raise TypeError(f"wiener_refine: {name} must be a numpy array or a torch tensor, "
                    f"got {type(x).__name__}")


def _check(y: torch.Tensor, p: torch.Tensor, sigma: float, patch: int, stride: int,
           pilot_weight: float) -> None:
    if y.ndim != 2:
        raise ValueError(f"wiener_refine takes one image (H, W), got shape {tuple(y.shape)}; "
                         "loop over a batch")
    if p.shape != y.shape:
        raise ValueError(f"the pilot {tuple(p.shape)} and the noisy image {tuple(y.shape)} "
                         "must have the same shape")
    for name, t in (("noisy image", y), ("pilot", p)):
        if not torch.isfinite(t).all():
            raise ValueError(f"wiener_refine: the {name} has NaN or infinite values")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma, the noise std on the image's scale (e.g. 25 / 255), must be "
                         f"positive, got {sigma}")
    if patch < 2 or min(y.shape) < patch:
        raise ValueError(f"patch must be at least 2 and at most the image's smaller side "
                         f"{min(y.shape)}, got {patch}")
    if not 1 <= stride <= patch:
        raise ValueError(f"stride must be in [1, patch = {patch}], got {stride}")
    if not 0 <= pilot_weight <= 1:
        raise ValueError(f"pilot_weight must be in [0, 1], got {pilot_weight}")


def _pad(size: int, patch: int, stride: int) -> tuple[int, int]:
    """Padding before and after an axis so that every pixel is covered by the same number of
    windows (``patch / stride`` along each axis when ``stride`` divides ``patch``)."""
    before = patch - stride
    after = patch - stride
    after += (-(size + before + after - patch)) % stride  # the last window ends at the edge
    return before, after


def _overlap_add(windows: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """Windows ``(rows, cols, patch, patch)``, one every ``stride`` pixels, summed where they
    overlap into an image ``size``."""
    rows, cols, patch, _ = windows.shape
    columns = windows.permute(2, 3, 0, 1).reshape(1, patch * patch, rows * cols)
    return F.fold(columns, size, patch, stride=stride)[0, 0]


def wiener_refine(noisy: Array, pilot: Array, sigma: float, patch: int = 32, stride: int = 8,
                  pilot_weight: float = 0.0, rows_per_chunk: int = 16) -> Array:
    """Filter ``noisy`` ``(H, W)`` again, guided by ``pilot`` ``(H, W)``: the empirical Wiener
    step of BM3D in overlapping ``patch`` x ``patch`` DCT windows, one every ``stride`` pixels.

    ``sigma`` is the std of the white Gaussian noise of ``noisy``, on its scale (``15 / 255``
    for the 8-bit level 15 and images in [0, 1]). The image is reflected at its borders.
    Returns ``(1 - pilot_weight) * wiener + pilot_weight * pilot``, the type (numpy or torch,
    on the input's device) and float dtype of ``noisy``. Memory is bounded by
    ``rows_per_chunk`` rows of windows at a time, so a whole film goes through.
    """
    y, p = _as_tensor(noisy, "noisy"), _as_tensor(pilot, "pilot")
    _check(y, p, sigma, patch, stride, pilot_weight)
    h, w = y.shape
    (top, bottom), (left, right) = _pad(h, patch, stride), _pad(w, patch, stride)
    # reflection needs pads shorter than the image: patch <= min(H, W) ensures it
    yp = F.pad(y[None, None], (left, right, top, bottom), mode="reflect")[0, 0]
    pp = F.pad(p[None, None], (left, right, top, bottom), mode="reflect")[0, 0]
    d = dct_matrix(patch, torch.float32)
    num, den = torch.zeros_like(yp), torch.zeros_like(yp)
    n_rows = (yp.shape[0] - patch) // stride + 1
    for r0 in range(0, n_rows, rows_per_chunk):
        r1 = min(n_rows, r0 + rows_per_chunk)
        band = slice(r0 * stride, (r1 - 1) * stride + patch)
        # (rows, cols, patch, patch) windows, a view of the band
        yw = yp[band].unfold(0, patch, stride).unfold(1, patch, stride)
        pw = pp[band].unfold(0, patch, stride).unfold(1, patch, stride)
        y_coef, p_coef = d @ yw @ d.T, d @ pw @ d.T
        gain = p_coef**2 / (p_coef**2 + sigma**2)
        estimate = d.T @ (gain * y_coef) @ d
        # BM3D's aggregation weight; the floor keeps an all-zero pilot window finite
        weight = 1.0 / (gain.pow(2).sum((-2, -1)) + 1e-6)
        size = (band.stop - band.start, yp.shape[1])
        num[band] += _overlap_add(estimate * weight[..., None, None], size, stride)
        den[band] += _overlap_add(weight[..., None, None].expand_as(estimate), size, stride)
    out = (num / den)[top : top + h, left : left + w]
    out = (1 - pilot_weight) * out + pilot_weight * p
    if isinstance(noisy, np.ndarray):
        dtype = noisy.dtype if np.issubdtype(noisy.dtype, np.floating) else np.float32
        return out.numpy().astype(dtype)
    dtype = noisy.dtype if noisy.is_floating_point() else torch.float32
    return out.to(noisy.device, dtype)
