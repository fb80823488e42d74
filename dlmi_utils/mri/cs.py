"""Compressed-sensing reconstruction: ``min_x 1/2 ||A x - y||^2 + lambda R(x)``.

Every solver takes a physics object (anything with ``A`` and ``A_adjoint``, e.g.
:class:`dlmi_utils.mri.MRIForward`) and the measured k-space ``y``, starts from the
zero-filled image ``x_u = A^H y`` and returns a :class:`CSResult` (the image and a history).
The data term carries a ``1/2``, as in Lustig et al. (2007) and SigPy, so ``lam`` has the same
meaning as SigPy's ``lamda``. For images scaled to ``[0, 1]`` (orthonormal FFT), useful values
of ``lam`` are about ``1e-4`` to ``1e-2`` (``1e-3``, the default, is a good start).

- :func:`ista_wavelet`, :func:`fista_wavelet`: ``R(x) = ||W x||_1`` with ``W`` an orthonormal
  wavelet transform (PyWavelets, ``mode="periodization"``); the proximal step is the
  soft-thresholding of the complex wavelet coefficients by their magnitude
  (:func:`soft_threshold`, :class:`OrthoWavelet`). FISTA adds Nesterov's momentum (Beck &
  Teboulle 2009). ``random_shift`` (cycle spinning) makes the wavelet step shift-invariant on
  average: FISTA uses it by default, which gives SigPy's ``L1WaveletRecon`` quality at equal
  ``lam`` and iterations (``tests/test_cs.py``); ISTA keeps the fixed basis by default, so
  that its objective decreases at every iteration.
- :func:`tv_reconstruction`: ``R(x) = TV(x)``, the total variation of the complex image,
  solved by the primal-dual algorithm of Chambolle & Pock (2011).
- :func:`dictionary_learning_recon`: the course's dictionary-learning MRI (Ravishankar &
  Bresler 2011): learn a patch dictionary on the current image, sparse-code its patches, and
  enforce data consistency with the DC layer of :mod:`dlmi_utils.mri.dc`, a few times over
  (:func:`omp`, :func:`learn_dictionary`).

``history`` holds one entry per iteration: ``objective``, ``time`` (seconds in the solver
so far, metrics excluded) and ``psnr`` (dB, on magnitudes, when ``reference`` is given).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pywt
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from dlmi_utils.finite_differences import gradient_2d, gradient_2d_adjoint
from dlmi_utils.metrics import psnr as _psnr
from dlmi_utils.mri.dc import data_consistency


@dataclass
class CSResult:
    """A reconstruction ``image`` ``(H, W)`` complex and its per-iteration ``history``.

    ``history["objective"]``, ``history["time"]`` (cumulative seconds) and
    ``history["psnr"]`` (dB vs the reference; empty without one) are lists of floats.
    """

    image: np.ndarray
    history: dict[str, list[float]] = field(
        default_factory=lambda: {"objective": [], "psnr": [], "time": []}
    )

    @property
    def n_iter(self) -> int:
        """Number of iterations run (fewer than asked when ``tol`` stopped the solver)."""
        return len(self.history["objective"])


# ----------------------------------------------------------------------------- helpers
def soft_threshold(z, t):
    """Complex soft-thresholding ``z * max(0, 1 - t / |z|)``: shrink magnitudes by ``t``.

    The proximal operator of ``t ||z||_1`` (``|z|`` the complex modulus): the phase is kept,
    the magnitude becomes ``max(|z| - t, 0)``. ``z`` numpy array or torch tensor, real or
    complex, any shape; ``t >= 0`` a number or an array broadcastable to ``z``.
    """
    if isinstance(z, torch.Tensor):
        t = torch.as_tensor(t, dtype=z.real.dtype, device=z.device)
        if (t < 0).any():
            raise ValueError("soft_threshold: the threshold t must be >= 0")
        mag = z.abs()
        return z * torch.clamp(1 - t / torch.clamp(mag, min=1e-30), min=0)
    z = np.asarray(z)
    t = np.asarray(t)
    if (t < 0).any():
        raise ValueError("soft_threshold: the threshold t must be >= 0")
    mag = np.abs(z)
    return z * np.maximum(1 - t / np.maximum(mag, 1e-30), 0)


def _to_numpy(y) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    if isinstance(y, np.ndarray):
        return y
    raise TypeError(f"y must be a numpy array or a torch tensor, got {type(y).__name__}")


def _zero_filled(physics, y) -> np.ndarray:
    if not (hasattr(physics, "A") and hasattr(physics, "A_adjoint")):
        raise TypeError(
            f"physics must have A(x) and A_adjoint(y) (e.g. dlmi_utils.mri.MRIForward), "
            f"got {type(physics).__name__}"
        )
    x = _to_numpy(physics.A_adjoint(y))
    if x.ndim != 2:
        raise ValueError(
            f"the solvers reconstruct one image (H, W) at a time; A_adjoint(y) has shape "
            f"{x.shape}: loop over the batch"
        )
    return x


def _lipschitz(physics, x: np.ndarray, n_power: int = 30) -> float:
    """``||A^H A||``: the physics' own bound if it has one, else power iteration (+2%)."""
    bound = getattr(physics, "lipschitz", None)
    if bound is not None:
        return float(bound)
    v = np.random.default_rng(0).standard_normal(x.shape).astype(x.dtype)
    eig = 1.0
    for _ in range(n_power):
        v = _to_numpy(physics.A_adjoint(physics.A(v)))
        eig = float(np.linalg.norm(v))
        if eig == 0:
            raise ValueError("A^H A is zero: the mask samples nothing")
        v /= eig
    return 1.02 * eig


