"""checks.lab00: right answers pass (self-check and strict), usual slips get the hint."""

import numpy as np
import pytest

from dlmi_utils import metrics
from dlmi_utils.course.checks import lab00


def _psnr(ref, x, data_range):
    return 10 * np.log10(data_range**2 / np.mean((x - ref) ** 2))


def _dice(ref, est):
    total = ref.sum() + est.sum()
    return 1.0 if total == 0 else 2 * np.logical_and(ref, est).sum() / total


def _coc(ref, x):
    a, b = ref - ref.mean(), x - x.mean()
    return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "check,fn",
    [
        (lab00.check_psnr, _psnr),
        (lab00.check_psnr, metrics.psnr),
        (lab00.check_dice, _dice),
        (lab00.check_dice, metrics.dice),
        (lab00.check_coc, _coc),
        (lab00.check_coc, metrics.coc),
    ],
)
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict, seed=3)
    assert result.ok, result.report()


def _not_implemented(*args):
    raise NotImplementedError("psnr is not implemented yet")


@pytest.mark.parametrize("check", [lab00.check_psnr, lab00.check_dice, lab00.check_coc])
def test_stub_reports_not_implemented(check):
    result = check(_not_implemented)
    assert result.status == "not_implemented" and "not implemented yet" in result.report()


def _fails_with(result, hint):
    assert not result.ok
    assert hint in result.report(), result.report()


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda r, x, d: 10 * np.log10(d / np.sqrt(np.mean((x - r) ** 2))), "RMSE"),
        (lambda r, x, d: 20 * np.log10(d**2 / np.mean((x - r) ** 2)), "20 log10"),
        (lambda r, x, d: 10 * np.log(d**2 / np.mean((x - r) ** 2)), "np.log10"),
        (lambda r, x, d: 10 * np.log10(r.max() ** 2 / np.mean((x - r) ** 2)), "data_range arg"),
        (lambda r, x, d: 10 * np.log10(np.mean((x - r) ** 2) / d**2), "wrong sign"),
        (lambda r, x, d: 10 * np.log10(d**2 / (x - r) ** 2), "np.mean"),
    ],
    ids=["rmse", "20log", "ln", "image-max", "sign", "array"],
)
def test_psnr_slips_get_their_hint(wrong, hint):
    _fails_with(lab00.check_psnr(wrong), hint)


def test_psnr_that_edits_its_inputs_fails():
    def in_place(ref, x, d):
        x -= ref
        return 10 * np.log10(d**2 / np.mean(x**2))

    _fails_with(lab00.check_psnr(in_place), "in place")


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda a, b: (a & b).sum() / (a | b).sum(), "Jaccard"),
        (lambda a, b: (a & b).sum() / (a.sum() + b.sum()), "factor 2"),
        (lambda a, b: 2 * (a & b).sum() / (a + b).sum(), "logical OR"),
        (lambda a, b: 2 * (a & b).sum() / (a.sum() + b.sum()), "two empty masks"),
        (lambda a, b: 2 * (a & b) / (a.sum() + b.sum() + 1e-9), "np.mean"),
    ],
    ids=["jaccard", "no-2", "bool-plus", "empty", "array"],
)
def test_dice_slips_get_their_hint(wrong, hint):
    with np.errstate(invalid="ignore", divide="ignore"):
        _fails_with(lab00.check_dice(wrong), hint)


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda r, x: np.sum(r * x) / np.sqrt(np.sum(r * r) * np.sum(x * x)), "subtract the means"),
        (lambda r, x: np.mean((r - r.mean()) * (x - x.mean())), "covariance"),
        (lambda r, x: np.corrcoef(r.ravel(), x.ravel())[0, 1] ** 2, "r^2"),
        (lambda r, x: abs(np.corrcoef(r.ravel(), x.ravel())[0, 1]), "absolute value"),
        (lambda r, x: np.corrcoef(r.ravel(), x.ravel()), "array of shape (2, 2)"),
    ],
    ids=["uncentred", "covariance", "r2", "abs", "matrix"],
)
def test_coc_slips_get_their_hint(wrong, hint):
    _fails_with(lab00.check_coc(wrong), hint)


def test_a_torch_tensor_answer_asks_for_item():
    import torch

    result = lab00.check_coc(lambda r, x: torch.tensor(metrics.coc(r, x)))
    _fails_with(result, ".item()")


def test_strict_uses_other_sizes():
    """An answer that only works on the self-check's image size fails the grader's checks."""

    def only_for_32x32(r, x, d):
        return metrics.psnr(r, x, d) if r.shape == (32, 32) else 0.0

    assert lab00.check_psnr(only_for_32x32).ok
    assert not lab00.check_psnr(only_for_32x32, strict=True).ok
