"""DnCNN and the dilated denoiser: shapes, residual learning, receptive field, parameters."""

import numpy as np
import pytest
import torch
from torch import nn

from dlmi_utils.denoising import DilatedDenoiser, DnCNN, receptive_field
from dlmi_utils.denoising.models import (
    IRCNN_DILATIONS,
    ResUNetDenoiser,
    build_denoiser,
    count_parameters,
    deepen,
    dilated_block,
    fold_batch_norm,
    widen,
)
from dlmi_utils.denoising.tiling import pixel_grid
from dlmi_utils.noise import add_poisson_noise, anscombe, anscombe_mean, inverse_anscombe, vst_sigma


def _impulse_response_width(model: nn.Module, size: int = 81) -> int:
    """Side of the region of the output that changes when one input pixel changes."""
    torch.manual_seed(0)
    nn.init.normal_(model.body[-1].weight)  # the last layer starts at zero: no response yet
    model.eval()
    x = torch.rand(1, 1, size, size, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 0, size // 2, size // 2] += 1.0
    model = model.double()
    with torch.no_grad():
        diff = (model(x2) - model(x)).abs()[0, 0] > 0
    rows = torch.nonzero(diff.any(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    "model, expected",
    [
        (DnCNN(depth=17), 35),
        (DnCNN(depth=5, features=8), 11),
        (DilatedDenoiser(dilations=IRCNN_DILATIONS), 33),
        (DilatedDenoiser(dilations=(1,) * 7), 15),
        (DilatedDenoiser(dilations=(1, 2, 1)), 9),
    ],
)
def test_receptive_field_known_values(model, expected):
    assert receptive_field(model) == expected


def test_receptive_field_with_stride_and_pooling():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3),
                        nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3))
    # 1 + 2 (conv) + 1 (pool 2x2) + 2*2 + 2*2 + 2*2*2 = 20
    assert receptive_field(net) == 20


def test_receptive_field_without_convolution_is_an_error():
    with pytest.raises(ValueError, match="no Conv2d"):
        receptive_field(nn.Sequential(nn.ReLU()))


@pytest.mark.parametrize("model", [DnCNN(depth=6, features=8),
                                   DilatedDenoiser(features=8, dilations=(1, 2, 3, 2, 1)),
                                   DilatedDenoiser(features=8, dilations=(1, 1, 1, 1, 1)),
                                   DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=2),
                                   DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=3)])
def test_receptive_field_matches_impulse_response(model):
    assert _impulse_response_width(model) == receptive_field(model)


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


@pytest.mark.parametrize("level", [0.1, 0.4, 0.9])
def test_anscombe_stabilises_poisson_variance(level):
    photons = 200.0
    y = add_poisson_noise(np.full(200_000, level), photons, seed=1)
    z = anscombe(y, photons)
    assert z.std() == pytest.approx(vst_sigma(photons), rel=0.03)


def test_inverse_anscombe_is_unbiased_where_algebraic_inverse_is_not():
    photons, level = 50.0, 0.1  # 5 photons: low counts
    z = anscombe(add_poisson_noise(np.full(400_000, level), photons, seed=2), photons)
    exact = inverse_anscombe(np.full_like(z, z.mean()), photons)[0]
    # the unbiased inverse maps E[z] back to the true level; z^2 - 3/(8N) does not
    assert exact == pytest.approx(level, rel=0.02)
    algebraic = z.mean() ** 2 - 3 / (8 * photons)
    assert abs(algebraic - level) > 3 * abs(exact - level)
    with pytest.raises(ValueError, match="photons"):
        anscombe(z, 0)


@pytest.mark.parametrize("level", [0.0, 0.02, 0.3, 0.9])
def test_anscombe_mean_is_the_expectation_of_the_transformed_counts(level):
    photons = 100.0
    z = anscombe(add_poisson_noise(np.full(1_000_000, level), photons, seed=4), photons)
    standard_error = max(z.std(), 1e-12) / np.sqrt(z.size)
    expected = anscombe_mean(np.array([level]), photons)[0]
    assert abs(expected - z.mean()) < 4 * standard_error + 1e-12
    if level >= 0.3:  # the bias of anscombe(x) that anscombe_mean corrects, ~1/(16 N0 sqrt(x))
        assert anscombe(np.array([level]), photons)[0] - expected > 20 * standard_error


@pytest.mark.parametrize("photons", [20.0, 100.0, 1000.0])
def test_inverse_anscombe_maps_anscombe_mean_back_to_x(photons):
    x = np.linspace(0.05, 1.0, 96).reshape(8, 12)
    back = inverse_anscombe(anscombe_mean(x, photons), photons)
    assert back.shape == x.shape
    np.testing.assert_allclose(back, x, atol=2e-3 / np.sqrt(photons / 20))
    # the algebraic target anscombe(x) would be off by far more at these counts
    assert np.abs(inverse_anscombe(anscombe(x, photons), photons) - x).max() > 1e-3 / photons