class _Tracker:
    """Objective, cumulative solver time and PSNR (on magnitudes) per iteration."""

    def __init__(self, reference, n_iter: int, progress: bool, desc: str):
        self.history = {"objective": [], "psnr": [], "time": []}
        self.ref = None
        if reference is not None:
            self.ref = np.abs(_to_numpy(reference))
            self.data_range = float(self.ref.max() - self.ref.min())
        self.bar = tqdm(total=n_iter, desc=desc, disable=not progress, leave=False)
        self.elapsed = 0.0
        self.start = time.perf_counter()

    def check_shape(self, shape) -> None:
        if self.ref is not None and self.ref.shape != tuple(shape):
            raise ValueError(
                f"reference of shape {self.ref.shape} does not match the image {tuple(shape)}"
            )

    def log(self, objective: float, x: np.ndarray) -> None:
        self.elapsed += time.perf_counter() - self.start
        self.history["objective"].append(float(objective))
        self.history["time"].append(self.elapsed)
        if self.ref is not None:
            self.history["psnr"].append(_psnr(self.ref, np.abs(x), data_range=self.data_range))
            self.bar.set_postfix(psnr=f"{self.history['psnr'][-1]:.2f} dB")
        self.bar.update()
        self.start = time.perf_counter()

    def close(self) -> None:
        self.bar.close()


def _check_common(lam: float, n_iter: int, tol: float) -> None:
    if not (isinstance(lam, (int, float)) and lam >= 0):
        raise ValueError(f"lam must be a number >= 0, got {lam!r}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")


def _converged(x_new: np.ndarray, x: np.ndarray, tol: float) -> bool:
    return tol > 0 and np.linalg.norm(x_new - x) <= tol * max(np.linalg.norm(x), 1e-30)


