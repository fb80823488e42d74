import pytest
import torch
from torch.autograd import gradcheck

from dlmi_utils.fourier import complex_to_channels, fft2c, ifft2c, to_fft_layout
from dlmi_utils.mri import DataConsistency, DataConsistencyFunction, data_consistency
from dlmi_utils.mri.dc import data_consistency_kspace


def _problem(b=2, h=8, w=6, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, h, w, dtype=dtype, generator=g)
    s0 = torch.randn(b, h, w, dtype=dtype, generator=g)
    mask = (torch.rand(b, 1, w, generator=g) < 0.5).to(x.real.dtype)
    mask[..., w // 2] = 1  # at least one sampled column
    return x, s0 * mask, mask


def test_hard_dc_keeps_measured_samples_and_cnn_elsewhere():
    x, s0, mask = _problem()
    s_rec = fft2c(data_consistency(x, s0, mask))
    s_cnn = fft2c(x)
    m = mask.expand_as(s_rec).bool()
    torch.testing.assert_close(s_rec[m], s0[m])
    torch.testing.assert_close(s_rec[~m], s_cnn[~m])


def test_soft_dc_is_the_weighted_average_on_sampled_set():
    x, s0, mask = _problem(seed=1)
    lam = 3.0
    s_rec = fft2c(data_consistency(x, s0, mask, torch.tensor(lam)))
    s_cnn = fft2c(x)
    m = mask.expand_as(s_rec).bool()
    torch.testing.assert_close(s_rec[m], (s_cnn[m] + lam * s0[m]) / (1 + lam))
    torch.testing.assert_close(s_rec[~m], s_cnn[~m])


def test_soft_dc_tends_to_hard_dc_for_large_lambda():
    x, s0, mask = _problem(seed=2)
    hard = data_consistency(x, s0, mask)
    soft = data_consistency(x, s0, mask, torch.tensor(1e9, dtype=torch.float64))
    torch.testing.assert_close(soft, hard, atol=1e-7, rtol=0)


def test_dc_is_idempotent():
    x, s0, mask = _problem(seed=3)
    once = data_consistency(x, s0, mask)
    torch.testing.assert_close(data_consistency(once, s0, mask), once)


@pytest.mark.parametrize("lam", [None, 0.7])
def test_backward_passes_gradcheck_in_double(lam):
    x, s0, mask = _problem(b=2, h=6, w=5, seed=4)
    x.requires_grad_(True)
    s0.requires_grad_(True)
    if lam is None:
        assert gradcheck(lambda a, b: DataConsistencyFunction.apply(a, b, mask, None), (x, s0))
    else:
        lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
        assert gradcheck(
            lambda a, b, lam_: DataConsistencyFunction.apply(a, b, mask, lam_), (x, s0, lam_t)
        )


@pytest.mark.parametrize("lam", [None, 2.5])
def test_backward_matches_autograd_of_plain_operations(lam):
    x, s0, mask = _problem(seed=5)
    inputs = [x.requires_grad_(True), s0.requires_grad_(True)]
    lam_t = None
    if lam is not None:
        lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
        inputs.append(lam_t)
    v = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(9))
    ours = DataConsistencyFunction.apply(x, s0, mask, lam_t)
    plain = ifft2c(data_consistency_kspace(fft2c(x), s0, mask, lam_t))
    g_ours = torch.autograd.grad(torch.real(torch.sum(ours.conj() * v)), inputs)
    g_plain = torch.autograd.grad(torch.real(torch.sum(plain.conj() * v)), inputs)
    for a, b in zip(g_ours, g_plain, strict=True):
        torch.testing.assert_close(a, b)


def test_lambda_gradient_is_the_course_formula():
    x, s0, mask = _problem(seed=6)
    lam = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    out = data_consistency(x, s0, mask, lam)
    # L = Re <v, x_rec>  =>  dL/dlambda = Re <F v, M (s0 - s_cnn) / (1 + lambda)^2>
    v = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))
    torch.real(torch.sum(out.conj() * v)).backward()
    expected = torch.real(
        torch.sum(torch.conj(fft2c(v)) * mask * (s0 - fft2c(x)) / (1 + lam.detach()) ** 2)
    )
    torch.testing.assert_close(lam.grad, expected)


def test_two_channel_layout_matches_complex_layout():
    x, s0, mask = _problem(seed=7, dtype=torch.complex64)
    layer = DataConsistency("soft", lam=2.0)
    out_c = layer(x, s0, mask)
    out_r = layer(complex_to_channels(x), complex_to_channels(s0), mask)
    assert out_r.shape == (x.shape[0], 2, *x.shape[1:]) and not out_r.is_complex()
    torch.testing.assert_close(out_r, complex_to_channels(out_c))


def test_learnable_lambda_stays_positive_and_gets_a_gradient():
    x, s0, mask = _problem(seed=8, dtype=torch.complex64)
    layer = DataConsistency("soft", lam=0.5)
    with torch.no_grad():
        layer.log_lam.fill_(-30.0)
    assert layer.lam.item() > 0
    layer(x, s0, mask).abs().sum().backward()
    assert layer.log_lam.grad is not None and torch.isfinite(layer.log_lam.grad)


def test_bad_inputs_give_clear_errors():
    x, s0, mask = _problem()
    with pytest.raises(ValueError, match="mode"):
        DataConsistency("medium")
    with pytest.raises(ValueError, match="positive"):
        DataConsistency("soft", lam=0.0)
    with pytest.raises(ValueError, match="broadcast"):
        data_consistency(x, s0, torch.ones(3, 3))
    with pytest.raises(ValueError, match="same shape"):
        data_consistency(x, s0[:, :4], mask)


@pytest.mark.parametrize("lam", [None, 1.5])
def test_fft_layout_gives_the_centred_result_and_gradient(lam):
    # DeepCascade hands its DC layers the data reordered for the plain FFTs (no shifts)
    x, s0, mask = _problem(b=2, h=8, w=6, seed=7)
    lam_t = None if lam is None else torch.tensor(lam, dtype=torch.float64)
    centred = data_consistency(x, s0, mask, lam_t)
    s0_f, mask_f = to_fft_layout(s0), torch.fft.ifftshift(mask, dim=(-2, -1))
    torch.testing.assert_close(data_consistency(x, s0_f, mask_f, lam_t, fft_layout=True), centred)
    x.requires_grad_(True)
    args = (x,) if lam is None else (x, lam_t.requires_grad_(True))
    assert gradcheck(
        lambda a, *l: DataConsistencyFunction.apply(a, s0_f, mask_f, l[0] if l else None, True),
        args,
    )


def test_channels_last_input_gives_channels_last_output_with_the_same_values():
    x, s0, mask = _problem(b=2, h=8, w=6, seed=8)
    nchw = complex_to_channels(x)
    nhwc = nchw.contiguous(memory_format=torch.channels_last)
    out = data_consistency(nhwc, s0, mask)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, data_consistency(nchw, s0, mask))
