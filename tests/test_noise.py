"""dlmi_utils.noise: the statistics of each noise model, reproducibility, numpy/torch parity."""

import numpy as np
import pytest
import torch

from dlmi_utils.noise import add_gaussian_noise, add_poisson_noise, add_rician_noise, sigma_8bit

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
