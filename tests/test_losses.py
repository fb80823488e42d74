"""dlmi_utils.losses: SSIM agrees with scikit-image, MS-SSIM with a numpy version, Dice losses
with hand-computed values; all are differentiable (gradcheck) and follow the input's dtype."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from dlmi_utils import losses as L
from dlmi_utils import metrics


def _images(b=2, c=1, h=48, w=40, seed=0, noise=0.05, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h // 4, w // 4, generator=g, dtype=dtype)
    target = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear")
    return target + noise * torch.randn(target.shape, generator=g, dtype=dtype), target


# ------------------------------------------------------------------ SSIM
def test_ssim_matches_skimage_gaussian_ssim():
    x, target = _images(b=2, c=2)
    ours = L.ssim(x, target, data_range=1.0, reduction="none")
    for i in range(2):
        expected = np.mean([
            structural_similarity(
                target[i, ch].numpy(), x[i, ch].numpy(), data_range=1.0,
                gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            )
            for ch in range(2)
        ])
        assert ours[i].item() == pytest.approx(expected, abs=1e-4)
        # and with the package's own metric, on the same setting
        m = metrics.ssim(target[i, 0], x[i, 0], data_range=1.0, gaussian_weights=True)
        assert L.ssim(x[i : i + 1, :1], target[i : i + 1, :1]).item() == pytest.approx(m, abs=1e-4)


def test_ssim_float32_close_to_float64():
    x, target = _images()
    ref = L.ssim(x, target).item()
    assert L.ssim(x.float(), target.float()).item() == pytest.approx(ref, abs=1e-4)


def test_ssim_loss_is_zero_for_identical_images_and_grows_with_noise():
    _, target = _images()
    loss = L.SSIMLoss()
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-12)
    values = [loss(_images(noise=s)[0], target).item() for s in (0.01, 0.05, 0.2)]
    assert 0 < values[0] < values[1] < values[2]


def test_ssim_data_range_per_image_matches_separate_calls():
    x, target = _images(b=2)
    dr = torch.tensor([1.0, 2.0], dtype=x.dtype)
    both = L.SSIMLoss(reduction="none")(x, target, data_range=dr)
    for i in range(2):
        one = L.SSIMLoss(data_range=float(dr[i]))(x[i : i + 1], target[i : i + 1])
        assert both[i].item() == pytest.approx(one.item())


# ------------------------------------------------------------------ MS-SSIM
def _numpy_ms_ssim(x, y, dr, weights):
    """MS-SSIM of two 2D arrays written independently with scipy (reference for the test)."""
    c1, c2 = (0.01 * dr) ** 2, (0.03 * dr) ** 2

    def filt(a):
        return ndimage.gaussian_filter(a, 1.5, truncate=3.5)[5:-5, 5:-5]

    value = 1.0
    for j, w in enumerate(weights):
        mx, my = filt(x), filt(y)
        vx, vy, cov = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        if j == len(weights) - 1:
            lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
            value *= np.mean(lum * cs) ** w
        else:
            value *= np.mean(cs) ** w
            h, wd = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
            y = y[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
    return value


def test_ms_ssim_matches_numpy_reference():
    x, target = _images(b=1, h=100, w=90, noise=0.03)
    weights = np.array(L.MS_SSIM_WEIGHTS[:3])
    weights = weights / weights.sum()
    expected = _numpy_ms_ssim(x[0, 0].numpy(), target[0, 0].numpy(), 1.0, weights)
    assert L.ms_ssim(x, target, scales=3).item() == pytest.approx(expected, abs=1e-6)


def test_ms_ssim_with_one_scale_is_ssim():
    x, target = _images()
    assert L.ms_ssim(x, target, scales=1).item() == pytest.approx(L.ssim(x, target).item())


def test_ms_ssim_five_scales_on_large_images():
    x, target = _images(b=1, h=176, w=180)
    value = L.ms_ssim(x, target).item()
    assert 0 < value < 1
    assert L.ms_ssim(target, target).item() == pytest.approx(1.0)


def test_ms_ssim_small_images_raise_or_adapt():
    x, target = _images(h=64, w=64)
    with pytest.raises(ValueError, match=r"at least 176 pixels.*scales=3"):
        L.MSSSIMLoss()(x, target)
    adapted = L.MSSSIMLoss(scales=None)(x, target)
    assert adapted.item() == pytest.approx(L.MSSSIMLoss(scales=3)(x, target).item())
    with pytest.raises(ValueError, match="smaller than the 11-pixel window"):
        L.MSSSIMLoss(scales=None)(x[..., :8, :8], target[..., :8, :8])


def test_mix_loss_endpoints():
    x, target = _images(h=64, w=64)
    ms = L.MSSSIMLoss(scales=3)(x, target)
    assert L.MixL1MSSSIMLoss(alpha=1.0, scales=3)(x, target).item() == pytest.approx(ms.item())
    shifted = target + 0.1  # |error| = 0.1 everywhere, so the Gaussian-weighted L1 is 0.1
    l1_only = L.MixL1MSSSIMLoss(alpha=0.0, scales=3, data_range=2.0)(shifted, target)
    assert l1_only.item() == pytest.approx(0.1 / 2.0)
    mixed = L.MixL1MSSSIMLoss(scales=3)(x, target)
    l1 = L.MixL1MSSSIMLoss(alpha=0.0, scales=3)(x, target)
    assert mixed.item() == pytest.approx(0.84 * ms.item() + 0.16 * l1.item())


# ------------------------------------------------------------------ pixel losses
def test_l1_and_l2_losses():
    x, target = _images()
    assert L.L1Loss()(x, target).item() == pytest.approx((x - target).abs().mean().item())
    assert L.L2Loss()(x, target).item() == pytest.approx(((x - target) ** 2).mean().item())
    assert L.L2Loss(reduction="none")(x, target).shape == (2,)


def test_image_losses_reject_bad_shapes_and_complex():
    x, target = _images()
    with pytest.raises(ValueError, match="same shape"):
        L.SSIMLoss()(x, target[:, 0])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.SSIMLoss()(x[0], target[0])
    with pytest.raises(TypeError, match="magnitude"):
        L.SSIMLoss()(x.to(torch.complex128), target.to(torch.complex128))
    with pytest.raises(ValueError, match="same shape"):
        L.L1Loss()(x, target[:, 0])


def test_pixel_losses_compare_complex_images_by_the_modulus_of_the_difference():
    a = torch.tensor([[1 + 1j, 0j]])
    b = torch.zeros(1, 2, dtype=torch.complex64)
    assert L.L2Loss()(a, b).item() == pytest.approx(1.0)
    assert L.L1Loss()(a, b).item() == pytest.approx(2**0.5 / 2)
    assert L.L1Loss(reduction="none")(a, b).shape == (1,)


# ------------------------------------------------------------------ Dice
def test_dice_loss_hand_computed():
    target = torch.zeros(1, 2, 4, 4)
    target[0, 1, :2] = 1  # class 1: top half (8 pixels)
    target[0, 0] = 1 - target[0, 1]
    probs = torch.full((1, 2, 4, 4), 0.5)
    # each class: 2 * 0.5 * 8 / (8 + 8) = 0.5
    assert L.dice_loss(probs, target).item() == pytest.approx(0.5, abs=1e-6)
    assert L.DiceLoss()(target, target).item() == pytest.approx(0.0, abs=1e-6)
    labels = target[:, 1].long()
    assert L.dice_loss(probs, labels).item() == pytest.approx(L.dice_loss(probs, target).item())


def test_generalized_dice_loss_weights_the_small_class():
    target = torch.zeros(1, 2, 10, 10)
    target[0, 1, :2, :2] = 1  # a 4-pixel structure
    target[0, 0] = 1 - target[0, 1]
    missed = target.clone()
    missed[0, 1] = 0
    missed[0, 0] = 1  # predict background everywhere
    w0, w1 = 1 / 96**2, 1 / 4**2
    expected = 1 - 2 * (w0 * 96) / (w0 * (100 + 96) + w1 * (0 + 4))
    assert L.generalized_dice_loss(missed, target).item() == pytest.approx(expected, abs=1e-5)
    # plain Dice averages classes: the miss costs half; generalized Dice: almost everything
    assert L.dice_loss(missed, target).item() == pytest.approx(0.5 + (1 - 192 / 196) / 2, abs=1e-5)
    assert L.GeneralizedDiceLoss()(missed, target).item() > 0.9


def test_generalized_dice_loss_with_an_absent_class_is_finite():
    target = torch.zeros(1, 3, 6, 6)
    target[0, 0] = 1
    target[0, 0, :3] = 0
    target[0, 1, :3] = 1  # class 2 absent
    probs = torch.softmax(torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(0)), 1)
    value = L.generalized_dice_loss(probs, target)
    assert torch.isfinite(value) and 0 < value.item() < 1
    assert L.generalized_dice_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_losses_ask_for_probabilities_and_matching_targets():
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="softmax"):
        L.DiceLoss()(logits, labels)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        L.DiceLoss()(logits.softmax(1), labels + 3)
    with pytest.raises(ValueError, match="one-hot"):
        L.GeneralizedDiceLoss()(logits.softmax(1), torch.zeros(2, 2, 8, 8))


# ------------------------------------------------------------------ gradients and devices
def _small_pair():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 1, 10, 10, generator=g, dtype=torch.float64)
    x = target + 0.1 * torch.rand(1, 1, 10, 10, generator=g, dtype=torch.float64)
    return x.requires_grad_(), target


@pytest.mark.parametrize(
    "loss",
    [L.SSIMLoss(win_size=5), L.MSSSIMLoss(scales=2, win_size=5),
     L.MixL1MSSSIMLoss(scales=2, win_size=5)],
    ids=lambda m: type(m).__name__,
)
def test_structural_losses_pass_gradcheck(loss):
    x, target = _small_pair()
    # fast_mode checks random directions of the Jacobian: the same test, far fewer evaluations
    assert torch.autograd.gradcheck(lambda a: loss(a, target + 0.05), (x,), fast_mode=True)


@pytest.mark.parametrize("fn", [L.dice_loss, L.generalized_dice_loss])
def test_dice_losses_pass_gradcheck(fn):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (1, 5, 5), generator=g)
    assert torch.autograd.gradcheck(lambda z: fn(z.softmax(1), labels), (logits,))


@pytest.mark.parametrize(
    "loss",
    [L.L1Loss(), L.L2Loss(), L.SSIMLoss(), L.MSSSIMLoss(scales=2), L.MixL1MSSSIMLoss(scales=2)],
    ids=lambda m: type(m).__name__,
)
def test_image_losses_follow_input_dtype_and_device(loss):
    x, target = _images(dtype=torch.float32)
    x.requires_grad_()
    value = loss(x, target)
    assert value.dtype == torch.float32 and value.device == x.device and value.ndim == 0
    value.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_losses_run_on_gpu():
    x, target = (t.cuda().float() for t in _images(h=64, w=64))
    for loss in (L.SSIMLoss(), L.MSSSIMLoss(scales=None), L.MixL1MSSSIMLoss(scales=None)):
        assert loss(x, target).device.type == "cuda"
    cpu = L.SSIMLoss()(x.cpu(), target.cpu()).item()
    assert L.SSIMLoss()(x, target).item() == pytest.approx(cpu, abs=1e-5)
    probs = torch.rand(2, 3, 8, 8, device="cuda").softmax(1)
    labels = torch.randint(0, 3, (2, 8, 8), device="cuda")
    assert L.GeneralizedDiceLoss()(probs, labels).device.type == "cuda"


# ----------------------------------------------------------------------------- MC-SURE
def _fixed_denoiser(z: torch.Tensor) -> torch.Tensor:
    """A fixed nonlinear denoiser: a 5 x 5 box blur blended with a soft threshold."""
    blur = torch.nn.functional.avg_pool2d(z, 5, stride=1, padding=2, count_include_pad=False)
    return 0.7 * blur + 0.3 * torch.tanh(3 * z) / 3


def _noisy_batch(sigma: float, seed: int, n: int = 4, size: int = 64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size // 8, size // 8, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x, x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("sigma", [10 / 255, 25 / 255, 50 / 255])
def test_mc_sure_expectation_matches_the_true_mse(sigma):
    """Averaged over noise draws and probes, SURE of a fixed denoiser is its MSE to the clean
    images, which it never sees (Stein's lemma); one draw misses it by its own spread only."""
    sures, mses = [], []
    for seed in range(40):
        x, y = _noisy_batch(sigma, seed)
        sures.append(L.mc_sure_loss(_fixed_denoiser, y, sigma,
                                    generator=torch.Generator().manual_seed(1000 + seed)).item())
        mses.append(((_fixed_denoiser(y) - x) ** 2).mean().item())
    sures, mses = np.array(sures), np.array(mses)
    stderr = (sures - mses).std(ddof=1) / np.sqrt(len(sures))
    assert abs(sures.mean() - mses.mean()) < 4 * stderr + 1e-3 * mses.mean()
    assert stderr < 0.05 * mses.mean()  # a useful estimate, not a lucky average of noise


def test_mc_sure_of_the_identity_is_sigma_squared_and_of_a_constant_is_the_residual():
    """f(y) = y: no residual and the divergence estimate |b|^2 (of mean N), so SURE =
    sigma^2 (2 |b|^2 / N - 1), about sigma^2, the noisy MSE; f(y) = c: divergence 0, so
    SURE = |y - c|^2 / N - sigma^2."""
    sigma = 0.1
    _, y = _noisy_batch(sigma, 0)
    b = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=y.dtype)
    identity = L.mc_sure_loss(lambda z: z, y, sigma, generator=torch.Generator().manual_seed(7))
    assert identity.item() == pytest.approx(sigma**2 * (2 * b.pow(2).mean().item() - 1), rel=1e-9)
    assert identity.item() == pytest.approx(sigma**2, rel=0.05)
    const = torch.full_like(y, 0.5)
    expected = ((y - 0.5) ** 2).mean().item() - sigma**2
    assert L.mc_sure_loss(lambda z: const, y, sigma).item() == pytest.approx(expected, rel=1e-9)


