"""Where to measure noise (body mask, flattest soft-tissue squares), noise SD and noise power
spectrum: Parseval, flatness of white noise, regions, errors."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from dlmi_utils.ct import (
    body_mask,
    flat_rois,
    mean_frequency,
    noise_power_spectrum,
    roi_sd,
    square_roi,
)
from dlmi_utils.ct.noise_texture import NoisePowerSpectrum


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


def test_mean_frequency_is_the_nps_weighted_frequency_and_falls_when_noise_is_smoothed():
    f = np.linspace(0, 1, 5)
    assert mean_frequency(NoisePowerSpectrum(None, None, f, np.array([0, 0, 1.0, 0, 1.0]))) \
        == pytest.approx(0.75)
    noise = np.random.default_rng(3).normal(0, 10.0, size=(8, 32, 32))
    white = mean_frequency(noise_power_spectrum(noise, 1.0))
    blotchy = mean_frequency(noise_power_spectrum(ndimage.gaussian_filter(noise, (0, 2, 2)), 1.0))
    assert 0.22 < white < 0.3  # a flat radial NPS: the mean frequency is half of Nyquist
    assert blotchy < 0.5 * white
    with pytest.raises(ValueError, match="no noise"):
        mean_frequency(noise_power_spectrum(np.zeros((2, 8, 8)), 1.0))
    with pytest.raises(TypeError, match="NoisePowerSpectrum"):
        mean_frequency(np.ones(4))


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


def _abdomen() -> np.ndarray:
    """An ellipse of 40 HU with noise of SD 10 HU, a flat patch, gas, and a table below, in air."""
    rows, cols = np.mgrid[:96, :96]
    image = np.full((96, 96), -1000.0)
    image[((rows - 40) / 30) ** 2 + ((cols - 48) / 40) ** 2 <= 1] = 40.0
    image[30:46, 20:36] = 60.0  # flat soft tissue: noiseless here only
    image += np.random.default_rng(0).normal(0, 10, image.shape) * (image != 60.0)
    image[36:44, 60:70] = -900.0  # gas in the bowel, flatter still
    image[82:88, 10:86] = 200.0  # the table, 6 pixels thick, apart from the body
    return image


def test_body_mask_is_the_largest_part_without_table_or_air_with_holes_filled():
    image = _abdomen()
    body = body_mask(image)
    assert body.dtype == bool and body.shape == image.shape
    assert body[40, 10:86].all() and body[12:68, 48].all()
    assert body[36:44, 60:70].all()  # the gas is a hole: filled
    assert not body[75:].any() and not body[:8].any() and not body[:, :6].any()


def test_body_mask_opens_away_a_thin_table():
    image = np.full((64, 64), -1000.0)
    image[10:40, 10:54] = 0.0
    image[20:30, 20:30] = -1000.0  # gas inside the body: a hole to fill
    image[50:52, 4:60] = 200.0  # the table, 2 pixels thick
    body = body_mask(image)
    assert body[12:38, 12:52].all() and body[25, 25] and not body[45:].any()


def test_flat_rois_finds_the_flattest_soft_tissue_square_inside_the_body():
    image = np.full((64, 64), -1000.0)
    image[8:56, 8:56] = 40.0 + np.random.default_rng(0).normal(0, 20, (48, 48))
    image[30:44, 12:26] = 60.0  # a flat patch of soft tissue
    image[14:26, 34:46] = -900.0  # flatter still, but gas
    body = body_mask(image)
    assert body[10:54, 10:54].all() and not body[:8].any() and not body[:, 56:].any()
    [((row, col), side)] = flat_rois(image, body, pixel_size_mm=2.0)
    assert side == 11  # 20 mm at 2 mm, odd
    assert 30 + side // 2 <= row <= 43 - side // 2 and 12 + side // 2 <= col <= 25 - side // 2


def test_flat_rois_are_in_soft_tissue_apart_and_by_increasing_sd():
    image = _abdomen()
    body = body_mask(image)
    [first] = flat_rois(image, body, pixel_size_mm=2.0)
    (row, col), side = first
    assert side == 11 and 35 <= row <= 40 and 25 <= col <= 30  # in the flat patch
    rois = flat_rois(image, body, pixel_size_mm=2.0, count=3)
    assert rois[0] == first and len(rois) == 3
    sds = [roi_sd(image, centre, side) for centre, side in rois]
    assert sds == sorted(sds)
    for i, ((r1, c1), _) in enumerate(rois):
        assert square_roi(body, (r1, c1), side).all()
        assert 0 < square_roi(image, (r1, c1), side).mean() < 150
        for (r2, c2), _ in rois[i + 1 :]:
            assert abs(r1 - r2) >= side or abs(c1 - c2) >= side  # the squares do not overlap


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: square_roi(np.zeros((10, 10)), (1, 5), 4), "leaves the"),
        (lambda: square_roi(np.zeros((10, 10)), (5, 5), 1), "size"),
        (lambda: noise_power_spectrum(np.zeros((8, 6)), 1.0), "square regions"),
        (lambda: noise_power_spectrum(np.full((8, 8), np.nan), 1.0), "NaN"),
        (lambda: noise_power_spectrum(np.zeros((8, 8)), 0.0), "pixel_size_mm"),
        (lambda: body_mask(np.zeros((2, 8, 8))), r"one slice \(H, W\)"),
        (lambda: body_mask(np.full((32, 32), -1000.0)), "no body in the image"),
        (lambda: flat_rois(np.zeros((2, 8, 8)), np.ones((2, 8, 8), bool), 1.0), "one noiseless"),
        (lambda: flat_rois(np.zeros((32, 32)), np.ones((32, 30), bool), 1.0), "differ in shape"),
        (lambda: flat_rois(np.zeros((32, 32)), np.zeros((32, 32), bool), 1.0), "is empty"),
        (lambda: flat_rois(np.zeros((32, 32)), np.ones((32, 32), bool), 0.0), "pixel_size_mm"),
        (lambda: flat_rois(np.zeros((32, 32)), np.ones((32, 32), bool), 1.0, count=0), "count"),
        (lambda: flat_rois(np.full((32, 32), -100.0), np.ones((32, 32), bool), 1.0),
         "no square of 21 pixels of soft tissue"),
        (lambda: flat_rois(np.full((32, 32), 40.0), np.ones((32, 32), bool), 2.0, count=5),
         r"5 non-overlapping squares asked, only \d found"),
    ],
    ids=["outside", "too small", "not square", "nan", "pixel size", "body not 2-D", "no body",
         "rois not 2-D", "shapes differ", "empty body", "rois pixel size", "count", "fat only",
         "too few squares"],
)
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
