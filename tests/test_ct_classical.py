"""Classical low-dose CT: the PSD convention of bm3d, the physics' FBP noise PSD, BM3D with it
and blind, TV-regularised reconstruction by PDHG, and clear errors."""

import numpy as np
import pytest
import torch

from dlmi_utils.ct import (
    ParallelBeamProjector,
    blind_white_sigma,
    bm3d_denoise,
    count_weights,
    fbp_noise_psd,
    hu_to_mu,
    line_integrals,
    noise_psd,
    noisy_sinogram,
    reconstruct_hu,
    roi_sd,
    simulate_dose_pair,
    tv_reconstruct,
)
from dlmi_utils.data.ct import load_ct_slice
from dlmi_utils.metrics import psnr

PIXEL_MM = 2.0


def _phantom(n: int = 48) -> np.ndarray:
    """A water disc (0 HU) in air with a +200 HU and a -100 HU insert, ``(n, n)`` float32."""
    i, j = np.mgrid[:n, :n] - n // 2
    r = 0.4 * n
    hu = np.where(i**2 + j**2 <= r**2, 0.0, -1000.0)
    hu[(i + 0.15 * n) ** 2 + j**2 <= (0.12 * n) ** 2] = 200.0
    hu[(i - 0.15 * n) ** 2 + (j - 0.1 * n) ** 2 <= (0.1 * n) ** 2] = -100.0
    return hu.astype(np.float32)


def _sinograms(hu: np.ndarray, n_angles: int, I0: float, seed: int = 0):
    projector = ParallelBeamProjector(hu.shape, n_angles)
    p = line_integrals(hu_to_mu(hu), projector, PIXEL_MM)
    return projector, p, noisy_sinogram(p, I0, seed=seed)


# ----------------------------------------------------------------------------- PSD and BM3D
def test_white_noise_of_sd_s_has_the_flat_psd_of_size_times_s_squared():
    s = 7.0
    noise = np.random.default_rng(0).normal(0.0, s, size=(200, 16, 16))
    psd = noise_psd(noise)
    assert psd.shape == (16, 16)
    assert psd.mean() == pytest.approx(16 * 16 * s**2, rel=0.03)
    np.testing.assert_allclose(psd[1:, 1:], 16 * 16 * s**2, rtol=0.35)  # flat, bin by bin
    assert psd[0, 0] == pytest.approx(0.0, abs=1e-9)  # each image loses its mean


def test_bm3d_told_the_flat_psd_of_sd_s_denoises_as_when_told_s():
    rng = np.random.default_rng(1)
    clean = np.where(np.add.outer(np.arange(48), np.arange(48)) < 48, 40.0, -60.0)
    noisy = clean + rng.normal(0.0, 30.0, clean.shape)
    by_sigma = bm3d_denoise(noisy, 30.0)
    by_psd = bm3d_denoise(noisy, np.full(clean.shape, 48 * 48 * 30.0**2))
    assert by_sigma.dtype == np.float32 and by_sigma.shape == clean.shape
    assert np.abs(by_psd - by_sigma).max() < 1.0  # HU, against a noise of 30 HU
    assert np.std(by_sigma - clean) < 0.5 * 30.0


def test_fbp_noise_psd_means_the_variance_of_fbp_noise_and_rises_with_frequency():
    hu, I0 = _phantom(48), 2e4
    projector, p, _ = _sinograms(hu, 72, I0)
    psd = fbp_noise_psd(p, projector, PIXEL_MM, I0, n_draws=8, seed=1)
    pair = simulate_dose_pair(hu, PIXEL_MM, I0, projector=projector, seed=2)
    variance = np.var(np.stack([pair.low - pair.noiseless]))
    assert psd.mean() / psd.size == pytest.approx(variance, rel=0.2)  # Parseval
    f = np.fft.fftfreq(48)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))  # cycles per pixel
    low_f, high_f = psd[radius <= 0.05].mean(), psd[(radius > 0.2) & (radius <= 0.4)].mean()
    assert high_f > 3 * low_f  # the ramp filter: FBP noise is not white


def test_the_psd_of_a_region_means_the_noise_variance_there():
    hu, I0 = _phantom(48), 2e4
    projector, p, _ = _sinograms(hu, 72, I0)
    body = hu > -500
    whole = fbp_noise_psd(p, projector, PIXEL_MM, I0, n_draws=6, seed=3)
    in_body = fbp_noise_psd(p, projector, PIXEL_MM, I0, n_draws=6, seed=3, region=body)
    pair = simulate_dose_pair(hu, PIXEL_MM, I0, projector=projector, seed=4)
    noise = pair.low - pair.noiseless
    assert in_body.mean() / in_body.size == pytest.approx(np.var(noise[body]), rel=0.2)
    assert in_body.mean() > 1.1 * whole.mean()  # quieter air outside the body
    np.testing.assert_allclose(in_body / in_body.mean(), whole / whole.mean(), rtol=1e-9)


def test_bm3d_told_the_physics_psd_beats_bm3d_told_a_blind_white_sigma():
    hu, spacing = load_ct_slice("ct_small")  # 128 x 128 of a real body slice
    projector, pixel = ParallelBeamProjector(hu.shape, 180), spacing[0]
    y = noisy_sinogram(line_integrals(hu_to_mu(hu), projector, pixel), 5e4, seed=0)
    low = reconstruct_hu(y, projector, pixel)
    noiseless = reconstruct_hu(line_integrals(hu_to_mu(hu), projector, pixel), projector, pixel)
    psd = fbp_noise_psd(y, projector, pixel, 5e4, seed=1)  # from the measurement only
    sigma = blind_white_sigma(low)
    scored = {name: psnr(noiseless, x, data_range=400.0) for name, x in
              (("low", low), ("psd", bm3d_denoise(low, psd)), ("white", bm3d_denoise(low, sigma)))}
    assert scored["psd"] > scored["white"] + 1.0 > scored["low"] + 1.0
    assert sigma < np.sqrt(psd.mean() / psd.size)  # white noise read off a ramp-coloured one


