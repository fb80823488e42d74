import numpy as np
import pytest
import torch

from dlmi_utils.fourier import channels_to_complex, complex_to_channels, fft2c, ifft2c
from dlmi_utils.mri import (
    DeepCascade,
    MRIForward,
    ResidualCNNBlock,
    UNet,
    UNetRecon,
    birdcage_maps,
    make_mask,
)
from dlmi_utils.mri.dc import data_consistency_kspace


def _inputs(b=2, h=24, w=20, seed=0, dtype=torch.complex64):
    """Measured k-space ``y`` (B, H, W) of random images and its single-coil operator."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(b, h, w, dtype=dtype, generator=g)
    mask = (torch.rand(b, 1, w, generator=g) < 0.4).to(target.real.dtype).expand(b, h, w)
    physics = MRIForward(mask)
    return physics.A(target), physics


def _sampled(physics, y):
    return physics.mask.expand_as(y).bool()


def _small(**kw):
    torch.manual_seed(0)
    return DeepCascade(**{"n_cascades": 2, "n_convs": 3, "features": 8, **kw})


@pytest.mark.parametrize("dc", ["hard", "soft", "none"])
def test_cascade_keeps_shape_and_dtype(dc):
    y, physics = _inputs()
    out = _small(dc=dc)(y, physics)
    assert out.shape == y.shape and out.dtype == torch.complex64


def test_hard_dc_cascade_output_agrees_with_the_measured_samples():
    y, physics = _inputs(seed=1)
    out = _small(dc="hard")(y, physics)
    torch.testing.assert_close(physics.A(out), y, atol=1e-4, rtol=1e-4)


def test_cascade_without_dc_changes_the_measured_samples():
    y, physics = _inputs(seed=1)
    out = _small(dc="none")(y, physics)
    m = _sampled(physics, y)
    assert (fft2c(out)[m] - y[m]).abs().max() > 1e-3


def test_cascade_starts_from_the_zero_filled_image_of_the_operator():
    y, physics = _inputs(seed=7)
    net = _small().eval()
    with torch.no_grad():
        torch.testing.assert_close(net(y, physics, n_cascades=0), physics.A_adjoint(y))


def test_cascade_with_coils_runs_and_keeps_the_measured_data():
    # the CNNs see the coil-combined image A^H y; hard DC projects onto A x = y by CG
    h, w = 24, 20
    g = torch.Generator().manual_seed(8)
    maps = torch.from_numpy(birdcage_maps(2, (h, w), dtype=np.complex128))
    physics = MRIForward(torch.from_numpy(make_mask("random", (h, w), 4, seed=8)), maps)
    y = physics.A(torch.randn(2, h, w, dtype=torch.complex128, generator=g))
    net = _small(dc="hard").double().eval()
    with torch.no_grad():
        out = net(y, physics)
    assert out.shape == (2, h, w) and out.dtype == torch.complex128
    assert ((physics.A(out) - y).norm() / y.norm()).item() < 1e-4
    assert ((out - physics.A_adjoint(y)).norm() / out.norm()).item() > 1e-2  # the CNNs acted


def test_shared_weights_use_one_cnn():
    shared, separate = _small(shared_weights=True), _small(shared_weights=False)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_separate = sum(p.numel() for p in separate.parameters())
    assert n_separate == 2 * n_shared
    assert shared.cnns[0] is shared.cnns[1]


def test_cascade_is_scale_equivariant_with_normalisation():
    y, physics = _inputs(seed=2)
    net = _small().eval()
    with torch.no_grad():
        torch.testing.assert_close(net(7.0 * y, physics), 7.0 * net(y, physics),
                                   rtol=1e-4, atol=1e-4)


def test_soft_cascade_learns_one_lambda_per_cascade():
    y, physics = _inputs(seed=3)
    net = _small(dc="soft", lam=5.0)
    assert net.lambdas() == pytest.approx([5.0, 5.0])
    net(y, physics).abs().mean().backward()
    assert all(d.log_lam.grad is not None for d in net.dcs)


def test_residual_block_is_identity_when_last_conv_is_zero():
    block = ResidualCNNBlock(n_convs=3, features=4)
    torch.nn.init.zeros_(block.net[-1].weight)
    torch.nn.init.zeros_(block.net[-1].bias)
    x = torch.randn(2, 2, 9, 11)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("shape", [(32, 32), (27, 33)])
def test_unet_keeps_any_image_size(shape):
    net = UNet(2, 3, features=4, n_pools=2)
    assert net(torch.randn(1, 2, *shape)).shape == (1, 3, *shape)


def test_unet_recon_sees_only_the_zero_filled_image():
    # any (y, physics) with the same A^H y gives the same output: here the single-coil data,
    # the same with garbage off the mask, and a fully sampled k-space of x_u
    y, physics = _inputs(seed=4)
    x_u = physics.A_adjoint(y)
    garbage = y + torch.randn(y.shape, dtype=y.dtype) * (1 - physics.mask)
    full = MRIForward(torch.ones(y.shape[-2:]))
    torch.manual_seed(0)
    net = UNetRecon(features=4, n_pools=2).eval()
    with torch.no_grad():
        out = net(y, physics)
        torch.testing.assert_close(net(garbage, physics), out)
        torch.testing.assert_close(net(fft2c(x_u), full), out, atol=1e-5, rtol=1e-4)
        assert (out - x_u).abs().max() > 1e-3  # and it does something with it


def test_cascade_rejects_bad_inputs():
    y, physics = _inputs()
    with pytest.raises(ValueError, match="dc must be"):
        DeepCascade(dc="sometimes")
    with pytest.raises(ValueError, match="n_convs"):
        DeepCascade(n_convs=1)
    with pytest.raises(ValueError, match="complex"):
        _small()(y.real, physics)
    with pytest.raises(ValueError, match="expected k-space"):
        _small()(y[:, :10], physics)
    with pytest.raises(ValueError, match="batch"):
        _small()(y[0], MRIForward(physics.mask[0]))
    with pytest.raises(TypeError, match="MRIForward"):
        _small()(y, physics.mask)


def test_truncated_cascade_and_skipped_dc_for_ablations():
    y, physics = _inputs(seed=5)
    x_u = physics.A_adjoint(y)
    net = _small(dc="hard").eval()
    with torch.no_grad():
        torch.testing.assert_close(net(y, physics, n_cascades=0), x_u)
        scale = x_u.abs().amax((-2, -1), keepdim=True)
        first = net.dcs[0](net.cnns[0](complex_to_channels(x_u / scale)), y / scale, physics)
        torch.testing.assert_close(net(y, physics, n_cascades=1),
                                   channels_to_complex(first) * scale)
        no_dc = net(y, physics, skip_dc=True)
        m = _sampled(physics, y)
        assert (fft2c(no_dc)[m] - y[m]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="n_cascades"):
        net(y, physics, n_cascades=3)


def test_with_data_consistency_keeps_the_cnns_and_swaps_the_dc():
    from dlmi_utils.mri import with_data_consistency

    y, physics = _inputs(seed=6)
    hard = _small(dc="hard").eval()
    soft = with_data_consistency(hard, "soft", lam=3.0)
    assert soft.config["dc"] == "soft" and soft.lambdas() == pytest.approx([3.0, 3.0])
    assert not soft.training and hard.config["dc"] == "hard"
    huge = with_data_consistency(hard, "soft", lam=1e9)
    none = with_data_consistency(hard, "none")
    with torch.no_grad():
        torch.testing.assert_close(huge(y, physics), hard(y, physics), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(none(y, physics), hard(y, physics, skip_dc=True))
        assert (soft(y, physics) - hard(y, physics)).abs().max() > 1e-3
    with pytest.raises(TypeError, match="DeepCascade"):
        with_data_consistency(UNetRecon(features=4, n_pools=2), "soft")


@pytest.mark.parametrize("shape", [(24, 20), (23, 19)])
def test_cascade_matches_the_plain_loop_of_cnn_and_centred_dc(shape):
    # even sizes take the shift-free DC path, odd sizes the centred FFTs: the same network
    g = torch.Generator().manual_seed(3)
    target = torch.randn(2, *shape, dtype=torch.complex128, generator=g)
    mask = (torch.rand(2, 1, shape[1], generator=g) < 0.4).double().expand(2, *shape)
    physics = MRIForward(mask)
    y = physics.A(target)
    x_u = ifft2c(y)
    scale = x_u.abs().amax(dim=(-2, -1), keepdim=True)
    net = _small(dc="soft").double()
    x = complex_to_channels(x_u / scale)
    for cnn, dc in zip(net.cnns, net.dcs, strict=True):
        s_cnn = fft2c(channels_to_complex(x + cnn.net(x)))
        x = complex_to_channels(ifft2c(data_consistency_kspace(s_cnn, y / scale, mask, dc.lam)))
    expected = channels_to_complex(x) * scale
    torch.testing.assert_close(net(y, physics), expected)
    one_mask = MRIForward(mask[0])  # (H, W): the same mask for the whole batch
    torch.testing.assert_close(net(y, one_mask), net(y, MRIForward(mask[:1].expand_as(mask))))
