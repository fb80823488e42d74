"""Classical low-dose CT: BM3D told the noise power spectrum of FBP, and TV-regularised
iterative reconstruction from the sinogram.

**BM3D on FBP images.** FBP noise is coloured by the ramp filter (its power rises with
frequency) and correlated along the rays; BM3D (Makitalo & Foi, the ``bm3d`` package) can be
told its power spectral density, in the package's convention: for noise ``n`` of the image's
shape ``(H, W)``::

    PSD(k) = E |DFT(n)(k)|^2            (unshifted: zero frequency at [0, 0]; intensity^2)

so white noise of SD ``s`` has ``PSD = H W s^2`` everywhere, the flat PSD that
``bm3d.bm3d(z, s)`` builds from ``s``. For a square image it is the NPS of
:mod:`dlmi_utils.ct.noise_texture` without the pixel area: ``PSD = ifftshift(NPS) N^2 /
Delta^2``. :func:`fbp_noise_psd` finds it from the physics, never from a reference image:
noise-only reconstructions ``reconstruct_hu(y_r) - reconstruct_hu(p)`` of sinograms ``y_r``
drawn at ``I0`` around the line integrals ``p`` of the slice (pass the *measured* sinogram:
the counts, hence the noise, depend on the patient, and a scanner knows its own counts).
:func:`bm3d_denoise` runs BM3D on ``HU / HU_SCALE`` (water 0, air -1) with the PSD divided by
``HU_SCALE^2``, or with one white-noise SD (the blind variant: :func:`blind_white_sigma`,
scikit-image's wavelet estimate, which assumes white noise).

**TV-regularised reconstruction.** With ``x`` the image in HU, ``Delta`` the pixel size (mm),
``c = Delta mu_water`` and ``A`` the projector (:class:`dlmi_utils.ct.ParallelBeamProjector`),
the line integrals are affine in ``x``: ``p = c A(1 + x / 1000)``. :func:`tv_reconstruct`
solves, for a measured sinogram ``y``::

    min_{x >= -1000 HU}  1/2 sum_i w_i ((K x)_i - b_i)^2 + lam TV(x)
    K = (c / 1000) A,   b = y - c A(1),   TV(x) = sum_pixels |D x|   (isotropic, HU)

with weights ``w = I0 exp(-y)``, the counts that each ray detected (``var(y_i) ~ 1 / w_i``:
weighted least squares, the quadratic approximation of the Poisson likelihood). With the
counts as weights the data term is a chi-square (about half a unit per ray at the truth), so
``lam`` (per HU of total variation) is the strength of the prior and means the same at every
dose. The solver is PDHG (Chambolle & Pock 2011) with ``K`` and ``D`` as two dual blocks,
started from the FBP of ``y``::

    q1 <- (q1 + s1 (W^(1/2) K xbar - W^(1/2) b)) / (1 + s1)
    q2 <- project(q2 + s2 D xbar) onto |q2| <= lam              (per pixel)
    x  <- max(x - tau (K^T W^(1/2) q1 + D^T q2), -1000),   xbar = 2 x_new - x

with ``s1 = 1 / (r ||W^(1/2) K||)``, ``s2 = 1 / (r ||D||)``, ``tau = r / (||W^(1/2) K|| +
||D||)`` (so ``tau (s1 ||W^(1/2) K||^2 + s2 ||D||^2) = 1``, the convergence condition);
``||W^(1/2) K||`` is estimated by power iteration, ``||D|| = sqrt(8)``, and ``r``
(:data:`TV_STEP_RATIO`, HU per unit of dual variable) balances the primal and dual scales. It
stops after ``n_iter`` iterations or once the RMS change of ``x`` in one iteration falls below
``tol`` HU. ``lam`` and ``r`` were chosen on a training slice (``ct_head``), not on the slice
that ``benchmarks/ldct.py`` holds out.
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import numpy as np
import torch
from skimage.restoration import estimate_sigma

from dlmi_utils.ct.dose import (
    ELECTRONIC_SIGMA,
    MU_WATER,
    _pixel_size,
    noisy_sinogram,
    reconstruct_hu,
)
from dlmi_utils.ct.noise_texture import noise_power_spectrum
from dlmi_utils.ct.physics import ParallelBeamProjector
from dlmi_utils.finite_differences import gradient_2d, gradient_2d_adjoint
from dlmi_utils.noise import Seed, numpy_generator

HU_SCALE = 1000.0
"""BM3D works on ``HU / HU_SCALE``: water 0, air -1, bone about 1."""
TV_LAMBDA = 0.05
"""Default ``lam`` of :func:`tv_reconstruct` with count weights (per HU of total variation)."""
TV_STEP_RATIO = 30.0
"""Default ``r`` of :func:`tv_reconstruct` (HU per unit of dual variable): the primal step
over the dual ones; 30 converges fastest of 3 to 300 on the training slice."""
AIR_MU_HU = -1000.0
"""The least HU a reconstruction can hold: ``mu = 0``."""


# ----------------------------------------------------------------------------- BM3D
def noise_psd(noise) -> np.ndarray:
    """The PSD of noise images ``(N, N)`` or ``(R, N, N)`` in ``bm3d``'s convention
    (``mean_r |DFT(n_r)|^2``, unshifted, each image less its mean): ``(N, N)`` float64, in the
    unit of ``noise`` squared. :func:`noise_power_spectrum` rescaled (see the module's doc)."""
    shape = np.shape(noise)
    if len(shape) not in (2, 3) or shape[-1] != shape[-2]:
        raise ValueError(f"noise must be square images (N, N) or (R, N, N), got shape {shape}")
    nps = noise_power_spectrum(noise, pixel_size_mm=1.0)
    return np.fft.ifftshift(nps.nps_2d) * shape[-1] ** 2


def fbp_noise_psd(
    p,
    projector: ParallelBeamProjector,
    pixel_size_mm,
    I0: float,
    n_draws: int = 4,
    filter: str = "ramp",
    electronic_sigma: float = ELECTRONIC_SIGMA,
    seed: Seed = 0,
    region=None,
) -> np.ndarray:
    """The PSD (HU^2, ``bm3d``'s convention) of FBP noise at ``I0`` photons per ray, simulated.

    ``p``: line integrals ``(n_angles, n_detectors)`` of the slice, the measured sinogram
    (what a scanner has) or the noiseless one. ``n_draws`` sinograms are drawn around ``p``
    (:func:`dlmi_utils.ct.noisy_sinogram`, numpy ``seed``) and reconstructed with ``filter``;
    their differences to the FBP of ``p`` are the noise-only images whose PSD is averaged.
    ``region``: a boolean mask ``(H, W)`` (e.g. the body, found on the low-dose image): the
    PSD keeps its shape but is scaled to mean the noise variance inside it. FBP noise is not
    stationary (far lower in the air around the patient than inside), and the whole image's
    PSD would tell BM3D too little noise where it matters. Returns ``(H, W)`` float64 for a
    square image ``H = W``.
    """
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().numpy()
    p = np.asarray(p, dtype=np.float32)
    if p.shape != projector.sinogram_shape:
        raise ValueError(f"p must be one sinogram {projector.sinogram_shape} of the projector, "
                         f"got shape {p.shape}")
    if projector.shape[0] != projector.shape[1]:
        raise ValueError(f"the PSD is for square images, the projector's are {projector.shape}")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
    if region is not None:
        region = np.asarray(region)
        if region.dtype != bool or region.shape != projector.shape or not region.any():
            raise ValueError(f"region must be a non-empty boolean mask {projector.shape}, got "
                             f"{region.dtype} {region.shape}")
    rng = numpy_generator(seed, "fbp_noise_psd")
    draws = noisy_sinogram(np.broadcast_to(p, (n_draws, *p.shape)), I0, electronic_sigma, rng)
    images = reconstruct_hu(np.concatenate([p[None], draws]), projector, pixel_size_mm, filter)
    noise = images[1:] - images[:1]
    psd = noise_psd(noise)
    if region is None:
        return psd
    # PSD.mean() / (H W) is the variance that the PSD means (Parseval)
    return psd * (np.var(noise[:, region], dtype=np.float64) / (psd.mean() / psd.size))


def blind_white_sigma(image_hu) -> float:
    """The noise SD (HU) that a white-noise assumption reads from the image alone: scikit-image's
    ``estimate_sigma`` (median absolute deviation of the finest diagonal wavelet band)."""
    image = _image_2d(image_hu, "blind_white_sigma")
    return float(estimate_sigma(image / HU_SCALE)) * HU_SCALE


def bm3d_denoise(image_hu, noise, profile: str = "np") -> np.ndarray:
    """BM3D of an image ``(H, W)`` in HU, told its noise: a PSD ``(H, W)`` in HU^2
    (:func:`fbp_noise_psd`) or one white-noise SD in HU (e.g. :func:`blind_white_sigma`).

    Runs on ``HU / HU_SCALE`` with the noise rescaled alike; returns ``(H, W)`` float32 HU.
    Needs the ``bm3d`` package (``pip install bm3d``).
    """
    try:
        import bm3d  # optional dependency: the package imports without it
    except ImportError as error:
        raise ImportError("bm3d_denoise needs the bm3d package: pip install bm3d") from error
    image = _image_2d(image_hu, "bm3d_denoise")
    if np.ndim(noise) == 0:
        sigma = float(noise)
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"bm3d_denoise: a noise SD must be positive (HU), got {noise!r}")
        scaled_noise = sigma / HU_SCALE
    else:
        psd = np.asarray(noise, dtype=np.float64)
        if psd.shape != image.shape:
            raise ValueError(f"bm3d_denoise: the PSD must have the image's shape {image.shape}, "
                             f"got {psd.shape}")
        if not (np.isfinite(psd).all() and (psd >= 0).all() and psd.max() > 0):
            raise ValueError("bm3d_denoise: the PSD must be finite, non-negative and not zero")
        scaled_noise = psd / HU_SCALE**2
    with _numpy_trapz():
        out = bm3d.bm3d(image / HU_SCALE, sigma_psd=scaled_noise, profile=profile)
    return (np.asarray(out) * HU_SCALE).astype(np.float32)


