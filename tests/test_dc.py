import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from dlmi_utils.fourier import complex_to_channels, fft2c, ifft2c
from dlmi_utils.mri import (
    DataConsistency,
    DataConsistencyFunction,
    MRIForward,
    birdcage_maps,
    data_consistency,
    make_mask,
)
from dlmi_utils.mri.dc import DC_MODES, data_consistency_kspace


def _problem(b=2, h=8, w=6, seed=0, dtype=torch.complex128):
    """A CNN image ``x``, measured k-space ``y`` (zero off the mask) and the operator."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, h, w, dtype=dtype, generator=g)
    y = torch.randn(b, h, w, dtype=dtype, generator=g)
    mask = (torch.rand(b, 1, w, generator=g) < 0.5).to(x.real.dtype)
    mask[..., w // 2] = 1  # at least one sampled column
    mask = mask.expand(b, h, w)
    return x, y * mask, MRIForward(mask)


def _sampled(physics, like):
    return physics.mask.expand_as(like).bool()


def test_hard_dc_keeps_measured_samples_and_cnn_elsewhere():
    x, y, physics = _problem()
    s_rec = fft2c(data_consistency(x, y, physics))
    s_cnn = fft2c(x)
    m = _sampled(physics, s_rec)
    torch.testing.assert_close(s_rec[m], y[m])
    torch.testing.assert_close(s_rec[~m], s_cnn[~m])


def test_soft_dc_is_the_weighted_average_on_sampled_set():
    x, y, physics = _problem(seed=1)
    lam = 3.0
    s_rec = fft2c(data_consistency(x, y, physics, torch.tensor(lam)))
    s_cnn = fft2c(x)
    m = _sampled(physics, s_rec)
    torch.testing.assert_close(s_rec[m], (s_cnn[m] + lam * y[m]) / (1 + lam))
    torch.testing.assert_close(s_rec[~m], s_cnn[~m])


def test_soft_dc_tends_to_hard_dc_for_large_lambda():
    x, y, physics = _problem(seed=2)
    hard = data_consistency(x, y, physics)
    soft = data_consistency(x, y, physics, torch.tensor(1e9, dtype=torch.float64))
    torch.testing.assert_close(soft, hard, atol=1e-7, rtol=0)


def test_dc_is_idempotent():
    x, y, physics = _problem(seed=3)
    once = data_consistency(x, y, physics)
    torch.testing.assert_close(data_consistency(once, y, physics), once)


@pytest.mark.parametrize("shape", [(8, 6), (7, 5)])  # plain FFTs (even) and centred ones (odd)
@pytest.mark.parametrize("lam", [None, 0.7])
def test_backward_passes_gradcheck_in_double(lam, shape):
    x, y, physics = _problem(b=2, h=shape[0], w=shape[1], seed=4)
    x.requires_grad_(True)
    y.requires_grad_(True)
    if lam is None:
        assert gradcheck(lambda a, b: DataConsistencyFunction.apply(a, b, physics, None), (x, y))
    else:
        lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
        assert gradcheck(
            lambda a, b, lam_: DataConsistencyFunction.apply(a, b, physics, lam_), (x, y, lam_t)
        )


@pytest.mark.parametrize("lam", [None, 2.5])
def test_backward_matches_autograd_of_plain_operations(lam):
    x, y, physics = _problem(seed=5)
    inputs = [x.requires_grad_(True), y.requires_grad_(True)]
    lam_t = None
    if lam is not None:
        lam_t = torch.tensor(lam, dtype=torch.float64, requires_grad=True)
        inputs.append(lam_t)
    v = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(9))
    ours = DataConsistencyFunction.apply(x, y, physics, lam_t)
    plain = ifft2c(data_consistency_kspace(fft2c(x), y, physics.mask, lam_t))
    g_ours = torch.autograd.grad(torch.real(torch.sum(ours.conj() * v)), inputs)
    g_plain = torch.autograd.grad(torch.real(torch.sum(plain.conj() * v)), inputs)
    for a, b in zip(g_ours, g_plain, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("shape", [(8, 6), (7, 5)])
def test_result_does_not_depend_on_the_kspace_order(shape):
    # even sizes run the plain FFTs on reordered data, odd sizes the centred ones: the rule
    # written with the centred FFTs gives the same image either way
    x, y, physics = _problem(b=2, h=shape[0], w=shape[1], seed=7)
    lam = torch.tensor(1.5, dtype=torch.float64)
    for lam_ in (None, lam):
        expected = ifft2c(data_consistency_kspace(fft2c(x), y, physics.mask, lam_))
        torch.testing.assert_close(data_consistency(x, y, physics, lam_), expected)


def test_lambda_gradient_is_the_course_formula():
    x, y, physics = _problem(seed=6)
    lam = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    out = data_consistency(x, y, physics, lam)
    # L = Re <v, x_rec>  =>  dL/dlambda = Re <F v, M (y - s_cnn) / (1 + lambda)^2>
    v = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))
    torch.real(torch.sum(out.conj() * v)).backward()
    expected = torch.real(
        torch.sum(torch.conj(fft2c(v)) * physics.mask * (y - fft2c(x)) / (1 + lam.detach()) ** 2)
    )
    torch.testing.assert_close(lam.grad, expected)


def test_two_channel_layout_matches_complex_layout():
    x, y, physics = _problem(seed=7, dtype=torch.complex64)
    layer = DataConsistency("soft", lam=2.0)
    out_c = layer(x, y, physics)
    out_r = layer(complex_to_channels(x), y, physics)
    assert out_r.shape == (x.shape[0], 2, *x.shape[1:]) and not out_r.is_complex()
    torch.testing.assert_close(out_r, complex_to_channels(out_c))


def test_channels_last_input_gives_channels_last_output_with_the_same_values():
    x, y, physics = _problem(b=2, h=8, w=6, seed=8)
    nchw = complex_to_channels(x)
    nhwc = nchw.contiguous(memory_format=torch.channels_last)
    out = data_consistency(nhwc, y, physics)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, data_consistency(nchw, y, physics))


def test_numpy_in_numpy_out_with_the_same_values():
    x, y, physics = _problem(seed=9)
    out = data_consistency(x.numpy(), y.numpy(), MRIForward(physics.mask.numpy()), 2.0)
    assert isinstance(out, np.ndarray) and out.dtype == np.complex128
    np.testing.assert_allclose(out, data_consistency(x, y, physics, 2.0).numpy(), atol=1e-12)


def test_learnable_lambda_stays_positive_and_gets_a_gradient():
    x, y, physics = _problem(seed=8, dtype=torch.complex64)
    layer = DataConsistency("soft", lam=0.5)
    with torch.no_grad():
        layer.log_lam.fill_(-30.0)
    assert layer.lam.item() > 0
    layer(x, y, physics).abs().sum().backward()
    assert layer.log_lam.grad is not None and torch.isfinite(layer.log_lam.grad)


def test_mode_none_passes_the_image_unchanged():
    x, y, physics = _problem(seed=10)
    assert DataConsistency("none")(x, y, physics) is x
    assert DC_MODES == ("hard", "soft", "none")


def test_bad_inputs_give_clear_errors():
    x, y, physics = _problem()
    with pytest.raises(ValueError, match="mode"):
        DataConsistency("medium")
    with pytest.raises(ValueError, match="positive"):
        DataConsistency("soft", lam=0.0)
    with pytest.raises(ValueError, match="do not fit the operator"):
        data_consistency(x, y[:, :4], physics)
    with pytest.raises(ValueError, match="do not fit the operator"):
        data_consistency(x, y, MRIForward(torch.ones(3, 3)))
    with pytest.raises(TypeError, match="MRIForward"):
        data_consistency(x, y, physics.mask)
    with pytest.raises(ValueError, match=">= 0"):
        data_consistency(x, y, physics, -1.0)


# ----------------------------------------------------------------------------- with coils
H, W = 24, 20


def _coil_problem(n_coils=2, acceleration=4, seed=0, dtype=torch.complex128):
    """Birdcage coils, a random Cartesian mask, noiseless data of a random image."""
    g = torch.Generator().manual_seed(seed)
    maps = torch.from_numpy(birdcage_maps(n_coils, (H, W), dtype=np.complex128)).to(dtype)
    mask = torch.from_numpy(make_mask("random", (H, W), acceleration, seed=seed))
    physics = MRIForward(mask, maps)
    y = physics.A(torch.randn(2, H, W, dtype=dtype, generator=g))
    return torch.randn(2, H, W, dtype=dtype, generator=g), y, physics


def _relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def _dense(physics):
    """The operator as a matrix ``(C H W, H W)`` (small images only)."""
    basis = torch.eye(H * W, dtype=torch.complex128).reshape(H * W, H, W)
    return physics.A(basis).reshape(H * W, -1).T


def test_hard_dc_with_coils_is_the_projection_onto_the_measured_data():
    x, y, physics = _coil_problem()
    x_dc = data_consistency(x, y, physics)
    assert _relative(physics.A(x_dc), y) < 1e-4
    # the closest image to x with A x' = y: x - A^+ (A x - y), A^+ the pseudo-inverse
    a = _dense(physics)
    residual = (physics.A(x) - y).reshape(2, -1)
    exact = x - (torch.linalg.pinv(a) @ residual.T).T.reshape(x.shape)
    assert _relative(x_dc, exact) < 1e-4


def test_soft_dc_with_coils_lies_between_the_image_and_the_hard_projection():
    x, y, physics = _coil_problem(seed=1)
    hard = data_consistency(x, y, physics)
    soft = data_consistency(x, y, physics, 2.0)
    misfit = [(physics.A(v) - y).norm().item() for v in (x, soft, hard)]
    assert misfit[0] > misfit[1] > misfit[2]
    assert (soft - x).norm() < (hard - x).norm()
    # soft DC minimises ||x' - x||^2 + lam ||A x' - y||^2: zero gradient there
    gradient = (soft - x) + 2.0 * physics.A_adjoint(physics.A(soft) - y)
    assert gradient.norm() < 1e-5 * x.norm()


@pytest.mark.parametrize("lam", [None, 3.0])
def test_one_unit_coil_through_conjugate_gradient_is_the_closed_form(lam):
    # a single coil map of ones is the same operator: the CG path of the coils must give
    # (s_cnn + lam y) / (1 + lam) on the sampled set and s_cnn elsewhere
    x, y, physics = _problem(seed=11)
    one_coil = MRIForward(physics.mask, torch.ones(1, *physics.shape, dtype=x.dtype))
    closed = data_consistency(x, y, physics, lam)
    by_cg = data_consistency(x, y[:, None], one_coil, lam)
    torch.testing.assert_close(by_cg, closed)
    s_rec, s_cnn, m = fft2c(by_cg), fft2c(x), _sampled(physics, x)
    on = y[m] if lam is None else (s_cnn[m] + lam * y[m]) / (1 + lam)
    torch.testing.assert_close(s_rec[m], on)
    torch.testing.assert_close(s_rec[~m], s_cnn[~m])


def test_soft_dc_with_coils_gets_a_lambda_gradient():
    x, y, physics = _coil_problem(seed=2, dtype=torch.complex64)
    layer = DataConsistency("soft", lam=1.0)
    layer(x, y, physics).abs().sum().backward()
    assert layer.log_lam.grad is not None and torch.isfinite(layer.log_lam.grad)
