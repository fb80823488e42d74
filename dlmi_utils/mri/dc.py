"""The data-consistency (DC) layer of Schlemper et al. (2017), forward and backward.

A CNN that de-aliases the zero-filled image ``x_u = A^H y`` may change the k-space samples
that were actually measured, ``y`` (the slides' ``s0``). The DC layer puts them back. For one
coil (``A = M F``), with ``s_cnn = F x_cnn`` and the sampled set ``Omega`` (the mask)::

    s_rec(j) = s_cnn(j)                                  if j not in Omega
    s_rec(j) = (s_cnn(j) + lambda y(j)) / (1 + lambda)   if j in Omega      (noisy, "soft")
    s_rec(j) = y(j)                                      if j in Omega      (noiseless, "hard",
                                                                            lambda -> infinity)

and ``x_rec = F^H s_rec``. The map is linear in ``x_cnn``, so its Jacobian is
``F^H Lambda F`` with ``Lambda = diag(1 off Omega, 1 / (1 + lambda) on Omega)`` (``0`` on
Omega for the hard form); the derivative in lambda is ``(y - s_cnn) / (1 + lambda)^2`` on
Omega and ``0`` elsewhere. :class:`DataConsistencyFunction` implements exactly that backward
pass; ``tests/test_dc.py`` checks it with ``torch.autograd.gradcheck``.

The rule is the minimiser of ``||x' - x_cnn||^2 + lambda ||A x' - y||^2``, i.e.
``x_rec = (I + lambda A^H A)^{-1} (x_cnn + lambda A^H y)``, and its hard form the projection
of ``x_cnn`` onto ``{x : A x = y}``, ``x_rec = x_cnn - A^H (A A^H)^{-1} (A x_cnn - y)``. With
coils (``A = M F S``) there is no closed form: :func:`data_consistency` solves these systems by
conjugate gradient, differentiated by autograd (for one coil both give the rule above).
Everything takes the operator, an :class:`~dlmi_utils.mri.MRIForward`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dlmi_utils.fourier import channels_to_complex, complex_to_channels, complex_to_channels_last
from dlmi_utils.mri.physics import MRIForward

DC_MODES = ("hard", "soft", "none")  # "none": the ablation, the image passes unchanged
CG_ITERATIONS = 300  # at most; conjugate gradient stops earlier at a relative residual of
CG_TOLERANCE = 1e-6  # this (the DC layer with coils)


def _mask_like(mask: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The sampling mask as a real tensor of ``k``'s precision, broadcastable to ``k``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch tensor, got {type(mask).__name__}")
    if mask.is_complex():
        raise TypeError("mask must be real (0/1 or bool), got a complex tensor")
    real_dtype = torch.float64 if k.dtype == torch.complex128 else torch.float32
    m = mask.to(device=k.device, dtype=real_dtype)
    try:
        torch.broadcast_shapes(m.shape, k.shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to k-space of shape "
            f"{tuple(k.shape)}; give (H, W), (B, H, W) or (B, 1, W) for a Cartesian mask"
        ) from None
    return m


def data_consistency_kspace(
    s_cnn: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, lam: torch.Tensor | float | None
) -> torch.Tensor:
    """The DC rule in k-space with plain torch operations (autograd differentiates it).

    ``s_cnn``, ``y``: ``(..., H, W)`` complex; ``mask``: 0/1, broadcastable to them;
    ``lam``: ``None`` for the hard (noiseless) form, else a non-negative scalar.
    Returns ``s_rec`` ``(..., H, W)`` complex.
    """
    m = _mask_like(mask, s_cnn)
    if lam is None:
        return (1 - m) * s_cnn + m * y
    return (1 - m) * s_cnn + m * (s_cnn + lam * y) / (1 + lam)


class DataConsistencyFunction(torch.autograd.Function):
    """``x_rec = F^H DC(F x_cnn, y)`` for one coil, with the course's backward pass.

    ``apply(x_cnn, y, physics, lam)``: ``x_cnn`` image ``(B, H, W)`` complex, ``y`` measured
    k-space ``(B, H, W)`` complex (its values off the mask are ignored), ``physics`` a
    single-coil :class:`~dlmi_utils.mri.MRIForward` (its mask is ``Omega``), ``lam`` a 0-d real
    tensor (soft form) or ``None`` (hard form). Returns ``x_rec`` ``(B, H, W)`` complex.
    ``F`` runs in the k-space order of :meth:`~dlmi_utils.mri.MRIForward.fourier_layout`
    (plain FFTs for even sizes), with the same result as the centred one.
    """

    @staticmethod
    def forward(ctx, x_cnn, y, physics, lam):
        layout = physics.fourier_layout(x_cnn)
        y = layout.to_layout(y)
        s_cnn = layout.fft(x_cnn)
        s_rec = data_consistency_kspace(s_cnn, y, layout.mask, lam)
        ctx.layout = layout
        ctx.hard = lam is None
        if not ctx.hard:
            ctx.save_for_backward(lam, s_cnn, y)
        return layout.ifft(s_rec)

    @staticmethod
    def backward(ctx, grad_x_rec):
        # The map is C-linear in x_cnn and y, so the gradient is the adjoint Jacobian applied
        # to grad_x_rec; F is unitary, so F^H Lambda F is its own adjoint (Lambda is real).
        layout = ctx.layout
        m = layout.mask
        g = layout.fft(grad_x_rec)  # the gradient seen in k-space
        grad_x = grad_y = grad_lam = None
        if ctx.hard:
            lam_on = torch.zeros((), dtype=m.dtype, device=m.device)
            weight_y = torch.ones((), dtype=m.dtype, device=m.device)
        else:
            lam, s_cnn, y = ctx.saved_tensors
            lam_on = 1 / (1 + lam)
            weight_y = lam / (1 + lam)
        if ctx.needs_input_grad[0]:
            grad_x = layout.ifft(((1 - m) + m * lam_on) * g)  # F^H Lambda F grad
        if ctx.needs_input_grad[1]:
            grad_y = layout.from_layout(m * weight_y * g)
        if not ctx.hard and ctx.needs_input_grad[3]:
            # d s_rec / d lambda = (y - s_cnn) / (1 + lambda)^2 on Omega; real parameter:
            # the gradient is Re <g, d s_rec / d lambda> (Parseval moves it to k-space).
            ds_dlam = m * (y - s_cnn) / (1 + lam) ** 2
            grad_lam = torch.real(torch.sum(torch.conj(g) * ds_dlam)).to(lam.dtype)
        return grad_x, grad_y, None, grad_lam


def _as_complex(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` real -> ``(B, H, W)`` complex, without a copy when it is channels-last.

    The inverse of :func:`dlmi_utils.fourier.complex_to_channels_last`.
    """
    if x.ndim == 4 and x.shape[1] == 2 and x.is_contiguous(memory_format=torch.channels_last):
        try:
            return torch.view_as_complex(x.permute(0, 2, 3, 1))
        except RuntimeError:  # e.g. a view that starts at an odd offset: copy instead
            pass
    return channels_to_complex(x)


