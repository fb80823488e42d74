"""The losses of the GAN game, written on the discriminator's raw outputs.

With ``D(x)`` a logit (``sigma(D(x))`` the probability that ``x`` is real), ``x`` real and
``G(z)`` generated:

- discriminator (both GANs of Goodfellow et al. 2014):
  ``L_D = -E[log sigma(D(x))] - E[log(1 - sigma(D(G(z))))]``
  ``= E[softplus(-D(x))] + E[softplus(D(G(z)))]``;
- minimax generator: minimise ``E[log(1 - sigma(D(G(z))))] = -E[softplus(D(G(z)))]``;
  its gradient vanishes when ``D`` confidently rejects the fakes (the start of training);
- non-saturating generator: ``L_G = -E[log sigma(D(G(z)))] = E[softplus(-D(G(z)))]``.

Wasserstein GAN (Arjovsky et al. 2017; Gulrajani et al. 2017): ``D`` is a critic with a score,
``L_D = E[D(G(z))] - E[D(x)] + lambda * GP`` and ``L_G = -E[D(G(z))]``, where the gradient
penalty ``GP = E[(||grad_x D(x_hat)||_2 - 1)^2]`` at points ``x_hat = eps x + (1 - eps) G(z)``,
``eps ~ U(0, 1)``, keeps the critic close to 1-Lipschitz.

``softplus`` rather than ``log(sigmoid(.))``: the same value, without overflow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def d_loss_nonsaturating(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the discriminator: real labelled 1, fake 0; a scalar."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """``E[-log sigma(D(G(z)))]``: large gradients while ``D`` still rejects the fakes."""
    return F.softplus(-fake_logits).mean()


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """``E[log(1 - sigma(D(G(z))))]``, the original minimax objective (saturates)."""
    return -F.softplus(fake_logits).mean()


def d_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``E[D(G(z))] - E[D(x)]``: minus the critic's estimate of the Wasserstein-1 distance."""
    return fake_scores.mean() - real_scores.mean()


def g_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """``-E[D(G(z))]``: move the fakes towards higher critic scores."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``E[(||grad D(x_hat)||_2 - 1)^2]`` at random points between ``real`` and ``fake``.

    ``real``, ``fake``: ``(B, C, H, W)``; one ``eps ~ U(0, 1)`` per sample (drawn with
    ``generator`` when given). The graph is kept (``create_graph``) so the penalty trains
    the critic. ``critic`` must return one score per sample, ``(B,)``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {real.shape}, {fake.shape}")
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=generator)
    eps = eps.to(real.device, real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    if scores.shape != (real.shape[0],):
        raise ValueError(f"the critic must return (B,) scores, got shape {tuple(scores.shape)}")
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return ((norms - 1.0) ** 2).mean()
