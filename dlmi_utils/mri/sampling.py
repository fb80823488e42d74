"""k-space sampling masks: which samples ``Omega`` an accelerated MR acquisition measures.

A mask is a boolean array ``(H, W)``; ``True`` marks a measured k-space sample, with the DC
term at ``(H // 2, W // 2)`` as in :func:`dlmi_utils.fourier.fft2c`. The acceleration is
``R = H W / |Omega|`` (:func:`effective_acceleration`).

Cartesian 1D masks select phase-encode **columns** (the last axis, ``W``) and repeat them over
the rows (the read-out direction, always fully sampled). Each family is a small class; its
docstring states the rule and ``mask_fn(shape, seed)`` draws a reproducible mask:

- :class:`RandomCartesianMask`: centre + columns uniformly at random (fastMRI's rule)
- :class:`EquispacedCartesianMask`: centre + columns on a regular grid (coherent aliasing)
- :class:`VariableDensityCartesianMask`: centre + random columns, denser near the centre
- :class:`PoissonDiscMask`: 2D points no closer than a radius that grows with ``|k|``
- :class:`RadialMask`: spokes through the centre, rasterised on the Cartesian grid

Unlike fastMRI's masks, which meet the acceleration only on average, **every draw** meets it
up to the rounding of one column (Cartesian), one point (Poisson disc) or half a spoke
(radial): the number of samples is fixed first, then the random choice is made among them.
``mask_fn.achieved_acceleration`` holds the acceleration of the last mask drawn.

:func:`make_mask` builds any of them from a name; :func:`point_spread_function` and
:func:`psf_sidelobe_to_peak` measure how incoherent the aliasing of a mask is.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from dlmi_utils.fourier import ifft2c

MASK_KINDS = ("random", "equispaced", "variable_density", "poisson", "radial")
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))  # 111.25 deg modulo pi: 180 / golden ratio


# ----------------------------------------------------------------------------- checks
def _check_acceleration(acceleration: float) -> float:
    if isinstance(acceleration, bool) or not isinstance(acceleration, (int, float)):
        raise TypeError(f"acceleration must be a number, got {type(acceleration).__name__}")
    if not math.isfinite(acceleration) or acceleration < 1:
        raise ValueError(
            f"acceleration must be >= 1 (R = 1 is full sampling, R = 4 keeps a quarter of "
            f"k-space), got {acceleration}"
        )
    return float(acceleration)


def _check_center_fraction(center_fraction: float) -> float:
    if isinstance(center_fraction, bool) or not isinstance(center_fraction, (int, float)):
        raise TypeError(f"center_fraction must be a number, got {type(center_fraction).__name__}")
    if not 0 <= center_fraction < 1:
        raise ValueError(
            f"center_fraction must be in [0, 1) (e.g. 0.08 keeps the central 8% of the columns), "
            f"got {center_fraction}"
        )
    return float(center_fraction)


def _check_shape(shape) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple (H, W), got {shape!r}") from None
    if len(shape) != 2:
        raise ValueError(
            f"shape must be 2D (H, W), got {shape}; a mask is shared by the coils and the batch"
        )
    if min(shape) < 1:
        raise ValueError(f"shape must have positive sizes, got {shape}")
    return shape


def effective_acceleration(mask: np.ndarray) -> float:
    """Acceleration ``R = mask.size / mask.sum()`` of a boolean or 0/1 mask (``inf`` if empty)."""
    mask = np.asarray(mask)
    n = int(np.count_nonzero(mask))
    return float("inf") if n == 0 else mask.size / n


def center_columns(width: int, n_center: int) -> slice:
    """Slice of the ``n_center`` central columns, containing the DC column ``width // 2``."""
    start = width // 2 - n_center // 2
    return slice(start, start + n_center)