@contextlib.contextmanager
def _numpy_trapz():
    """``np.trapz`` while BM3D runs: ``bm4d`` (4.2.5, the latest) calls it on a PSD, and numpy
    2.4 removed it in favour of ``np.trapezoid``, the same function."""
    missing = not hasattr(np, "trapz")
    if missing:
        np.trapz = np.trapezoid
    try:
        yield
    finally:
        if missing:
            del np.trapz


# ----------------------------------------------------------------------------- TV
class TVReconstruction(NamedTuple):
    """``hu``: the image ``(H, W)`` in HU (numpy or torch, like ``y``); ``objective``: the
    objective at the start (FBP) and after each iteration; ``change``: the RMS change of the
    image in each iteration (HU); ``n_iter``: iterations run."""

    hu: np.ndarray | torch.Tensor
    objective: list[float]
    change: list[float]
    n_iter: int


def count_weights(y, I0: float):
    """``w = I0 exp(-y)``: the counts behind each ray of a measured sinogram ``y`` (``var(y) ~
    1 / w``), the weights of :func:`tv_reconstruct`; the kind and shape of ``y``."""
    _check_I0(I0)
    return I0 * (torch.exp(-y) if isinstance(y, torch.Tensor) else np.exp(-np.asarray(y)))


def tv_reconstruct(
    y,
    projector: ParallelBeamProjector,
    pixel_size_mm,
    I0: float,
    lam: float = TV_LAMBDA,
    n_iter: int = 100,
    tol: float = 0.1,
    step_ratio: float = TV_STEP_RATIO,
    mu_water: float = MU_WATER,
) -> TVReconstruction:
    """TV-regularised weighted least squares from a measured sinogram, by PDHG (module's doc).

    ``y``: ``(n_angles, n_detectors)`` line integrals ``-log(k / I0)``; ``I0``: photons per ray,
    for the count weights ``I0 exp(-y)``; ``lam >= 0`` per HU of total variation; stops after
    ``n_iter`` iterations or when the RMS change of one iteration is below ``tol`` HU (0: never).
    Starts from the FBP (ramp) of ``y``. Returns a :class:`TVReconstruction` in HU.
    """
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a number >= 0, got {lam!r}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    if not (tol >= 0 and step_ratio > 0 and math.isfinite(step_ratio)):
        raise ValueError(f"tol must be >= 0 and step_ratio > 0, got {tol!r} and {step_ratio!r}")
    if not isinstance(y, (np.ndarray, torch.Tensor)):
        raise TypeError(f"y must be a numpy array or a torch tensor, got {type(y).__name__}")
    if tuple(y.shape) != projector.sinogram_shape:
        raise ValueError(f"y must be one sinogram {projector.sinogram_shape} of the projector, "
                         f"got shape {tuple(y.shape)}")
    is_numpy = isinstance(y, np.ndarray)
    yt = torch.from_numpy(np.asarray(y, dtype=np.float32)) if is_numpy else y.detach().float()
    if not bool(torch.isfinite(yt).all()):
        raise ValueError("y contains NaN or inf")
    weights = count_weights(yt.double(), I0).float()

    c = _pixel_size(pixel_size_mm) * mu_water
    sqrt_w = weights.sqrt()

    def data_op(x: torch.Tensor) -> torch.Tensor:  # W^(1/2) K
        return sqrt_w * projector.A(x) * (c / 1000.0)

    def data_adjoint(q: torch.Tensor) -> torch.Tensor:  # K^T W^(1/2)
        return projector.A_adjoint(sqrt_w * q) * (c / 1000.0)

    target = sqrt_w * (yt - c * projector.A(yt.new_ones(projector.shape)))
    norm_data = _operator_norm(data_op, data_adjoint, yt.new_ones(projector.shape))
    norm_grad = math.sqrt(8.0)
    s1, s2 = 1 / (step_ratio * norm_data), 1 / (step_ratio * norm_grad)
    tau = step_ratio / (norm_data + norm_grad)

    x = torch.clamp(reconstruct_hu(yt, projector, pixel_size_mm, mu_water=mu_water),
                    min=AIR_MU_HU)
    kx, dx = data_op(x), gradient_2d(x)
    objective = [_objective(kx, target, dx, lam)]
    q1, q2 = torch.zeros_like(target), torch.zeros_like(dx)
    kxbar, dxbar = kx, dx
    changes: list[float] = []
    done = 0
    while done < n_iter:
        done += 1
        q1 = (q1 + s1 * (kxbar - target)) / (1 + s1)
        q2 = q2 + s2 * dxbar
        q2 = q2 / torch.clamp(q2.norm(dim=0) / lam, min=1.0) if lam > 0 else torch.zeros_like(q2)
        x_new = torch.clamp(x - tau * (data_adjoint(q1) + gradient_2d_adjoint(q2)), min=AIR_MU_HU)
        kx_new, dx_new = data_op(x_new), gradient_2d(x_new)
        kxbar, dxbar = 2 * kx_new - kx, 2 * dx_new - dx  # K and D are linear: no extra A
        changes.append(float((x_new - x).pow(2).mean().sqrt()))
        x, kx, dx = x_new, kx_new, dx_new
        objective.append(_objective(kx, target, dx, lam))
        if changes[-1] < tol:
            break
    return TVReconstruction(x.numpy() if is_numpy else x, objective, changes, done)


