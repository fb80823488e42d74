"""Classical super-resolution along ``z``: interpolation at the slice centres, and TV.

**Where the thick slices sit.** Thick slice ``k`` averages thin slices ``F k ... F k + F - 1``
(:class:`~dlmi_utils.superres.physics.ThickSliceForward`), so its value belongs at the centre
``c_k = F k + (F - 1) / 2`` of the thin grid. Thin slice ``z`` therefore reads the thick
stack at the fractional index::

    t(z) = (z - (F - 1) / 2) / F

and :func:`interpolate_z` samples there with ``scipy.ndimage.map_coordinates`` (order 0:
nearest, 1: linear, 3: cubic B-spline; ``mode="nearest"``: constant beyond the first and last
centres). ``scipy.ndimage.zoom`` puts ``y[0]`` at ``z = 0`` and ``y[K-1]`` at ``z = N - 1``
instead: a shift of up to ``(F - 1) / 2`` slices that is invisible in one view and costs more
than the choice of interpolator. The interpolation is linear in ``y``: it is one ``(N, K)``
matrix along ``z`` (:func:`interpolation_matrix`), applied to every column of the volume.

**A regularised inverse.** :func:`tv_z` solves
``min_x 1/2 ||A x - y||^2 + lambda sum |x[z+1] - x[z]|`` (total variation along ``z``) by the
primal-dual algorithm of Chambolle and Pock, from the cubic interpolation. The slabs are
disjoint, so the proximal step of the data term has a closed form:
``(I + tau A^T A)^{-1} u = u - tau A^T A u / (1 + tau ||w||^2)``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from dlmi_utils.superres.physics import Array, ThickSliceForward, check_factor

ORDERS = {"nearest": 0, "linear": 1, "cubic": 3}
METHODS = tuple(ORDERS)
TV_LAMBDA = 3e-4  # chosen on the training region at factor 4 (boxcar); intensities in [0, 1]
TV_ITERATIONS = 100


def thin_coordinates(n_slices: int, factor: int) -> np.ndarray:
    """``t(z) = (z - (F - 1) / 2) / F`` for ``z = 0 .. n_slices - 1``: where each thin slice
    falls on the thick stack's index (0 at the first thick slice's centre)."""
    factor = check_factor(factor)
    return (np.arange(n_slices) - (factor - 1) / 2) / factor


def interpolation_matrix(n_thick: int, factor: int, method: str = "cubic",
                         n_slices: int | None = None) -> np.ndarray:
    """The ``(n_slices, n_thick)`` float64 matrix of :func:`interpolate_z` (default ``n_slices
    = n_thick F``): column ``k`` is the interpolation of the ``k``-th unit thick stack."""
    if method not in ORDERS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    factor = check_factor(factor)
    n_slices = n_thick * factor if n_slices is None else int(n_slices)
    if n_thick < 1 or n_slices < 1:
        raise ValueError(f"need at least one thick and one thin slice, got {n_thick} and "
                         f"{n_slices}")
    coords = thin_coordinates(n_slices, factor)[None]
    eye = np.eye(n_thick)
    columns = [ndimage.map_coordinates(eye[:, k], coords, order=ORDERS[method], mode="nearest")
               for k in range(n_thick)]
    return np.stack(columns, axis=1)


def apply_along(matrix: np.ndarray, x: Array, axis: int) -> Array:
    """``matrix @ x`` along ``axis`` of ``x`` (numpy or torch, in ``x``'s float dtype)."""
    if isinstance(x, torch.Tensor):
        x = x if x.is_floating_point() else x.float()
        m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
        return torch.movedim(torch.tensordot(m, x, dims=([1], [axis])), 0, axis)
    x = np.asarray(x)
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    out = np.tensordot(matrix.astype(x.dtype), x, axes=([1], [axis]))
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


def interpolate_z(y: Array, factor: int, method: str = "cubic", n_slices: int | None = None,
                  axis: int = -3) -> Array:
    """Thin slices from thick ones, each thick slice placed at its centre (see module doc).

    ``y``: ``K`` thick slices along ``axis`` (a volume ``(K, Y, X)`` or a batch
    ``(B, 1, K, Y, X)``), numpy or torch; returns ``n_slices`` (default ``K F``) thin slices
    there, same kind and float dtype. ``method``: ``"nearest"``, ``"linear"`` or ``"cubic"``.
    """
    if not isinstance(y, (np.ndarray, torch.Tensor)):
        raise TypeError(f"y must be a numpy array or a torch tensor, got {type(y).__name__}")
    if y.ndim < 3:
        raise ValueError(f"interpolate_z: expected thick slices of a volume, at least 3 "
                         f"dimensions, got shape {tuple(y.shape)}")
    matrix = interpolation_matrix(y.shape[axis], factor, method, n_slices)
    return apply_along(matrix, y, axis)


def _dz(x: torch.Tensor) -> torch.Tensor:
    return x[1:] - x[:-1]


def _dz_adjoint(p: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(p[:1])
    return torch.cat([zero, p]) - torch.cat([p, zero])


def tv_z(y: np.ndarray, factor: int, lam: float = TV_LAMBDA, n_iter: int = TV_ITERATIONS,
         profile: str = "boxcar") -> np.ndarray:
    """TV along ``z``: ``argmin_x 1/2 ||A x - y||^2 + lam ||D_z x||_1`` (see the module doc).

    ``y``: thick slices ``(K, Y, X)`` (axis 0 is ``z``); returns ``(K F, Y, X)`` float32 after
    ``n_iter`` Chambolle-Pock iterations (steps ``sigma = tau = 1/2``, ``||D_z||^2 < 4``),
    started from :func:`interpolate_z` (cubic).
    """
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    physics = ThickSliceForward(factor, profile, axis=0)
    y_t = torch.as_tensor(np.asarray(y, dtype=np.float32))
    if y_t.ndim != 3:
        raise ValueError(f"tv_z: expected thick slices (K, Y, X), got shape {tuple(y_t.shape)}")
    tau = sigma = 0.5
    x = interpolate_z(y_t, factor, "cubic", axis=0)
    x_bar, p = x.clone(), torch.zeros_like(x[1:])
    aty = tau * physics.A_adjoint(y_t)
    shrink = tau / (1 + tau * physics.norm2)
    for _ in range(n_iter):
        p = torch.clamp(p + sigma * _dz(x_bar), -lam, lam)
        u = x - tau * _dz_adjoint(p) + aty
        x_new = u - shrink * physics.A_adjoint(physics.A(u))
        x_bar = 2 * x_new - x
        x = x_new
    return x.numpy()