# ----------------------------------------------------------------------------- wavelets
class OrthoWavelet:
    """Orthonormal 2D wavelet transform ``W`` of complex images (PyWavelets, periodization).

    ``forward(x)``: image ``(H, W)`` -> coefficient array ``(H, W)`` (PyWavelets'
    ``coeffs_to_array`` layout); ``inverse`` undoes it. The real and imaginary parts are
    transformed separately (``W`` is real), so ``W^H W = W W^H = I`` and
    ``||W x||_2 = ||x||_2``. Needs ``H`` and ``W`` divisible by ``2**levels``: the number of
    levels is lowered until they are.
    """

    def __init__(self, shape: tuple[int, int], wavelet: str = "db4", levels: int = 4):
        h, w = shape
        if h % 2 or w % 2:
            raise ValueError(
                f"an orthonormal wavelet transform needs even sizes, got {shape}: crop or pad "
                "the image by one row/column"
            )
        max_level = pywt.dwtn_max_level(shape, wavelet)
        levels = max(1, min(levels, max_level))
        while levels > 1 and (h % 2**levels or w % 2**levels):
            levels -= 1
        self.pywt, self.wavelet, self.levels, self.shape = pywt, wavelet, levels, tuple(shape)
        coeffs = pywt.wavedec2(np.zeros(shape), wavelet, mode="periodization", level=levels)
        _, self.slices = pywt.coeffs_to_array(coeffs)

    def forward(self, x: np.ndarray) -> np.ndarray:
        coeffs = self.pywt.wavedec2(x, self.wavelet, mode="periodization", level=self.levels)
        return self.pywt.coeffs_to_array(coeffs)[0]

    def inverse(self, c: np.ndarray) -> np.ndarray:
        coeffs = self.pywt.array_to_coeffs(c, self.slices, output_format="wavedec2")
        return self.pywt.waverec2(coeffs, self.wavelet, mode="periodization")


def ista_step(x: np.ndarray, y: np.ndarray, physics, wavelet: OrthoWavelet, lam: float,
              alpha: float) -> np.ndarray:
    """One ISTA iteration for ``1/2 ||A x - y||^2 + lam ||W x||_1`` with step ``alpha``.

    ``W^T soft(W (x - alpha A^H (A x - y)), lam alpha)``: a gradient step on the data term,
    then the proximal step of the l1 term. ``x`` ``(H, W)`` complex, ``y`` the measured
    k-space; :func:`ista_wavelet` repeats it (keeping ``A x`` from one iteration to the next).
    """
    z = x - alpha * _to_numpy(physics.A_adjoint(_to_numpy(physics.A(x)) - y))
    return wavelet.inverse(soft_threshold(wavelet.forward(z), lam * alpha))


def _wavelet_solver(
    physics,
    y,
    lam,
    n_iter,
    tol,
    wavelet,
    levels,
    step,
    random_shift,
    seed,
    reference,
    progress,
    accelerate: bool,
) -> CSResult:
    _check_common(lam, n_iter, tol)
    y = _to_numpy(y)
    x = _zero_filled(physics, y)
    W = OrthoWavelet(x.shape, wavelet, levels)
    step = 1 / _lipschitz(physics, x) if step is None else float(step)
    rng = np.random.default_rng(seed)
    name = "FISTA" if accelerate else "ISTA"
    track = _Tracker(reference, n_iter, progress, f"{name} wavelet")
    track.check_shape(x.shape)
    ax = _to_numpy(physics.A(x))
    v, av, t = x, ax, 1.0
    for _ in range(n_iter):
        grad = _to_numpy(physics.A_adjoint(av - y))
        z = v - step * grad
        if random_shift:  # a circular shift is unitary: still an exact proximal step
            shift = tuple(int(s) for s in rng.integers(0, 2**W.levels, size=2))
            c = soft_threshold(W.forward(np.roll(z, shift, axis=(0, 1))), lam * step)
            x_new = np.roll(W.inverse(c), (-shift[0], -shift[1]), axis=(0, 1))
        else:
            c = soft_threshold(W.forward(z), lam * step)
            x_new = W.inverse(c)
        l1 = np.abs(c).sum()  # = ||W x_new||_1 (of the shifted x_new): W is orthonormal
        x_new = x_new.astype(x.dtype, copy=False)
        ax_new = _to_numpy(physics.A(x_new))
        objective = 0.5 * np.linalg.norm(ax_new - y) ** 2 + lam * l1
        if accelerate:
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            beta = (t - 1) / t_new
            # A is linear: A v follows from A x without another FFT
            v, av, t = x_new + beta * (x_new - x), ax_new + beta * (ax_new - ax), t_new
        else:
            v, av = x_new, ax_new
        done = _converged(x_new, x, tol)
        x, ax = x_new, ax_new
        track.log(objective, x)
        if done:
            break
    track.close()
    return CSResult(x, track.history)


