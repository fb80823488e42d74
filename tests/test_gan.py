import pytest
import torch

from dlmi_utils.gan.models import EMA, Discriminator, Generator, interpolate_latents, latent


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_and_discriminator_shapes(size):
    g, d = Generator(nz=8, ngf=4, size=size), Discriminator(ndf=4, size=size)
    x = g(latent(3, 8, seed=0))
    assert x.shape == (3, 1, size, size)
    assert d(x).shape == (3,)


def test_generator_output_is_in_tanh_range():
    x = Generator(nz=8, ngf=4)(latent(4, 8, seed=1) * 50)
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_discriminator_norms_and_spectral_norm_run(norm):
    d = Discriminator(ndf=4, norm=norm, spectral_norm=True)
    assert d(torch.randn(2, 1, 64, 64)).shape == (2,)


def test_spectral_norm_bounds_the_first_layer():
    torch.manual_seed(0)
    d = Discriminator(ndf=4, spectral_norm=True).train()
    conv = d.net[0]
    for _ in range(20):  # power iterations run in each training forward pass
        d(torch.randn(2, 1, 64, 64))
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)


def test_latent_is_reproducible():
    assert torch.equal(latent(5, 7, seed=3), latent(5, 7, seed=3))
    assert not torch.equal(latent(5, 7, seed=3), latent(5, 7, seed=4))


def test_bad_sizes_and_inputs_raise():
    with pytest.raises(ValueError, match="size"):
        Generator(size=48)
    with pytest.raises(ValueError, match="norm"):
        Discriminator(norm="instance")
    with pytest.raises(ValueError, match="latent"):
        Generator(nz=8, ngf=4)(torch.randn(2, 9))
    with pytest.raises(ValueError, match="images of shape"):
        Discriminator(ndf=4)(torch.randn(2, 1, 32, 32))


def test_ema_is_the_moving_average_of_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    w0 = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, 0.9 * w0 + 0.1 * (w0 + 1.0))
    assert not ema.model.weight.requires_grad


def test_ema_copies_batchnorm_statistics():
    g = Generator(nz=8, ngf=4).train()
    ema = EMA(g, 0.5)
    g(latent(4, 8, seed=0))
    ema.update(g)
    assert torch.equal(ema.model.net[1].running_mean, g.net[1].running_mean)


@pytest.mark.parametrize("spherical", [True, False])
def test_interpolation_goes_from_one_code_to_the_other(spherical):
    z0, z1 = latent(2, 64, seed=4)
    path = interpolate_latents(z0, z1, 7, spherical=spherical)
    assert path.shape == (7, 64)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)


def test_slerp_keeps_the_norm_that_the_straight_line_loses():
    z0, z1 = latent(2, 256, seed=5)
    slerp = interpolate_latents(z0, z1, 9).norm(dim=1)
    line = interpolate_latents(z0, z1, 9, spherical=False).norm(dim=1)
    ends = torch.stack([z0.norm(), z1.norm()])
    assert slerp.min() > 0.95 * ends.min()
    assert line[4] < 0.8 * ends.min()  # the middle of the line: about sqrt(1/2) of the norm


def test_interpolation_checks_its_inputs():
    z0, z1 = latent(2, 8)
    with pytest.raises(ValueError, match="same shape"):
        interpolate_latents(z0, z1[:4])
    with pytest.raises(ValueError, match="at least 2"):
        interpolate_latents(z0, z1, 1)
    same = interpolate_latents(z0, z0, 3)
    torch.testing.assert_close(same, z0.expand(3, 8))
