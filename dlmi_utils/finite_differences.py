"""The discrete gradient of total variation (TV) and its adjoint, for numpy arrays and torch
tensors alike.

For an image ``x`` of shape ``(H, W)`` (or a stack ``(..., H, W)``), ``D x`` stacks the
forward differences along the last two axes, zero at the last row and column::

    (D x)[0, i, j] = x[i + 1, j] - x[i, j]    for i < H - 1,   0 at i = H - 1   (vertical)
    (D x)[1, i, j] = x[i, j + 1] - x[i, j]    for j < W - 1,   0 at j = W - 1   (horizontal)

and ``D^T g = -div g`` is its adjoint, ``<D x, g> = <x, D^T g>`` (``tests/
test_finite_differences.py``). ``||D||^2 <= 8``, the bound that primal-dual TV solvers use
for their steps. The isotropic total variation is ``TV(x) = sum_pixels |(D x)[:, i, j]|``.

Both functions return the same kind (numpy or torch), dtype and device as their input, and
torch's autograd goes through them. :func:`dlmi_utils.mri.cs.tv_reconstruction` (complex MR
images, numpy) and :func:`dlmi_utils.ct.classical.tv_reconstruct` (CT in HU, torch) use them.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _zeros(like: Array, shape: tuple[int, ...]) -> Array:
    """Zeros of ``shape`` and of the kind, dtype (and device) of ``like``."""
    if isinstance(like, torch.Tensor):
        return like.new_zeros(shape)
    return np.zeros(shape, dtype=like.dtype)


def _check(x, name: str, min_ndim: int) -> None:
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} expects a numpy array or a torch tensor, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} expects at least {min_ndim} dimensions, got shape "
                         f"{tuple(x.shape)}")


def gradient_2d(x: Array) -> Array:
    """Forward differences ``D x`` of shape ``(2, ..., H, W)`` from ``x`` of shape ``(..., H, W)``.

    ``[0]`` vertical (``x[i + 1, j] - x[i, j]``), ``[1]`` horizontal (``x[i, j + 1] - x[i, j]``),
    zero at the last row (``[0]``) and the last column (``[1]``). Real or complex.

    >>> gradient_2d(np.array([[0.0, 1.0], [2.0, 4.0]])).tolist()
    [[[2.0, 3.0], [0.0, 0.0]], [[1.0, 0.0], [2.0, 0.0]]]
    """
    _check(x, "gradient_2d", 2)
    g = _zeros(x, (2, *x.shape))
    g[0, ..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    g[1, ..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return g


def gradient_2d_adjoint(g: Array) -> Array:
    """The adjoint ``D^T g = -div g`` of :func:`gradient_2d`: ``(2, ..., H, W) -> (..., H, W)``.

    The last row of ``g[0]`` and the last column of ``g[1]`` (zero in any ``D x``) are ignored.
    """
    _check(g, "gradient_2d_adjoint", 3)
    if g.shape[0] != 2:
        raise ValueError(f"gradient_2d_adjoint expects (2, ..., H, W) (vertical, horizontal), "
                         f"got shape {tuple(g.shape)}")
    x = _zeros(g, tuple(g.shape[1:]))
    x[..., :-1, :] -= g[0, ..., :-1, :]
    x[..., 1:, :] += g[0, ..., :-1, :]
    x[..., :, :-1] -= g[1, ..., :, :-1]
    x[..., :, 1:] += g[1, ..., :, :-1]
    return x