def ista_wavelet(
    physics,
    y,
    lam: float = 1e-3,
    n_iter: int = 100,
    tol: float = 0.0,
    wavelet: str = "db4",
    levels: int = 4,
    step: float | None = None,
    random_shift: bool = False,
    seed: int = 0,
    reference=None,
    progress: bool = False,
) -> CSResult:
    """ISTA for ``min_x 1/2 ||A x - y||^2 + lam ||W x||_1`` (``W`` orthonormal wavelets).

    ``x_{k+1} = W^H soft(W (x_k - step A^H (A x_k - y)), lam step)`` from ``x_0 = A^H y``,
    with ``step = 1 / L``, ``L`` the physics' ``lipschitz`` bound (1 for a mask-only
    operator) or a power-iteration estimate of ``||A^H A||``. The objective decreases at
    every iteration. Stops after ``n_iter`` iterations or when
    ``||x_{k+1} - x_k|| <= tol ||x_k||``. ``y`` k-space as ``physics.A`` returns it;
    ``reference`` ``(H, W)`` for the PSNR history. Returns a :class:`CSResult`.

    ``random_shift=True`` ("cycle spinning", as in BART's ``pics``): each iteration shifts the
    image circularly by a random ``(dy, dx)`` in ``[0, 2^levels)`` before the wavelet step
    and back after it. A decimated wavelet basis is not shift-invariant; averaging over
    shifts removes its blocky artefacts and usually gains several dB. The objective then
    changes from one iteration to the next: ``history["objective"]`` uses the wavelet basis
    of each iteration's shift (it costs nothing: ``||W x||_1`` is the thresholded
    coefficients' norm) and is no longer monotone; ``seed`` draws the shifts.
    """
    return _wavelet_solver(
        physics,
        y,
        lam,
        n_iter,
        tol,
        wavelet,
        levels,
        step,
        random_shift,
        seed,
        reference,
        progress,
        False,
    )


def fista_wavelet(
    physics,
    y,
    lam: float = 1e-3,
    n_iter: int = 100,
    tol: float = 0.0,
    wavelet: str = "db4",
    levels: int = 4,
    step: float | None = None,
    random_shift: bool = True,
    seed: int = 0,
    reference=None,
    progress: bool = False,
) -> CSResult:
    """FISTA (Beck & Teboulle 2009): ISTA on an extrapolated point, ``O(1/k^2)`` convergence.

    ``x_{k+1} = W^H soft(W (v_k - step A^H (A v_k - y)), lam step)``,
    ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``,
    ``v_{k+1} = x_{k+1} + (t_k - 1) / t_{k+1} (x_{k+1} - x_k)``. Same arguments as
    :func:`ista_wavelet`, except that the random shifts are on by default (``seed`` draws
    them): a decimated wavelet basis alone leaves blocky artefacts and falls below SigPy's
    ``L1WaveletRecon`` at equal ``lam`` and iterations; with the shifts it matches it.
    ``random_shift=False`` gives the plain algorithm, whose objective converges to the fixed
    basis' minimum. One ``A``, one ``A^H`` and one wavelet pair per iteration.
    """
    return _wavelet_solver(
        physics,
        y,
        lam,
        n_iter,
        tol,
        wavelet,
        levels,
        step,
        random_shift,
        seed,
        reference,
        progress,
        True,
    )


