"""Parallel-beam CT as an object: the projector ``A`` (Radon transform), its adjoint and FBP.

Notation of the course: ``x`` the image (the attenuation ``mu`` per pixel), ``theta`` the
projection angle, ``y`` the sinogram of line integrals (one row per angle, one column per
detector). Distances are in pixels: detectors are one pixel wide and a line integral of ``x``
is in pixels (times the pixel size for mm, :mod:`dlmi_utils.ct.dose`). Then::

    A(x)[theta, k] = sum of x along the ray (theta, k)       Joseph's projector (Radon transform)
    A_adjoint(y)   = A^T y                                    unfiltered back-projection
    fbp(y)         = pi / (2 n_angles) B^T (H * y)            filtered back-projection

with ``H`` the ramp filter times a window, applied to each projection
(:mod:`dlmi_utils.ct.filters`), and ``B^T`` the pixel-driven back-projector that scanners and
scikit-image's ``iradon`` use: each pixel takes the filtered projection at the detector position
it falls on, by linear interpolation (:mod:`dlmi_utils.ct.system_matrix`). ``B^T`` is not
``A^T``: FBP is an approximate inverse for angles spread evenly over 180 degrees, ``A_adjoint``
is the exact transpose that gradient methods and the dot test ``<A x, y> = <x, A^T y>`` need.

The geometry is scikit-image's (``radon`` / ``iradon``): the rotation centre is pixel
``(H // 2, W // 2)`` and detector ``n_detectors // 2``; at angle ``theta`` pixel ``(i, j)``
falls on detector ``n_detectors // 2 + (j - W // 2) cos(theta) - (i - H // 2) sin(theta)``;
``circle=True`` assumes the object inside the disc of radius ``min(H, W) // 2`` (pixels outside
it are ignored and reconstructed as 0) and uses ``min(H, W)`` detectors, ``circle=False`` sees
the whole image with ``ceil(sqrt(2) max(H, W))`` detectors. The sinogram is
``(n_angles, n_detectors)``: scikit-image's transposed.

:class:`ParallelBeamProjector` works on numpy arrays and torch tensors alike (the output is of
the kind, device and precision of the input: float64 stays float64, anything else is computed
in float32), batched or not, and is differentiable in torch. ``A``, ``A_adjoint`` and the
back-projection of ``fbp`` are sparse-matrix products, built once per geometry and cached.
``tests/test_ct_physics.py`` checks the dot test, gradients, and the agreement with
``skimage.transform.radon`` and ``iradon``.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from dlmi_utils.ct.filters import check_filter, filter_sinogram
from dlmi_utils.ct.system_matrix import (
    TRANSFORMS,
    detectors_to_cover,
    reduce_angles,
    system_matrices,
)

Array = TypeVar("Array", np.ndarray, torch.Tensor)


class _LinearMap(torch.autograd.Function):
    """``apply(x)`` with ``adjoint`` as its backward (itself differentiable)."""

    @staticmethod
    def forward(ctx, x, apply, adjoint):
        ctx.maps = (apply, adjoint)  # not ctx.apply: the backward node's own method
        return apply(x)

    @staticmethod
    def backward(ctx, grad):
        apply, adjoint = ctx.maps
        return _LinearMap.apply(grad.contiguous(), adjoint, apply), None, None


def _matmul(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` (sparse CSR times dense columns). On a CPU the columns go 64 bytes at
    a time (16 in float32): each non-zero then reads one cache line of ``dense``, and wider
    blocks are slower per column."""
    width = 64 // dense.element_size()
    if dense.device.type != "cpu" or dense.shape[1] <= width:
        return matrix @ dense
    return torch.cat([matrix @ dense[:, s : s + width].contiguous()
                      for s in range(0, dense.shape[1], width)], dim=1)


def _transform(x: torch.Tensor, index: int, inverse: bool = False) -> torch.Tensor:
    """One of :data:`TRANSFORMS` of the last two (square) axes, or its inverse."""
    name = TRANSFORMS[index]
    if name == "rot":  # rot(x)[i, j] = x[2c - j, i]: a clockwise quarter turn
        return torch.rot90(x, 1 if inverse else -1, dims=(-2, -1))
    if name == "transpose":
        return x.transpose(-2, -1)
    if name == "flip_rows":
        return x.flip(-2)
    return x


