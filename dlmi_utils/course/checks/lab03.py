"""Checks of Lab 03 (data consistency and deep cascades), written by the student:

- ``data_consistency(k_cnn, y, mask, lam=None) -> k_rec``: the DC layer in k-space;
- ``dc_backward(grad_k_rec, k_cnn, y, mask, lam) -> (grad_k_cnn, grad_lam)``: its backward;
- ``cascade_forward(x_u, y, mask, cnns) -> x_rec``: residual CNNs interleaved with hard DC.

Each check compares with :mod:`dlmi_utils.mri.dc` on small random problems and recognises
the usual slips (the mask inverted, ``k_cnn`` and ``y`` swapped, the division by
``1 + lambda`` forgotten, a missing ``conj``, the residual connection left out).
``reference_dc_backward`` and ``reference_cascade_forward`` are the answers the lab goes on
with (:func:`~dlmi_utils.course.checks.yours_or_reference`) until the student's pass; the
first exercise's is :func:`dlmi_utils.mri.dc.data_consistency_kspace`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from dlmi_utils.course.checks import NOT_IMPLEMENTED, CheckFailed, CheckResult, run_check
from dlmi_utils.fourier import channels_to_complex, complex_to_channels, fft2c, ifft2c
from dlmi_utils.mri.dc import data_consistency_kspace


def _torch_errors(fn):
    """``fn`` with torch's own ``NotImplementedError`` (``1 - bool_mask``) made a hint.

    Only the stub of an unfinished exercise should read as "not implemented yet".
    """
    if not callable(fn):
        return fn

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as e:
            if NOT_IMPLEMENTED in str(e):
                raise
            raise CheckFailed(f"torch cannot do this: {e}") from None

    return wrapped


def _shape(strict: bool) -> tuple[int, int, int]:
    return (3, 10, 14) if strict else (2, 8, 8)


def _problem(seed: int, strict: bool, dtype=torch.complex64):
    b, h, w = _shape(strict)
    g = torch.Generator().manual_seed(seed + (7919 if strict else 0))
    k_cnn = torch.randn(b, h, w, dtype=dtype, generator=g)
    k_true = torch.randn(b, h, w, dtype=dtype, generator=g)
    mask = (torch.rand(b, 1, w, generator=g) < 0.4).to(k_cnn.real.dtype)
    mask[..., w // 2] = 1
    mask[..., 0] = 0
    return k_cnn, k_true * mask, mask, g


def _tensor(value, what: str, shape) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(
            f"{what} returned {type(value).__name__}: return a torch tensor (stay in torch, "
            "so that autograd can differentiate it)"
        )
    if tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return bool(torch.allclose(a.to(b.dtype), b, atol=tol, rtol=tol))


# ----------------------------------------------------------------------------- forward
def _dc_hint(got, k_cnn, y, m, lam) -> str:
    on, off = m.expand_as(got).bool(), ~m.expand_as(got).bool()
    if lam is None:
        if _close(got, k_cnn):
            return "the output is k_cnn unchanged: put the measured samples y back where mask == 1"
        if _close(got[on], k_cnn[on]) and _close(got[off], y[off]):
            return "mask inverted: keep y where mask == 1 (sampled) and k_cnn elsewhere"
        if _close(got[on], y[on]) and not _close(got[off], k_cnn[off]):
            return "off the sampled set the output must be k_cnn (did you multiply it by the mask?)"
        return "hard DC: k_rec = (1 - mask) k_cnn + mask y"
    right_on = (k_cnn + lam * y) / (1 + lam)
    slips = [
        ((lam * k_cnn + y) / (1 + lam), "k_cnn and y swapped: lambda weighs the measured y"),
        (k_cnn + lam * y, "divide by (1 + lambda): the result is a weighted average"),
        (y, "that is the hard form: with lambda the sampled entries are "
             "(k_cnn + lambda y) / (1 + lambda)"),
    ]
    for value, hint in slips:
        if _close(got[on], value[on]):
            return hint
    if _close(got[on], right_on[on]) and not _close(got[off], k_cnn[off]):
        return "the average applies on the sampled set only: off the mask keep k_cnn"
    return "sampled entries: (k_cnn + lambda y) / (1 + lambda); others: k_cnn"


def check_data_consistency(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``data_consistency(k_cnn, y, mask, lam=None) -> k_rec`` on ``(B, H, W)`` complex."""

    def hard(f):
        k_cnn, y, m, _ = _problem(seed, strict)
        got = _tensor(f(k_cnn, y, m, None), "data_consistency", k_cnn.shape)
        if not _close(got, data_consistency_kspace(k_cnn, y, m, None)):
            raise CheckFailed(_dc_hint(got, k_cnn, y, m, None))

    def soft(f):
        k_cnn, y, m, _ = _problem(seed + 1, strict)
        lam = 0.7 if strict else 2.0
        got = _tensor(f(k_cnn, y, m, lam), "data_consistency", k_cnn.shape)
        if not _close(got, data_consistency_kspace(k_cnn, y, m, lam)):
            raise CheckFailed(_dc_hint(got, k_cnn, y, m, lam))

    def limits_of_lambda(f):
        k_cnn, y, m, _ = _problem(seed + 2, strict)
        if not _close(f(k_cnn, y, m, 0.0), k_cnn):
            raise CheckFailed("lambda = 0 trusts the CNN only: the output must be k_cnn")
        if not _close(f(k_cnn, y, m, 1e8), f(k_cnn, y, m, None), tol=1e-4):
            raise CheckFailed("a very large lambda must give the hard (noiseless) form")

    def mask_shapes(f):
        k_cnn, y, m, _ = _problem(seed + 3, strict)
        full = m.expand_as(k_cnn)[0].bool()  # (H, W) bool, shared by the batch
        got = _tensor(f(k_cnn, y * full, full, None), "data_consistency", k_cnn.shape)
        if not _close(got, data_consistency_kspace(k_cnn, y * full, full, None)):
            raise CheckFailed("a boolean (H, W) mask must work too: convert it with mask.to(...)")

    def differentiable(f):
        k_cnn, y, m, _ = _problem(seed + 4, strict, dtype=torch.complex128)
        k_cnn = k_cnn.requires_grad_(True)
        lam = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
        out = f(k_cnn, y, m, lam)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise CheckFailed(
                "the output does not depend on k_cnn and lam for autograd: use torch "
                "operations only (no numpy, no .item(), no .detach())"
            )
        ok = torch.autograd.gradcheck(
            lambda a, lam_: f(a, y, m, lam_), (k_cnn, lam), raise_exception=False
        )
        if not ok:
            raise CheckFailed("torch.autograd.gradcheck fails in double precision")

    def inputs_untouched(f):
        k_cnn, y, m, _ = _problem(seed + 5, strict)
        before = (k_cnn.clone(), y.clone())
        f(k_cnn, y, m, None)
        if not (torch.equal(k_cnn, before[0]) and torch.equal(y, before[1])):
            raise CheckFailed("k_cnn or y was changed in place: build a new tensor instead")

    return run_check("data_consistency", _torch_errors(fn), [
        ("hard (noiseless) DC", hard),
        ("soft DC with lambda", soft),
        ("lambda = 0 and lambda -> infinity", limits_of_lambda),
        ("boolean (H, W) mask", mask_shapes),
        ("differentiable (gradcheck)", differentiable),
        ("inputs left untouched", inputs_untouched),
    ])


