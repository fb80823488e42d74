"""dlmi_utils.noise: the statistics of each noise model, reproducibility, numpy/torch parity,
the Anscombe transform and the noise models of the denoisers."""

import numpy as np
import pytest
import torch

from dlmi_utils.noise import (
    GaussianNoise,
    PoissonNoise,
    add_gaussian_noise,
    add_poisson_noise,
    add_rician_noise,
    anscombe,
    anscombe_mean,
    inverse_anscombe,
    sigma_8bit,
    vst_sigma,
)

N = 200_000  # samples for the statistical tests: standard errors well below the tolerances


def test_sigma_8bit_is_level_over_255():
    assert sigma_8bit(25) == pytest.approx(25 / 255)
    with pytest.raises(ValueError):
        sigma_8bit(-1)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_gaussian_noise_has_zero_mean_and_std_sigma(kind):
    x = np.full(N, 0.3) if kind == "numpy" else torch.full((N,), 0.3, dtype=torch.float64)
    n = add_gaussian_noise(x, 0.1, seed=0) - x
    n = np.asarray(n)
    assert abs(n.mean()) < 1e-3
    assert n.std() == pytest.approx(0.1, rel=0.01)


@pytest.mark.parametrize("fn", [add_gaussian_noise, add_rician_noise])
def test_seeds_are_reproducible_and_generators_advance(fn):
    x = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    np.testing.assert_array_equal(fn(x, 0.1, seed=3), fn(x, 0.1, seed=3))
    assert not np.array_equal(fn(x, 0.1, seed=3), fn(x, 0.1, seed=4))
    rng = np.random.default_rng(5)
    assert not np.array_equal(fn(x, 0.1, seed=rng), fn(x, 0.1, seed=rng))
    t = torch.from_numpy(x)
    torch.testing.assert_close(fn(t, 0.1, seed=3), fn(t, 0.1, seed=3))
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(fn(t, 0.1, seed=g), fn(t, 0.1, seed=g))


def test_poisson_seeds_are_reproducible():
    x = np.linspace(0, 1, 100)
    np.testing.assert_array_equal(add_poisson_noise(x, 50, 1), add_poisson_noise(x, 50, 1))
    t = torch.from_numpy(x)
    torch.testing.assert_close(add_poisson_noise(t, 50, 1), add_poisson_noise(t, 50, 1))


@pytest.mark.parametrize(
    "fn,arg", [(add_gaussian_noise, 0.1), (add_rician_noise, 0.1), (add_poisson_noise, 100)]
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_same_kind_and_dtype_come_back(fn, arg, dtype):
    x = np.random.default_rng(0).random((4, 8, 8)).astype(dtype)
    y = fn(x, arg, seed=0)
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype and y.shape == x.shape
    t = torch.from_numpy(x)
    y = fn(t, arg, seed=0)
    assert isinstance(y, torch.Tensor) and y.dtype == t.dtype and y.device == t.device
    assert y.shape == t.shape


def test_zero_sigma_leaves_the_image_unchanged():
    x = np.random.default_rng(0).random((8, 8))
    np.testing.assert_array_equal(add_gaussian_noise(x, 0.0, seed=0), x)
    np.testing.assert_allclose(add_rician_noise(x, 0.0, seed=0), x)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_rician_background_is_biased_by_sigma_sqrt_pi_over_2(kind):
    sigma = 0.05
    x = np.zeros(N) if kind == "numpy" else torch.zeros(N, dtype=torch.float64)
    y = np.asarray(add_rician_noise(x, sigma, seed=1))
    assert (y >= 0).all()
    assert y.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.01)
    assert y.var() == pytest.approx((2 - np.pi / 2) * sigma**2, rel=0.02)  # Rayleigh variance


def test_rician_at_high_snr_is_close_to_gaussian_around_sqrt_a2_plus_sigma2():
    a, sigma = 1.0, 0.05
    y = add_rician_noise(np.full(N, a), sigma, seed=2)
    assert y.mean() == pytest.approx(np.sqrt(a**2 + sigma**2), abs=1e-3)
    assert y.std() == pytest.approx(sigma, rel=0.02)


