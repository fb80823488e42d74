"""How noisy batches feed a noise-aware net: supervised, by SURE, by SURE relative to sigma^2."""

import pytest
import torch

from dlmi_utils.denoising.models import NoiseAwareDenoiser
from dlmi_utils.denoising.training import (
    noise_aware_step,
    relative_sure_loss_step,
    sure_loss_step,
)
from dlmi_utils.losses import mc_sure_loss


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 16, 16, generator=g)
    sigma = torch.tensor([0.02, 0.05, 0.1, 0.2])
    y = x + sigma.view(-1, 1, 1, 1) * torch.randn(x.shape, generator=g)
    return (y, sigma), x


def _net():
    torch.manual_seed(0)
    net = NoiseAwareDenoiser(features=8).eval()
    net.body[-1].weight.data.normal_(0, 0.1)
    return net


def test_noise_aware_step_tells_the_net_each_patch_level():
    net, batch = _net(), _batch()
    prediction, target = noise_aware_step(net, batch, torch.device("cpu"))
    (y, sigma), x = batch
    assert torch.equal(target, x)
    with torch.no_grad():
        assert torch.allclose(prediction, net(y, sigma))


def test_sure_steps_never_read_the_clean_patches():
    net, ((y, sigma), x) = _net(), _batch()
    torch.manual_seed(1)
    with_clean = sure_loss_step(net, ((y, sigma), x), torch.device("cpu"))
    torch.manual_seed(1)
    without = sure_loss_step(net, ((y, sigma), torch.full_like(x, float("nan"))), "cpu")
    assert torch.equal(with_clean, without)


def test_relative_sure_weighs_each_patch_by_its_noise_variance():
    net, ((y, sigma), x) = _net(), _batch()
    torch.manual_seed(2)
    relative = relative_sure_loss_step(net, ((y, sigma), x), "cpu")
    torch.manual_seed(2)
    per_patch = mc_sure_loss(lambda z: net(z, sigma), y, sigma, reduction="none")
    assert relative.item() == pytest.approx((per_patch / sigma**2).mean().item(), rel=1e-6)
    torch.manual_seed(2)
    plain = sure_loss_step(net, ((y, sigma), x), "cpu")
    assert plain.item() == pytest.approx(per_patch.mean().item(), rel=1e-6)


def test_batches_that_are_not_noise_aware_are_a_clear_error():
    y = torch.rand(2, 1, 8, 8)
    with pytest.raises(TypeError, match="with_level=True"):
        noise_aware_step(_net(), (y, y, y), "cpu")
    with pytest.raises(TypeError, match="with_level=True"):
        noise_aware_step(_net(), (y, y), "cpu")  # a plain (noisy, clean) batch of two
