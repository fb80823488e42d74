"""Checks of Lab 05 (GANs): the discriminator and generator losses, the gradient penalty
and one training step, written by the student.

The losses are compared with :mod:`dlmi_utils.gan.losses` on random logits, with hints for
the usual slips (labels swapped, a sum instead of a mean, the saturating minimax loss,
``log(sigmoid(.))`` that overflows). The gradient penalty is run on critics whose gradient is
known, and on a critic that records where it was evaluated (one ``eps`` per sample, between
real and fake). The training step is compared, parameter by parameter, with
:func:`reference_train_step` (``discriminator_step`` then ``generator_step`` of
:mod:`dlmi_utils.gan.training`) on tiny networks; the lab trains its DCGAN with the student's
step once it passes, with that reference until then
(:func:`dlmi_utils.course.checks.yours_or_reference`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dlmi_utils.course.checks import CheckFailed, CheckResult, run_check, scalar_result
from dlmi_utils.gan.losses import (
    d_loss_nonsaturating,
    g_loss_minimax,
    g_loss_nonsaturating,
)
from dlmi_utils.gan.models import Discriminator, Generator
from dlmi_utils.gan.training import discriminator_step, generator_step


def _gen(seed: int, strict: bool) -> torch.Generator:
    return torch.Generator().manual_seed(seed + (7919 if strict else 0))


def _match(got: torch.Tensor, slips: list[tuple[torch.Tensor, str]], fallback: str) -> str:
    for value, hint in slips:
        if torch.allclose(got, value, rtol=1e-4, atol=1e-5):
            return hint
    return fallback


# ----------------------------------------------------------------------------- losses
def check_discriminator_loss(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``discriminator_loss(real_logits, fake_logits) -> scalar tensor``, the binary
    cross-entropy with real labelled 1 and fake 0, averaged over each batch."""
    g = _gen(seed, strict)
    n = 13 if strict else 8

    def at_chance(f):
        got = scalar_result(f(torch.zeros(n), torch.zeros(n)), "discriminator_loss")
        if not torch.allclose(got, torch.tensor(2 * torch.log(torch.tensor(2.0)).item())):
            raise CheckFailed(f"D(x) = 0 everywhere (sigma = 1/2) must give 2 log 2 = 1.386, "
                              f"got {got.item():.4f}: -log(1/2) for the reals plus "
                              "-log(1 - 1/2) for the fakes")

    def random_logits(f):
        real, fake = 2 * torch.randn(n, generator=g), 2 * torch.randn(n, generator=g)
        got = scalar_result(f(real, fake), "discriminator_loss")
        right = d_loss_nonsaturating(real, fake)
        if not torch.allclose(got, right, rtol=1e-4, atol=1e-5):
            raise CheckFailed(_match(got, [
                (d_loss_nonsaturating(fake, real), "labels swapped: the reals are labelled 1 "
                                                   "(loss -log sigma(D(x))), the fakes 0"),
                (-right, "wrong sign: a loss to minimise is minus the log-likelihood"),
                (n * right, "use the mean over the batch, not the sum"),
                (F.softplus(-real).mean(), "the fakes' term -log(1 - sigma(D(G(z)))) is missing"),
                (F.softplus(fake).mean(), "the reals' term -log sigma(D(x)) is missing"),
            ], f"expected {right.item():.4f}, got {got.item():.4f}"))

    def large_logits(f):
        real, fake = torch.tensor([200.0, -200.0, 3.0]), torch.tensor([-200.0, 200.0, 0.0])
        got = scalar_result(f(real, fake), "discriminator_loss")
        if not torch.isfinite(got):
            raise CheckFailed("infinite or NaN for logits of +-200: log(sigmoid(x)) underflows; "
                              "use F.softplus(-x) = -log sigma(x), or "
                              "F.binary_cross_entropy_with_logits")
        right = d_loss_nonsaturating(real, fake)
        if not torch.allclose(got, right, rtol=1e-4):
            raise CheckFailed(f"logits of +-200: expected {right.item():.2f}, got "
                              f"{got.item():.2f} (use the logits directly, not clamped "
                              "probabilities)")

    return run_check("discriminator_loss", fn, [
        ("D(x) = 0 for all samples", at_chance),
        ("random logits", random_logits),
        ("very large logits", large_logits),
    ])