def _as_channels(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` complex -> ``(B, 2, H, W)`` real, in the memory layout of ``like``."""
    if like.ndim == 4 and like.is_contiguous(memory_format=torch.channels_last):
        return complex_to_channels_last(z)
    return complex_to_channels(z)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Re <a, b>`` per batch element (over all but the first axis), shaped to broadcast."""
    dims = tuple(range(1, a.ndim))
    return torch.real(torch.sum(torch.conj(a) * b, dim=dims, keepdim=True))


def _conjugate_gradient(
    normal: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    n_iter: int = CG_ITERATIONS,
    tol: float = CG_TOLERANCE,
) -> torch.Tensor:
    """Solve ``normal(x) = b`` for a Hermitian positive (semi-)definite operator, batched.

    ``b`` ``(B, ...)`` complex; every batch element is its own system (its own step sizes),
    and all stop when each residual is below ``tol`` times its ``||b||`` or after ``n_iter``
    iterations. Plain torch operations: autograd differentiates through the iterations.
    """
    x = torch.zeros_like(b) if x0 is None else x0
    r = b if x0 is None else b - normal(x0)
    p = r
    rr = _dot(r, r)
    stop = tol**2 * _dot(b, b)
    for _ in range(n_iter):
        if bool((rr <= stop).all()):
            break
        ap = normal(p)
        pap = _dot(p, ap)
        # a converged (or zero) system has pap = 0: take no step rather than divide by zero
        alpha = torch.where(pap > 0, rr / torch.where(pap > 0, pap, 1), 0)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        beta = torch.where(rr > 0, rr_new / torch.where(rr > 0, rr, 1), 0)
        p = r + beta * p
        rr = rr_new
    return x


def _data_consistency_cg(
    x: torch.Tensor, y: torch.Tensor, physics: MRIForward, lam: torch.Tensor | None
) -> torch.Tensor:
    """The DC layer for any :class:`MRIForward` (coils included) by conjugate gradient.

    Hard: ``x - A^H z`` with ``(A A^H) z = A x - M y`` (the projection onto ``A x = M y``);
    soft: ``(I + lam A^H A) x_rec = x + lam A^H y``, started from ``x``.
    """
    if lam is None:
        residual = physics.A(x) - physics.mask_kspace(y)
        z = _conjugate_gradient(lambda v: physics.A(physics.A_adjoint(v)), residual)
        return x - physics.A_adjoint(z)
    b = x + lam * physics.A_adjoint(y)
    return _conjugate_gradient(lambda v: v + lam * physics.normal(v), b, x0=x)


def data_consistency(x, y, physics: MRIForward, lam: torch.Tensor | float | None = None):
    """Apply the DC layer to the image ``x`` with the measured k-space ``y`` and operator ``A``.

    - ``x``: the CNN's image ``(B, H, W)`` or ``(H, W)`` complex, or ``(B, 2, H, W)`` real
      (real and imaginary channels, as inside :class:`~dlmi_utils.mri.DeepCascade`); the
      output has its layout. Numpy arrays are accepted too (numpy in, numpy out).
    - ``y``: measured k-space as ``physics.A`` returns it, ``(B, H, W)`` complex for one
      coil, ``(B, C, H, W)`` with coils (values off the mask are ignored).
    - ``physics``: the :class:`~dlmi_utils.mri.MRIForward` that measured ``y``.
    - ``lam``: ``None`` for the hard form, else ``lambda >= 0`` (a number or a 0-d tensor,
      learnable): the minimiser of ``||x' - x||^2 + lam ||A x' - y||^2``,
      ``x_rec = (I + lam A^H A)^{-1} (x + lam A^H y)``.

    One coil: the closed form of the module docstring, ``(s_cnn + lam y) / (1 + lam)`` on
    ``Omega`` (:class:`DataConsistencyFunction`). With coils: conjugate gradient on
    ``A A^H`` (hard, the projection ``x - A^H (A A^H)^{-1} (A x - y)``) or on
    ``I + lam A^H A`` (soft), at most :data:`CG_ITERATIONS` iterations to a relative residual
    of :data:`CG_TOLERANCE`.
    """
    if isinstance(x, np.ndarray):
        double = x.dtype in (np.float64, np.complex128)
        x = torch.from_numpy(np.ascontiguousarray(x, np.complex128 if double else np.complex64))
        y = torch.from_numpy(np.ascontiguousarray(y)) if isinstance(y, np.ndarray) else y
        return data_consistency(x, y, physics, lam).numpy()
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("data_consistency expects torch tensors (or numpy arrays) x and y")
    if not isinstance(physics, MRIForward):
        raise TypeError(
            f"physics must be the dlmi_utils.mri.MRIForward that measured y, got "
            f"{type(physics).__name__}"
        )
    channels = not x.is_complex()
    layout = x
    if channels:
        if x.ndim != 4 or x.shape[1] != 2:
            raise ValueError(
                f"a real image must be (B, 2, H, W) (real and imaginary channels), got shape "
                f"{tuple(x.shape)}; or give the complex image (B, H, W)"
            )
        x = _as_complex(x)
    if not y.is_complex():
        raise TypeError(f"y must be complex k-space, got {y.dtype}")
    y = y.to(x.dtype)
    coil_axis = () if physics.sensitivities is None else (physics.n_coils,)
    expected = (*x.shape[:-2], *coil_axis, *x.shape[-2:])
    if tuple(x.shape[-2:]) != physics.shape or tuple(y.shape) != expected:
        raise ValueError(
            f"image {tuple(x.shape)} and k-space {tuple(y.shape)} do not fit the operator of "
            f"{physics.n_coils} coil(s) and size {physics.shape}: expected the k-space "
            f"{expected} for this image"
        )
    if lam is not None:
        if not isinstance(lam, torch.Tensor) and not lam >= 0:
            raise ValueError(f"lambda must be None (hard) or >= 0, got {lam!r}")
        lam = torch.as_tensor(lam, dtype=x.real.dtype, device=x.device)
        if lam.ndim != 0:
            raise ValueError(f"lambda must be a scalar, got shape {tuple(lam.shape)}")
    if physics.sensitivities is None:
        x_rec = DataConsistencyFunction.apply(x, y, physics, lam)
    elif x.ndim == 2:  # conjugate gradient steps per image: give it a batch axis
        x_rec = _data_consistency_cg(x[None], y[None], physics, lam)[0]
    else:
        x_rec = _data_consistency_cg(x, y, physics, lam)
    return _as_channels(x_rec, layout) if channels else x_rec


class DataConsistency(nn.Module):
    """The DC layer as a module: ``forward(x, y, physics) -> x_rec`` (:func:`data_consistency`).

    ``mode="hard"``: the measured samples replace the CNN's (noiseless data).
    ``mode="soft"``: ``(s_cnn + lambda y) / (1 + lambda)`` on the sampled set (one coil; its
    least-squares form with coils), with ``lambda = exp(log_lambda)`` so it stays positive while
    learned (``learnable=True``). ``mode="none"``: ``x`` passes unchanged (the ablation).
    """

    def __init__(self, mode: str = "hard", lam: float = 10.0, learnable: bool = True):
        super().__init__()
        if mode not in DC_MODES:
            raise ValueError(f"mode must be one of {DC_MODES}, got {mode!r}")
        self.mode = mode
        if mode == "soft":
            if not lam > 0:
                raise ValueError(f"lambda must be positive for the soft DC layer, got {lam}")
            log_lam = torch.tensor(math.log(lam), dtype=torch.float32)
            if learnable:
                self.log_lam = nn.Parameter(log_lam)
            else:
                self.register_buffer("log_lam", log_lam)

    @property
    def lam(self) -> torch.Tensor | None:
        """The current lambda (a 0-d tensor), or ``None`` for the hard form (and none)."""
        return torch.exp(self.log_lam) if self.mode == "soft" else None

    def forward(self, x: torch.Tensor, y: torch.Tensor, physics: MRIForward) -> torch.Tensor:
        if self.mode == "none":
            return x
        return data_consistency(x, y, physics, self.lam)

    def extra_repr(self) -> str:
        if self.mode == "soft":
            return f"mode='soft', lambda={self.lam.item():.3g}"
        return f"mode={self.mode!r}"