class ParallelBeamProjector:
    """Parallel-beam CT on an ``(H, W)`` grid: ``A`` (projection), ``A_adjoint``, ``fbp``.

    Args:
        shape: the image size ``(H, W)``.
        angles: the number of angles spread evenly over ``[0, 180)`` degrees
            (``180 k / n_angles``), or the angles themselves in degrees (any real values,
            scikit-image's ``theta``).
        n_detectors: detectors of one pixel's width; default ``min(H, W)`` with ``circle``,
            else ``ceil(sqrt(2) max(H, W))`` (every pixel seen at every angle).
        circle: the object lies in the disc inscribed in the image (see the module's doc).

    Shapes: image ``x`` ``(H, W)`` or ``(B, H, W)``; sinogram ``y`` ``(n_angles,
    n_detectors)`` or ``(B, n_angles, n_detectors)``. Real input only, finite values.
    """

    def __init__(self, shape, angles, n_detectors: int | None = None, circle: bool = False):
        if np.ndim(shape) != 1 or len(shape) != 2 or not all(_is_positive_int(s) for s in shape):
            raise ValueError(f"shape must be (H, W), two positive integers, got {shape!r}")
        self._shape = (int(shape[0]), int(shape[1]))
        self._angles = _angles_in_degrees(angles)
        self._circle = bool(circle)
        h, w = self._shape
        if n_detectors is None:
            n_detectors = min(h, w) if circle else math.ceil(math.sqrt(2) * max(h, w))
        if not _is_positive_int(n_detectors):
            raise ValueError(f"n_detectors must be a positive integer, got {n_detectors!r}")
        self._n_detectors = int(n_detectors)

        # the odd square grid and the odd detector row of the system matrices, centres aligned;
        # the row covers every pixel's footprint and holds the detectors asked for
        c = max(h, w) // 2
        self._side = 2 * c + 1
        top, left = c - h // 2, c - w // 2
        self._pad = (left, self._side - w - left, top, self._side - h - top)
        disc_radius = min(h, w) // 2 if circle else None
        self._n_rays = max(detectors_to_cover(self._side, disc_radius),
                           2 * (self._n_detectors // 2) + 1)
        self._first = self._n_detectors // 2 - self._n_rays // 2  # row's first detector, <= 0
        angle_map = reduce_angles(self._angles)
        self._transforms = sorted(set(angle_map.transform.tolist()))  # only those in use
        slot = {t: s for s, t in enumerate(self._transforms)}
        self._n_base = len(angle_map.base_deg)
        self._ray_rows = torch.from_numpy(
            angle_map.base * len(self._transforms)
            + np.array([slot[t] for t in angle_map.transform], dtype=np.int64)
        )
        self._flip = torch.from_numpy(angle_map.flip)
        self._matrices = system_matrices(
            self._side,
            self._n_rays,
            tuple(float(a) for a in angle_map.base_deg),
            disc_radius,
        )

    # ------------------------------------------------------------------------- geometry
    @property
    def shape(self) -> tuple[int, int]:
        """The image size ``(H, W)``."""
        return self._shape

    @property
    def angles(self) -> np.ndarray:
        """The projection angles in degrees, ``(n_angles,)`` float64 (a copy)."""
        return self._angles.copy()

    @property
    def n_angles(self) -> int:
        return len(self._angles)

    @property
    def n_detectors(self) -> int:
        return self._n_detectors

    @property
    def circle(self) -> bool:
        return self._circle

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        """``(n_angles, n_detectors)``."""
        return self.n_angles, self.n_detectors

    def __repr__(self) -> str:
        return (f"ParallelBeamProjector(shape={self.shape}, n_angles={self.n_angles}, "
                f"n_detectors={self.n_detectors}, circle={self.circle})")

    # ------------------------------------------------------------------------- operators
    def A(self, x: Array) -> Array:
        """Projection: image ``(B, H, W)`` / ``(H, W)`` -> sinogram ``(B, n_angles,
        n_detectors)`` / ``(n_angles, n_detectors)`` of line integrals (in pixels)."""
        x, restore = self._as_batch(x, self.shape, "A", "an image")
        return restore(_LinearMap.apply(x, self._project, self._project_adjoint))

    def A_adjoint(self, y: Array) -> Array:
        """Unfiltered back-projection ``A^T y``: sinogram -> image, the exact transpose of
        :meth:`A`."""
        y, restore = self._as_batch(y, self.sinogram_shape, "A_adjoint", "a sinogram")
        return restore(_LinearMap.apply(y, self._project_adjoint, self._project))

    def fbp(self, y: Array, filter: str = "ramp") -> Array:
        """Filtered back-projection: sinogram -> image ``pi / (2 n_angles) B^T (H * y)``.

        ``filter``: ``"ramp"``, ``"shepp-logan"``, ``"cosine"``, ``"hamming"`` or ``"hann"``
        (:mod:`dlmi_utils.ct.filters`). With angles spread evenly over 180 degrees,
        ``fbp(A(x))`` is close to ``x`` (and is scikit-image's ``iradon``).
        """
        check_filter(filter)
        y, restore = self._as_batch(y, self.sinogram_shape, "fbp", "a sinogram")
        filtered = filter_sinogram(y, filter, first=self._first, n_out=self._n_rays)
        image = _LinearMap.apply(filtered, self._backproject_fbp, self._project_fbp)
        return restore(image * (math.pi / (2 * self.n_angles)))

    # ------------------------------------------------------------------------- internals
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        a = self._matrices.projector(x.dtype, x.device)
        rays = self._sinogram_of(_matmul(a, self._image_columns(x)), x.shape[0])
        return rays[..., -self._first : self.n_detectors - self._first].contiguous()

    def _project_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        a_t, _ = self._matrices.backprojectors(y.dtype, y.device)
        rays = F.pad(y, (-self._first, self._n_rays - self.n_detectors + self._first))
        return self._image_of(_matmul(a_t, self._ray_columns(rays)), y.shape[0])

    def _backproject_fbp(self, q: torch.Tensor) -> torch.Tensor:
        _, b_t = self._matrices.backprojectors(q.dtype, q.device)
        return self._image_of(_matmul(b_t, self._ray_columns(q)), q.shape[0])

    def _project_fbp(self, x: torch.Tensor) -> torch.Tensor:
        b = self._matrices.pixel_driven_projector(x.dtype, x.device)
        return self._sinogram_of(_matmul(b, self._image_columns(x)), x.shape[0])

    def _image_columns(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` -> ``(M^2, G B)``: the padded image under each transform in use."""
        padded = F.pad(x, self._pad)
        stack = torch.stack([_transform(padded, t) for t in self._transforms])  # (G, B, M, M)
        return stack.permute(2, 3, 0, 1).reshape(self._side**2, -1).contiguous()

    def _image_of(self, columns: torch.Tensor, batch: int) -> torch.Tensor:
        """``(M^2, G B)`` -> ``(B, H, W)``: the adjoint of :meth:`_image_columns`."""
        m = self._side
        stack = columns.reshape(m, m, len(self._transforms), batch).permute(2, 3, 0, 1)
        padded = sum(_transform(stack[g], t, inverse=True) for g, t in enumerate(self._transforms))
        left, _, top, _ = self._pad
        h, w = self.shape
        return padded[:, top : top + h, left : left + w].contiguous()

    def _sinogram_of(self, rays: torch.Tensor, batch: int) -> torch.Tensor:
        """``(n_base D, G B)`` -> ``(B, n_angles, D)``: each angle's row, flipped if needed."""
        g = len(self._transforms)
        rays = rays.reshape(self._n_base, self._n_rays, g, batch).permute(3, 0, 2, 1)
        rows = rays.reshape(batch, self._n_base * g, self._n_rays)[:, self._ray_rows]
        flip = self._flip.to(rows.device)[:, None]
        return torch.where(flip, rows.flip(-1), rows)

    def _ray_columns(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, n_angles, D)`` -> ``(n_base D, G B)``: the adjoint of :meth:`_sinogram_of`
        (flips undone, angles summed onto their base rows)."""
        batch, g = y.shape[0], len(self._transforms)
        y = torch.where(self._flip.to(y.device)[:, None], y.flip(-1), y)
        rows = y.new_zeros(batch, self._n_base * g, self._n_rays)
        rows.index_add_(1, self._ray_rows.to(y.device), y)
        rows = rows.reshape(batch, self._n_base, g, self._n_rays).permute(1, 3, 2, 0)
        return rows.reshape(self._n_base * self._n_rays, g * batch).contiguous()

    def _as_batch(self, v, tail: tuple[int, int], fname: str, what: str):
        """``v`` as a float tensor ``(B, *tail)``, and the function that gives results back
        in its kind (numpy or torch) and batchedness."""
        if not isinstance(v, (np.ndarray, torch.Tensor)):
            raise TypeError(f"{fname}: expected a numpy array or a torch tensor, got "
                            f"{type(v).__name__}")
        is_numpy = isinstance(v, np.ndarray)
        if (v.is_complex() if not is_numpy else np.iscomplexobj(v)):
            raise TypeError(f"{fname}: expected real values (attenuation or line integrals), "
                            f"got a complex {what}")
        if v.ndim not in (2, 3) or tuple(v.shape[-2:]) != tail:
            raise ValueError(f"{fname}: expected {what} {tail} or (B, {tail[0]}, {tail[1]}), "
                             f"got shape {tuple(v.shape)}")
        t = torch.from_numpy(np.ascontiguousarray(v)) if is_numpy else v
        t = t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{fname}: {what} contains NaN or inf")
        unbatched = t.ndim == 2

        def restore(out: torch.Tensor):
            out = out[0] if unbatched else out
            return out.detach().cpu().numpy() if is_numpy else out

        return (t[None] if unbatched else t).contiguous(), restore


def _is_positive_int(n) -> bool:
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0


def _angles_in_degrees(angles) -> np.ndarray:
    if _is_positive_int(angles):
        return np.arange(int(angles)) * (180.0 / int(angles))
    if isinstance(angles, torch.Tensor):
        angles = angles.detach().cpu().numpy()
    try:
        out = np.array(angles, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"angles must be a number of angles or a 1-D array of degrees, got "
                         f"{angles!r}") from error
    if out.ndim != 1 or out.size == 0 or not np.isfinite(out).all():
        raise ValueError(f"angles must be a positive number of angles or a non-empty 1-D array "
                         f"of finite degrees, got {angles!r}")
    return out
