import math

import pytest
import torch

from dlmi_utils.gan.losses import (
    d_loss_nonsaturating,
    d_loss_wasserstein,
    g_loss_minimax,
    g_loss_nonsaturating,
    g_loss_wasserstein,
    gradient_penalty,
)


def test_nonsaturating_losses_match_binary_cross_entropy():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0, 1.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected_d = bce(real, torch.ones(3)) + bce(fake, torch.zeros(3))
    assert torch.allclose(d_loss_nonsaturating(real, fake), expected_d)
    assert torch.allclose(g_loss_nonsaturating(fake), bce(fake, torch.ones(3)))


def test_losses_are_finite_for_huge_logits():
    big = torch.tensor([1e4, -1e4])
    for value in (d_loss_nonsaturating(big, big), g_loss_nonsaturating(big), g_loss_minimax(big)):
        assert torch.isfinite(value)


def test_minimax_generator_saturates_where_nonsaturating_does_not():
    fake = torch.tensor([-6.0], requires_grad=True)  # D confidently rejects the fake
    (g_min,) = torch.autograd.grad(g_loss_minimax(fake), fake)
    (g_ns,) = torch.autograd.grad(g_loss_nonsaturating(fake), fake)
    assert abs(g_min.item()) < 0.01 < 0.9 < abs(g_ns.item())


def test_discriminator_loss_at_chance_is_2_log_2():
    zeros = torch.zeros(4)
    assert d_loss_nonsaturating(zeros, zeros).item() == pytest.approx(2 * math.log(2))


def test_wasserstein_losses():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.0, 1.0])
    assert d_loss_wasserstein(real, fake).item() == pytest.approx(-1.5)
    assert g_loss_wasserstein(fake).item() == pytest.approx(-0.5)


def test_gradient_penalty_of_linear_critic_is_known():
    torch.manual_seed(0)
    w = torch.randn(1, 1, 8, 8)
    w = 3.0 * w / w.norm()  # ||grad D|| = 3 everywhere, so GP = (3 - 1)^2 = 4

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_interpolates_between_real_and_fake():
    # D(x) = ||x||^2 / 2 has gradient x_hat: the penalty reveals where it was evaluated
    real, fake = torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), 3.0)
    eps = torch.rand(1, generator=torch.Generator().manual_seed(7)).item()
    gp = gradient_penalty(lambda x: 0.5 * (x**2).flatten(1).sum(1), real, fake,
                          torch.Generator().manual_seed(7))
    x_hat = eps * 1.0 + (1 - eps) * 3.0
    assert gp.item() == pytest.approx((2 * x_hat - 1) ** 2, rel=1e-5)  # ||x_hat|| = 2 x_hat


def test_gradient_penalty_trains_the_critic():
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    gp = gradient_penalty(critic, torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4))
    gp.backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_gradient_penalty_rejects_bad_shapes():
    two, three = torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(lambda x: x.sum((1, 2, 3)), two, three)
    with pytest.raises(ValueError, match=r"\(B,\) scores"):
        gradient_penalty(lambda x: x.sum((2, 3)), two, two)
