"""Lab 04 checks: the reference answers pass, the usual slips fail with a useful hint."""

import math

import numpy as np
import pytest
from torch import nn

from dlmi_utils import metrics
from dlmi_utils.course.checks import LAST_RESULTS, yours_or_reference
from dlmi_utils.course.checks.lab04 import (
    check_breast_psnr,
    check_dilated_block,
    check_receptive_field_of,
    check_residual_loss,
    reference_residual_loss,
)
from dlmi_utils.denoising.geometry import receptive_field
from dlmi_utils.denoising.models import dilated_block


def _stride_one_field(model):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return 1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in convs)


def _stub(*args):
    raise NotImplementedError("dilated_block is not implemented yet")


@pytest.mark.parametrize("strict", [False, True])
def test_reference_answers_pass(strict):
    assert check_dilated_block(lambda i, o, d: dilated_block(i, o, d), strict).ok
    assert check_residual_loss(
        lambda R, y, x: ((R(y) - (y - x)) ** 2).sum() / (2 * y.shape[0]), strict).ok
    assert check_receptive_field_of(_stride_one_field, strict).ok
    assert check_breast_psnr(
        lambda r, x, dr, m: 10 * math.log10(dr**2 / np.mean((x - r)[m] ** 2)), strict).ok


@pytest.mark.parametrize("strict", [False, True])
def test_the_references_the_lab_falls_back_on_pass(strict):
    """The lab goes on with these until the student's function passes: they must pass too."""
    assert check_dilated_block(dilated_block, strict).ok
    assert check_residual_loss(reference_residual_loss, strict).ok
    assert check_receptive_field_of(receptive_field, strict).ok
    assert check_breast_psnr(metrics.psnr, strict).ok


def test_a_failed_check_falls_back_on_the_package():
    def wrong(model):
        return 0
    assert not check_receptive_field_of(wrong).ok
    assert not LAST_RESULTS["receptive_field_of"].ok
    assert yours_or_reference("receptive_field_of", wrong, receptive_field) is receptive_field


def test_stub_reads_as_not_implemented():
    assert check_dilated_block(_stub).status == "not_implemented"


def test_dilated_block_with_padding_one_gets_the_padding_hint():
    def slip(i, o, d):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, dilation=d), nn.BatchNorm2d(o),
                             nn.ReLU())
    result = check_dilated_block(slip)
    assert not result.ok and any("padding must be" in m for m in result.messages)


def test_dilated_block_without_dilation_fails():
    result = check_dilated_block(lambda i, o, d: dilated_block(i, o, 1))
    assert not result.ok and any("dilation" in m for m in result.messages)


def test_dilated_block_without_relu_fails():
    def slip(i, o, d):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=d, dilation=d), nn.BatchNorm2d(o))
    result = check_dilated_block(slip)
    assert not result.ok and any("ReLU" in m for m in result.messages)


# the float() slip is the student's: torch warns that it detaches the graph, the check says so
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True:UserWarning")
def test_residual_loss_slips_get_hints():
    wrong_sign = check_residual_loss(lambda R, y, x: ((R(y) - (x - y)) ** 2).sum() / (2 * len(y)))
    assert not wrong_sign.ok and any("y - x" in m for m in wrong_sign.messages)
    pixel_mean = check_residual_loss(lambda R, y, x: ((R(y) - (y - x)) ** 2).mean())
    assert not pixel_mean.ok and any("Frobenius" in m for m in pixel_mean.messages)
    no_half = check_residual_loss(lambda R, y, x: ((R(y) - (y - x)) ** 2).sum() / len(y))
    assert not no_half.ok and any("1/2" in m for m in no_half.messages)
    numpy_value = check_residual_loss(
        lambda R, y, x: float(((R(y) - (y - x)) ** 2).sum() / (2 * len(y))))
    assert not numpy_value.ok and any("torch tensor" in m for m in numpy_value.messages)


def test_receptive_field_off_by_one_gets_its_hint():
    result = check_receptive_field_of(lambda model: _stride_one_field(model) - 1)
    assert not result.ok and any("off by one" in m for m in result.messages)


def test_receptive_field_of_top_level_convolutions_only_gets_the_nesting_hint():
    def top_level(model):
        convs = [m for m in model.children() if isinstance(m, nn.Conv2d)]
        return 1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in convs)
    result = check_receptive_field_of(top_level)
    assert not result.ok and any("model.modules()" in m for m in result.messages)


def test_receptive_field_without_dilations_gets_its_hint():
    def no_dilation(model):
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        return 1 + sum(m.kernel_size[0] - 1 for m in convs)
    result = check_receptive_field_of(no_dilation)
    assert not result.ok and any("dilation matters" in m for m in result.messages)


def test_breast_psnr_with_multiplied_mask_gets_its_hint():
    def slip(r, x, dr, m):
        return 10 * math.log10(dr**2 / np.mean(((x - r) * m) ** 2))
    result = check_breast_psnr(slip)
    assert not result.ok and any("zeros in the mean" in m for m in result.messages)
    ignores = check_breast_psnr(lambda r, x, dr, m: 10 * math.log10(dr**2 / np.mean((x - r) ** 2)))
    assert not ignores.ok and any("mask is not used" in m for m in ignores.messages)


def test_checks_survive_exceptions_in_student_code():
    def broken(*args):
        raise RuntimeError("boom")
    for check in (check_dilated_block, check_residual_loss, check_receptive_field_of,
                  check_breast_psnr):
        assert check(broken).status == "error"
