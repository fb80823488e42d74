"""checks.lab03: right answers pass (self-check and strict), usual slips get the hint."""

import pytest
import torch

from dlmi_utils.course.checks import lab03
from dlmi_utils.fourier import channels_to_complex, complex_to_channels, fft2c, ifft2c


def _dc(k_cnn, y, mask, lam=None):
    m = mask.to(k_cnn.real.dtype)
    if lam is None:
        return (1 - m) * k_cnn + m * y
    return (1 - m) * k_cnn + m * (k_cnn + lam * y) / (1 + lam)


def _backward(g, k_cnn, y, mask, lam):
    m = mask.to(k_cnn.real.dtype)
    if lam is None:
        return (1 - m) * g, None
    grad_lam = torch.real(torch.sum(torch.conj(g) * m * (y - k_cnn))) / (1 + lam) ** 2
    return ((1 - m) + m / (1 + lam)) * g, grad_lam


def _cascade(x_u, y, mask, cnns, residual=True, dc=True):
    x = x_u
    for cnn in cnns:
        out = channels_to_complex(cnn(complex_to_channels(x)))
        x = x + out if residual else out
        if dc:
            x = ifft2c(_dc(fft2c(x), y, mask))
    return x


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (lab03.check_data_consistency, _dc),
        (lab03.check_dc_backward, _backward),
        (lab03.check_cascade_forward, _cascade),
    ],
)
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict)
    assert result.ok, result.report()


def _hints(result):
    return " ".join(result.messages)


def test_swapped_inputs_and_inverted_mask_get_named():
    swapped = lab03.check_data_consistency(lambda a, b, m, lam=None: _dc(b, a, m, lam))
    assert not swapped.ok and "mask inverted" in _hints(swapped)
    weights = lab03.check_data_consistency(
        lambda a, b, m, lam=None: _dc(a, b, m) if lam is None else (1 - m) * a + m * (lam * a + b)
        / (1 + lam))
    assert "swapped" in _hints(weights)
    undivided = lab03.check_data_consistency(
        lambda a, b, m, lam=None: _dc(a, b, m) if lam is None else (1 - m) * a + m * (a + lam * b))
    assert "divide by (1 + lambda)" in _hints(undivided)


def test_bool_mask_subtraction_is_a_hint_not_a_todo():
    result = lab03.check_data_consistency(lambda a, b, m, lam=None: (1 - m) * a + m * b)
    assert result.status == "failed" and "torch cannot do this" in _hints(result)


def test_missing_conj_in_lambda_gradient_is_named():
    def no_conj(g, k_cnn, y, mask, lam):
        grad_k, _ = _backward(g, k_cnn, y, mask, lam)
        if lam is None:
            return grad_k, None
        return grad_k, torch.real(torch.sum(g * mask * (y - k_cnn))) / (1 + lam) ** 2

    result = lab03.check_dc_backward(no_conj)
    assert not result.ok and "conjugate" in _hints(result)
    assert "gradcheck" in _hints(result)


def test_cascade_without_residual_or_dc_is_named():
    no_res = lab03.check_cascade_forward(lambda *a: _cascade(*a, residual=False))
    assert "residual" in _hints(no_res)
    no_dc = lab03.check_cascade_forward(lambda *a: _cascade(*a, dc=False))
    assert not no_dc.ok and "DC" in _hints(no_dc)


def test_unfinished_exercise_reads_not_implemented():
    def stub(*args):
        raise NotImplementedError("data_consistency is not implemented yet: write your code")

    assert lab03.check_data_consistency(stub).status == "not_implemented"


@pytest.mark.parametrize(
    ("check", "right"),
    [(lab03.check_data_consistency, _dc), (lab03.check_dc_backward, _backward),
     (lab03.check_cascade_forward, _cascade)],
)
def test_strict_uses_other_sizes(check, right):
    """An answer that only works on the self-check's (2, 8, 8) problems fails the grader."""

    def only_for_8x8(*args):
        if args[0].shape[-2:] != (8, 8):
            raise ValueError("hard-coded for 8 x 8")
        return right(*args)

    assert check(only_for_8x8).ok
    strict = check(only_for_8x8, strict=True)
    assert not strict.ok and "hard-coded for 8 x 8" in _hints(strict)


@pytest.mark.parametrize(
    "check", [lab03.check_data_consistency, lab03.check_dc_backward, lab03.check_cascade_forward]
)
def test_a_raising_answer_is_caught_and_named(check):
    def broken(*args):
        raise RuntimeError("shape mismatch somewhere")

    result = check(broken)
    assert result.status == "error" and not result.ok
    assert "RuntimeError: shape mismatch somewhere" in _hints(result)


def test_hard_form_slips_are_named():
    unchanged = lab03.check_data_consistency(lambda a, b, m, lam=None: a.clone())
    assert "unchanged" in _hints(unchanged)
    numpy_out = lab03.check_data_consistency(lambda a, b, m, lam=None: _dc(a, b, m, lam).numpy())
    assert "torch tensor" in _hints(numpy_out)


def test_soft_backward_slips_are_named():
    def hard_only(g, k_cnn, y, mask, lam):
        return (1 - mask) * g, (None if lam is None else torch.zeros(()))

    assert "hard form" in _hints(lab03.check_dc_backward(hard_only))

    def wrong_sign(g, k_cnn, y, mask, lam):
        grad_k, grad_lam = _backward(g, k_cnn, y, mask, lam)
        return grad_k, (None if lam is None else -grad_lam)

    assert "wrong sign" in _hints(lab03.check_dc_backward(wrong_sign))

    def complex_lam(g, k_cnn, y, mask, lam):
        grad_k, grad_lam = _backward(g, k_cnn, y, mask, lam)
        if lam is None:
            return grad_k, None
        return grad_k, torch.sum(torch.conj(g) * mask * (y - k_cnn)) / (1 + lam) ** 2

    assert "real part" in _hints(lab03.check_dc_backward(complex_lam))


def test_references_pass_their_own_checks():
    """The answers a lab falls back on (yours_or_reference) are right by the checks' rules."""
    from dlmi_utils.mri.dc import data_consistency_kspace

    assert lab03.check_data_consistency(data_consistency_kspace, strict=True).ok
    assert lab03.check_dc_backward(lab03.reference_dc_backward, strict=True).ok
    assert lab03.check_cascade_forward(lab03.reference_cascade_forward, strict=True).ok