def check_generator_loss(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``generator_loss(fake_logits) -> scalar tensor``, the non-saturating
    ``mean(-log sigma(D(G(z))))``."""
    g = _gen(seed, strict)
    n = 11 if strict else 8

    def random_logits(f):
        fake = 2 * torch.randn(n, generator=g)
        got = scalar_result(f(fake), "generator_loss")
        right = g_loss_nonsaturating(fake)
        if not torch.allclose(got, right, rtol=1e-4, atol=1e-5):
            raise CheckFailed(_match(got, [
                (g_loss_minimax(fake), "that is the minimax loss log(1 - sigma(D(G(z)))), which "
                                       "saturates: minimise -log sigma(D(G(z))) instead"),
                (-right, "wrong sign: the generator wants D(G(z)) large, so minimise "
                         "-log sigma(D(G(z)))"),
                (n * right, "use the mean over the batch, not the sum"),
                (F.softplus(fake).mean(), "the fakes must be labelled *real* (1) here: "
                                          "-log sigma(D(G(z))), not -log(1 - sigma(.))"),
            ], f"expected {right.item():.4f}, got {got.item():.4f}"))

    def gradient_does_not_vanish(f):
        fake = torch.full((n,), -10.0, requires_grad=True)  # D rejects the fakes confidently
        loss = scalar_result(f(fake), "generator_loss")
        if not loss.requires_grad:
            raise CheckFailed("the loss is detached from its input: no .item(), .detach() or "
                              "numpy inside")
        (grad,) = torch.autograd.grad(loss, fake)
        if not grad.sum().item() < -0.9:
            raise CheckFailed("when D(G(z)) = -10 the gradient must push the logits up "
                              f"strongly (about -1 per sample in total), got "
                              f"{grad.sum().item():.2g}")

    def large_logits(f):
        got = scalar_result(f(torch.tensor([-200.0, 200.0])), "generator_loss")
        if not torch.isfinite(got):
            raise CheckFailed("infinite or NaN for logits of +-200: use F.softplus(-x)")

    return run_check("generator_loss", fn, [
        ("random logits", random_logits),
        ("gradient when D rejects the fakes", gradient_does_not_vanish),
        ("very large logits", large_logits),
    ])


# ----------------------------------------------------------------------------- penalty
def check_gradient_penalty(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``gradient_penalty(critic, real, fake) -> scalar tensor``,
    ``mean((||grad critic(x_hat)||_2 - 1)^2)`` with one ``eps ~ U(0, 1)`` per sample."""
    g = _gen(seed, strict)
    b, h = (6, 12) if strict else (4, 8)

    def linear_critic(f):
        w = torch.randn(1, 1, h, h, generator=g)
        w = 3.0 * w / w.norm()  # ||grad|| = 3 everywhere: GP = (3 - 1)^2 = 4

        def critic(x):
            return (x * w).flatten(1).sum(1)

        real, fake = torch.randn(b, 1, h, h, generator=g), torch.randn(b, 1, h, h, generator=g)
        got = scalar_result(f(critic, real, fake), "gradient_penalty")
        if torch.allclose(got, torch.tensor(4.0), rtol=1e-4):
            return
        raise CheckFailed(_match(got, [
            (torch.tensor(2.0), "got ||grad|| - 1 = 2: square it, (||grad|| - 1)^2"),
            (torch.tensor(64.0), "got (||grad||^2 - 1)^2: use the norm, not the squared norm"),
            (torch.tensor(9.0), "subtract 1 from the norm: the penalty pulls ||grad|| to 1"),
            (torch.tensor(4.0 * b), "use the mean over the batch, not the sum"),
        ], f"a linear critic <w, x> with ||w|| = 3 has ||grad|| = 3 everywhere, so the "
           f"penalty is (3 - 1)^2 = 4; got {got.item():.4g}. Take the norm per sample over "
           "all pixels (grad.flatten(1).norm(dim=1)), then the mean"))

    def interpolates_per_sample(f):
        seen = []

        def critic(x):
            seen.append(x.detach().clone())
            return 0.5 * (x**2).flatten(1).sum(1)

        real = torch.rand(2 * b, 1, h, h, generator=g) + 1.0  # real >= 1 > fake: never equal
        fake = -torch.rand(2 * b, 1, h, h, generator=g)
        gp = scalar_result(f(critic, real, fake), "gradient_penalty")
        if not seen:
            raise CheckFailed("the critic was never called")
        x_hat = seen[-1]
        if x_hat.shape != real.shape:
            raise CheckFailed(f"the critic got shape {tuple(x_hat.shape)}, expected the batch "
                              f"shape {tuple(real.shape)}")
        eps = (x_hat - fake) / (real - fake)  # the mixing weight of each pixel
        per_sample = eps.flatten(1)
        if not torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-5):
            raise CheckFailed("eps must be the same for all pixels of a sample: draw it with "
                              "shape (B, 1, 1, 1)")
        if per_sample.min() < -1e-6 or per_sample.max() > 1 + 1e-6:
            raise CheckFailed("x_hat must lie between real and fake: "
                              "x_hat = eps * real + (1 - eps) * fake with eps in [0, 1]")
        if torch.allclose(per_sample[:, 0], per_sample[0, 0].expand(2 * b), atol=1e-6):
            raise CheckFailed("every sample got the same eps: draw one per sample, "
                              "torch.rand(B, 1, 1, 1)")
        right = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
        if not torch.allclose(gp.detach(), right, rtol=1e-4):
            raise CheckFailed(f"at the points where the critic was called the penalty is "
                              f"{right.item():.4g}, got {gp.item():.4g}")

    def trains_the_critic(f):
        torch.manual_seed(seed)
        critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(h * h, 8),
                                     torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Flatten(0))
        real, fake = torch.randn(b, 1, h, h, generator=g), torch.randn(b, 1, h, h, generator=g)
        fake.requires_grad_(True)
        gp = scalar_result(f(critic, real, fake), "gradient_penalty")
        if not gp.requires_grad:
            raise CheckFailed("the penalty does not depend on the critic's weights: call "
                              "torch.autograd.grad(..., create_graph=True)")
        gp.backward()
        w = critic[1].weight.grad
        if w is None or not torch.isfinite(w).all() or w.abs().sum() == 0:
            raise CheckFailed("no gradient reached the critic's weights: create_graph=True")
        if fake.grad is not None and fake.grad.abs().sum() > 0:
            raise CheckFailed("the penalty sent gradients into the generator's images: "
                              "interpolate between real.detach() and fake.detach()")

    return run_check("gradient_penalty", fn, [
        ("linear critic with ||grad|| = 3", linear_critic),
        ("x_hat between real and fake, one eps per sample", interpolates_per_sample),
        ("the penalty trains the critic", trains_the_critic),
    ])