def test_mc_sure_takes_one_sigma_per_image_and_is_differentiable():
    _, y = _noisy_batch(0.1, 0, n=2)
    w = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.05, 0.1], dtype=torch.float64)
    per_image = L.mc_sure_loss(lambda z: w * z, y, sigma, reduction="none")
    assert per_image.shape == (2,)
    per_image.sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad)


def test_mc_sure_bad_input_is_a_clear_error():
    _, y = _noisy_batch(0.1, 0, n=2)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.mc_sure_loss(lambda z: z, y[:, 0], 0.1)
    with pytest.raises(ValueError, match="noise std"):
        L.mc_sure_loss(lambda z: z, y, 0.0)
    with pytest.raises(ValueError, match="noise std"):
        L.mc_sure_loss(lambda z: z, y, float("nan"))
    with pytest.raises(ValueError, match="one value per image"):
        L.mc_sure_loss(lambda z: z, y, torch.tensor([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="keep the shape"):
        L.mc_sure_loss(lambda z: z[..., 1:], y, 0.1)


# ------------------------------------------------------------------ perceptual
def _tiny_features(dtype=torch.float64, seed=0) -> torch.nn.Sequential:
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2: a VGG of two 3x3 convolutions."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential()
    for name, layer in (("conv1", torch.nn.Conv2d(1, 3, 3, padding=1)), ("relu1", torch.nn.ReLU()),
                        ("pool1", torch.nn.MaxPool2d(2)),
                        ("conv2", torch.nn.Conv2d(3, 4, 3, padding=1)), ("relu2", torch.nn.ReLU())):
        net.add_module(name, layer)
    return net.to(dtype)


def test_perceptual_loss_is_zero_for_identical_images_and_grows_with_noise():
    _, target = _images(b=2, h=16, w=16)
    loss = L.PerceptualLoss(_tiny_features(), ["relu2"])
    assert loss(target, target).item() == 0.0
    values = [loss(_images(b=2, h=16, w=16, noise=s)[0], target).item() for s in (0.01, 0.1, 0.5)]
    assert 0 < values[0] < values[1] < values[2]


def test_perceptual_loss_is_the_weighted_mse_of_the_feature_maps():
    x, target = _images(b=2, h=16, w=16)
    net = _tiny_features()
    loss = L.PerceptualLoss(net, ["relu1", "conv2"], weights=[2.0, 0.5], reduction="none")
    relu1 = lambda z: net.relu1(net.conv1(z))  # noqa: E731
    conv2 = lambda z: net.conv2(net.pool1(relu1(z)))  # noqa: E731
    expected = (2.0 * (relu1(x) - relu1(target)).pow(2).mean(dim=(1, 2, 3))
                + 0.5 * (conv2(x) - conv2(target)).pow(2).mean(dim=(1, 2, 3)))
    torch.testing.assert_close(loss(x, target), expected)
    assert L.PerceptualLoss(net, "relu1")(x, target).item() == pytest.approx(
        (relu1(x) - relu1(target)).pow(2).mean().item())


def test_perceptual_loss_passes_gradcheck_in_float64():
    x, target = _images(b=1, h=8, w=8)
    loss = L.PerceptualLoss(_tiny_features(), ["relu1", "relu2"])
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: loss(a, target), (x,))


def test_perceptual_loss_sends_gradient_to_the_input_only():
    x, target = _images(b=2, h=16, w=16)
    net = _tiny_features()
    loss = L.PerceptualLoss(net, ["relu2"])
    assert not any(p.requires_grad for p in net.parameters())
    x, target = x.clone().requires_grad_(True), target.clone().requires_grad_(True)
    loss(x, target).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert target.grad is None
    assert all(p.grad is None for p in net.parameters())


def test_perceptual_loss_runs_the_network_up_to_its_deepest_layer_only_and_stays_in_eval():
    class Boom(torch.nn.Module):
        def forward(self, z):
            raise AssertionError("a layer after the deepest one ran")

    net = _tiny_features()
    net.add_module("boom", Boom())
    net.add_module("dropout", torch.nn.Dropout(0.5))
    loss = L.PerceptualLoss(net, ["relu1"]).train()
    x, target = _images(b=1, h=8, w=8)
    assert loss(x, target).item() > 0
    assert loss.training and not net.training and not net.dropout.training


def test_perceptual_loss_bad_input_is_a_clear_error():
    net = _tiny_features()
    with pytest.raises(TypeError, match="nn.Sequential"):
        L.PerceptualLoss(torch.nn.Conv2d(1, 1, 3), ["conv1"])
    with pytest.raises(ValueError, match="available: \\['conv1'"):
        L.PerceptualLoss(net, ["relu5_4"])
    with pytest.raises(ValueError, match="one non-negative weight per layer"):
        L.PerceptualLoss(net, ["relu1", "relu2"], weights=[1.0])
    with pytest.raises(ValueError, match="reduction"):
        L.PerceptualLoss(net, ["relu1"], reduction="sum")
    x, target = _images(b=1, h=8, w=8)
    with pytest.raises(ValueError, match="same shape"):
        L.PerceptualLoss(net, ["relu1"])(x, target[..., 1:])
