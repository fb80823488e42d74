"""The thick-slice acquisition ``y = A x`` as an object, with its adjoint and the DC projection.

A 2D multi-slice sequence excites one slab of tissue at a time: the RF pulse and the slice-
select gradient decide its thickness and its profile ``w`` along ``z``. In-plane, the
resolution is set by the extent of k-space that is read (``1 / (N dk)``); through the plane
it is set by the slab, and each thick slice is the thin-slice volume ``x`` integrated over it.
With ``F`` thin (1 mm) slices per thick slice (the ``factor``)::

    y[k]           = sum_{j=0..F-1} w_j x[F k + j]           (thick slice k, centre F k + (F-1)/2)
    A_adjoint(y)   : x[F k + j] = w_j y[k]                    (each thick slice spread back)
    A A_adjoint    = ||w||^2 I                                (the slabs are disjoint)
    project(x, y)  = x + A_adjoint(y - A x) / ||w||^2         (the nearest x' with A x' = y)

``w`` is the slice profile (:func:`slice_profile`), normalised to sum to 1 so that a thick
slice of a uniform tissue has the tissue's value: a boxcar (``w_j = 1 / F``: an ideal slab)
or a Gaussian whose full width at half maximum is the slice thickness, truncated to it (a
smoother RF pulse; the cross-talk between neighbouring slabs is not modelled). ``K = N // F``
thick slices cover the first ``K F`` of ``N`` thin slices; the last ``N mod F`` are not
measured (``A_adjoint`` gives them 0).

:class:`ThickSliceForward` acts along one axis (``axis=-3``: the ``Z`` of ``(..., Z, Y, X)``,
e.g. a torch batch ``(B, 1, Z, Y, X)``) of numpy arrays and torch tensors alike, batched or
not, and is differentiable in torch. ``tests/test_superres_physics.py`` checks the adjoint by
the dot test ``<A x, y> = <x, A_adjoint y>`` and the projection's exactness and idempotence.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
PROFILES = ("boxcar", "gaussian")
FACTORS = range(2, 7)  # 2 to 6 thin slices per thick slice, as in DeepResolve


def check_factor(factor) -> int:
    """``factor`` as an int, or a ``ValueError`` saying why not (an integer of at least 2)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)):
        if isinstance(factor, float) and factor.is_integer():
            factor = int(factor)
        else:
            raise ValueError(f"factor must be an integer number of thin slices per thick slice "
                             f"(2 to 6), got {factor!r}")
    if factor < 2:
        raise ValueError(f"factor must be at least 2 (a thick slice holds 2 or more thin "
                         f"slices), got {factor}")
    return int(factor)


def slice_profile(factor: int, profile: str = "boxcar") -> np.ndarray:
    """The weights ``w`` ``(F,)`` float64 of the ``F`` thin slices in one thick slice; sum 1.

    ``"boxcar"``: ``w_j = 1 / F``. ``"gaussian"``: ``w_j ~ exp(-4 ln 2 (j - (F-1)/2)^2 / F^2)``,
    a Gaussian of full width at half maximum ``F`` (the thickness) centred on the slab.

    >>> slice_profile(4)
    array([0.25, 0.25, 0.25, 0.25])
    """
    factor = check_factor(factor)
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if profile == "boxcar":
        return np.full(factor, 1.0 / factor)
    offset = np.arange(factor) - (factor - 1) / 2
    w = np.exp(-4 * math.log(2) * offset**2 / factor**2)
    return w / w.sum()


def slice_centres(n_thick: int, factor: int) -> np.ndarray:
    """The position of each thick slice's centre on the thin grid: ``F k + (F - 1) / 2``."""
    factor = check_factor(factor)
    return factor * np.arange(n_thick) + (factor - 1) / 2


def _check_array(x, name: str) -> None:
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if (isinstance(x, torch.Tensor) and x.is_complex()) or (
        isinstance(x, np.ndarray) and np.iscomplexobj(x)
    ):
        raise TypeError(f"{name} must be real (a magnitude volume), got a complex array")