# ----------------------------------------------------------------------------- total variation
def total_variation(x: np.ndarray, isotropic: bool = True) -> float:
    """``TV(x) = sum_pixels sqrt(|D_v x|^2 + |D_h x|^2)`` (isotropic) or ``|D_v x| + |D_h x|``."""
    g = gradient_2d(np.asarray(x))
    if isotropic:
        return float(np.sqrt((np.abs(g) ** 2).sum(axis=0)).sum())
    return float(np.abs(g).sum())


def tv_step_sizes(
    x_u: np.ndarray, lam: float, lipschitz: float = 1.0, sigma: float | None = None
) -> tuple[float, float]:
    """``(sigma, tau)`` of :func:`tv_reconstruction`, ``tau sigma (lipschitz + 8) = 1``.

    Without ``sigma``, the balanced choice ``tau / sigma = ||x_u|| / (lam sqrt(2 H W))``
    from the zero-filled image ``x_u`` (also handy to give SigPy's PDHG the same steps).
    """
    norm_k = lipschitz + 8  # ||K||^2 <= ||A||^2 + ||D||^2, ||D||^2 <= 8
    if sigma is None:
        ratio = float(np.linalg.norm(x_u)) / max(lam * math.sqrt(2 * np.size(x_u)), 1e-12)
        ratio = ratio if ratio > 0 else 1.0
        sigma = 1 / math.sqrt(ratio * norm_k)
    return float(sigma), 1 / (sigma * norm_k)


def tv_reconstruction(
    physics,
    y,
    lam: float = 1e-3,
    n_iter: int = 100,
    tol: float = 0.0,
    isotropic: bool = True,
    sigma: float | None = None,
    reference=None,
    progress: bool = False,
) -> CSResult:
    """TV-regularised reconstruction ``min_x 1/2 ||A x - y||^2 + lam TV(x)``, complex ``x``.

    Chambolle-Pock primal-dual with ``K = [A; D]`` (``D`` forward differences, ``||D||^2 <=
    8``) and dual variables ``p`` (k-space) and ``q`` (gradients)::

        p <- (p + sigma (A xbar - y)) / (1 + sigma)         (prox of the data term's conjugate)
        q <- project(q + sigma D xbar) onto |q| <= lam      (pixelwise; per component if
                                                             isotropic=False)
        x_new = x - tau (A^H p + D^H q),  xbar = 2 x_new - x

    with ``tau sigma (L + 8) = 1`` (``L`` as in :func:`ista_wavelet`). The split between
    ``tau`` and ``sigma`` sets the speed: by default (``sigma=None``) they balance the scales of
    the primal and dual variables, ``tau / sigma = ||x_u|| / (lam sqrt(2 H W))`` (``|q| <=
    lam`` per pixel), which does not depend on the image scale. On the labs' 256 x 256 brain
    slices, 100 iterations with ``sigma = 1`` (SigPy's default) gain 0.2 to 2.8 dB over zero
    filling where the balanced steps gain 2.9 to 18 dB (``benchmarks/README.md``).

    The isotropic TV takes ``|q| = sqrt(|q_v|^2 + |q_h|^2)`` over both directions and both
    real and imaginary parts; ``isotropic=False`` gives the anisotropic ``|D_v x| + |D_h x|``
    (SigPy's ``TotalVariationRecon``). Other arguments as in :func:`ista_wavelet`.
    """
    _check_common(lam, n_iter, tol)
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be None or > 0, got {sigma!r}")
    y = _to_numpy(y)
    x = _zero_filled(physics, y)
    lipschitz = _lipschitz(physics, x)
    sigma, tau = tv_step_sizes(x, lam, lipschitz, sigma)
    track = _Tracker(reference, n_iter, progress, "TV (Chambolle-Pock)")
    track.check_shape(x.shape)
    p = np.zeros_like(y, dtype=np.result_type(y.dtype, x.dtype))
    q = np.zeros((2, *x.shape), dtype=x.dtype)
    ax, dx = _to_numpy(physics.A(x)), gradient_2d(x)
    axbar, dxbar = ax, dx
    for _ in range(n_iter):
        p = (p + sigma * (axbar - y)) / (1 + sigma)
        q = q + sigma * dxbar
        norm = np.sqrt((np.abs(q) ** 2).sum(axis=0, keepdims=True)) if isotropic else np.abs(q)
        q = q / np.maximum(norm / lam, 1) if lam > 0 else np.zeros_like(q)
        x_new = x - tau * (_to_numpy(physics.A_adjoint(p)) + gradient_2d_adjoint(q))
        ax_new, dx_new = _to_numpy(physics.A(x_new)), gradient_2d(x_new)
        # A and D are linear: A xbar and D xbar follow without another transform
        axbar, dxbar = 2 * ax_new - ax, 2 * dx_new - dx
        tv = np.sqrt((np.abs(dx_new) ** 2).sum(axis=0)).sum() if isotropic else np.abs(dx_new).sum()
        objective = 0.5 * np.linalg.norm(ax_new - y) ** 2 + lam * tv
        done = _converged(x_new, x, tol)
        x, ax, dx = x_new, ax_new, dx_new
        track.log(objective, x)
        if done:
            break
    track.close()
    return CSResult(x, track.history)


