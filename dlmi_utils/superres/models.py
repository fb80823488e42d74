"""A DeepResolve-style residual CNN for thin slices from thick ones, and the consistency layer.

DeepResolve (Chaudhari et al. 2017) interpolates the thick slices to the thin grid and lets a
3D CNN learn what the interpolation misses::

    x_sr = x_int + R_theta(x_int),        x_int = interpolate_z(y, F, "cubic")

:class:`DeepResolve` is that network with one change for the CPU: it works on **slabs**. The
``F`` interpolated thin slices of each thick slice are stacked as ``F`` channels (a
space-to-depth rearrangement along ``z``: ``(1, K F, Y, X) -> (F, K, Y, X)``), so each
``3 x 3 x 3`` convolution costs ``F`` times less and sees ``F`` times farther along ``z``; the
network is shift-equivariant by one thick slice, the symmetry of the acquisition itself. It
needs the thin grid to start on a slab boundary (``z = 0`` is the first slice of thick slice
0), which :func:`super_resolve` guarantees.

The **consistency layer** (:class:`ConsistencyLayer`) is the DC idea of Lab 03 for this
operator: the orthogonal projection onto ``{x : A x = y}``,
``x_dc = x_sr + A^T (y - A x_sr) / ||w||^2`` (:meth:`ThickSliceForward.project`). With
noiseless data the true volume ``x`` lies in that set, and ``x_dc - x = P_N (x_sr - x)`` with
``P_N`` the orthogonal projection onto the null space of ``A``: the error can only shrink,
``||x_dc - x|| <= ||x_sr - x||``, and what the measurements say (each slab's weighted mean) is
exactly kept.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlmi_utils.superres.interpolation import interpolate_z
from dlmi_utils.superres.physics import ThickSliceForward, check_factor

CHUNK = 64  # voxels along y per forward pass of super_resolve (bounds the memory)


class DeepResolve(nn.Module):
    """``x_sr = x_int + R(x_int)``: a residual 3D CNN on slabs (see the module doc).

    ``R``: ``n_layers`` ``3 x 3 x 3`` convolutions with ``n_filters`` channels and ReLUs, from
    and to ``factor`` channels (one per thin slice of a slab); the last one starts at zero, so
    an untrained network returns ``x_int``. Input and output ``(B, 1, K F, Y, X)`` float32.
    """

    def __init__(self, factor: int = 4, n_layers: int = 8, n_filters: int = 32):
        super().__init__()
        self.factor = check_factor(factor)
        if n_layers < 2:
            raise ValueError(f"n_layers must be at least 2, got {n_layers}")
        self.config = {"factor": self.factor, "n_layers": n_layers, "n_filters": n_filters}
        f, c = self.factor, n_filters
        layers: list[nn.Module] = [nn.Conv3d(f, c, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(n_layers - 2):
            layers += [nn.Conv3d(c, c, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv3d(c, f, 3, padding=1))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.residual = nn.Sequential(*layers)

    @property
    def receptive_radius(self) -> int:
        """How far (in thick slices, or in-plane voxels) the output sees: one per layer."""
        return self.config["n_layers"]

    def forward(self, x_int: torch.Tensor) -> torch.Tensor:
        if x_int.ndim != 5 or x_int.shape[1] != 1:
            raise ValueError(f"DeepResolve expects (B, 1, Z, Y, X), got {tuple(x_int.shape)}")
        b, _, n, h, w = x_int.shape
        f = self.factor
        if n % f:
            raise ValueError(f"DeepResolve: {n} thin slices is not a whole number of slabs of "
                             f"{f}: crop to a multiple of the factor")
        slabs = x_int.reshape(b, n // f, f, h, w).transpose(1, 2)  # (B, F, K, Y, X)
        out = slabs + self.residual(slabs)
        return out.transpose(1, 2).reshape(b, 1, n, h, w)


class ConsistencyLayer(nn.Module):
    """``x -> x + A^T (y - A x) / ||w||^2``: the projection onto ``{x : A x = y}``.

    ``forward(x, y)`` with ``x`` ``(B, 1, Z, Y, X)`` and ``y`` ``(B, 1, K, Y, X)``; no
    parameter, differentiable (it is linear in ``x``).
    """

    def __init__(self, physics: ThickSliceForward):
        super().__init__()
        self.physics = physics

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.physics.project(x, y)


def _support_box(y: np.ndarray, margin: int) -> tuple[slice, slice]:
    """In-plane bounding box ``(rows, cols)`` of the non-zero thick data, widened by margin."""
    nonzero = np.abs(y).max(axis=0) > 0
    if not nonzero.any():
        return slice(0, 0), slice(0, 0)
    rows, cols = np.flatnonzero(nonzero.any(1)), np.flatnonzero(nonzero.any(0))
    h, w = nonzero.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)))


@torch.no_grad()
def super_resolve(model: DeepResolve, y: np.ndarray, consistent: bool = False,
                  physics: ThickSliceForward | None = None, chunk: int = CHUNK) -> np.ndarray:
    """Thin slices ``(K F, Y, X)`` float32 from thick ones ``(K, Y, X)`` with the network.

    ``x_int`` is the cubic interpolation at the slice centres; the network runs on the
    in-plane box where the data are not zero (outside it, the output is ``x_int``: zeros), in
    chunks of ``chunk`` voxels along ``Y`` overlapping by the receptive field, so a whole
    brain fits in memory. ``consistent=True`` ends with the consistency projection
    (``physics``: the acquisition, by default a boxcar of the model's factor).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 3:
        raise ValueError(f"super_resolve: expected thick slices (K, Y, X), got shape {y.shape}")
    f = model.factor
    physics = physics or ThickSliceForward(f, axis=0)
    if physics.factor != f:
        raise ValueError(f"the network is for factor {f}, the acquisition has factor "
                         f"{physics.factor}")
    x_int = interpolate_z(y, f, "cubic", axis=0)
    out = x_int.copy()
    margin = model.receptive_radius
    rows, cols = _support_box(y, margin)
    device = next(model.parameters()).device
    model.eval()
    start = rows.start
    while start < rows.stop:
        stop = min(start + chunk, rows.stop)
        lo, hi = max(start - margin, rows.start), min(stop + margin, rows.stop)
        block = torch.from_numpy(np.ascontiguousarray(x_int[:, lo:hi, cols])).to(device)
        pred = model(block[None, None])[0, 0].cpu().numpy()
        out[:, start:stop, cols] = pred[:, start - lo: stop - lo]
        start = stop
    if consistent:
        out = physics.project(out, y)
    return out