def test_rician_accepts_a_complex_image():
    z = np.exp(1j * np.linspace(0, np.pi, N))  # magnitude 1, varying phase
    y = add_rician_noise(z, 0.05, seed=0)
    assert y.dtype == np.float64
    assert y.mean() == pytest.approx(np.sqrt(1 + 0.05**2), abs=1e-3)
    t = add_rician_noise(torch.from_numpy(z.astype(np.complex64)), 0.05, seed=0)
    assert t.dtype == torch.float32


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_poisson_noise_is_unbiased_with_variance_proportional_to_signal(kind):
    photons = 200
    levels = [0.1, 0.4, 0.8]
    for level in levels:
        x = np.full(N, level) if kind == "numpy" else torch.full((N,), level, dtype=torch.float64)
        y = np.asarray(add_poisson_noise(x, photons, seed=0))
        assert y.mean() == pytest.approx(level, rel=0.01)
        assert y.var() == pytest.approx(level / photons, rel=0.03)
        counts = y * photons
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)  # whole photons


def test_fewer_photons_more_noise():
    x = np.full(N, 0.5)
    var_high = add_poisson_noise(x, 1000, seed=0).var()
    var_low = add_poisson_noise(x, 500, seed=0).var()
    assert var_low / var_high == pytest.approx(2.0, rel=0.03)


def test_bad_inputs_are_clear_errors():
    x = np.ones((4, 4))
    with pytest.raises(ValueError, match="non-negative"):
        add_gaussian_noise(x, -0.1)
    with pytest.raises(ValueError, match="non-negative"):
        add_rician_noise(x, float("nan"))
    with pytest.raises(TypeError, match="add_rician_noise"):
        add_gaussian_noise(x.astype(complex), 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        add_poisson_noise(x - 2, 100)
    with pytest.raises(ValueError, match="photons"):
        add_poisson_noise(x, 0)
    with pytest.raises(TypeError, match="torch.Generator"):
        add_gaussian_noise(torch.ones(3), 0.1, seed=np.random.default_rng(0))
    with pytest.raises(TypeError, match="np.random.Generator"):
        add_gaussian_noise(x, 0.1, seed=torch.Generator())
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        add_gaussian_noise([1.0, 2.0], 0.1)


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


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_gaussian_noise_model_draws_add_gaussian_noise(kind):
    x = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    x = torch.from_numpy(x) if kind == "torch" else x
    noise = GaussianNoise(0.1)
    y = noise(x, seed=3)
    assert type(y) is type(x) and y.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(y), np.asarray(add_gaussian_noise(x, 0.1, seed=3)))
    assert noise.stabilise(y) is y and noise.stable_target(x) is x and noise.level == 0.1
    assert str(GaussianNoise(sigma_8bit(25))) == "sigma = 25 / 255"


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_blind_gaussian_noise_draws_one_level_per_image_from_the_same_seed(kind):
    noise = GaussianNoise((0.05, 0.2))
    x = np.full((64, 64), 0.5, np.float32)
    x = torch.from_numpy(x) if kind == "torch" else x
    stds = [float(np.std(np.asarray(noise(x, seed=s)) - np.asarray(x))) for s in range(40)]
    assert 0.05 * 0.95 < min(stds) < 0.08 and 0.17 < max(stds) < 0.2 * 1.05
    np.testing.assert_array_equal(np.asarray(noise(x, seed=7)), np.asarray(noise(x, seed=7)))
    with pytest.raises(ValueError, match="no level"):
        _ = noise.level
    with pytest.raises(ValueError, match="range"):
        GaussianNoise((0.2, 0.1))


def test_blind_gaussian_noise_on_a_tensor_draws_the_level_first_from_the_generator():
    """The draw the shipped blind nets were trained with: ``lo + (hi - lo) U`` then the noise,
    both from one ``torch.Generator``."""
    x = torch.full((8, 8), 0.5)
    y = GaussianNoise((0.1, 0.3))(x, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    level = 0.1 + 0.2 * float(torch.rand((), generator=g))
    torch.testing.assert_close(y, add_gaussian_noise(x, level, seed=g))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_poisson_noise_model_is_stabilised_by_anscombe_and_inverted_back(kind):
    photons = 100.0
    noise = PoissonNoise(photons)
    x = np.full(200_000, 0.3, np.float32)
    x = torch.from_numpy(x) if kind == "torch" else x
    y = noise(x, seed=1)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(add_poisson_noise(x, photons, 1)))
    z = noise.stabilise(y)
    assert type(z) is type(x) and z.dtype == x.dtype  # the network's input: the input's dtype
    assert float(np.std(np.asarray(z))) == pytest.approx(noise.level, rel=0.03)
    assert noise.level == vst_sigma(photons)
    target = noise.stable_target(x)
    assert float(np.mean(np.asarray(z))) == pytest.approx(float(np.asarray(target)[0]), abs=1e-3)
    # a perfect denoiser of the Anscombe domain returns E[z | x]: through() gives back x
    back = noise.through(lambda z: noise.stable_target(x))(y)
    np.testing.assert_allclose(np.asarray(back), 0.3, atol=1e-3)
    assert "quantum noise N0 = 100" in str(noise)