def test_anscombe_mean_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="non-negative"):
        anscombe_mean(np.array([0.5, -0.1]), 100)
    with pytest.raises(ValueError, match="non-negative"):
        anscombe_mean(np.array([np.nan]), 100)
    with pytest.raises(ValueError, match="photons"):
        anscombe_mean(np.array([0.5]), 0)


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


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_a_deepened_net_computes_the_same_function_and_sees_farther(unshuffle):
    model = _with_trained_batch_norms(DilatedDenoiser(features=8, unshuffle=unshuffle))
    g = torch.Generator().manual_seed(2)
    calibration, y = torch.rand(4, 1, 40, 40, generator=g), torch.rand(2, 1, 37, 41, generator=g)
    deeper = deepen(model, (1, 2, 3, 4, 5, 4, 3, 2, 1), calibration)
    assert deeper.config["dilations"] == [1, 2, 3, 4, 5, 4, 3, 2, 1]
    assert len(deeper.body) == 9 and not deeper.training
    assert receptive_field(deeper) == receptive_field(model) + 2 * (5 + 4) * unshuffle
    with torch.no_grad():
        expected = model(y)
        assert (expected - y).abs().max() > 0.1  # the check would see a dropped layer
        assert torch.allclose(deeper(y), expected, atol=1e-5)
        assert torch.allclose(deeper(calibration), model(calibration), atol=1e-5)
    # the copied layers are the model's, the new ones (at 4 and 5) train like any other
    assert torch.equal(deeper.body[6][0].weight, model.body[4][0].weight)
    assert all(p.requires_grad for p in deeper.body[4].parameters())


def test_deepen_refuses_dilations_that_drop_or_reorder_the_model_layers():
    model = DilatedDenoiser(features=8)
    calibration = torch.rand(1, 1, 24, 24)
    for bad in [(1, 2, 3, 3, 2, 1), (2, 1, 2, 3, 4, 3, 2, 1), (1, 2, 3, 4, 3, 2, 1, 5)]:
        with pytest.raises(ValueError, match="must contain the model's"):
            deepen(model, bad, calibration)
    with pytest.raises(ValueError, match="batch norm"):
        deepen(DilatedDenoiser(features=8, batch_norm=False), (1, 2, 3, 4, 4, 3, 2, 1), calibration)
    with pytest.raises(TypeError, match="DilatedDenoiser"):
        deepen(DnCNN(features=8, depth=5), (1, 1, 1, 1, 1, 1), calibration)


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_a_widened_net_computes_the_same_function_and_its_new_channels_learn(unshuffle):
    model = _with_trained_batch_norms(DilatedDenoiser(features=8, unshuffle=unshuffle))
    y = torch.rand(2, 1, 37, 41, generator=torch.Generator().manual_seed(3))
    wider = widen(model, 12, seed=1)
    assert wider.config == {**model.config, "features": 12} and not wider.training
    assert count_parameters(wider) > count_parameters(model)
    assert receptive_field(wider) == receptive_field(model)
    with torch.no_grad():
        expected = model(y)
        assert (expected - y).abs().max() > 0.1  # the check would see a dropped layer
        assert torch.allclose(wider(y), expected, atol=1e-5)
        model.train(), wider.train()  # batch statistics: the old channels' are unchanged
        assert torch.allclose(wider(y), model(y), atol=1e-5)
    # the new channels are active, so the zero weights out of them get gradients
    wider.zero_grad()
    ((wider(y) - y * 0.5) ** 2).mean().backward()
    last = wider.body[-1].weight.grad
    assert last[:, 8:].abs().sum() > 0 and wider.body[3][0].weight.grad[:8, 8:].abs().sum() > 0
    # the same seed draws the same new channels
    assert torch.equal(widen(model, 12, seed=1).body[2][0].weight, widen(model, 12, seed=1)
                       .body[2][0].weight)
    assert not torch.equal(widen(model, 12, seed=1).body[2][0].weight[8:],
                           widen(model, 12, seed=2).body[2][0].weight[8:])


def test_widen_refuses_a_narrower_width_and_other_nets():
    with pytest.raises(ValueError, match=">= the model's 8"):
        widen(DilatedDenoiser(features=8), 6)
    with pytest.raises(TypeError, match="DilatedDenoiser"):
        widen(DnCNN(features=8, depth=5), 12)


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