def _objective(kx: torch.Tensor, target: torch.Tensor, dx: torch.Tensor, lam: float) -> float:
    data = 0.5 * float((kx.double() - target.double()).pow(2).sum())
    return data + lam * float(dx.double().norm(dim=0).sum())


def _operator_norm(op, adjoint, ones: torch.Tensor, n_power: int = 15) -> float:
    """``||op||`` by power iteration on ``op^T op`` from a constant image ``ones`` (close to the
    top singular vector of a projector), plus 5 % (the iteration approaches it from below)."""
    v = ones / math.sqrt(ones.numel())
    eig = 0.0
    for _ in range(n_power):
        v = adjoint(op(v))
        eig = float(v.norm())
        if eig == 0:
            raise ValueError("the data operator is zero: no ray carries weight")
        v = v / eig
    return 1.05 * math.sqrt(eig)


# ----------------------------------------------------------------------------- checks
def _image_2d(image, fname: str) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray) or image.ndim != 2 or np.iscomplexobj(image):
        raise ValueError(f"{fname}: expected one real image (H, W) in HU, got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    image = image.astype(np.float64)
    if not np.isfinite(image).all():
        raise ValueError(f"{fname}: the image contains NaN or inf")
    return image


def _check_I0(I0: float) -> None:
    if not (isinstance(I0, (int, float, np.number)) and math.isfinite(I0) and I0 > 0):
        raise ValueError(f"I0 must be a positive number of photons per ray, got {I0!r} (a dose "
                         "of 0 measures nothing)")