# ----------------------------------------------------------------------------- backward
def reference_dc_backward(g, k_cnn, y, m, lam):
    """The package's answer to ``dc_backward``: ``(dL/dk_cnn, dL/dlam)`` from
    ``g = dL/dk_rec``, by autograd through :func:`dlmi_utils.mri.dc.data_consistency_kspace`
    (``lam`` ``None`` for the hard form, then ``dL/dlam`` is ``None``)."""
    k_cnn = k_cnn.detach().clone().requires_grad_(True)
    lam_t = None
    inputs = [k_cnn]
    if lam is not None:
        lam_t = torch.as_tensor(lam, dtype=k_cnn.real.dtype).clone().requires_grad_(True)
        inputs.append(lam_t)
    with torch.enable_grad():  # also inside an autograd.Function's backward
        out = data_consistency_kspace(k_cnn, y, m, lam_t)
        grads = torch.autograd.grad(torch.real(torch.sum(out.conj() * g)), inputs)
    return grads[0], (grads[1] if lam is not None else None)


def _grad_lam_hint(got, g, k_cnn, y, m, lam) -> str:
    d = m * (y - k_cnn)
    slips = [
        (torch.real(torch.sum(g * d)) / (1 + lam) ** 2,
         "conjugate the incoming gradient: Re sum(conj(g) * d k_rec / d lambda)"),
        (-torch.real(torch.sum(torch.conj(g) * d)) / (1 + lam) ** 2,
         "wrong sign: d k_rec / d lambda = (y - k_cnn) / (1 + lambda)^2"),
        (torch.real(torch.sum(torch.conj(g) * d)) / (1 + lam),
         "the derivative of (k_cnn + lambda y) / (1 + lambda) has (1 + lambda)^2 below"),
        (torch.real(torch.sum(torch.conj(g) * (y - k_cnn))) / (1 + lam) ** 2,
         "only the sampled entries depend on lambda: multiply by the mask"),
    ]
    for value, hint in slips:
        if abs(float(got) - float(value)) <= 1e-4 * max(1.0, abs(float(value))):
            return hint
    return "grad_lam = Re sum(conj(g) * mask * (y - k_cnn)) / (1 + lambda)^2"


