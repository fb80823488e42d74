"""The MR forward model ``y = M F S x`` as an object, with its adjoint and simulated data.

Notation of the course: ``x`` the image, ``F`` the centered orthonormal 2D Fourier transform
(:func:`dlmi_utils.fourier.fft2c`), ``M`` the sampling mask (the set ``Omega``), ``S_c`` the
sensitivity map of coil ``c`` and ``F_u = M F`` the undersampled Fourier operator. Then::

    A(x)_c        = M F (S_c x)                        (one k-space per coil)
    A_adjoint(y)  = sum_c conj(S_c) F^H (M y_c)
    zero_filled   = A_adjoint(y)                       (x_u = F_u^H y without coils)
    normal(x)     = A_adjoint(A(x)) = A^H A x
    measure(x)    = M (F S x + n)                      (simulated data, complex noise n)

:class:`MRIForward` works on numpy arrays and torch tensors alike (the output is of the kind
and complex precision of the input: ``complex64`` stays ``complex64``), batched or not. Solvers
and networks take such an object (anything with ``A`` and ``A_adjoint``), so the same code
works with and without coils (the DeepInverse design).

To simulate data: :func:`add_smooth_phase` turns a magnitude image into a realistic complex
one, :func:`birdcage_maps` gives smooth coil maps, :meth:`MRIForward.measure` applies the
operator and adds k-space noise (:func:`dlmi_utils.noise.add_complex_gaussian_noise`) on the
sampled entries.

Layers that go to k-space and back (the DC layer, :mod:`dlmi_utils.mri.dc`) get the
single-coil ``F``, ``F^H`` and mask from :meth:`MRIForward.fourier_layout`, in the k-space
order that is cheapest for torch's FFTs (:class:`FourierLayout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from dlmi_utils.fourier import fft2c, from_fft_layout, ifft2c, to_fft_layout
from dlmi_utils.noise import Seed, add_complex_gaussian_noise

Array = TypeVar("Array", np.ndarray, torch.Tensor)


# ----------------------------------------------------------------------------- conversions
def _complex_dtype_of(x: np.ndarray | torch.Tensor):
    """complex128 for double precision input, complex64 otherwise (the kind of ``x``)."""
    if isinstance(x, torch.Tensor):
        double = x.dtype in (torch.float64, torch.complex128)
        return torch.complex128 if double else torch.complex64
    double = x.dtype in (np.float64, np.complex128)
    return np.complex128 if double else np.complex64


def _like(a: np.ndarray | torch.Tensor, x: Array, dtype) -> Array:
    """``a`` converted to the kind (numpy / torch, device) of ``x`` with ``dtype``."""
    if isinstance(x, torch.Tensor):
        if not isinstance(a, torch.Tensor):
            a = torch.from_numpy(np.ascontiguousarray(a))
        return a.to(device=x.device, dtype=dtype)
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a).astype(dtype, copy=False)


def _check_array(x, name: str) -> None:
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _real_dtype(complex_dtype):
    if complex_dtype is torch.complex128:
        return torch.float64
    if complex_dtype is torch.complex64:
        return torch.float32
    return np.float64 if complex_dtype == np.complex128 else np.float32


# ----------------------------------------------------------------------------- k-space order
@dataclass(frozen=True)
class FourierLayout:
    """The single-coil ``F``, ``F^H`` and mask ``M`` in one order of the k-space samples (torch).

    A layer that goes to k-space and back does not care in which order the samples are stored,
    as long as the data, the mask and the transforms agree. For even ``H`` and ``W`` the order
    is that of plain ``torch.fft.fft2`` (``plain=True``, :func:`dlmi_utils.fourier.to_fft_layout`):
    ``fft2(x) = to_fft_layout(fft2c(x))``, so the four shifts of :func:`fft2c` and
    :func:`ifft2c` are saved and only the measured data are reordered (:meth:`to_layout`).
    Otherwise it is the centred order. ``mask`` is real, ``(H, W)`` or ``(B, H, W)``, already in
    this order. Made by :meth:`MRIForward.fourier_layout`.
    """

    mask: torch.Tensor
    plain: bool

    def fft(self, x: torch.Tensor) -> torch.Tensor:
        """``F x`` in this order: image ``(..., H, W)`` -> k-space ``(..., H, W)``."""
        return torch.fft.fft2(x, norm="ortho") if self.plain else fft2c(x)

    def ifft(self, k: torch.Tensor) -> torch.Tensor:
        """``F^H k`` for k-space ``k`` in this order."""
        return torch.fft.ifft2(k, norm="ortho") if self.plain else ifft2c(k)

    def to_layout(self, y: torch.Tensor) -> torch.Tensor:
        """Centred k-space ``(..., H, W)`` (as :meth:`MRIForward.A` returns it) -> this order."""
        return to_fft_layout(y) if self.plain else y

    def from_layout(self, k: torch.Tensor) -> torch.Tensor:
        """This order -> centred k-space: the inverse of :meth:`to_layout`, and its adjoint
        (a permutation with signs +-1)."""
        return from_fft_layout(k) if self.plain else k


# ----------------------------------------------------------------------------- the operator
class MRIForward:
    """Single- or multi-coil Cartesian MRI: ``A(x) = M F S x``.

    Args:
        mask: sampling mask ``(H, W)`` (or ``(B, H, W)``, one per image), bool or 0/1, numpy
            or torch (see :mod:`dlmi_utils.mri.sampling`).
        sensitivities: coil maps ``(C, H, W)`` (or ``(B, C, H, W)``) complex, or ``None``
            for a single coil (``S = 1``). With maps normalised so that
            ``sum_c |S_c|^2 = 1`` (:func:`birdcage_maps`), ``A_adjoint`` is the SENSE
            combination of the coil images and ``A_adjoint(A(x)) = x`` for a full mask.

    Shapes: image ``x`` ``(H, W)`` or ``(B, H, W)`` complex (real input is made complex);
    k-space ``y`` ``(C, H, W)`` / ``(B, C, H, W)`` with coils, ``(H, W)`` / ``(B, H, W)``
    without. The output has the kind (numpy or torch, device) and complex precision of the
    input.
    """

    def __init__(self, mask, sensitivities=None):
        _check_array(mask, "mask")
        if mask.ndim not in (2, 3):
            raise ValueError(
                f"mask must be (H, W) or (B, H, W), got shape {tuple(mask.shape)}; for a "
                "Cartesian mask drawn by dlmi_utils.mri.sampling it is (H, W)"
            )
        if (isinstance(mask, torch.Tensor) and mask.is_complex()) or (
            isinstance(mask, np.ndarray) and np.iscomplexobj(mask)
        ):
            raise TypeError("mask must be real (bool or 0/1), got a complex array")
        self._mask = mask
        if sensitivities is not None:
            _check_array(sensitivities, "sensitivities")
            if sensitivities.ndim not in (3, 4):
                raise ValueError(
                    f"sensitivities must be (C, H, W) or (B, C, H, W), got shape "
                    f"{tuple(sensitivities.shape)}"
                )
            if tuple(sensitivities.shape[-2:]) != tuple(mask.shape[-2:]):
                raise ValueError(
                    f"sensitivities of shape {tuple(sensitivities.shape)} and mask of shape "
                    f"{tuple(mask.shape)} must share (H, W)"
                )
        self._sensitivities = sensitivities
        self._torch_copies: dict[tuple, torch.Tensor] = {}

    @property
    def mask(self):
        """The sampling mask ``M`` as given: ``(H, W)`` or ``(B, H, W)``, numpy or torch."""
        return self._mask

    @property
    def sensitivities(self):
        """The coil maps ``(C, H, W)`` or ``(B, C, H, W)`` as given, or ``None`` (one coil)."""
        return self._sensitivities

    def _as(self, name: str, like, dtype, shifted: bool = False):
        """``mask`` or ``sensitivities`` in the kind (and device) of ``like`` with ``dtype``;
        torch copies are made once per device and dtype (``shifted``: ``ifftshift``-ed)."""
        array = self._mask if name == "mask" else self._sensitivities
        if not isinstance(like, torch.Tensor) or getattr(array, "requires_grad", False):
            converted = _like(array, like, dtype)  # a learned map stays in the graph: no cache
            return torch.fft.ifftshift(converted, dim=(-2, -1)) if shifted else converted
        key = (name, shifted, like.device, dtype)
        if key not in self._torch_copies:
            copy = _like(array, like, dtype)
            self._torch_copies[key] = torch.fft.ifftshift(copy, dim=(-2, -1)) if shifted else copy
        return self._torch_copies[key]

    @property
    def shape(self) -> tuple[int, int]:
        """The image size ``(H, W)``."""
        return tuple(int(s) for s in self.mask.shape[-2:])

    @property
    def n_coils(self) -> int:
        """Number of coils (1 without sensitivities)."""
        return 1 if self.sensitivities is None else int(self.sensitivities.shape[-3])

    @property
    def lipschitz(self) -> float:
        """An upper bound of ``||A^H A||``: ``max sum_c |S_c|^2`` (1 without coils).

        ``||M F S x||^2 <= sum_c ||S_c x||^2 <= max_pixels(sum_c |S_c|^2) ||x||^2``, with
        equality for a full mask; gradient steps of ``1 / lipschitz`` are safe.
        """
        if self.sensitivities is None:
            return 1.0
        s = self.sensitivities
        if isinstance(s, torch.Tensor):
            return float((s.abs() ** 2).sum(dim=-3).max())
        return float((np.abs(s) ** 2).sum(axis=-3).max())

    def _check_image(self, x, fname: str) -> None:
        _check_array(x, f"{fname}: x")
        if x.ndim not in (2, 3) or tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"{fname}: expected an image (H, W) or (B, H, W) with (H, W) = {self.shape} "
                f"(the mask's), got shape {tuple(x.shape)}"
            )
        if self.mask.ndim == 3 and (x.ndim != 3 or x.shape[0] != self.mask.shape[0]):
            raise ValueError(
                f"{fname}: the mask holds {self.mask.shape[0]} masks (B, H, W): give a batch "
                f"of as many images, got shape {tuple(x.shape)}"
            )

    def _check_kspace(self, y, fname: str) -> None:
        _check_array(y, f"{fname}: y")
        coil_dims = (3, 4) if self.sensitivities is not None else (2, 3)
        what = (
            "(C, H, W) or (B, C, H, W)" if self.sensitivities is not None else "(H, W) or (B, H, W)"
        )
        if y.ndim not in coil_dims or tuple(y.shape[-2:]) != self.shape:
            raise ValueError(
                f"{fname}: expected k-space {what} with (H, W) = {self.shape}, got shape "
                f"{tuple(y.shape)}"
            )
        if self.sensitivities is not None and y.shape[-3] != self.n_coils:
            raise ValueError(
                f"{fname}: k-space has {y.shape[-3]} coils, the sensitivities {self.n_coils}"
            )

    def _mask_for(self, k, coil_axis: bool):
        m = self._as("mask", k, _real_dtype(k.dtype))
        if coil_axis and m.ndim == 3:  # (B, H, W) -> (B, 1, H, W) against (B, C, H, W)
            m = m[:, None]
        return m

    def _maps_for(self, x):
        return self._as("sensitivities", x, x.dtype)

    def A(self, x: Array) -> Array:
        """Forward: image ``(B, H, W)`` or ``(H, W)`` -> k-space ``M F S x`` (see class doc)."""
        self._check_image(x, "A")
        x = _like(x, x, _complex_dtype_of(x))
        if self.sensitivities is None:
            k = fft2c(x)
            return k * self._mask_for(k, coil_axis=False)
        maps = self._maps_for(x)
        k = fft2c(maps * x[..., None, :, :])
        return k * self._mask_for(k, coil_axis=True)

    def A_adjoint(self, y: Array) -> Array:
        """Adjoint: k-space -> image ``sum_c conj(S_c) F^H (M y_c)``, ``(B, H, W)``/``(H, W)``."""
        self._check_kspace(y, "A_adjoint")
        y = _like(y, y, _complex_dtype_of(y))
        if self.sensitivities is None:
            return ifft2c(y * self._mask_for(y, coil_axis=False))
        coil_images = ifft2c(y * self._mask_for(y, coil_axis=True))
        maps = self._maps_for(coil_images)
        return (maps.conj() * coil_images).sum(-3)

    def zero_filled(self, y: Array) -> Array:
        """The zero-filled reconstruction ``x_u = A^H y`` (``F_u^H y`` for one coil).

        With sensitivities normalised so that ``sum_c |S_c|^2 = 1`` this is the SENSE-combined
        adjoint (the coil images weighted by their conjugate maps).
        """
        return self.A_adjoint(y)

    def normal(self, x: Array) -> Array:
        """The normal operator ``A^H A x`` (the Gram operator of least squares)."""
        return self.A_adjoint(self.A(x))

    def mask_kspace(self, y: Array) -> Array:
        """``M y``: the k-space ``y`` (shaped as ``A`` returns it) with its unsampled entries
        set to zero; the same kind and complex precision."""
        self._check_kspace(y, "mask_kspace")
        y = _like(y, y, _complex_dtype_of(y))
        return y * self._mask_for(y, coil_axis=self.sensitivities is not None)

    def measure(self, x: Array, noise_sigma: float = 0.0, seed: Seed = 0) -> Array:
        """Simulated measured data ``y = M (F S x + n)``: ``A(x)`` plus noise on ``Omega``.

        ``n`` is complex white noise with ``E|n|^2 = noise_sigma^2`` per k-space sample (per
        coil), drawn by :func:`dlmi_utils.noise.add_complex_gaussian_noise` with ``seed`` (an
        int, ``None``, or a numpy / torch generator for numpy / torch input); with the
        orthonormal FFT it is the same noise level in the image at full sampling. Unsampled
        entries stay exactly zero. ``x`` as for :meth:`A`; returns what :meth:`A` returns.
        """
        if not noise_sigma >= 0:
            raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma}")
        y = self.A(x)
        if noise_sigma == 0:
            return y
        return self.mask_kspace(add_complex_gaussian_noise(y, noise_sigma, seed))

    def fourier_layout(self, like: torch.Tensor) -> FourierLayout:
        """The single-coil ``F``, ``F^H`` and mask for torch tensors like ``like``.

        For a layer that goes to k-space and back (the DC layer): see :class:`FourierLayout`.
        The reordered mask is computed once per device and precision.
        """
        if self.sensitivities is not None:
            raise ValueError("fourier_layout is the single-coil F: this operator has coil maps")
        if not isinstance(like, torch.Tensor):
            raise TypeError(f"fourier_layout works on torch tensors, got {type(like).__name__}")
        plain = self.shape[0] % 2 == 0 and self.shape[1] % 2 == 0
        real = torch.float64 if like.dtype in (torch.float64, torch.complex128) else torch.float32
        return FourierLayout(self._as("mask", like, real, shifted=plain), plain)

    def __repr__(self) -> str:
        return f"MRIForward(shape={self.shape}, n_coils={self.n_coils})"


def zero_filled_input(y: torch.Tensor, physics: MRIForward, model: str) -> torch.Tensor:
    """``x_u = physics.A_adjoint(y)`` ``(B, H, W)`` complex: the input of the MR networks,
    with ``y`` checked (a batch of complex k-space)."""
    if not (isinstance(y, torch.Tensor) and y.is_complex()):
        raise ValueError(
            f"{model} expects the measured k-space y as a complex tensor, got "
            f"{y.dtype if isinstance(y, torch.Tensor) else type(y).__name__}"
        )
    if not isinstance(physics, MRIForward):
        raise TypeError(
            f"{model} expects the operator that measured y (dlmi_utils.mri.MRIForward), got "
            f"{type(physics).__name__}"
        )
    x_u = physics.A_adjoint(y)
    if x_u.ndim != 3:
        raise ValueError(
            f"{model} expects a batch: y (B, H, W), or (B, C, H, W) with coils; got shape "
            f"{tuple(y.shape)}"
        )
    return x_u


# ----------------------------------------------------------------------------- simulation
def birdcage_maps(
    n_coils: int,
    shape: tuple[int, int],
    radius: float = 1.5,
    dtype=np.complex64,
) -> np.ndarray:
    """Smooth simulated coil sensitivities ``(C, H, W)``, normalised: ``sum_c |S_c|^2 = 1``.

    Coil ``c`` sits at angle ``phi_c = 2 pi c / C`` on a circle of ``radius`` (in units of
    half the field of view) around the image, as the rungs of a birdcage coil. Its raw map at
    position ``r`` (the image spans ``[-1, 1]^2``) is ``exp(i (angle(r - p_c) - phi_c)) /
    |r - p_c|``: a magnitude decaying away from the coil and a phase winding around it. The maps
    are divided by their root-sum-of-squares so that ``sum_c |S_c|^2 = 1`` at every pixel;
    then the coil-combined adjoint of a fully sampled acquisition returns the image exactly.
    """
    if isinstance(n_coils, bool) or not isinstance(n_coils, int) or n_coils < 1:
        raise ValueError(f"n_coils must be a positive integer, got {n_coils!r}")
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    if radius <= 1:
        raise ValueError(f"radius must be > 1 (coils outside the field of view), got {radius}")
    h, w = shape
    yy = (np.arange(h) - h // 2) / (h / 2)
    xx = (np.arange(w) - w // 2) / (w / 2)
    phi = 2 * np.pi * np.arange(n_coils) / n_coils
    dy = yy[None, :, None] - radius * np.sin(phi)[:, None, None]
    dx = xx[None, None, :] - radius * np.cos(phi)[:, None, None]
    maps = np.exp(1j * (np.arctan2(dy, dx) - phi[:, None, None])) / np.hypot(dy, dx)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(axis=0, keepdims=True))
    return maps.astype(dtype)


def add_smooth_phase(
    image: Array, seed: int | None = 0, max_phase: float = math.pi / 2, order: int = 2
) -> Array:
    """A complex MR image: ``image`` times a smooth random phase ``exp(i phi)``.

    Real MR images are complex: field inhomogeneity, coil phase and timing give a smooth,
    spatially varying phase. A purely real image has a Hermitian-symmetric k-space,
    ``s(-k) = conj(s(k))``, so half of k-space predicts the other half and undersampling is
    unfairly easy (CS and networks exploit the symmetry): simulate with this phase instead.

    ``phi`` is a random low-frequency field: the real part of the inverse FFT of a
    ``(2 order + 1)^2`` block of random Gaussian Fourier coefficients around DC, scaled so that
    ``max |phi| = max_phase`` radians. ``image`` ``(H, W)`` or ``(B, H, W)`` (each image of a
    batch gets its own phase), real or complex, numpy or torch; returns the same kind,
    ``complex64`` (``complex128`` for float64 input). ``|output| = |image|``.
    """
    _check_array(image, "image")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (B, H, W), got shape {tuple(image.shape)}")
    if not 0 <= max_phase:
        raise ValueError(f"max_phase must be >= 0 radians, got {max_phase}")
    h, w = image.shape[-2:]
    batch = image.shape[0] if image.ndim == 3 else 1
    rng = np.random.default_rng(seed)
    k = np.zeros((batch, h, w), dtype=np.complex128)
    ky = slice(max(h // 2 - order, 0), h // 2 + order + 1)
    kx = slice(max(w // 2 - order, 0), w // 2 + order + 1)
    block = k[:, ky, kx]
    block[...] = rng.standard_normal(block.shape) + 1j * rng.standard_normal(block.shape)
    field = np.real(ifft2c(k))
    peak = np.abs(field).max(axis=(-2, -1), keepdims=True)
    phase = max_phase * field / np.where(peak > 0, peak, 1)
    if image.ndim == 2:
        phase = phase[0]
    dtype = _complex_dtype_of(image)
    if isinstance(image, torch.Tensor):
        rotation = torch.from_numpy(np.exp(1j * phase)).to(device=image.device, dtype=dtype)
        return image.to(dtype) * rotation
    return image.astype(dtype) * np.exp(1j * phase).astype(dtype)