class ThickSliceForward:
    """Thick slices from thin ones, ``A``, along ``axis``: see the module doc for the rule.

    Args:
        factor: ``F``, thin slices per thick slice (an integer, 2 to 6 in the labs).
        profile: ``"boxcar"`` or ``"gaussian"`` (:func:`slice_profile`).
        axis: the slice-select axis; ``-3`` is ``Z`` in ``(..., Z, Y, X)``.

    Shapes: a volume ``x`` has at least 3 dimensions (a 2D image has no through-plane axis)
    and ``N >= F`` thin slices along ``axis``; ``A(x)`` has ``N // F`` there, the rest
    unchanged. ``A_adjoint(y, n_slices)`` goes back to ``n_slices`` (default ``K F``). The
    output has the kind (numpy / torch, device) and floating dtype of the input.
    """

    def __init__(self, factor: int, profile: str = "boxcar", axis: int = -3):
        self.factor = check_factor(factor)
        self.profile = profile
        self.weights = slice_profile(self.factor, profile)
        self.axis = int(axis)
        self._torch_weights: dict[tuple, torch.Tensor] = {}

    def __repr__(self) -> str:
        return (f"ThickSliceForward(factor={self.factor}, profile={self.profile!r}, "
                f"axis={self.axis})")

    @property
    def norm2(self) -> float:
        """``||w||^2``: ``A A_adjoint = ||w||^2 I`` (``1 / F`` for the boxcar)."""
        return float(np.sum(self.weights**2))

    def _axis(self, x, fname: str, what: str) -> int:
        _check_array(x, f"{fname}: {what}")
        if x.ndim < 3:
            raise ValueError(
                f"{fname}: expected a volume with at least 3 dimensions ((Z, Y, X) or a batch "
                f"(B, 1, Z, Y, X)), got shape {tuple(x.shape)}: a 2D image has no slices to "
                "thicken"
            )
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{fname}: axis {self.axis} does not exist in shape {tuple(x.shape)}")
        return self.axis % x.ndim

    def _w(self, x) -> np.ndarray | torch.Tensor:
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            key = (x.device, dtype)
            if key not in self._torch_weights:
                self._torch_weights[key] = torch.as_tensor(self.weights, dtype=dtype,
                                                           device=x.device)
            return self._torch_weights[key]
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return self.weights.astype(dtype)

    def n_thick(self, n_slices: int) -> int:
        """``K = n_slices // F``, the thick slices that ``n_slices`` thin ones give."""
        return int(n_slices) // self.factor

    def A(self, x: Array) -> Array:
        """Forward: thin volume (``N`` slices along ``axis``) -> ``N // F`` thick slices."""
        axis = self._axis(x, "A", "x")
        n = x.shape[axis]
        if n < self.factor:
            raise ValueError(f"A: {n} slice(s) along axis {self.axis}, fewer than the factor "
                             f"{self.factor}: no thick slice to form")
        k, f = n // self.factor, self.factor
        w = self._w(x)
        if isinstance(x, torch.Tensor):
            x = x if x.is_floating_point() else x.float()
            x = torch.movedim(x, axis, -1)[..., : k * f]
            y = (x.reshape(*x.shape[:-1], k, f) * w).sum(-1)
            return torch.movedim(y, -1, axis)
        x = np.moveaxis(np.asarray(x, dtype=w.dtype), axis, -1)[..., : k * f]
        y = (x.reshape(*x.shape[:-1], k, f) * w).sum(-1)
        return np.ascontiguousarray(np.moveaxis(y, -1, axis))

    def A_adjoint(self, y: Array, n_slices: int | None = None) -> Array:
        """Adjoint: ``K`` thick slices -> ``n_slices`` thin ones (default ``K F``; zeros after)."""
        axis = self._axis(y, "A_adjoint", "y")
        k, f = y.shape[axis], self.factor
        n = k * f if n_slices is None else int(n_slices)
        if n // f != k:
            raise ValueError(f"A_adjoint: {k} thick slices come from {k * f} to {k * f + f - 1} "
                             f"thin ones at factor {f}, not n_slices={n}")
        w = self._w(y)
        if isinstance(y, torch.Tensor):
            y = y if y.is_floating_point() else y.float()
            y = torch.movedim(y, axis, -1)
            x = (y[..., None] * w).reshape(*y.shape[:-1], k * f)
            x = torch.nn.functional.pad(x, (0, n - k * f))
            return torch.movedim(x, -1, axis)
        y = np.moveaxis(np.asarray(y, dtype=w.dtype), axis, -1)
        x = (y[..., None] * w).reshape(*y.shape[:-1], k * f)
        x = np.concatenate([x, np.zeros((*x.shape[:-1], n - k * f), x.dtype)], axis=-1)
        return np.ascontiguousarray(np.moveaxis(x, -1, axis))

    def project(self, x: Array, y: Array) -> Array:
        """The consistency projection: the volume nearest ``x`` with ``A(x') = y`` exactly.

        ``x' = x + A_adjoint(y - A x) / ||w||^2`` (see the module doc): for the boxcar, each
        thin slice of slab ``k`` is shifted by ``y[k]`` minus the slab's mean. Slices past
        ``K F`` are left as they are. Linear in ``x``, so autograd differentiates it.
        """
        axis = self._axis(x, "project", "x")
        ax = self.A(x)
        _check_array(y, "project: y")
        if tuple(ax.shape) != tuple(y.shape):
            raise ValueError(f"project: x of shape {tuple(x.shape)} gives thick slices of shape "
                             f"{tuple(ax.shape)}, but y has shape {tuple(y.shape)}")
        return x + self.A_adjoint(y - ax, x.shape[axis]) / self.norm2