# ----------------------------------------------------------------------------- TV
def test_tv_objective_decreases_from_the_fbp_start():
    projector, _, y = _sinograms(_phantom(40), 60, 1e4)
    result = tv_reconstruct(y, projector, PIXEL_MM, 1e4, lam=0.05, n_iter=60, tol=0.0)
    objective = np.array(result.objective)
    assert result.n_iter == 60 and len(objective) == 61
    assert objective[-1] < 0.7 * objective[0]
    assert objective[-1] <= objective[30:].min() * 1.001  # settled, not oscillating upwards
    assert result.hu.shape == (40, 40) and isinstance(result.hu, np.ndarray)


def test_tv_with_tiny_lam_on_a_noiseless_sinogram_finds_the_image():
    hu = _phantom(32)
    projector, p, _ = _sinograms(hu, 64, 1e5)
    result = tv_reconstruct(p, projector, PIXEL_MM, 1e5, lam=1e-9, n_iter=400, tol=0.0)
    fbp = reconstruct_hu(p, projector, PIXEL_MM)
    error, fbp_error = (float(np.sqrt(np.mean((x - hu) ** 2))) for x in (result.hu, fbp))
    assert error < 0.5 * fbp_error and error < 15.0  # HU, against steps of 1000 HU


def test_tv_lowers_the_noise_sd_of_a_flat_region_at_low_dose():
    hu, I0 = _phantom(48), 1e4
    projector, _, y = _sinograms(hu, 72, I0)
    result = tv_reconstruct(y, projector, PIXEL_MM, I0, n_iter=80)
    fbp = reconstruct_hu(y, projector, PIXEL_MM)
    roi = ((24, 13), 6)  # the water left of the inserts
    assert roi_sd(hu, *roi) == 0.0
    assert roi_sd(result.hu, *roi) < 0.5 * roi_sd(fbp, *roi)


def test_tv_stops_at_the_first_change_below_tol_and_keeps_torch_input():
    projector, _, y = _sinograms(_phantom(32), 48, 1e4)
    full = tv_reconstruct(y, projector, PIXEL_MM, 1e4, n_iter=60, tol=0.0)
    tol = full.change[40]
    first = next(k for k, c in enumerate(full.change) if c < tol) + 1
    result = tv_reconstruct(torch.from_numpy(y), projector, PIXEL_MM, 1e4, n_iter=60, tol=tol)
    assert isinstance(result.hu, torch.Tensor) and result.hu.shape == (32, 32)
    assert result.n_iter == first < 60
    assert len(result.objective) == first + 1 and len(result.change) == first
    np.testing.assert_allclose(result.change, full.change[:first], rtol=1e-4)
    assert float(result.hu.min()) >= -1000.0  # mu >= 0


def test_count_weights_are_the_detected_counts():
    y = np.array([0.0, np.log(4.0)])
    np.testing.assert_allclose(count_weights(y, 100.0), [100.0, 25.0])
    assert torch.allclose(count_weights(torch.tensor(y), 100.0), torch.tensor([100.0, 25.0],
                                                                           dtype=torch.float64))


# ----------------------------------------------------------------------------- errors
def test_bad_input_gets_clear_errors():
    projector, p, y = _sinograms(_phantom(16), 8, 1e4)
    with pytest.raises(ValueError, match="I0 must be a positive number of photons"):
        tv_reconstruct(y, projector, PIXEL_MM, 0.0)
    with pytest.raises(ValueError, match="I0 must be a positive number of photons"):
        fbp_noise_psd(p, projector, PIXEL_MM, 0.0)
    with pytest.raises(ValueError, match="lam must be a number >= 0"):
        tv_reconstruct(y, projector, PIXEL_MM, 1e4, lam=-1.0)
    with pytest.raises(ValueError, match="n_iter must be a positive integer"):
        tv_reconstruct(y, projector, PIXEL_MM, 1e4, n_iter=0)
    with pytest.raises(ValueError, match=r"one sinogram \(8, 23\)"):
        tv_reconstruct(y.T, projector, PIXEL_MM, 1e4)
    with pytest.raises(ValueError, match="NaN or inf"):
        tv_reconstruct(np.full_like(y, np.nan), projector, PIXEL_MM, 1e4)
    with pytest.raises(ValueError, match="pixel_size_mm must be a positive size"):
        tv_reconstruct(y, projector, 0.0, 1e4)
    with pytest.raises(ValueError, match="region must be a non-empty boolean mask"):
        fbp_noise_psd(p, projector, PIXEL_MM, 1e4, region=np.zeros((16, 16)))
    with pytest.raises(ValueError, match="square images"):
        fbp_noise_psd(np.zeros((8, 23)), ParallelBeamProjector((16, 12), 8, 23), 1.0, 1e4)
    with pytest.raises(ValueError, match="the PSD must have the image's shape"):
        bm3d_denoise(np.zeros((16, 16)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="a noise SD must be positive"):
        bm3d_denoise(np.zeros((16, 16)), 0.0)
    with pytest.raises(ValueError, match=r"one real image \(H, W\) in HU"):
        blind_white_sigma(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="square images"):
        noise_psd(np.zeros((3, 8, 6)))
