"""checks.lab05: right answers pass (self-check and strict), usual slips get the hint."""

import copy

import pytest
import torch
import torch.nn.functional as F

from dlmi_utils.course.checks import lab05
from dlmi_utils.gan import losses as gan_losses


def _d_loss_bce(real, fake):
    bce = F.binary_cross_entropy_with_logits
    return bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))


def _gp(critic, real, fake):
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _train_step(generator, discriminator, opt_g, opt_d, real, z):
    fake = generator(z)
    d_loss = gan_losses.d_loss_nonsaturating(discriminator(real), discriminator(fake.detach()))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = gan_losses.g_loss_nonsaturating(discriminator(fake))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "check,fn",
    [
        (lab05.check_discriminator_loss, gan_losses.d_loss_nonsaturating),
        (lab05.check_discriminator_loss, _d_loss_bce),
        (lab05.check_generator_loss, gan_losses.g_loss_nonsaturating),
        (lab05.check_gradient_penalty, gan_losses.gradient_penalty),
        (lab05.check_gradient_penalty, _gp),
        (lab05.check_train_step, _train_step),
    ],
)
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict, seed=2)
    assert result.ok, result.report()


def _not_implemented(*args):
    raise NotImplementedError("not implemented yet")


@pytest.mark.parametrize("check", [lab05.check_discriminator_loss, lab05.check_generator_loss,
                                   lab05.check_gradient_penalty, lab05.check_train_step])
def test_stub_reports_not_implemented(check):
    result = check(_not_implemented)
    assert result.status == "not_implemented" and "not implemented yet" in result.report()


def _fails_with(result, hint):
    assert not result.ok
    assert hint in result.report(), result.report()


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (lambda r, f: gan_losses.d_loss_nonsaturating(f, r), "labels swapped"),
        (lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(), "not the sum"),
        (lambda r, f: -torch.log(torch.sigmoid(r)).mean() - torch.log(1 - torch.sigmoid(f)).mean(),
         "softplus"),
        (lambda r, f: F.softplus(-r).mean(), "fakes' term"),
    ],
)
def test_discriminator_loss_slips_get_hints(wrong, hint):
    _fails_with(lab05.check_discriminator_loss(wrong), hint)


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (gan_losses.g_loss_minimax, "saturates"),
        (lambda f: F.softplus(f).mean(), "labelled *real*"),
        (lambda f: torch.tensor(F.softplus(-f).mean().item()), "detached"),
    ],
)
def test_generator_loss_slips_get_hints(wrong, hint):
    _fails_with(lab05.check_generator_loss(wrong), hint)


def _gp_variant(one_eps=False, squared_norm=False, no_graph=False, no_detach=False):
    def gp(critic, real, fake):
        shape = (1, 1, 1, 1) if one_eps else (real.shape[0], 1, 1, 1)
        eps = torch.rand(shape)
        r, f = (real, fake) if no_detach else (real.detach(), fake.detach())
        x_hat = eps * r + (1 - eps) * f
        if not no_detach:
            x_hat.requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=not no_graph)
        norm = grad.flatten(1).norm(dim=1)
        return ((norm**2 - 1) ** 2 if squared_norm else (norm - 1) ** 2).mean()
    return gp


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (_gp_variant(one_eps=True), "same eps"),
        (_gp_variant(squared_norm=True), "squared norm"),
        (_gp_variant(no_graph=True), "create_graph"),
        (_gp_variant(no_detach=True), "real.detach()"),
    ],
)
def test_gradient_penalty_slips_get_hints(wrong, hint):
    _fails_with(lab05.check_gradient_penalty(wrong), hint)


def _step_no_detach(generator, discriminator, opt_g, opt_d, real, z):
    fake = generator(z)
    d_loss = gan_losses.d_loss_nonsaturating(discriminator(real), discriminator(fake))
    opt_d.zero_grad()
    d_loss.backward(retain_graph=True)
    opt_d.step()
    g_loss = gan_losses.g_loss_nonsaturating(discriminator(fake))
    g_loss.backward()  # no zero_grad: D's loss left its gradients in the generator
    opt_g.step()
    return d_loss.item(), g_loss.item()


def _step_generator_first(generator, discriminator, opt_g, opt_d, real, z):
    opt_g.zero_grad()
    g_loss = gan_losses.g_loss_nonsaturating(discriminator(generator(z)))
    g_loss.backward()
    opt_g.step()
    opt_d.zero_grad()
    d_loss = gan_losses.d_loss_nonsaturating(discriminator(real),
                                             discriminator(generator(z).detach()))
    d_loss.backward()
    opt_d.step()
    return d_loss.item(), g_loss.item()


def _step_tensors(*args):
    d, g = _train_step(*args)
    return torch.tensor(d), torch.tensor(g)


@pytest.mark.parametrize(
    "wrong,hint",
    [
        (_step_no_detach, "generator's weights differ"),
        (_step_generator_first, "discriminator's weights differ"),
        (_step_tensors, "return floats"),
    ],
)
def test_train_step_slips_get_hints(wrong, hint):
    _fails_with(lab05.check_train_step(wrong), hint)


def test_reference_train_step_moves_both_networks_like_the_model_answer():
    """The lab falls back on reference_train_step: it must be the exercise's step, exactly."""
    torch.manual_seed(0)
    gen, disc = lab05._tiny_pair(0, strict=False)
    gen_b, disc_b = (copy.deepcopy(m) for m in (gen, disc))
    real, z = torch.rand(4, 1, 32, 32) * 2 - 1, torch.randn(4, gen.nz)
    got = lab05.reference_train_step(gen, disc, *lab05._optimizers(gen, disc), real, z)
    want = _train_step(gen_b, disc_b, *lab05._optimizers(gen_b, disc_b), real, z)
    assert got == pytest.approx(want, rel=1e-5)
    assert lab05._same(gen, gen_b) and lab05._same(disc, disc_b)


@pytest.mark.parametrize("check,right", [
    (lab05.check_discriminator_loss, gan_losses.d_loss_nonsaturating),
    (lab05.check_generator_loss, gan_losses.g_loss_nonsaturating),
    (lab05.check_gradient_penalty, gan_losses.gradient_penalty),
    (lab05.check_train_step, _train_step),
])
def test_strict_checks_use_other_sizes_than_the_self_check(check, right):
    """The grader's cases are not the self-check's: an answer fitted to one fails the other."""
    def recording(sizes):
        def fn(*args):
            sizes.append(tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor)))
            return right(*args)
        return fn

    own, grader = [], []
    assert check(recording(own)).ok and check(recording(grader), strict=True).ok
    assert own and grader and set(own) != set(grader)
