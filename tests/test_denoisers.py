"""DnCNN, the dilated denoiser and the ResUNet: shapes, residual learning, the receptive field of
each layout, parameters, batch-norm folding."""

import pytest
import torch
from torch import nn

from dlmi_utils.denoising import DilatedDenoiser, DnCNN, receptive_field
from dlmi_utils.denoising.models import (
    ResUNetDenoiser,
    build_denoiser,
    count_parameters,
    dilated_block,
    fold_batch_norm,
)
from dlmi_utils.denoising.tiling import pixel_grid


def _macs_per_pixel(model: nn.Module, unshuffle: int) -> float:
    """Multiply-adds per input pixel of a stride-1 CNN run on the ``unshuffle``-d image."""
    return sum(c.weight.numel() for c in model.modules()
               if isinstance(c, nn.Conv2d)) / unshuffle**2


def test_unshuffled_net_sees_s_times_wider_at_the_cost_of_a_net_s_times_narrower():
    net = DilatedDenoiser(features=64, unshuffle=2)
    assert receptive_field(net) == 2 * receptive_field(DilatedDenoiser(features=64)) == 66
    assert net.body[0][0].in_channels == 4 and net.body[-1].out_channels == 4
    # the 64-wide convolutions on a quarter of the pixels cost what the 32-wide ones cost on all
    assert _macs_per_pixel(net, 2) == pytest.approx(
        _macs_per_pixel(DilatedDenoiser(features=32), 1), rel=0.02)


@pytest.mark.parametrize("shape", [(2, 1, 37, 53), (1, 1, 1, 5), (1, 1, 64, 64)])
def test_unshuffled_net_keeps_any_size_and_learns_the_residual(shape):
    model = DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=2).eval()
    x = torch.rand(*shape)
    with torch.no_grad():
        assert torch.equal(model(x), x), "the zero-initialised last layer gives the input back"
        nn.init.normal_(model.body[-1].weight)
        out = model(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.allclose(out, x - model.residual_map(x))


def test_unshuffled_net_of_an_image_is_the_crop_of_the_net_of_its_padded_image():
    # odd sizes are padded by replication: the same as denoising the padded image and cropping
    model = DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=2).eval()
    nn.init.normal_(model.body[-1].weight)
    x = torch.rand(1, 1, 15, 22)
    padded = nn.functional.pad(x, (0, 0, 0, 1), mode="replicate")
    with torch.no_grad():
        assert torch.allclose(model(x), model(padded)[..., :15, :22], atol=1e-6)


def test_unshuffle_must_be_a_positive_integer():
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="unshuffle"):
            DilatedDenoiser(features=4, unshuffle=bad)
    assert DilatedDenoiser(features=4).config["unshuffle"] == 1


def test_dilated_and_plain_nets_have_the_same_parameters():
    dilated = DilatedDenoiser(features=16)
    plain = DilatedDenoiser(features=16, dilations=(1,) * 7)
    assert count_parameters(dilated) == count_parameters(plain)
    assert receptive_field(dilated) > 2 * receptive_field(plain)


def test_parameter_counts_of_the_papers():
    # DnCNN-S (17 layers, 64 features): 556,032 conv weights and biases + BN
    assert count_parameters(DnCNN()) == 556_097
    # IRCNN denoiser prior: 7 layers of 64 features
    assert count_parameters(DilatedDenoiser()) == 186_177


@pytest.mark.parametrize("kind", ["dncnn", "dilated"])
def test_output_has_input_shape_for_odd_sizes(kind):
    model = build_denoiser(kind, features=8, **({"depth": 5} if kind == "dncnn" else {}))
    x = torch.rand(2, 1, 37, 53)
    assert model(x).shape == x.shape


@pytest.mark.parametrize("kind", ["dncnn", "dilated"])
def test_residual_learning_returns_input_minus_predicted_noise(kind):
    model = build_denoiser(kind, features=8, **({"depth": 5} if kind == "dncnn" else {}))
    model.eval()
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        assert torch.equal(model(x), x), "the zero-initialised last layer gives the input back"
        nn.init.normal_(model.body[-1].weight)
        assert not torch.equal(model(x), x)
        assert torch.allclose(model(x), x - model.body(x))


def test_non_residual_net_returns_the_body_output():
    model = DilatedDenoiser(features=8, residual=False).eval()
    x = torch.rand(1, 1, 20, 20)
    with torch.no_grad():
        nn.init.normal_(model.body[-1].weight)
        assert torch.allclose(model(x), model.body(x))


def test_dncnn_has_batch_norm_in_the_middle_layers_only():
    model = DnCNN(depth=6, features=8)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.body[0])


