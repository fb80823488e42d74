"""Low-dose simulation: the HU rule, the statistics of the counts, the noise of the images."""

import numpy as np
import pytest
import torch

from dlmi_utils.ct import (
    MU_WATER,
    ParallelBeamProjector,
    hu_to_mu,
    line_integrals,
    mu_to_hu,
    noise_power_spectrum,
    noisy_sinogram,
    reconstruct_hu,
    roi_sd,
    simulate_dose_pair,
    simulate_low_dose,
    square_roi,
)


def _water_cylinder(n: int = 96, radius: float = 40.0) -> np.ndarray:
    """A disc of water (0 HU) in air (-1000 HU), ``(n, n)`` float32."""
    i, j = np.mgrid[:n, :n] - n // 2
    return np.where(i**2 + j**2 <= radius**2, 0.0, -1000.0).astype(np.float32)


def test_hu_to_mu_is_water_relative_and_clipped_at_zero():
    hu = np.array([-1024.0, -1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(hu_to_mu(hu), [0.0, 0.0, MU_WATER, 2 * MU_WATER])
    np.testing.assert_allclose(mu_to_hu(hu_to_mu(hu[1:])), hu[1:], atol=1e-9)
    mu = hu_to_mu(torch.tensor([0.0, 500.0]), mu_water=0.02)
    assert isinstance(mu, torch.Tensor) and torch.allclose(mu, torch.tensor([0.02, 0.03]))
    assert hu_to_mu(np.array([0, 40], dtype=np.int16)).dtype == np.float32


def test_line_integrals_are_in_mm_times_per_mm():
    projector = ParallelBeamProjector((32, 32), [0.0])
    water = np.full((32, 32), MU_WATER, np.float32)
    p = line_integrals(water, projector, pixel_size_mm=2.0)
    assert p.max() == pytest.approx(MU_WATER * 32 * 2.0, rel=1e-5)  # 64 mm of water
    assert line_integrals(water, projector, (2.0, 2.0)).max() == pytest.approx(p.max())


def test_log_sinogram_variance_is_one_over_the_detected_photons():
    projector = ParallelBeamProjector((48, 48), 6)
    mu = hu_to_mu(_water_cylinder(48, 22.0))
    p = line_integrals(mu, projector, pixel_size_mm=4.0)  # up to 3.4: 3 % of the photons
    I0, draws = 2e4, 400
    y = noisy_sinogram(np.broadcast_to(p, (draws,) + p.shape), I0, electronic_sigma=0.0, seed=0)
    expected = np.exp(p) / I0
    ratio = y.var(axis=0, ddof=1) / expected
    thick = p > 2.0  # the rays through the middle of the cylinder, few photons
    assert thick.sum() > 20 and (p < 0.5).sum() > 20
    assert ratio[thick].mean() == pytest.approx(1.0, abs=0.05)
    assert ratio[p < 0.5].mean() == pytest.approx(1.0, abs=0.05)
    np.testing.assert_allclose(y.mean(axis=0), p, atol=0.02)  # nearly unbiased


def test_electronic_noise_adds_its_variance_to_the_counts():
    p = np.full(200_000, 3.0)
    counts = 1e4 * np.exp(-3.0)  # about 500 photons, and an electronic variance of 400
    y = noisy_sinogram(p, 1e4, electronic_sigma=20.0, seed=1)
    assert y.var() == pytest.approx((counts + 400.0) / counts**2, rel=0.03)


def test_photon_starved_rays_saturate_at_the_minimum_count():
    y = noisy_sinogram(np.full(1000, 30.0), 1e4, electronic_sigma=0.0, seed=2)
    np.testing.assert_allclose(y, np.log(1e4), rtol=1e-6)
    y = noisy_sinogram(np.full(1000, 30.0), 1e4, seed=2, min_count=0.5)
    assert y.max() == pytest.approx(np.log(1e4 / 0.5), rel=1e-6)


@pytest.fixture(scope="module")
def water_pairs():
    """Four noise realisations of a water cylinder at 5e3 and 2e4 photons per ray."""
    projector = ParallelBeamProjector((96, 96), 180)
    hu = np.broadcast_to(_water_cylinder(), (4, 96, 96))
    return simulate_dose_pair(hu, 1.0, 5e3, dose_factor=4.0, projector=projector, seed=3)


def test_quarter_dose_doubles_the_noise_sd_in_a_flat_region(water_pairs):
    low = roi_sd(water_pairs.low - water_pairs.noiseless, (48, 48), 32)
    full = roi_sd(water_pairs.full - water_pairs.noiseless, (48, 48), 32)
    assert low / full == pytest.approx(2.0, rel=0.1)
    assert abs(float(np.mean(square_roi(water_pairs.noiseless, (48, 48), 32)))) < 5  # water


def test_fbp_noise_is_spatially_correlated(water_pairs):
    noise = square_roi(water_pairs.low - water_pairs.noiseless, (48, 48), 32)
    radial = noise_power_spectrum(noise, 1.0).radial
    assert radial[1] < 0.3 * radial.max()  # the ramp filter: little power at low frequencies
    white = np.random.default_rng(4).normal(size=(4, 32, 32))
    white_radial = noise_power_spectrum(white, 1.0).radial
    assert white_radial[1] > 0.5 * white_radial.max()


def test_a_smoother_window_moves_the_noise_to_lower_frequencies():
    projector = ParallelBeamProjector((64, 64), 90)
    y = simulate_low_dose(hu_to_mu(_water_cylinder(64, 28.0)), projector, 1.0, 1e4, seed=5)
    peaks = {}
    for name in ("ramp", "hann"):
        noise = reconstruct_hu(y, projector, 1.0, name) - reconstruct_hu(
            line_integrals(hu_to_mu(_water_cylinder(64, 28.0)), projector, 1.0), projector,
            1.0, name)
        nps = noise_power_spectrum(square_roi(noise, (32, 32), 24), 1.0)
        peaks[name] = nps.frequencies[np.argmax(nps.radial)]
    assert peaks["hann"] < peaks["ramp"]


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_the_pair_carries_the_measured_sinogram_behind_its_low_dose_image(kind):
    hu = _water_cylinder(32, 12.0)
    hu = torch.from_numpy(hu) if kind == "torch" else hu
    projector = ParallelBeamProjector((32, 32), 12)
    pair = simulate_dose_pair(hu, 1.0, 1e4, projector=projector, seed=7)
    assert isinstance(pair.sinogram, type(hu)) and pair.sinogram.shape == (12, 46)
    np.testing.assert_allclose(np.asarray(reconstruct_hu(pair.sinogram, projector, 1.0)),
                               np.asarray(pair.low), atol=1e-4)
    p = line_integrals(hu_to_mu(hu), projector, 1.0)
    assert not np.allclose(np.asarray(pair.sinogram), np.asarray(p))  # noisy, not the truth


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_seeds_are_reproducible(kind):
    hu = _water_cylinder(32, 12.0)
    hu = torch.from_numpy(hu) if kind == "torch" else hu
    projector = ParallelBeamProjector((32, 32), 12)
    first = simulate_dose_pair(hu, 1.0, 1e4, projector=projector, seed=7)
    again = simulate_dose_pair(hu, 1.0, 1e4, projector=projector, seed=7)
    other = simulate_dose_pair(hu, 1.0, 1e4, projector=projector, seed=8)
    assert isinstance(first.low, type(hu)) and first.low.dtype == hu.dtype
    np.testing.assert_array_equal(np.asarray(first.low), np.asarray(again.low))
    assert not np.array_equal(np.asarray(first.low), np.asarray(other.low))
    assert not np.array_equal(np.asarray(first.low), np.asarray(first.full))
    generator = torch.Generator().manual_seed(9) if kind == "torch" else np.random.default_rng(9)
    p = line_integrals(hu_to_mu(hu), projector, 1.0)
    a, b = noisy_sinogram(p, 1e4, seed=generator), noisy_sinogram(p, 1e4, seed=generator)
    assert not np.array_equal(np.asarray(a), np.asarray(b))  # a generator moves on


@pytest.mark.parametrize("I0", [0, -1e4, float("nan"), float("inf")])
def test_a_dose_of_zero_or_less_raises(I0):
    with pytest.raises(ValueError, match="I0 must be a positive number of photons"):
        noisy_sinogram(np.zeros(4), I0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: line_integrals(np.full((8, 8), -0.01), p, 1.0), "non-negative"),
        (lambda p: line_integrals(np.full((8, 8), 40.0), p, 1.0), "is it in HU"),
        (lambda p: line_integrals(np.zeros((8, 8)), p, (0.5, 0.7)), "square pixels"),
        (lambda p: line_integrals(np.zeros((8, 8)), p, 0.0), "pixel_size_mm"),
        (lambda p: simulate_dose_pair(np.zeros((8, 8)), 1.0, 1e4, 0.5, p), "dose_factor"),
        (lambda p: noisy_sinogram(np.zeros(3), 1e4, electronic_sigma=-1), "electronic_sigma"),
        (lambda p: hu_to_mu(np.zeros(3), mu_water=0), "mu_water"),
    ],
    ids=["negative mu", "HU as mu", "rectangular pixels", "zero pixel size", "dose factor",
         "electronic sigma", "mu_water"],
)
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(ParallelBeamProjector((8, 8), 4))
