"""The data-consistency (DC) layer of Schlemper et al. (2017), forward and backward.

A CNN that de-aliases the zero-filled image ``x_u = F^H s0`` may change the k-space samples
that were actually measured. The DC layer puts them back. With ``s_cnn = F x_cnn`` and the
sampled set ``Omega`` (the mask)::

    s_rec(j) = s_cnn(j)                                  if j not in Omega
    s_rec(j) = (s_cnn(j) + lambda s0(j)) / (1 + lambda)  if j in Omega      (noisy, "soft")
    s_rec(j) = s0(j)                                     if j in Omega      (noiseless, "hard",
                                                                             lambda -> infinity)

and ``x_rec = F^H s_rec``. The map is linear in ``x_cnn``, so its Jacobian is
``F^H Lambda F`` with ``Lambda = diag(1 off Omega, 1 / (1 + lambda) on Omega)`` (``0`` on
Omega for the hard form); the derivative in lambda is ``(s0 - s_cnn) / (1 + lambda)^2`` on
Omega and ``0`` elsewhere. :class:`DataConsistencyFunction` implements exactly that backward
pass; ``tests/test_dc.py`` checks it with ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlmi_utils.fourier import (
    channels_to_complex,
    complex_to_channels,
    complex_to_channels_last,
    fft2c,
    ifft2c,
)


def _fft2(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fft2(x, norm="ortho")


def _ifft2(k: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(k, norm="ortho")


def _transforms(fft_layout: bool):
    """``(F, F^H)``: the centred FFTs, or the plain ones for data in ``to_fft_layout`` order."""
    return (_fft2, _ifft2) if fft_layout else (fft2c, ifft2c)


DC_MODES = ("hard", "soft")


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
    s_cnn: torch.Tensor, s0: torch.Tensor, mask: torch.Tensor, lam: torch.Tensor | float | None
) -> torch.Tensor:
    """The DC rule in k-space with plain torch operations (autograd differentiates it).

    ``s_cnn``, ``s0``: ``(..., H, W)`` complex; ``mask``: 0/1, broadcastable to them;
    ``lam``: ``None`` for the hard (noiseless) form, else a non-negative scalar.
    Returns ``s_rec`` ``(..., H, W)`` complex.
    """
    m = _mask_like(mask, s_cnn)
    if lam is None:
        return (1 - m) * s_cnn + m * s0
    return (1 - m) * s_cnn + m * (s_cnn + lam * s0) / (1 + lam)


class DataConsistencyFunction(torch.autograd.Function):
    """``x_rec = F^H DC(F x_cnn, s0)`` on complex images, with the course's backward pass.

    ``apply(x_cnn, s0, mask, lam)``: ``x_cnn`` image ``(B, H, W)`` complex, ``s0`` measured
    k-space ``(B, H, W)`` complex (zero off the mask, or anything: it is ignored there),
    ``mask`` 0/1 broadcastable to ``(B, H, W)``, ``lam`` a 0-d real tensor (soft form) or
    ``None`` (hard form); ``fft_layout``: ``s0`` and ``mask`` are in the order of plain
    ``fft2`` (see :func:`data_consistency`). Returns ``x_rec`` ``(B, H, W)`` complex.
    """

    @staticmethod
    def forward(ctx, x_cnn, s0, mask, lam, fft_layout=False):
        fft, ifft = _transforms(fft_layout)
        m = _mask_like(mask, x_cnn)
        s_cnn = fft(x_cnn)
        s_rec = data_consistency_kspace(s_cnn, s0, m, lam)
        ctx.fft_layout = fft_layout
        ctx.hard = lam is None
        if ctx.hard:
            ctx.save_for_backward(m)
        else:
            ctx.save_for_backward(m, lam, s_cnn, s0)
        return ifft(s_rec)

    @staticmethod
    def backward(ctx, grad_x_rec):
        # The map is C-linear in x_cnn and s0, so the gradient is the adjoint Jacobian applied
        # to grad_x_rec; F is unitary, so F^H Lambda F is its own adjoint (Lambda is real).
        fft, ifft = _transforms(ctx.fft_layout)
        m = ctx.saved_tensors[0]
        g = fft(grad_x_rec)  # the gradient seen in k-space
        grad_x = grad_s0 = grad_lam = None
        if ctx.hard:
            lam_on = torch.zeros((), dtype=m.dtype, device=m.device)
            weight_s0 = torch.ones((), dtype=m.dtype, device=m.device)
        else:
            _, lam, s_cnn, s0 = ctx.saved_tensors
            lam_on = 1 / (1 + lam)
            weight_s0 = lam / (1 + lam)
        if ctx.needs_input_grad[0]:
            grad_x = ifft(((1 - m) + m * lam_on) * g)  # F^H Lambda F grad
        if ctx.needs_input_grad[1]:
            grad_s0 = m * weight_s0 * g
        if not ctx.hard and ctx.needs_input_grad[3]:
            # d s_rec / d lambda = (s0 - s_cnn) / (1 + lambda)^2 on Omega; real parameter:
            # the gradient is Re <g, d s_rec / d lambda> (Parseval moves it to k-space).
            ds_dlam = m * (s0 - s_cnn) / (1 + lam) ** 2
            grad_lam = torch.real(torch.sum(torch.conj(g) * ds_dlam)).to(lam.dtype)
        return grad_x, grad_s0, None, grad_lam, None


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


def data_consistency(
    x_cnn: torch.Tensor,
    s0: torch.Tensor,
    mask: torch.Tensor,
    lam: torch.Tensor | None = None,
    fft_layout: bool = False,
) -> torch.Tensor:
    """Apply the DC layer to an image; complex ``(B, H, W)`` or real ``(B, 2, H, W)``.

    ``s0`` is the measured k-space ``(B, H, W)`` complex (or ``(B, 2, H, W)`` real channels);
    the output has the layout of ``x_cnn``. ``lam=None`` is the hard form.
    ``fft_layout=True``: ``s0`` is given as ``to_fft_layout(s0)`` and the mask as
    ``ifftshift(mask)`` (even ``H`` and ``W``); the layer then uses the plain FFTs, with the
    same result and without the four shifts of the centred ones. :class:`DeepCascade`
    converts the data once for all its DC layers.
    """
    if not isinstance(x_cnn, torch.Tensor) or not isinstance(s0, torch.Tensor):
        raise TypeError("data_consistency expects torch tensors for the image and k-space")
    channels = not x_cnn.is_complex()
    layout = x_cnn
    if channels:
        x_cnn = _as_complex(x_cnn)
    if not s0.is_complex():
        s0 = channels_to_complex(s0)
    s0 = s0.to(x_cnn.dtype)
    if x_cnn.shape != s0.shape:
        raise ValueError(
            f"image {tuple(x_cnn.shape)} and k-space {tuple(s0.shape)} must have the same shape"
        )
    if lam is not None:
        lam = torch.as_tensor(lam, dtype=x_cnn.real.dtype, device=x_cnn.device)
        if lam.ndim != 0:
            raise ValueError(f"lambda must be a scalar, got shape {tuple(lam.shape)}")
    x_rec = DataConsistencyFunction.apply(x_cnn, s0, mask, lam, fft_layout)
    return _as_channels(x_rec, layout) if channels else x_rec


class DataConsistency(nn.Module):
    """The DC layer as a module: ``forward(x_cnn, s0, mask) -> x_rec``.

    ``mode="hard"``: the measured samples replace the CNN's (noiseless data).
    ``mode="soft"``: ``(s_cnn + lambda s0) / (1 + lambda)`` on the sampled set, with
    ``lambda = exp(log_lambda)`` so it stays positive while learned (``learnable=True``).
    Inputs as :func:`data_consistency`: complex ``(B, H, W)`` or real ``(B, 2, H, W)``.
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
        """The current lambda (a 0-d tensor), or ``None`` for the hard form."""
        return None if self.mode == "hard" else torch.exp(self.log_lam)

    def forward(
        self, x_cnn: torch.Tensor, s0: torch.Tensor, mask: torch.Tensor, fft_layout: bool = False
    ) -> torch.Tensor:
        return data_consistency(x_cnn, s0, mask, self.lam, fft_layout)

    def extra_repr(self) -> str:
        if self.mode == "hard":
            return "mode='hard'"
        return f"mode='soft', lambda={self.lam.item():.3g}"