def _student_function(f):
    """A ``torch.autograd.Function`` with the reference forward and the student's backward."""

    class StudentDC(torch.autograd.Function):
        @staticmethod
        def forward(ctx, k_cnn, y, mask, lam):
            ctx.save_for_backward(k_cnn, y, mask, lam)
            return data_consistency_kspace(k_cnn, y, mask, lam)

        @staticmethod
        def backward(ctx, g):
            k_cnn, y, mask, lam = ctx.saved_tensors
            grad_k, grad_lam = f(g, k_cnn, y, mask, lam)
            return grad_k, None, None, grad_lam

    return StudentDC


def check_dc_backward(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``dc_backward(g, k_cnn, y, mask, lam) -> (grad_k_cnn, grad_lam)`` of the k-space DC."""

    def _call(f, g, k_cnn, y, m, lam):
        out = f(g, k_cnn, y, m, lam)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed("return a tuple (grad_k_cnn, grad_lam)")
        return out

    def hard(f):
        k_cnn, y, m, gen = _problem(seed, strict)
        g = torch.randn(k_cnn.shape, dtype=k_cnn.dtype, generator=gen)
        grad_k, grad_lam = _call(f, g, k_cnn, y, m, None)
        grad_k = _tensor(grad_k, "grad_k_cnn", k_cnn.shape)
        expected, _ = reference_dc_backward(g, k_cnn, y, m, None)
        if not _close(grad_k, expected):
            if _close(grad_k, g):
                raise CheckFailed(
                    "with hard DC the sampled entries ignore k_cnn: their gradient is 0"
                )
            if _close(grad_k, m * g):
                raise CheckFailed("mask inverted: the gradient flows where mask == 0")
            raise CheckFailed("hard DC: grad_k_cnn = (1 - mask) g")
        if grad_lam is not None:
            raise CheckFailed("the hard form has no lambda: return None for grad_lam")

    def soft(f):
        k_cnn, y, m, gen = _problem(seed + 1, strict)
        g = torch.randn(k_cnn.shape, dtype=k_cnn.dtype, generator=gen)
        lam = torch.tensor(0.6 if strict else 1.5)
        grad_k, grad_lam = _call(f, g, k_cnn, y, m, lam)
        grad_k = _tensor(grad_k, "grad_k_cnn", k_cnn.shape)
        exp_k, exp_lam = reference_dc_backward(g, k_cnn, y, m, lam)
        if not _close(grad_k, exp_k):
            if _close(grad_k, (1 - m) * g):
                raise CheckFailed(
                    "that is the hard form: on the mask the gradient is g / (1 + lambda)"
                )
            raise CheckFailed("grad_k_cnn = ((1 - mask) + mask / (1 + lambda)) g  (F^H Lambda F)")
        if not isinstance(grad_lam, torch.Tensor) or grad_lam.numel() != 1:
            raise CheckFailed("grad_lam must be a one-number tensor (lambda is a scalar)")
        if grad_lam.is_complex():
            raise CheckFailed("lambda is real, so is its gradient: take the real part")
        if abs(float(grad_lam) - float(exp_lam)) > 1e-4 * max(1.0, abs(float(exp_lam))):
            raise CheckFailed(_grad_lam_hint(grad_lam, g, k_cnn, y, m, lam))

    def gradcheck_passes(f):
        k_cnn, y, m, _ = _problem(seed + 2, strict, dtype=torch.complex128)
        k_cnn = k_cnn.requires_grad_(True)
        lam = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
        fn_ = _student_function(f)
        ok = torch.autograd.gradcheck(
            lambda a, lam_: fn_.apply(a, y, m, lam_), (k_cnn, lam), raise_exception=False
        )
        if not ok:
            raise CheckFailed(
                "torch.autograd.gradcheck disagrees with your backward (in double precision)"
            )

    return run_check("dc_backward", _torch_errors(fn), [
        ("hard DC", hard),
        ("soft DC: k-space gradient and d/dlambda", soft),
        ("gradcheck of an autograd.Function built on it", gradcheck_passes),
    ])


# ----------------------------------------------------------------------------- cascade
class _LinearCNN(torch.nn.Module):
    """A fixed random 3x3 convolution ``(B, 2, H, W) -> (B, 2, H, W)`` (not residual)."""

    def __init__(self, g: torch.Generator):
        super().__init__()
        self.weight = 0.2 * torch.randn(2, 2, 3, 3, generator=g)

    def forward(self, x):
        return torch.nn.functional.conv2d(x, self.weight, padding=1)


def reference_cascade_forward(x_u, y, m, cnns):
    """The package's answer to ``cascade_forward``: ``x <- DC(x + CNN(x))`` with hard DC for
    each ``cnn`` (``(B, 2, H, W) -> (B, 2, H, W)``, not residual) from ``x_u`` ``(B, H, W)``."""
    x = x_u
    for cnn in cnns:
        x = x + channels_to_complex(cnn(complex_to_channels(x)))
        x = ifft2c(data_consistency_kspace(fft2c(x), y, m, None))
    return x


def check_cascade_forward(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``cascade_forward(x_u, y, mask, cnns) -> x_rec``: ``x <- DC(x + CNN(x))`` per CNN."""

    def _inputs(offset, n_cnns):
        k_cnn, y, m, g = _problem(seed + offset, strict)
        return ifft2c(y), y, m, [_LinearCNN(g) for _ in range(n_cnns)]

    def zero_cnns_return_x_u(f):
        x_u, y, m, _ = _inputs(0, 0)
        zero = [lambda x: torch.zeros_like(x)] * 2
        got = _tensor(f(x_u, y, m, zero), "cascade_forward", x_u.shape)
        if not _close(got, x_u):
            raise CheckFailed(
                "with CNNs that output 0, each block is the identity (residual) and DC keeps "
                "x_u: the result must be x_u"
            )

    def matches_reference(f):
        x_u, y, m, cnns = _inputs(1, 3 if strict else 2)
        with torch.no_grad():
            got = _tensor(f(x_u, y, m, cnns), "cascade_forward", x_u.shape)
            expected = reference_cascade_forward(x_u, y, m, cnns)
            if _close(got, expected, 1e-4):
                return
            x = x_u
            for cnn in cnns:  # without the residual connection
                x = ifft2c(data_consistency_kspace(
                    fft2c(channels_to_complex(cnn(complex_to_channels(x)))), y, m, None))
            if _close(got, x, 1e-4):
                raise CheckFailed("add the residual connection: x + CNN(x), then DC")
            on = m.expand_as(y).bool()
            if not _close(fft2c(got)[on], y[on], 1e-4):
                raise CheckFailed("the measured samples are not kept: end each block with DC")
            raise CheckFailed("expected x <- DC(x + CNN(x)) for each CNN in turn")

    return run_check("cascade_forward", _torch_errors(fn), [
        ("CNNs that output zero", zero_cnns_return_x_u),
        ("fixed linear CNNs", matches_reference),
    ])