# ----------------------------------------------------------------------------- dictionary
def _patch_starts(n: int, patch: int, stride: int) -> np.ndarray:
    starts = np.arange(0, n - patch + 1, stride)
    if starts[-1] != n - patch:  # cover the last rows/columns too
        starts = np.append(starts, n - patch)
    return starts


def _extract(x: np.ndarray, patch: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Patches ``(N, 2 patch^2)`` real: real parts then imaginary parts."""
    view = np.lib.stride_tricks.sliding_window_view(x, (patch, patch))[np.ix_(rows, cols)]
    flat = view.reshape(-1, patch * patch)
    return np.concatenate([flat.real, flat.imag], axis=1)


def _assemble(patches, shape, patch, rows, cols, dtype) -> np.ndarray:
    """Average overlapping patches ``(N, 2 patch^2)`` back into a complex image."""
    n = patch * patch
    cplx = (patches[:, :n] + 1j * patches[:, n:]).reshape(len(rows), len(cols), patch, patch)
    out = np.zeros(shape, dtype=dtype)
    count = np.zeros(shape)
    for dy in range(patch):
        for dx in range(patch):
            idx = np.ix_(rows + dy, cols + dx)
            out[idx] += cplx[:, :, dy, dx]
            count[idx] += 1
    return out / count


def omp(
    dictionary: np.ndarray, signals: np.ndarray, sparsity: int, tol: float | None = None
) -> np.ndarray:
    """Orthogonal matching pursuit for many signals at once: codes ``(N, K)``.

    ``dictionary`` ``(K, d)`` with unit-norm rows (atoms), ``signals`` ``(N, d)`` real. Each
    signal gets at most ``sparsity`` atoms: pick the atom most correlated with the residual,
    re-fit the coefficients of the chosen atoms by least squares, repeat; with ``tol``, a
    signal stops as soon as its residual ``||r||^2 <= tol``. Vectorised over the signals (the
    same result as scikit-learn's ``orthogonal_mp_gram``, several times faster).
    """
    n_signals, n_atoms = signals.shape[0], dictionary.shape[0]
    gram = dictionary @ dictionary.T
    corr0 = signals @ dictionary.T
    energy = np.einsum("nd,nd->n", signals, signals)
    corr = corr0.copy()
    rows = np.arange(n_signals)[:, None]
    chosen = np.zeros((n_signals, 0), dtype=int)
    coef = np.zeros((n_signals, 0))
    codes = np.zeros((n_signals, n_atoms))
    active = np.ones(n_signals, dtype=bool)
    for t in range(min(sparsity, n_atoms) + 1):
        if tol is not None:
            residual = energy - np.einsum("nt,nt->n", coef, corr0[rows, chosen])
            stop = active & (residual <= tol)
            if stop.any():  # freeze these codes: later steps only touch the active signals
                codes[np.flatnonzero(stop)[:, None], chosen[stop]] = coef[stop]
                active &= ~stop
        if t == min(sparsity, n_atoms) or not active.any():
            break
        chosen = np.concatenate([chosen, np.abs(corr).argmax(axis=1)[:, None]], axis=1)
        # the tiny ridge keeps the solve defined when a residual is already zero
        sub = gram[chosen[:, :, None], chosen[:, None, :]] + 1e-10 * np.eye(t + 1)
        coef = np.linalg.solve(sub, corr0[rows, chosen][..., None])[..., 0]
        corr = corr0 - np.einsum("nt,ntk->nk", coef, gram[chosen])
        corr[rows, chosen] = 0
    left = np.flatnonzero(active)
    codes[left[:, None], chosen[left]] = coef[left]
    return codes


def learn_dictionary(
    patches: np.ndarray,
    n_atoms: int,
    sparsity: int,
    n_epochs: int,
    init: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A dictionary ``(n_atoms, d)`` (unit rows) for ``patches`` ``(N, d)``: MOD (Engan 1999).

    Alternates ``n_epochs`` times: sparse coding ``C`` of all patches with :func:`omp`, then
    the Method of Optimal Directions, the least-squares dictionary
    ``D = (C^T C)^{-1} C^T X``, rows renormalised; an atom no patch uses is replaced by a
    random patch. Starts from ``init`` or from ``n_atoms`` random patches.
    """
    rng = np.random.default_rng(seed)
    if init is None:
        init = patches[rng.choice(len(patches), n_atoms, replace=len(patches) < n_atoms)]
    D = init / np.maximum(np.linalg.norm(init, axis=1, keepdims=True), 1e-12)
    for _ in range(n_epochs):
        codes = omp(D, patches, sparsity)
        D = np.linalg.solve(codes.T @ codes + 1e-8 * np.eye(n_atoms), codes.T @ patches)
        norms = np.linalg.norm(D, axis=1)
        unused = norms < 1e-8
        if unused.any():
            D[unused] = patches[rng.choice(len(patches), int(unused.sum()))]
            norms[unused] = np.linalg.norm(D[unused], axis=1)
        D /= np.maximum(norms, 1e-12)[:, None]
    return D


# Many small matrix products: BLAS threads cost more than they give (10x on 2 busy cores).
@threadpool_limits.wrap(limits=1, user_api="blas")
def dictionary_learning_recon(
    physics,
    y,
    n_iter: int = 10,
    patch_size: int = 6,
    stride: int = 2,
    n_atoms: int = 128,
    sparsity: int = 5,
    error_rms=None,
    lam: float | None = None,
    n_train: int = 4000,
    dict_epochs: int = 5,
    tol: float = 0.0,
    seed: int = 0,
    reference=None,
    progress: bool = False,
) -> CSResult:
    """Dictionary-learning MRI (DLMRI, Ravishankar & Bresler 2011), as in the course.

    Starting from ``x = x_u`` (zero-filled), each of the ``n_iter`` iterations:

    1. extracts the ``patch_size x patch_size`` patches of ``x`` every ``stride`` pixels and
       removes each patch's mean (kept aside: the DC is not sparse-coded);
    2. learns a dictionary ``D`` of ``n_atoms`` atoms on ``n_train`` random patches
       (:func:`learn_dictionary`, ``dict_epochs`` passes, warm-started from the previous
       iteration's ``D``);
    3. sparse-codes every patch with at most ``sparsity`` atoms (:func:`omp`), stopping as
       soon as the residual's RMS per value falls below ``error_rms * max|x_u|``, and averages
       the overlapping coded patches into ``x_D``. The error threshold is what removes the
       aliasing: a flat patch is coded by its mean alone, its noise-like aliasing is dropped.
       ``error_rms`` is a number or one number per iteration; the default decreases
       geometrically from 0.03 to 0.005 (coarse first, finer details later);
    4. enforces data consistency, :func:`dlmi_utils.mri.dc.data_consistency` (the DC layer
       of Lab 03): for one coil, with ``s = F x_D``, ``s(j) = y(j)`` on the sampled set
       ``Omega`` (``lam=None``, noiseless data) or ``s(j) = (s(j) + lam y(j)) / (1 + lam)``
       (noisy data; the slides' ``nu``), unchanged elsewhere; ``x = F^H s``. With coils, its
       least-squares form.

    A complex patch is handled as one real vector, its real parts followed by its imaginary
    parts (``2 patch_size^2`` values), so an atom carries a phase pattern too. ``physics``
    is the :class:`~dlmi_utils.mri.MRIForward` that measured ``y`` (the DC step needs its
    mask). ``history["objective"]`` is the sparse approximation error
    ``sum ||R_ij x - D alpha_ij||^2`` of the iteration. A few seconds for a 256 x 256 image on
    2 CPU cores with the defaults.
    """
    _check_common(0.0, n_iter, tol)
    if lam is not None and not lam >= 0:
        raise ValueError(f"lam must be None (noiseless data) or >= 0, got {lam!r}")
    sizes = {
        "patch_size": patch_size,
        "stride": stride,
        "n_atoms": n_atoms,
        "sparsity": sparsity,
        "n_train": n_train,
        "dict_epochs": dict_epochs,
    }
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    y = _to_numpy(y)
    x = _zero_filled(physics, y)
    if min(x.shape) < patch_size:
        raise ValueError(f"patch_size={patch_size} is larger than the image {x.shape}")
    if error_rms is None:
        error_rms = np.geomspace(0.03, 0.005, n_iter)
    errors = np.asarray(error_rms, dtype=float)
    if errors.ndim > 1 or (errors.ndim == 1 and len(errors) != n_iter):
        raise ValueError(
            f"error_rms must be one number or one per iteration ({n_iter}), got {error_rms}"
        )
    errors = np.broadcast_to(errors, (n_iter,))
    if (errors < 0).any():
        raise ValueError(
            f"error_rms must be >= 0 (one value, or one per iteration), got {error_rms}"
        )
    errors = errors * float(np.abs(x).max())
    rows = _patch_starts(x.shape[0], patch_size, stride)
    cols = _patch_starts(x.shape[1], patch_size, stride)
    n = patch_size * patch_size
    rng = np.random.default_rng(seed)
    track = _Tracker(reference, n_iter, progress, "dictionary learning")
    track.check_shape(x.shape)
    D = None
    for it in range(n_iter):
        patches = _extract(x, patch_size, rows, cols)
        means = np.repeat(
            np.stack([patches[:, :n].mean(1), patches[:, n:].mean(1)], axis=1), n, axis=1
        )
        centred = patches - means
        train = centred[rng.choice(len(centred), min(n_train, len(centred)), replace=False)]
        D = learn_dictionary(train, n_atoms, sparsity, dict_epochs, init=D, seed=seed)
        coded = omp(D, centred, sparsity, tol=errors[it] ** 2 * centred.shape[1]) @ D
        objective = float(np.sum((coded - centred) ** 2))
        x_d = _assemble(coded + means, x.shape, patch_size, rows, cols, x.dtype)
        x_new = data_consistency(x_d, y, physics, lam).astype(x.dtype, copy=False)
        done = _converged(x_new, x, tol)
        x = x_new
        track.log(objective, x)
        if done:
            break
    track.close()
    return CSResult(x, track.history)