# ----------------------------------------------------------------------------- train step
def _tiny_pair(seed: int, strict: bool):
    torch.manual_seed(seed + (7919 if strict else 0))
    nz = 6 if strict else 8
    return Generator(nz=nz, ngf=4, size=32), Discriminator(ndf=4, size=32, norm="none")


def _optimizers(gen, disc):
    return (torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999)),
            torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.999)))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.allclose(p, q, rtol=1e-4, atol=1e-6)
               for p, q in zip(a.parameters(), b.parameters(), strict=True))


def reference_train_step(generator: torch.nn.Module, discriminator: torch.nn.Module,
                         opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                         real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    """``train_step``'s reference: the package's ``discriminator_step`` then ``generator_step``
    with the non-saturating losses and the same codes ``z``; returns ``(d_loss, g_loss)``."""
    d_loss = discriminator_step(generator, discriminator, opt_d, real, z, "ns")["d_loss"]
    return d_loss, generator_step(generator, discriminator, opt_g, z, "ns")


def check_train_step(fn: Callable, strict: bool = False, seed: int = 0) -> CheckResult:
    """``train_step(generator, discriminator, opt_g, opt_d, real, z) -> (d_loss, g_loss)``:
    one discriminator update on ``real`` and ``G(z)``, then one generator update with the
    same ``z``, both with the non-saturating losses; returns the two losses as floats."""
    g = _gen(seed, strict)
    batch = 5 if strict else 4

    def run_both(f, steps: int):
        gen, disc = _tiny_pair(seed, strict)
        ref_g, ref_d = copy.deepcopy(gen), copy.deepcopy(disc)
        opts, ref_opts = _optimizers(gen, disc), _optimizers(ref_g, ref_d)
        outs, ref_outs = [], []
        for _ in range(steps):
            real = torch.rand(batch, 1, 32, 32, generator=g) * 2 - 1
            z = torch.randn(batch, gen.nz, generator=g)
            outs.append(f(gen, disc, opts[0], opts[1], real.clone(), z.clone()))
            ref_outs.append(reference_train_step(ref_g, ref_d, ref_opts[0], ref_opts[1], real, z))
        return gen, disc, ref_g, ref_d, outs, ref_outs

    def returns_two_floats(f):
        *_, outs, ref_outs = run_both(f, 1)
        out = outs[0]
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailed("return the pair (d_loss, g_loss)")
        for value, name in zip(out, ("d_loss", "g_loss"), strict=True):
            if isinstance(value, torch.Tensor):
                raise CheckFailed(f"{name} is a tensor: return floats with .item() (a tensor "
                                  "keeps the whole graph alive)")
            if not isinstance(value, float):
                raise CheckFailed(f"{name} is a {type(value).__name__}, expected a float")
        d_ref, g_ref = ref_outs[0]
        if abs(out[0] - d_ref) > 1e-4 * max(1, abs(d_ref)):
            raise CheckFailed(f"d_loss should be {d_ref:.4f} (the discriminator's loss before "
                              f"its update), got {out[0]:.4f}")
        if abs(out[1] - g_ref) > 1e-4 * max(1, abs(g_ref)):
            raise CheckFailed(f"g_loss should be {g_ref:.4f} (computed with the *updated* "
                              f"discriminator), got {out[1]:.4f}")

    def one_step_updates(f):
        gen, disc, ref_g, ref_d, *_ = run_both(f, 1)
        if not _same(disc, ref_d):
            raise CheckFailed(
                "the discriminator's weights differ after one step: update it first, on "
                "discriminator_loss(D(real), D(G(z).detach())), with opt_d.zero_grad() before "
                "backward()")
        if not _same(gen, ref_g):
            raise CheckFailed(
                "the generator's weights differ after one step: after the discriminator's "
                "update, minimise the non-saturating loss of D(G(z)) with opt_g (zero its "
                "gradients first; do not detach G(z) here)")

    def three_steps(f):
        gen, disc, ref_g, ref_d, *_ = run_both(f, 3)
        if not (_same(disc, ref_d) and _same(gen, ref_g)):
            raise CheckFailed("right after one step but not after three: are the gradients "
                              "zeroed (opt.zero_grad()) before each backward()? The "
                              "generator's step leaves gradients in the discriminator")

    return run_check("train_step", fn, [
        ("returns (d_loss, g_loss) as floats", returns_two_floats),
        ("one step updates both networks", one_step_updates),
        ("three steps in a row", three_steps),
    ])
