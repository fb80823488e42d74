import pytest
import torch

from dlmi_utils.fourier import channels_to_complex, complex_to_channels, fft2c, ifft2c
from dlmi_utils.mri import DeepCascade, ResidualCNNBlock, UNet, UNetRecon


def _inputs(b=2, h=24, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(b, h, w, dtype=torch.complex64, generator=g)
    mask = (torch.rand(b, 1, w, generator=g) < 0.4).float()
    s0 = fft2c(target) * mask
    return ifft2c(s0), s0, mask


def _small(**kw):
    torch.manual_seed(0)
    return DeepCascade(**{"n_cascades": 2, "n_convs": 3, "n_filters": 8, **kw})


@pytest.mark.parametrize("dc", ["hard", "soft", "none"])
def test_cascade_keeps_shape_and_dtype(dc):
    x_u, s0, mask = _inputs()
    out = _small(dc=dc)(x_u, s0, mask)
    assert out.shape == x_u.shape and out.dtype == torch.complex64


def test_hard_dc_cascade_output_agrees_with_the_measured_samples():
    x_u, s0, mask = _inputs(seed=1)
    out = _small(dc="hard")(x_u, s0, mask)
    m = mask.expand_as(s0).bool()
    torch.testing.assert_close(fft2c(out)[m], s0[m], atol=1e-4, rtol=1e-4)


def test_cascade_without_dc_changes_the_measured_samples():
    x_u, s0, mask = _inputs(seed=1)
    out = _small(dc="none")(x_u, s0, mask)
    m = mask.expand_as(s0).bool()
    assert (fft2c(out)[m] - s0[m]).abs().max() > 1e-3


def test_shared_weights_use_one_cnn():
    shared, separate = _small(shared_weights=True), _small(shared_weights=False)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_separate = sum(p.numel() for p in separate.parameters())
    assert n_separate == 2 * n_shared
    assert shared.cnns[0] is shared.cnns[1]


def test_cascade_is_scale_equivariant_with_normalisation():
    x_u, s0, mask = _inputs(seed=2)
    net = _small().eval()
    with torch.no_grad():
        torch.testing.assert_close(net(7.0 * x_u, 7.0 * s0, mask), 7.0 * net(x_u, s0, mask),
                                   rtol=1e-4, atol=1e-4)


def test_soft_cascade_learns_one_lambda_per_cascade():
    x_u, s0, mask = _inputs(seed=3)
    net = _small(dc="soft", lam=5.0)
    assert net.lambdas() == pytest.approx([5.0, 5.0])
    net(x_u, s0, mask).abs().mean().backward()
    assert all(d.log_lam.grad is not None for d in net.dcs)


def test_residual_block_is_identity_when_last_conv_is_zero():
    block = ResidualCNNBlock(n_convs=3, n_filters=4)
    torch.nn.init.zeros_(block.net[-1].weight)
    torch.nn.init.zeros_(block.net[-1].bias)
    x = torch.randn(2, 2, 9, 11)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("shape", [(32, 32), (27, 33)])
def test_unet_keeps_any_image_size(shape):
    net = UNet(2, 3, chans=4, num_pool_layers=2)
    assert net(torch.randn(1, 2, *shape)).shape == (1, 3, *shape)


def test_unet_recon_ignores_the_measured_data():
    x_u, s0, mask = _inputs(seed=4)
    torch.manual_seed(0)
    net = UNetRecon(chans=4, num_pool_layers=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x_u, s0, mask), net(x_u))


def test_cascade_rejects_bad_inputs():
    x_u, s0, mask = _inputs()
    with pytest.raises(ValueError, match="dc must be"):
        DeepCascade(dc="sometimes")
    with pytest.raises(ValueError, match="n_convs"):
        DeepCascade(n_convs=1)
    with pytest.raises(ValueError, match="complex"):
        _small()(x_u.real, s0, mask)
    with pytest.raises(ValueError, match="match"):
        _small()(x_u, s0[:, :10], mask)


def test_truncated_cascade_and_skipped_dc_for_ablations():
    x_u, s0, mask = _inputs(seed=5)
    net = _small(dc="hard").eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x_u, s0, mask, n_cascades=0), x_u)
        scale = x_u.abs().amax((-2, -1), keepdim=True)
        first = net.dcs[0](net.cnns[0](complex_to_channels(x_u / scale)), s0 / scale, mask)
        torch.testing.assert_close(net(x_u, s0, mask, n_cascades=1),
                                   channels_to_complex(first) * scale)
        no_dc = net(x_u, s0, mask, skip_dc=True)
        m = mask.expand_as(s0).bool()
        assert (fft2c(no_dc)[m] - s0[m]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="n_cascades"):
        net(x_u, s0, mask, n_cascades=3)


def test_with_data_consistency_keeps_the_cnns_and_swaps_the_dc():
    from dlmi_utils.mri import with_data_consistency

    x_u, s0, mask = _inputs(seed=6)
    hard = _small(dc="hard").eval()
    soft = with_data_consistency(hard, "soft", lam=3.0)
    assert soft.config["dc"] == "soft" and soft.lambdas() == pytest.approx([3.0, 3.0])
    assert not soft.training and hard.config["dc"] == "hard"
    huge = with_data_consistency(hard, "soft", lam=1e9)
    none = with_data_consistency(hard, "none")
    with torch.no_grad():
        torch.testing.assert_close(huge(x_u, s0, mask), hard(x_u, s0, mask), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(none(x_u, s0, mask), hard(x_u, s0, mask, skip_dc=True))
        assert (soft(x_u, s0, mask) - hard(x_u, s0, mask)).abs().max() > 1e-3
    with pytest.raises(TypeError, match="DeepCascade"):
        with_data_consistency(UNetRecon(chans=4, num_pool_layers=2), "soft")


@pytest.mark.parametrize("shape", [(24, 20), (23, 19)])
def test_cascade_matches_the_plain_loop_of_cnn_and_centred_dc(shape):
    # even sizes take the shift-free DC path, odd sizes the centred FFTs: the same network
    from dlmi_utils.mri.dc import data_consistency

    g = torch.Generator().manual_seed(3)
    target = torch.randn(2, *shape, dtype=torch.complex128, generator=g)
    mask = (torch.rand(2, 1, shape[1], generator=g) < 0.4).double()
    s0 = fft2c(target) * mask
    x_u = ifft2c(s0)
    net = _small(dc="soft").double()
    x = complex_to_channels(x_u / x_u.abs().amax(dim=(-2, -1), keepdim=True))
    s0_scaled = s0 / x_u.abs().amax(dim=(-2, -1), keepdim=True)
    for cnn, dc in zip(net.cnns, net.dcs, strict=True):
        x = data_consistency(x + cnn.net(x), s0_scaled, mask, dc.lam)
    expected = channels_to_complex(x) * x_u.abs().amax(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(net(x_u, s0, mask), expected)
    torch.testing.assert_close(net(x_u, s0, mask[0, 0]), net(x_u, s0, mask[:1].expand(2, 1, -1)))