# ----------------------------------------------------------------------------- base class
class MaskFunc(ABC):
    """Base of the mask families: checks, the seeded generator and the achieved acceleration."""

    def __init__(self, acceleration: float):
        self.acceleration = _check_acceleration(acceleration)
        self.achieved_acceleration: float | None = None

    def __call__(self, shape: tuple[int, int], seed: int | None = None) -> np.ndarray:
        """A mask ``(H, W)`` bool for k-space of ``shape``; one ``seed``, one mask."""
        shape = _check_shape(shape)
        mask = self._draw(shape, np.random.default_rng(seed))
        self.achieved_acceleration = effective_acceleration(mask)
        return mask

    @abstractmethod
    def _draw(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """The mask ``(H, W)`` bool of this family, drawn with ``rng``."""

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if k != "achieved_acceleration"
        )
        return f"{type(self).__name__}({args})"


class _CartesianMask(MaskFunc):
    """A 1D Cartesian mask: ``n_center`` central columns plus ``n_target - n_center`` others."""

    def __init__(self, acceleration: float, center_fraction: float = 0.08):
        super().__init__(acceleration)
        self.center_fraction = _check_center_fraction(center_fraction)

    def column_counts(self, width: int) -> tuple[int, int]:
        """``(n_center, n_target)``: central columns and total columns for ``width`` columns."""
        n_center = round(width * self.center_fraction)
        if self.center_fraction > 0:
            n_center = max(n_center, 1)
        n_target = max(round(width / self.acceleration), 1)
        if n_center > n_target:
            raise ValueError(
                f"center_fraction={self.center_fraction} keeps {n_center} of {width} columns, "
                f"more than the {n_target} that acceleration={self.acceleration} allows; "
                f"lower center_fraction below 1 / acceleration"
            )
        return n_center, n_target

    def _draw(self, shape, rng):
        width = shape[1]
        n_center, n_target = self.column_counts(width)
        columns = np.zeros(width, dtype=bool)
        columns[center_columns(width, n_center)] = True
        others = np.flatnonzero(~columns)
        columns[self._choose(others, n_target - n_center, width, rng)] = True
        return np.broadcast_to(columns, shape).copy()

    @abstractmethod
    def _choose(
        self, others: np.ndarray, n: int, width: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``n`` column indices taken from ``others`` (the non-central columns)."""


# ----------------------------------------------------------------------------- Cartesian 1D
class RandomCartesianMask(_CartesianMask):
    """fastMRI's random mask, with the number of columns fixed.

    Of the ``N = W`` columns, the ``N_low = round(N * center_fraction)`` central ones (around
    the DC column ``W // 2``) are always sampled. The other columns are selected uniformly at
    random: exactly ``round(N / acceleration) - N_low`` of them, drawn without replacement, so
    that each is selected with probability ``(N / acceleration - N_low) / (N - N_low)`` (the
    fastMRI rule) and every mask has ``round(N / acceleration)`` columns.

    >>> mask = RandomCartesianMask(acceleration=4, center_fraction=0.08)((256, 256), seed=0)
    >>> mask.shape, mask.dtype, int(mask[0].sum())
    ((256, 256), dtype('bool'), 64)
    """

    def _choose(self, others, n, width, rng):
        return rng.choice(others, size=n, replace=False)


class EquispacedCartesianMask(_CartesianMask):
    """Centre + columns on a regular grid: aliasing in coherent, shifted copies.

    The ``N_low`` central columns are sampled; the others lie on the grid
    ``round(offset + j * s)``, ``j = 0, 1, ...``, with a random ``offset`` in ``[0, s)`` and
    the spacing ``s`` close to ``(N - N_low) / (N / acceleration - N_low)`` (fastMRI's
    adjusted acceleration), tuned so that the mask has exactly ``round(N / acceleration)``
    columns. With an integer ``s`` the image is folded onto ``s`` copies of itself.
    """

    def _choose(self, others, n, width, rng):
        if n == 0:
            return np.array([], dtype=int)
        is_other = np.zeros(width, dtype=bool)
        is_other[others] = True
        spacing0 = len(others) / n
        offset_fraction = rng.random()
        best = None
        # The spacing is nudged until the grid, once the central columns are removed, has
        # exactly n columns: grid points falling inside the centre change the count.
        for spacing in spacing0 * (1 + np.concatenate(([0.0], np.linspace(-0.25, 0.25, 501)))):
            cols = np.unique(np.round(offset_fraction * spacing + np.arange(0, width, spacing)))
            cols = cols[cols < width].astype(int)
            cols = cols[is_other[cols]]
            gap = abs(len(cols) - n)
            if best is None or gap < best[0]:
                best = (gap, cols)
            if gap == 0:
                break
        cols = best[1]
        if len(cols) > n:  # only reached on tiny widths: drop the last grid columns
            cols = cols[:n]
        elif len(cols) < n:
            free = np.setdiff1d(others, cols)
            picks = np.linspace(0, len(free) - 1, n - len(cols)).round().astype(int)
            cols = np.concatenate((cols, free[picks]))
        return cols


class VariableDensityCartesianMask(_CartesianMask):
    """Centre + random columns drawn with a polynomial density, denser near the centre.

    The ``N_low`` central columns are sampled; ``round(N / acceleration) - N_low`` others are
    drawn without replacement, column ``k`` with probability proportional to
    ``(1 - |k - W // 2| / (W / 2)) ** power`` (``power = 0`` is the uniform random mask;
    larger powers sample the low frequencies, which carry most of the energy, more often).
    """

    def __init__(self, acceleration: float, center_fraction: float = 0.08, power: float = 2.0):
        super().__init__(acceleration, center_fraction)
        if not (isinstance(power, (int, float)) and power >= 0):
            raise ValueError(f"power must be a number >= 0, got {power!r}")
        self.power = float(power)

    def _choose(self, others, n, width, rng):
        distance = np.abs(others - width // 2) / (width / 2)
        density = np.clip(1 - distance, 0, None) ** self.power + 1e-12
        return rng.choice(others, size=n, replace=False, p=density / density.sum())


# ----------------------------------------------------------------------------- 2D masks
class PoissonDiscMask(MaskFunc):
    """2D variable-density Poisson-disc sampling with a fully sampled calibration square.

    Points are kept in a random order ("dart throwing" on the grid): a candidate ``k`` is kept
    unless it lies closer than ``r(k')`` to an already kept point ``k'``, where the radius grows
    with the distance to the centre, ``r(k) = r0 (1 + variable_density * rho(k))``,
    ``rho = sqrt(kx^2 + ky^2)`` normalised to 1 at the middle of the edges. The density thus
    falls like ``1 / r^2`` towards high frequencies while no two samples cluster (incoherent,
    noise-like aliasing). ``r0`` is found by bisection so that, with the ``calib x calib``
    central square (side ``round(calib_fraction * min(H, W))``), the mask has
    ``round(H W / acceleration)`` points; the last few points are then added or removed at
    random to meet that count exactly. ``variable_density=0`` gives uniform Poisson-disc.
    """

    def __init__(
        self, acceleration: float, calib_fraction: float = 0.08, variable_density: float = 2.0
    ):
        super().__init__(acceleration)
        self.calib_fraction = _check_center_fraction(calib_fraction)
        if not (isinstance(variable_density, (int, float)) and variable_density >= 0):
            raise ValueError(f"variable_density must be a number >= 0, got {variable_density!r}")
        self.variable_density = float(variable_density)

    def _rho(self, shape):
        h, w = shape
        ky = (np.arange(h) - h // 2) / (h / 2)
        kx = (np.arange(w) - w // 2) / (w / 2)
        return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)

    def _calibration(self, shape):
        h, w = shape
        side = round(self.calib_fraction * min(h, w))
        if self.calib_fraction > 0:
            side = max(side, 1)
        calib = np.zeros(shape, dtype=bool)
        calib[center_columns(h, side), center_columns(w, side)] = True
        return calib

    @staticmethod
    def _dart_throw(order, radius, shape):
        """Keep the points of ``order`` (flat indices) that are not blocked by a kept point."""
        h, w = shape
        pad = int(math.ceil(radius.max()))
        wp = w + 2 * pad
        blocked = np.zeros((h + 2 * pad) * wp, dtype=bool)
        # Points at squared integer distance d2 < r^2 are blocked, so a disc only depends on
        # ceil(r^2): one stencil of flat offsets per value.
        keys = np.ceil(radius.ravel() ** 2 - 1e-9).astype(int)
        stencils = {}
        for key in np.unique(keys):
            rr = int(math.isqrt(max(int(key) - 1, 0)))
            dy, dx = np.mgrid[-rr : rr + 1, -rr : rr + 1]
            inside = dy**2 + dx**2 < key
            stencils[int(key)] = (dy[inside] * wp + dx[inside]).astype(np.int64)
        rows, cols = np.divmod(order, w)
        padded = (rows + pad) * wp + cols + pad
        kept = np.zeros(h * w, dtype=bool)
        for idx, pidx in zip(order.tolist(), padded.tolist(), strict=True):
            if not blocked[pidx]:
                kept[idx] = True
                blocked[pidx + stencils[int(keys[idx])]] = True
        return kept.reshape(shape)

    def _draw(self, shape, rng):
        h, w = shape
        n_target = max(round(h * w / self.acceleration), 1)
        calib = self._calibration(shape)
        if calib.sum() > n_target:
            raise ValueError(
                f"the calibration square ({int(calib.sum())} points) is larger than the "
                f"{n_target} points that acceleration={self.acceleration} allows; lower "
                f"calib_fraction"
            )
        profile = 1 + self.variable_density * self._rho(shape)
        order = rng.permutation(h * w)
        # Density ~ 1 / r^2, so r0 starts near sqrt(acceleration / mean(1 / profile^2)).
        lo, hi = 0.0, 2 * math.sqrt(self.acceleration / np.mean(1 / profile**2)) + 2
        best = None
        for _ in range(30):
            r0 = (lo + hi) / 2
            mask = self._dart_throw(order, r0 * profile, shape) | calib
            count = int(mask.sum())
            if best is None or abs(count - n_target) < abs(best.sum() - n_target):
                best = mask
            if abs(count - n_target) <= 0.01 * n_target:
                break
            if count > n_target:
                lo = r0
            else:
                hi = r0
        mask = best
        # Meet the count exactly: add (densest-first probability) or remove random points.
        count = int(mask.sum())
        if count > n_target:
            removable = np.flatnonzero(mask & ~calib)
            mask.flat[rng.choice(removable, size=count - n_target, replace=False)] = False
        elif count < n_target:
            free = np.flatnonzero(~mask)
            p = 1 / profile.ravel()[free] ** 2
            mask.flat[rng.choice(free, size=n_target - count, replace=False, p=p / p.sum())] = True
        return mask


class RadialMask(MaskFunc):
    """Radial spokes through the k-space centre, rasterised on the Cartesian grid.

    Spoke ``i`` makes the angle ``theta_i = theta_0 + i * pi / n_lines`` (uniform) or
    ``theta_0 + i * golden_angle`` (``golden=True``, ``golden_angle = pi (3 - sqrt 5)``, about
    111.25 degrees, as in golden-angle radial acquisitions); ``theta_0`` is drawn from the
    seed. Each spoke marks the grid points nearest to the line through
    ``(H // 2, W // 2)``. Give ``n_lines``, or ``acceleration`` and the number of spokes is
    chosen so that ``H W / |Omega|`` is the closest to it (within half a spoke). The centre is
    densely sampled by construction, so there is no separate calibration region.
    """

    def __init__(
        self, acceleration: float | None = None, n_lines: int | None = None, golden: bool = False
    ):
        if (acceleration is None) == (n_lines is None):
            raise ValueError("give exactly one of acceleration or n_lines")
        if n_lines is not None:
            if isinstance(n_lines, bool) or not isinstance(n_lines, int) or n_lines < 1:
                raise ValueError(f"n_lines must be a positive integer, got {n_lines!r}")
            self.acceleration = None
            self.achieved_acceleration = None
        else:
            super().__init__(acceleration)
        self.n_lines = n_lines
        self.golden = bool(golden)

    def spokes(self, shape: tuple[int, int], n_lines: int, theta0: float = 0.0) -> np.ndarray:
        """The mask ``(H, W)`` bool of ``n_lines`` spokes starting at angle ``theta0``."""
        h, w = _check_shape(shape)
        step = GOLDEN_ANGLE if self.golden else math.pi / n_lines
        theta = theta0 + step * np.arange(n_lines)
        half = math.hypot(h, w) / 2
        t = np.arange(-half, half + 0.25, 0.25)
        rows = np.round(h // 2 + np.sin(theta)[:, None] * t[None, :]).astype(int)
        cols = np.round(w // 2 + np.cos(theta)[:, None] * t[None, :]).astype(int)
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        mask = np.zeros((h, w), dtype=bool)
        mask[rows[inside], cols[inside]] = True
        return mask

    def _draw(self, shape, rng):
        theta0 = float(rng.random() * math.pi)
        if self.n_lines is not None:
            return self.spokes(shape, self.n_lines, theta0)
        target = shape[0] * shape[1] / self.acceleration
        lo, hi = 1, 2 * max(shape) + 2
        # The number of points grows with the number of spokes: bisect, then keep the closer.
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.spokes(shape, mid, theta0).sum() < target:
                lo = mid
            else:
                hi = mid
        masks = [self.spokes(shape, n, theta0) for n in (lo, hi)]
        return min(masks, key=lambda m: abs(m.sum() - target))


# ----------------------------------------------------------------------------- factory, PSF
def make_mask(
    kind: str,
    shape: tuple[int, int],
    acceleration: float,
    center_fraction: float = 0.08,
    seed: int | None = 0,
) -> np.ndarray:
    """A mask ``(H, W)`` bool of one of :data:`MASK_KINDS` with the given acceleration.

    ``center_fraction`` is the fully sampled centre: a fraction of the columns (Cartesian
    kinds) or the side of the calibration square as a fraction of ``min(H, W)``
    (``"poisson"``); radial masks have no separate centre and ignore it.
    """
    if kind == "random":
        fn: MaskFunc = RandomCartesianMask(acceleration, center_fraction)
    elif kind == "equispaced":
        fn = EquispacedCartesianMask(acceleration, center_fraction)
    elif kind == "variable_density":
        fn = VariableDensityCartesianMask(acceleration, center_fraction)
    elif kind == "poisson":
        fn = PoissonDiscMask(acceleration, center_fraction)
    elif kind == "radial":
        fn = RadialMask(acceleration=acceleration)
    else:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {MASK_KINDS}")
    return fn(shape, seed=seed)


def point_spread_function(mask: np.ndarray) -> np.ndarray:
    """``|ifft2c(mask)|`` normalised to a peak of 1: the image of a point seen through the mask.

    ``mask`` ``(H, W)`` bool or 0/1; returns ``(H, W)`` float64 with the peak at
    ``(H // 2, W // 2)``. The zero-filled image is the true image convolved with it, so
    its side lobes are the aliasing.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D (H, W), got shape {mask.shape}")
    if not mask.any():
        raise ValueError("mask samples nothing: its point spread function is zero")
    psf = np.abs(ifft2c(mask.astype(np.float64)))
    return psf / psf.max()


def psf_sidelobe_to_peak(mask: np.ndarray, exclude: int = 1) -> float:
    """Largest side lobe of the PSF over its peak (Lustig et al. 2007's incoherence measure).

    The peak, at ``(H // 2, W // 2)``, and the pixels within ``exclude`` of it (the main
    lobe) are left out. Close to 1: coherent aliasing (a sharp ghost, e.g. equispaced
    sampling); small: incoherent, noise-like aliasing that sparsity can remove.
    """
    psf = point_spread_function(mask)
    h, w = psf.shape
    off = psf.copy()
    rows = slice(max(h // 2 - exclude, 0), h // 2 + exclude + 1)
    cols = slice(max(w // 2 - exclude, 0), w // 2 + exclude + 1)
    off[rows, cols] = 0
    return float(off.max())
