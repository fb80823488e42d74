"""The system matrices of parallel-beam CT as sparse CSR tensors, reduced by the grid's symmetries.

Geometry (scikit-image's): an odd square grid of side ``M = 2 c + 1`` with the rotation centre
on pixel ``(c, c)``; ``D = 2 kc + 1`` detectors of one pixel's width, detector ``kc`` on the
centre. At angle ``theta`` the ray of detector ``k`` is the line
``(j - c) cos(theta) - (i - c) sin(theta) = k - kc``, and pixel ``(i, j)`` falls on the
detector position ``kappa = kc + (j - c) cos(theta) - (i - c) sin(theta)``.

Two matrices share the pattern ``{(pixel, ray k) : |k - kappa| < 1}`` (two detectors per pixel
and angle), with ``tri(u) = max(0, 1 - |u|)`` and ``m = max(|cos theta|, |sin theta|)``:

- **Joseph's projector** (Joseph, IEEE TMI 1982): a ray is sampled once per image row (or
  column, whichever it crosses more steeply), the image is interpolated linearly between the
  two nearest pixels of that row, and each sample weighs the path length ``1 / m`` in the row::

      a(pixel, k) = tri((k - kappa) / m) / m

  Row ``k`` of ``A`` sums the image along ray ``k``; ``A_adjoint`` is its exact transpose.
- **The pixel-driven back-projector** of filtered back-projection (scikit-image's ``iradon``
  and scanners alike): each pixel reads its detector position by linear interpolation::

      b(pixel, k) = tri(k - kappa)

Symmetries: a quarter turn or a transposition of the odd grid permutes its pixels exactly, and
maps projection angles onto one another (``flip`` reverses the detectors, ``k -> 2 kc - k``)::

    P_{theta + 90}(x)  = P_theta(rot(x))            rot(x)[i, j] = x[2c - j, i]
    P_{90 - theta}(x)  = flip(P_theta(x^T))
    P_{180 - theta}(x) = flip(P_theta(x[::-1, :]))
    P_{theta + 180}(x) = flip(P_theta(x))

so every angle is the image of a *base angle* ``phi`` in ``[0, 45]`` degrees under one of four
transforms of the image (:func:`reduce_angles`). The matrices are built for the base angles
only (a quarter of evenly spaced angles over 180 degrees), and one sparse-dense product
applies them to the four transformed images at once (:mod:`dlmi_utils.ct.physics`). They are
built once per geometry and cached (:func:`system_matrices`): at 512 x 512 pixels and 720
angles the build takes a few seconds on a CPU and ``A``, ``A^T`` and ``B^T`` hold 1.4 GB (the
disc) to 1.8 GB (the whole image); ``B``, for gradients through FBP, is built only if asked.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
import torch

# The four transforms of the image, by index: identity, quarter turn, transpose, row flip.
TRANSFORMS = ("identity", "rot", "transpose", "flip_rows")
_FLIPS_DETECTORS = (False, False, True, True)
_PIXEL_BLOCK = 8192  # pixels per block while building: bounded memory


@dataclass(frozen=True)
class AngleMap:
    """How each projection angle is obtained from a base angle in ``[0, 45]`` degrees.

    ``base_deg`` ``(n_base,)`` float64: the distinct base angles, ascending; for angle ``a``,
    ``P_a(x) = flip^flip[a](P_{base_deg[base[a]]}(T(x)))`` with ``T = TRANSFORMS[transform[a]]``.
    """

    base_deg: np.ndarray
    base: np.ndarray
    transform: np.ndarray
    flip: np.ndarray


def reduce_angles(angles_deg: np.ndarray) -> AngleMap:
    """Each angle (degrees, any real) as a transform of a base angle in ``[0, 45]``.

    ``theta`` is first taken modulo 360, then ``theta >= 180`` becomes ``theta - 180`` with a
    detector flip; ``[0, 45]`` is its own base, ``(45, 90]`` the transpose of ``90 - theta``,
    ``(90, 135]`` the quarter turn of ``theta - 90``, ``(135, 180)`` the row flip of
    ``180 - theta``. Base angles closer than 1e-9 degrees are one.
    """
    theta = np.mod(np.asarray(angles_deg, dtype=np.float64), 360.0)
    flip = theta >= 180.0
    theta = np.where(flip, theta - 180.0, theta)
    transform = np.select([theta <= 45.0, theta <= 90.0, theta <= 135.0], [0, 2, 1], default=3)
    phi = np.choose(transform, [theta, theta - 90.0, 90.0 - theta, 180.0 - theta])
    flip ^= np.take(_FLIPS_DETECTORS, transform)
    base_deg, base = np.unique(np.round(phi, 9), return_inverse=True)
    return AngleMap(base_deg, base.reshape(-1), transform.astype(np.int64), flip)


@dataclass(eq=False)
class SystemMatrices:
    """Joseph's projector and the pixel-driven back-projector on one grid, for the base angles.

    ``backprojectors()`` gives the pixel-major CSR matrices ``(M^2, n_base D)`` (rows: pixels,
    columns: rays ``b D + k``) of ``A^T`` (Joseph) and ``B^T`` (pixel-driven);
    ``projector()`` the ray-major ``A`` ``(n_base D, M^2)`` and ``pixel_driven_projector()``
    ``B``, exact transposes of the first two. Each is built on first use and kept, once per
    device and dtype.
    """

    side: int
    n_detectors: int
    base_deg: tuple[float, ...]
    disc_radius: int | None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(M^2, n_base D)``: the shape of the pixel-major matrices."""
        return self.side * self.side, len(self.base_deg) * self.n_detectors

    def backprojectors(self, dtype=torch.float32, device="cpu"):
        """``(A^T, B^T)``: pixel-major CSR tensors sharing their indices."""
        key = ("pixel", dtype, torch.device(device))
        if key not in self._cache:
            crow, col, joseph, pixel = self._cached("pixel_major", self._build_pixel_major)
            self._cache[key] = tuple(
                _csr(crow, col, values, self.shape, dtype, device) for values in (joseph, pixel)
            )
        return self._cache[key]

    def projector(self, dtype=torch.float32, device="cpu") -> torch.Tensor:
        """``A``: Joseph's projector, ray-major CSR (its zero weights dropped)."""
        return self._ray_major(0, dtype, device)

    def pixel_driven_projector(self, dtype=torch.float32, device="cpu") -> torch.Tensor:
        """``B``: the transpose of the pixel-driven back-projector (the adjoint of FBP's)."""
        return self._ray_major(1, dtype, device)

    def _cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def _build_pixel_major(self):
        return _build_pixel_major(self.side, self.n_detectors, self.base_deg, self.disc_radius)

    def _ray_major(self, which: int, dtype, device) -> torch.Tensor:
        key = ("ray", which, dtype, torch.device(device))
        if key not in self._cache:
            crow, col, values = self._cached(("ray_major", which), lambda: self._transpose(which))
            self._cache[key] = _csr(crow, col, values, self.shape[::-1], dtype, device)
        return self._cache[key]

    def _transpose(self, which: int):
        """The ray-major ``(crow, col, values)`` of pixel-major weights ``which`` (0: Joseph,
        1: pixel-driven): scipy's counting sort moves the same weights, zeros dropped."""
        crow, col, *weights = self._cached("pixel_major", self._build_pixel_major)
        pixel_major = scipy.sparse.csr_matrix(
            (weights[which].numpy(), col.numpy(), crow.numpy()), shape=self.shape
        )
        ray_major = pixel_major.tocsc()
        ray_major.eliminate_zeros()
        index = torch.int32 if ray_major.nnz < 2**31 else torch.int64
        crow, col = (torch.from_numpy(a).to(index) for a in (ray_major.indptr, ray_major.indices))
        return crow, col, torch.from_numpy(ray_major.data)