def test_poisson_noise_model_keeps_float64_after_the_transform_of_numpy_input():
    """``stable_target`` and ``unstabilise`` give float64 for numpy input (the precision of the
    inverse), ``stabilise`` the input's dtype: float32 for the film crops."""
    noise = PoissonNoise(100)
    x = np.full((4, 4), 0.3, np.float32)
    assert noise.stabilise(noise(x, 0)).dtype == np.float32
    assert noise.stable_target(x).dtype == np.float64
    assert noise.unstabilise(np.full((4, 4), 0.5, np.float32)).dtype == np.float64
    with pytest.raises(ValueError, match="photons"):
        PoissonNoise(0)


# ------------------------------------------------------------- X-ray transmission noise
def test_transmission_noise_is_the_log_of_poisson_counts_behind_the_body():
    """p_hat = -log(k / N0), k ~ Poisson(N0 exp(-p)): unbiased to first order, with the
    variance exp(p) / N0 (delta method): the most noise where the body attenuates most."""
    from dlmi_utils.noise import add_transmission_noise

    photons = 2000.0
    for p in (0.2, 1.0, 2.5):
        p_hat = add_transmission_noise(np.full(40_000, p), photons, seed=0)
        assert p_hat.mean() == pytest.approx(p, abs=0.01)
        assert p_hat.var() == pytest.approx(np.exp(p) / photons, rel=0.05)
    torch_hat = add_transmission_noise(torch.full((40_000,), 1.0), photons, seed=0)
    assert torch_hat.dtype == torch.float32
    assert torch_hat.var().item() == pytest.approx(np.exp(1.0) / photons, rel=0.05)


def test_transmission_noise_of_no_photon_is_capped_and_bad_input_is_a_clear_error():
    from dlmi_utils.noise import add_transmission_noise

    p_hat = add_transmission_noise(np.full(1000, 30.0), 10.0, seed=0)  # nothing gets through
    assert np.isfinite(p_hat).all() and p_hat.max() == pytest.approx(np.log(10.0))
    with pytest.raises(ValueError, match="line integral"):
        add_transmission_noise(np.array([-0.5, 1.0]), 100.0)
    with pytest.raises(ValueError, match="photons"):
        add_transmission_noise(np.array([0.5]), 0.0)
    with pytest.raises(ValueError):
        add_transmission_noise(np.array([np.nan]), 100.0)


def test_transmission_noise_model_std_grows_with_density_and_the_vst_makes_it_flat():
    from dlmi_utils.noise import TransmissionNoise

    noise = TransmissionNoise(500, attenuation=3.0)
    x = np.repeat(np.array([0.1, 0.5, 0.9])[:, None], 50_000, axis=1).astype(np.float32)
    y = noise(x, seed=1)
    stds = y.std(axis=1)
    assert np.allclose(stds, noise.std(x[:, 0]), rtol=0.05)
    assert stds[2] > 3 * stds[0]  # dense tissue is noisiest
    stabilised = noise.stabilise(y)
    assert stabilised.dtype == np.float32
    assert np.allclose(stabilised.std(axis=1), noise.level, rtol=0.06)
    # E[stabilised | x] is the target, and unstabilise maps it back to x
    assert np.allclose(stabilised.mean(axis=1), noise.stable_target(x[:, 0]), atol=2e-4)
    assert np.allclose(noise.unstabilise(noise.stable_target(x[:, 0])), x[:, 0], atol=2e-4)
    assert noise.noisy_and_level(x, seed=1)[1] == noise.level
    with pytest.raises(ValueError, match="attenuation"):
        TransmissionNoise(500, attenuation=0)