def test_dilated_block_keeps_size_and_uses_its_dilation():
    block = dilated_block(4, 6, dilation=3)
    conv = block[0]
    assert conv.dilation == (3, 3) and conv.padding == (3, 3)
    assert block(torch.rand(2, 4, 15, 17)).shape == (2, 6, 15, 17)
    with pytest.raises(ValueError, match="dilation"):
        dilated_block(1, 1, dilation=0)


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        DilatedDenoiser(features=4)(torch.rand(16, 16))
    with pytest.raises(ValueError, match="kind"):
        build_denoiser("unet")


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: DilatedDenoiser(features=16),
                                  lambda: ResUNetDenoiser(features=(8, 16), blocks=1)])
def test_a_few_steps_reduce_the_denoising_error(make):
    torch.manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(8, 1, 40, 40), 5, 1, 2)
    noisy = clean + 0.1 * torch.randn_like(clean)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = ((noisy - clean) ** 2).mean().item()
    for _ in range(60):
        loss = ((model(noisy) - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = ((model(noisy) - clean) ** 2).mean().item()
    assert after < 0.5 * before


def _with_trained_batch_norms(model: nn.Module) -> nn.Module:
    """``model`` with batch-norm statistics and affine terms far from their defaults."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
        elif isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0, 0.2, generator=g)
    return model.eval()


@pytest.mark.parametrize("kind, kwargs", [("dncnn", {"depth": 5}), ("dilated", {}),
                                          ("dilated", {"unshuffle": 2})])
def test_folding_batch_norm_keeps_the_outputs_and_removes_the_norms(kind, kwargs):
    model = _with_trained_batch_norms(build_denoiser(kind, features=8, **kwargs))
    folded = fold_batch_norm(model)
    y = torch.rand(2, 1, 37, 41, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = model(y), folded(y)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is kept
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert (expected - y).abs().max() > 0.1  # the check would see a dropped layer
    assert folded.config == model.config and receptive_field(folded) == receptive_field(model)
    assert not folded.training


def test_folding_a_net_without_batch_norm_changes_nothing():
    model = build_denoiser("dilated", features=8, batch_norm=False).eval()
    y = torch.rand(1, 1, 20, 20)
    with torch.no_grad():
        assert torch.allclose(fold_batch_norm(model)(y), model(y), atol=1e-6)


# ----------------------------------------------------------------------------- ResUNet
def _gradient_receptive_field(model: nn.Module, size: int, grid: int) -> int:
    """The widest span of input rows that one output pixel depends on (autograd), over the
    ``grid`` positions of a strided net's pixel grid, with every weight non-zero."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=0.5)
    model = model.double().eval()
    widest = 0
    for phase in range(grid):
        x = torch.rand(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        model(x)[0, 0, size // 2 + phase, size // 2].backward()
        rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1) > 0).flatten()
        widest = max(widest, int(rows.max() - rows.min() + 1))
    return widest


@pytest.mark.parametrize("features, blocks, unshuffle", [((4, 8), 1, 2), ((4, 8, 8), 1, 1),
                                                         ((4, 4, 8), 2, 2)])
def test_resunet_receptive_field_is_that_of_its_deepest_path(features, blocks, unshuffle):
    model = ResUNetDenoiser(features=features, blocks=blocks, unshuffle=unshuffle)
    grid = pixel_grid(model)
    assert grid == unshuffle * 2 ** (len(features) - 1)
    r = receptive_field(model)
    assert _gradient_receptive_field(model, size=r + 4 * grid, grid=grid) == r


def test_resunet_layout_of_the_benchmark_sees_180_pixels():
    model = ResUNetDenoiser(features=(32, 64, 128), blocks=2, unshuffle=2)
    assert receptive_field(model) == 180 and pixel_grid(model) == 8
    assert count_parameters(model) == 1_044_292


@pytest.mark.parametrize("shape", [(2, 1, 37, 53), (1, 1, 1, 5), (1, 1, 64, 64)])
def test_resunet_keeps_any_size_and_learns_the_residual(shape):
    model = ResUNetDenoiser(features=(4, 8, 8), blocks=1).eval()
    x = torch.rand(*shape)
    with torch.no_grad():
        assert torch.equal(model(x), x), "zero last layer and identity blocks give y back"
        nn.init.normal_(model.tail.weight)
        out = model(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.allclose(out, x - model.residual_map(x))


def test_resunet_of_an_image_is_the_crop_of_the_resunet_of_its_padded_image():
    model = ResUNetDenoiser(features=(4, 8), blocks=1).eval()
    nn.init.normal_(model.tail.weight)
    x = torch.rand(1, 1, 13, 22)
    padded = nn.functional.pad(x, (0, 2, 0, 3), mode="replicate")  # to the 4 x 4 grid
    with torch.no_grad():
        assert torch.allclose(model(x), model(padded)[..., :13, :22], atol=1e-6)


def test_resunet_channels_last_copy_gives_the_same_output():
    model = ResUNetDenoiser(features=(4, 8), blocks=1).eval()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.3)
    x = torch.rand(1, 1, 40, 36)
    with torch.no_grad():
        expected = model(x)
        # random weights make outputs of ~50: float32 rounding, not a bug, is ~1e-6 of that
        torch.testing.assert_close(fold_batch_norm(model)(x), expected, rtol=0,
                                   atol=1e-6 * expected.abs().max().item())


def test_resunet_bad_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="two levels"):
        ResUNetDenoiser(features=(8,))
    with pytest.raises(ValueError, match="blocks"):
        ResUNetDenoiser(features=(4, 8), blocks=0)
    with pytest.raises(ValueError, match="unshuffle"):
        ResUNetDenoiser(features=(4, 8), unshuffle=1.5)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        ResUNetDenoiser(features=(4, 8))(torch.rand(1, 3, 16, 16))
    assert build_denoiser("resunet", features=(4, 8)).config["features"] == [4, 8]



# ------------------------------------------------------------------ the noise-aware net
def test_noise_aware_net_started_from_a_dilated_net_first_ignores_the_level():
    from dlmi_utils.denoising.models import NoiseAwareDenoiser

    torch.manual_seed(0)
    dilated = DilatedDenoiser(features=8, unshuffle=2)
    dilated.body[-1].weight.data.normal_(0, 0.1)  # it starts at zero: make it do something
    dilated.eval()
    aware = NoiseAwareDenoiser.from_dilated(dilated).eval()
    y = torch.rand(2, 1, 33, 30)
    with torch.no_grad():
        assert torch.allclose(aware(y, 0.1), dilated(y), atol=1e-6)
        assert torch.allclose(aware(y, 0.3), dilated(y), atol=1e-6)
    with pytest.raises(TypeError, match="DilatedDenoiser"):
        NoiseAwareDenoiser.from_dilated(DnCNN(depth=3))


def test_noise_aware_net_takes_a_number_one_level_per_image_or_a_map():
    from dlmi_utils.denoising.models import NoiseAwareDenoiser

    torch.manual_seed(0)
    net = NoiseAwareDenoiser(features=8).eval()
    net.body[-1].weight.data.normal_(0, 0.1)  # the last layer starts at zero
    y = torch.rand(2, 1, 20, 22)
    with torch.no_grad():
        number = net(y, 0.1)
        per_image = net(y, torch.tensor([0.1, 0.2]))
        as_map = net(y, torch.full((2, 1, 20, 22), 0.1))
        fixed = net.at(0.1)(y)
    assert number.shape == y.shape
    assert torch.allclose(number, as_map) and torch.allclose(number, fixed)
    assert torch.allclose(per_image[0], number[0]) and not torch.allclose(per_image[1], number[1])
    assert receptive_field(net) == receptive_field(DilatedDenoiser(features=8, unshuffle=2))


@pytest.mark.parametrize("sigma, match", [
    (float("nan"), "finite"), (-0.1, ">= 0"), (torch.ones(3), r"\(B,\)"),
])
def test_noise_aware_net_bad_level_is_a_clear_error(sigma, match):
    from dlmi_utils.denoising.models import NoiseAwareDenoiser

    net = NoiseAwareDenoiser(features=4)
    with pytest.raises(ValueError, match=match):
        net(torch.rand(2, 1, 8, 8), sigma)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.rand(8, 8), 0.1)