def _csr(crow, col, values, shape, dtype, device) -> torch.Tensor:
    """A CSR tensor on ``device`` with ``values`` in ``dtype`` (the indices are shared on the
    CPU, and the values too in float32)."""
    with warnings.catch_warnings():  # torch's notice that sparse CSR support is in beta
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            crow.to(device), col.to(device), values.to(device, dtype), shape,
            check_invariants=False,
        )


def detectors_to_cover(side: int, disc_radius: int | None) -> int:
    """The odd number of detectors whose row holds the footprint of every pixel at every angle:
    ``2 kc + 1`` with ``kc = ceil(reach) + 1``, ``reach`` the largest distance from the centre
    (``disc_radius``, or the half-diagonal ``sqrt(2) c`` of the whole grid)."""
    reach = disc_radius if disc_radius is not None else math.sqrt(2) * (side // 2)
    return 2 * (math.ceil(reach) + 1) + 1


def _build_pixel_major(side: int, n_detectors: int, base_deg: tuple[float, ...], disc_radius):
    """``(crow, col, joseph, pixel)`` of the pixel-major matrices (see the module's doc).

    Every pixel of the pattern has its two detectors ``floor(kappa)`` and ``floor(kappa) + 1``
    in the row (``n_detectors >= detectors_to_cover``), so each of its rows holds exactly
    ``2 n_base`` entries, some of weight 0. Weights are computed in float64, kept in float32.
    """
    c, kc = side // 2, n_detectors // 2
    i, j = np.meshgrid(np.arange(side) - c, np.arange(side) - c, indexing="ij")
    inside = np.ones((side, side), dtype=bool)
    if disc_radius is not None:
        inside = i * i + j * j <= disc_radius**2
    i, j = i[inside].astype(np.float64), j[inside].astype(np.float64)
    phi = np.deg2rad(np.asarray(base_deg, dtype=np.float64))
    cos, sin = np.cos(phi), np.sin(phi)  # cos >= sin >= 0 on [0, 45] degrees: m = cos
    n_base, n_rows = len(base_deg), len(i)
    col = np.empty((n_rows, n_base, 2), dtype=np.int32)  # n_base D < 2^31 columns
    joseph = np.empty((n_rows, n_base, 2), dtype=np.float32)
    pixel = np.empty((n_rows, n_base, 2), dtype=np.float32)
    ray_offset = np.arange(n_base) * n_detectors
    for start in range(0, n_rows, _PIXEL_BLOCK):
        rows = slice(start, start + _PIXEL_BLOCK)
        kappa = kc + j[rows, None] * cos - i[rows, None] * sin  # (pixels, n_base)
        k0 = np.floor(kappa)
        if k0.min() < 0 or k0.max() + 1 >= n_detectors:
            raise ValueError(f"{n_detectors} detectors do not cover the grid of side {side}")
        distance = kappa - k0  # to detector k0; 1 - distance to k0 + 1
        col[rows, :, 0] = k0 + ray_offset
        col[rows, :, 1] = col[rows, :, 0] + 1
        pixel[rows, :, 0], pixel[rows, :, 1] = 1.0 - distance, distance
        joseph[rows, :, 0] = np.maximum(1.0 - distance / cos, 0.0) / cos
        joseph[rows, :, 1] = np.maximum(1.0 - (1.0 - distance) / cos, 0.0) / cos
    index = torch.int32 if col.size < 2**31 else torch.int64
    crow = np.zeros(side * side + 1, dtype=np.int64)
    crow[1:] = np.cumsum(inside.reshape(-1) * (2 * n_base))
    return (torch.from_numpy(crow).to(index), torch.from_numpy(col.reshape(-1)).to(index),
            torch.from_numpy(joseph.reshape(-1)), torch.from_numpy(pixel.reshape(-1)))


@functools.lru_cache(maxsize=2)
def system_matrices(
    side: int, n_detectors: int, base_deg: tuple[float, ...], disc_radius: int | None
) -> SystemMatrices:
    """The (lazily built) matrices of one geometry; the last two geometries are kept.

    ``side`` and ``n_detectors`` odd, with at least :func:`detectors_to_cover` detectors;
    ``base_deg`` in ``[0, 45]``; ``disc_radius``: keep only the pixels with
    ``(i - c)^2 + (j - c)^2 <= disc_radius^2`` (``None``: all of them).
    """
    if side % 2 == 0 or n_detectors % 2 == 0:
        raise ValueError(f"side and n_detectors must be odd, got {side} and {n_detectors}")
    if n_detectors < detectors_to_cover(side, disc_radius):
        raise ValueError(f"{n_detectors} detectors do not cover the grid of side {side}: at "
                         f"least {detectors_to_cover(side, disc_radius)} are needed")
    if not all(0.0 <= a <= 45.0 for a in base_deg):
        raise ValueError(f"base angles must lie in [0, 45] degrees, got {base_deg}")
    return SystemMatrices(side, n_detectors, tuple(base_deg), disc_radius)
