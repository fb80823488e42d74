"""Centered, orthonormal 2D Fourier transforms over the last two axes.

The fastMRI convention::

    fft2c(x)  = fftshift(fft2(ifftshift(x), norm="ortho"))
    ifft2c(k) = fftshift(ifft2(ifftshift(k), norm="ortho"))

so that the DC term of k-space sits at index ``(H // 2, W // 2)`` and Parseval holds,
``||fft2c(x)||_2 = ||x||_2``. Every function accepts a numpy array or a torch tensor of
shape ``(..., H, W)`` and returns the same kind, complex (``complex64`` for
float32/complex64 input, ``complex128`` for double precision).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_AXES = (-2, -1)


def _check_2d(x: np.ndarray | torch.Tensor, name: str) -> None:
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} expects a numpy array or a torch tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(
            f"{name} expects an array of shape (..., H, W), got shape {tuple(x.shape)}"
        )


def _as_complex_numpy(x: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(x):
        return x
    return x.astype(np.complex128 if x.dtype == np.float64 else np.complex64)


def _as_complex_torch(x: torch.Tensor) -> torch.Tensor:
    if x.is_complex():
        return x
    return x.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)


def fft2c(x: Array) -> Array:
    """Centered orthonormal 2D FFT: image ``(..., H, W)`` -> k-space ``(..., H, W)`` complex."""
    _check_2d(x, "fft2c")
    if isinstance(x, torch.Tensor):
        x = _as_complex_torch(x)
        k = torch.fft.fft2(torch.fft.ifftshift(x, dim=_AXES), dim=_AXES, norm="ortho")
        return torch.fft.fftshift(k, dim=_AXES)
    x = _as_complex_numpy(x)
    k = np.fft.fft2(np.fft.ifftshift(x, axes=_AXES), axes=_AXES, norm="ortho")
    return np.fft.fftshift(k, axes=_AXES).astype(x.dtype, copy=False)


def ifft2c(k: Array) -> Array:
    """Centered orthonormal 2D inverse FFT: k-space ``(..., H, W)`` -> image ``(..., H, W)``."""
    _check_2d(k, "ifft2c")
    if isinstance(k, torch.Tensor):
        k = _as_complex_torch(k)
        x = torch.fft.ifft2(torch.fft.ifftshift(k, dim=_AXES), dim=_AXES, norm="ortho")
        return torch.fft.fftshift(x, dim=_AXES)
    k = _as_complex_numpy(k)
    x = np.fft.ifft2(np.fft.ifftshift(k, axes=_AXES), axes=_AXES, norm="ortho")
    return np.fft.fftshift(x, axes=_AXES).astype(k.dtype, copy=False)


def _checkerboard(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``(-1)^(u + v)`` on an ``(h, w)`` grid, real, on the device of ``like``."""
    rows = 1 - 2 * (torch.arange(h, device=like.device) % 2)
    cols = 1 - 2 * (torch.arange(w, device=like.device) % 2)
    return (rows[:, None] * cols[None, :]).to(like.real.dtype if like.is_complex() else like.dtype)


def to_fft_layout(k: torch.Tensor) -> torch.Tensor:
    """Centred k-space ``(..., H, W)`` -> the same samples in the order of plain ``fft2``.

    For even ``H`` and ``W``, ``torch.fft.fft2(x, norm="ortho") == to_fft_layout(fft2c(x))``:
    the shift by ``(H / 2, W / 2)`` in k-space, and a sign ``(-1)^(u + v)`` that is the shift
    of the image (``fft2(roll(x, N / 2))(u) = (-1)^u fft2(x)(u)``). A layer that goes to k-space
    and back, such as data consistency, can then use the plain FFTs with ``to_fft_layout(y)``
    and ``ifftshift(mask)``: the four shifts of ``fft2c`` and ``ifft2c`` cancel (the MR operator
    does so inside, :class:`dlmi_utils.mri.MRIForward`). A real mask needs only the shift:
    ``torch.fft.ifftshift(mask, dim=(-2, -1))``.
    """
    if not isinstance(k, torch.Tensor) or k.ndim < 2:
        raise TypeError("to_fft_layout expects a torch tensor of shape (..., H, W)")
    h, w = k.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"to_fft_layout needs an even height and width, got {h} x {w}")
    sign = _checkerboard(h, w, k)
    return sign * torch.fft.ifftshift(k, dim=_AXES)


def from_fft_layout(k: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_fft_layout`, and its adjoint (a permutation with signs):
    k-space in the order of plain ``fft2`` -> centred, ``(..., H, W)`` with even ``H``, ``W``."""
    if not isinstance(k, torch.Tensor) or k.ndim < 2:
        raise TypeError("from_fft_layout expects a torch tensor of shape (..., H, W)")
    h, w = k.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"from_fft_layout needs an even height and width, got {h} x {w}")
    return torch.fft.fftshift(_checkerboard(h, w, k) * k, dim=_AXES)


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` complex -> ``(B, 2, H, W)`` real (real and imaginary channels)."""
    if not x.is_complex():
        raise TypeError(f"complex_to_channels expects a complex tensor, got {x.dtype}")
    return torch.stack((x.real, x.imag), dim=-3)


def complex_to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` complex -> ``(B, 2, H, W)`` real in the channels-last layout, no copy.

    Channels-last memory is ``(B, H, W, 2)``: interleaved real and imaginary parts, exactly how
    a complex tensor is stored, so the result is a view of ``x`` (of a contiguous copy if
    ``x`` is not contiguous). The layout CPU convolutions on two channels are fastest in.
    """
    if not x.is_complex() or x.ndim != 3:
        raise TypeError(
            f"complex_to_channels_last expects a complex (B, H, W) tensor, got "
            f"{tuple(x.shape)} {x.dtype}"
        )
    return torch.view_as_real(x.contiguous()).permute(0, 3, 1, 2)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` real -> ``(B, H, W)`` complex; the inverse of ``complex_to_channels``."""
    if x.is_complex() or x.ndim < 3 or x.shape[-3] != 2:
        raise ValueError(
            f"channels_to_complex expects a real tensor of shape (..., 2, H, W), "
            f"got {tuple(x.shape)} {x.dtype}"
        )
    return torch.complex(x[..., 0, :, :].contiguous(), x[..., 1, :, :].contiguous())