def test_noise_aware_net_learns_to_use_the_level():
    """Trained on two noise levels, the net denoises each better when told the right one."""
    from dlmi_utils.denoising.models import NoiseAwareDenoiser

    torch.manual_seed(0)
    net = NoiseAwareDenoiser(features=16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch():
        x = torch.nn.functional.interpolate(torch.rand(8, 1, 4, 4, generator=g), size=32,
                                            mode="bilinear", align_corners=False)
        sigma = torch.where(torch.rand(8, generator=g) < 0.5, 0.02, 0.2)
        return x, x + sigma.view(-1, 1, 1, 1) * torch.randn(x.shape, generator=g), sigma

    for _ in range(150):
        x, y, sigma = batch()
        loss = (net(y, sigma) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x, _, _ = batch()
    noise = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        for true, wrong in ((0.02, 0.2), (0.2, 0.02)):
            y = x + true * noise
            right = (net(y, true) - x).pow(2).mean()
            assert right < (net(y, wrong) - x).pow(2).mean()


def test_a_net_at_a_fixed_level_keeps_the_mode_of_the_net():
    """Wrapping an eval-mode net must not switch it to training mode when the wrapper's mode is
    set or restored (batch norm would then use batch statistics and update its running ones)."""
    from dlmi_utils.denoising.models import NoiseAwareDenoiser

    net = NoiseAwareDenoiser(features=4).eval()
    fixed = net.at(0.1)
    assert not fixed.training and not net.training
    fixed.train(fixed.training)  # what a caller that restores the mode does
    assert not net.training
