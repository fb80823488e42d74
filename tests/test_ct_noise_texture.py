"""Noise SD and noise power spectrum: Parseval, flatness of white noise, regions, errors."""

import numpy as np
import pytest
import torch

from dlmi_utils.ct import noise_power_spectrum, roi_sd, square_roi


def test_nps_integrates_to_the_variance():
    noise = np.random.default_rng(0).normal(0, 12.0, size=(6, 32, 32))
    nps = noise_power_spectrum(noise, pixel_size_mm=0.5)
    df = 1 / (32 * 0.5)
    variance = np.mean([np.var(n, ddof=0) for n in noise])
    assert nps.nps_2d.sum() * df**2 == pytest.approx(variance, rel=1e-9)
    assert nps.nps_2d.shape == (32, 32) and nps.radial.shape == (17,)
    assert nps.frequencies[-1] == pytest.approx(1 / (2 * 0.5))  # Nyquist, cycles/mm


def test_white_noise_has_a_flat_nps_of_sigma_squared_times_pixel_area():
    noise = torch.randn(40, 32, 32, generator=torch.Generator().manual_seed(1)) * 10
    nps = noise_power_spectrum(noise, pixel_size_mm=2.0)
    np.testing.assert_allclose(nps.radial[1:], 100.0 * 4.0, rtol=0.25)


def test_nps_ignores_the_mean_of_each_region():
    noise = np.random.default_rng(2).normal(size=(3, 16, 16))
    shifted = noise + np.array([100.0, -50.0, 7.0])[:, None, None]
    np.testing.assert_allclose(noise_power_spectrum(shifted, 1.0).nps_2d,
                               noise_power_spectrum(noise, 1.0).nps_2d, atol=1e-9)


def test_square_roi_is_centred_and_roi_sd_pools_a_batch():
    image = np.arange(100.0).reshape(10, 10)
    np.testing.assert_array_equal(square_roi(image, (5, 5), 2), [[44, 45], [54, 55]])
    batch = np.stack([np.zeros((10, 10)), np.ones((10, 10))])
    assert roi_sd(batch, (5, 5), 4) == pytest.approx(np.std([0.0] * 16 + [1.0] * 16, ddof=1))
    assert roi_sd(torch.zeros(10, 10), (5, 5), 4) == 0.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: square_roi(np.zeros((10, 10)), (1, 5), 4), "leaves the"),
        (lambda: square_roi(np.zeros((10, 10)), (5, 5), 1), "size"),
        (lambda: noise_power_spectrum(np.zeros((8, 6)), 1.0), "square regions"),
        (lambda: noise_power_spectrum(np.full((8, 8), np.nan), 1.0), "NaN"),
        (lambda: noise_power_spectrum(np.zeros((8, 8)), 0.0), "pixel_size_mm"),
    ],
    ids=["outside", "too small", "not square", "nan", "pixel size"],
)
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
