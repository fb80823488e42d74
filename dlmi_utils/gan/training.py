"""Training a GAN: one discriminator step, one generator step, and the loop around them.

Each step of :func:`train_gan` draws a batch of real images (``sample_real(n, generator)``,
e.g. :class:`dlmi_utils.gan.data.ImageSampler`, which augments them), makes
``n_critic`` discriminator updates and one generator update, updates the moving average of
the generator (:class:`dlmi_utils.gan.models.EMA`) and, every ``sample_every`` steps, keeps
the average generator's images of a fixed set of latent codes, so the run can be watched.

``loss``: ``"ns"`` (non-saturating, Goodfellow et al. 2014), ``"minimax"`` (the original,
saturating generator loss; the discriminator loss is the same) or ``"wgan-gp"`` (Wasserstein
critic with gradient penalty, Gulrajani et al. 2017). Adam with ``betas=(0.5, 0.999)`` as in
DCGAN (``(0.0, 0.9)`` is the WGAN-GP paper's choice).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from dlmi_utils.device import get_device, seed_everything
from dlmi_utils.gan.losses import (
    d_loss_nonsaturating,
    d_loss_wasserstein,
    g_loss_minimax,
    g_loss_nonsaturating,
    g_loss_wasserstein,
    gradient_penalty,
)
from dlmi_utils.gan.models import EMA, latent

LOSSES = ("ns", "minimax", "wgan-gp")


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def discriminator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    loss: str = "ns",
    gp_weight: float = 10.0,
    rng: torch.Generator | None = None,
) -> dict[str, float]:
    """One update of ``discriminator`` on ``real (B, 1, H, W)`` against ``G(z)`` (detached).

    Returns ``{"d_loss": .., "d_real": mean D(x), "d_fake": mean D(G(z))}`` and, for
    ``"wgan-gp"``, ``"gp"`` (``rng`` draws the interpolation weights).
    """
    _check_loss(loss)
    with torch.no_grad():
        fake = generator(z)
    real_out, fake_out = discriminator(real), discriminator(fake)
    out = {"d_real": real_out.mean().item(), "d_fake": fake_out.mean().item()}
    if loss == "wgan-gp":
        gp = gradient_penalty(discriminator, real, fake, rng)
        d_loss = d_loss_wasserstein(real_out, fake_out) + gp_weight * gp
        out["gp"] = gp.item()
    else:
        d_loss = d_loss_nonsaturating(real_out, fake_out)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    out["d_loss"] = d_loss.item()
    return out


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    z: torch.Tensor,
    loss: str = "ns",
) -> float:
    """One update of ``generator`` through the (fixed) discriminator; returns its loss."""
    _check_loss(loss)
    scores = discriminator(generator(z))
    g_loss = {"ns": g_loss_nonsaturating, "minimax": g_loss_minimax,
              "wgan-gp": g_loss_wasserstein}[loss](scores)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()  # only the generator's parameters move; D's gradients are cleared next step
    return g_loss.item()


@dataclass
class GANHistory:
    """Per-step losses, and snapshots ``(step, (n, 1, H, W) images)`` of fixed latent codes."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    seconds: float = 0.0

    def curves(self) -> dict[str, list[float]]:
        """The loss curves only (what goes into a JSON record)."""
        d = asdict(self)
        d.pop("snapshots")
        d.pop("seconds")
        return d


def make_optimizers(
    generator: nn.Module, discriminator: nn.Module, lr_g: float = 2e-4, lr_d: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for each player (DCGAN's settings by default)."""
    return (torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas),
            torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas))


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    sample_real: Callable[[int, torch.Generator], torch.Tensor],
    *,
    steps: int = 1000,
    batch_size: int = 64,
    loss: str = "ns",
    n_critic: int = 1,
    gp_weight: float = 10.0,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    ema_decay: float = 0.999,
    sample_every: int = 100,
    n_snapshot: int = 16,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_snapshot: Callable[[int, nn.Module], None] | None = None,
) -> tuple[EMA, GANHistory]:
    """Train ``generator`` against ``discriminator`` for ``steps`` generator updates.

    ``sample_real(n, rng)`` returns ``(n, 1, H, W)`` real images in ``[-1, 1]``.
    Returns ``(ema, history)``: ``ema.model`` is the moving-average generator (sample from it).
    Seeds everything with ``seed``: the same call on the same device repeats itself.
    ``on_snapshot(step, ema_generator)``, if given, runs at every snapshot (e.g. to score the
    moving-average generator during training); it must not change the generator.
    """
    _check_loss(loss)
    if steps < 1 or n_critic < 1 or batch_size < 1:
        raise ValueError(f"steps, n_critic and batch_size must be positive, got "
                         f"{steps}, {n_critic}, {batch_size}")
    seed_everything(seed)
    device = get_device() if device is None else torch.device(device)
    generator.to(device).train()
    discriminator.to(device).train()
    opt_g, opt_d = make_optimizers(generator, discriminator, lr_g, lr_d, betas)
    ema = EMA(generator, ema_decay)
    rng = torch.Generator().manual_seed(seed)
    z_fixed = latent(n_snapshot, generator.nz, seed + 12345, device)
    history = GANHistory()
    t0 = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=f"GAN ({loss})", disable=not progress)
    for step in bar:
        for _ in range(n_critic):
            real = sample_real(batch_size, rng).to(device)
            z = torch.randn(batch_size, generator.nz, generator=rng).to(device)
            d_out = discriminator_step(generator, discriminator, opt_d, real, z, loss,
                                       gp_weight, rng)
        z = torch.randn(batch_size, generator.nz, generator=rng).to(device)
        g_loss = generator_step(generator, discriminator, opt_g, z, loss)
        if not (math.isfinite(g_loss) and math.isfinite(d_out["d_loss"])):
            raise FloatingPointError(f"the GAN losses diverged at step {step}: lower the lr")
        ema.update(generator)
        history.d_loss.append(d_out["d_loss"])
        history.g_loss.append(g_loss)
        history.d_real.append(d_out["d_real"])
        history.d_fake.append(d_out["d_fake"])
        if step % sample_every == 0 or step == steps:
            with torch.no_grad():
                history.snapshots.append((step, ema.model(z_fixed).cpu()))
            if on_snapshot is not None:
                on_snapshot(step, ema.model)
            bar.set_postfix(d_loss=f"{d_out['d_loss']:.3g}", g_loss=f"{g_loss:.3g}")
    bar.close()
    history.seconds = time.perf_counter() - t0
    return ema, history


@torch.no_grad()
def generate(
    generator: nn.Module, n: int, seed: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """``(n, 1, H, W)`` CPU images of ``generator`` (in eval mode) for seeded latent codes."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    z = latent(n, generator.nz, seed, device)
    out = torch.cat([generator(chunk).cpu() for chunk in z.split(batch_size)])
    generator.train(was_training)
    return out
