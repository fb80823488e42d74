"""The empirical Wiener step (denoising/wiener.py): its DCT, its windows, and what it does on
a real mammogram."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dct, dctn, idctn
from scipy.ndimage import gaussian_filter

from dlmi_utils.data import load_mammograms
from dlmi_utils.denoising.patches import breast_crops
from dlmi_utils.denoising.wiener import dct_matrix, wiener_refine
from dlmi_utils.metrics import psnr
from dlmi_utils.noise import add_gaussian_noise


def _reference(y: np.ndarray, p: np.ndarray, sigma: float, patch: int, stride: int
               ) -> np.ndarray:
    """The same step written window by window with scipy's DCT: windows every ``stride``
    pixels from ``patch - stride`` pixels before the image, the image reflected."""
    h, w = y.shape
    pads = []
    for size in (h, w):
        before = after = patch - stride
        after += (-(size + before + after - patch)) % stride
        pads.append((before, after))
    yp, pp = np.pad(y, pads, mode="reflect"), np.pad(p, pads, mode="reflect")
    num, den = np.zeros_like(yp), np.zeros_like(yp)
    for r in range(0, yp.shape[0] - patch + 1, stride):
        for c in range(0, yp.shape[1] - patch + 1, stride):
            win = (slice(r, r + patch), slice(c, c + patch))
            pc = dctn(pp[win], norm="ortho")
            gain = pc**2 / (pc**2 + sigma**2)
            weight = 1.0 / ((gain**2).sum() + 1e-6)
            num[win] += weight * idctn(gain * dctn(yp[win], norm="ortho"), norm="ortho")
            den[win] += weight
    (top, _), (left, _) = pads
    return (num / den)[top : top + h, left : left + w]


@pytest.fixture(scope="module")
def mammogram_crop() -> np.ndarray:
    """A 128 x 128 crop inside the breast of a held-out film at 0.2 mm, in [0, 1]."""
    m = load_mammograms("test", 0.2)[0]
    (r, c), = breast_crops(m.breast_mask, 128, 1)
    return np.ascontiguousarray(m.image[r : r + 128, c : c + 128])


def test_dct_matrix_is_scipys_orthonormal_dct():
    for n in (1, 4, 8, 32):
        d = dct_matrix(n).numpy()
        np.testing.assert_allclose(d, dct(np.eye(n), norm="ortho", axis=0), atol=1e-12)
        np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-12)


@pytest.mark.parametrize("shape, patch, stride", [((40, 37), 8, 4), ((24, 30), 6, 5),
                                                  ((16, 16), 16, 16)])
def test_matches_window_by_window_reference(shape, patch, stride):
    rng = np.random.default_rng(0)
    x = gaussian_filter(rng.random(shape), 2)
    y = x + 0.05 * rng.standard_normal(shape)
    pilot = gaussian_filter(y, 1.5)
    out = wiener_refine(y, pilot, 0.05, patch, stride)
    np.testing.assert_allclose(out, _reference(y, pilot, 0.05, patch, stride), atol=2e-5)


def test_keeps_the_image_when_the_pilot_says_all_is_signal():
    # sigma -> 0: every gain is 1 and the overlapping windows add back to the image
    y = np.random.default_rng(1).random((70, 53)).astype(np.float32)
    np.testing.assert_allclose(wiener_refine(y, y, 1e-6, 16, 3), y, atol=2e-6)


def test_removes_everything_when_the_pilot_is_zero():
    y = np.random.default_rng(2).random((32, 32)).astype(np.float32)
    np.testing.assert_allclose(wiener_refine(y, np.zeros_like(y), 0.1, 8, 2), 0, atol=1e-7)


def test_pilot_weight_blends_with_the_pilot():
    rng = np.random.default_rng(3)
    y = rng.random((48, 48)).astype(np.float32)
    pilot = gaussian_filter(y, 2)
    wiener = wiener_refine(y, pilot, 0.1)
    np.testing.assert_allclose(wiener_refine(y, pilot, 0.1, pilot_weight=1), pilot, atol=1e-6)
    np.testing.assert_allclose(wiener_refine(y, pilot, 0.1, pilot_weight=0.25),
                               0.75 * wiener + 0.25 * pilot, atol=1e-6)


def test_chunks_of_rows_give_the_same_result():
    rng = np.random.default_rng(4)
    y = rng.random((150, 90)).astype(np.float32)
    pilot = gaussian_filter(y, 1)
    whole = wiener_refine(y, pilot, 0.1, 16, 4, rows_per_chunk=1000)
    np.testing.assert_allclose(wiener_refine(y, pilot, 0.1, 16, 4, rows_per_chunk=1), whole,
                               atol=1e-6)


def test_numpy_and_torch_give_the_same_result_and_type():
    rng = np.random.default_rng(5)
    y = rng.random((40, 40)).astype(np.float32)
    pilot = gaussian_filter(y, 1)
    out_np = wiener_refine(y, pilot, 0.1, 8, 4)
    out_t = wiener_refine(torch.from_numpy(y), torch.from_numpy(pilot), 0.1, 8, 4)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-7)
    assert wiener_refine(y.astype(np.float64), pilot, 0.1, 8, 4).dtype == np.float64


def test_improves_a_blurred_pilot_on_a_real_mammogram(mammogram_crop):
    x = mammogram_crop
    sigma = 25 / 255
    y = add_gaussian_noise(x, sigma, seed=0)
    pilot = gaussian_filter(y, 2.0)
    refined = wiener_refine(y, pilot, sigma)
    # measured: noisy 20.2 dB, the blurred pilot 36.2 dB, refined 37.2 dB
    assert psnr(x, refined, data_range=1.0) > psnr(x, pilot, data_range=1.0) + 0.7
    # with the clean image as the pilot (the oracle Wiener filter) it does far better
    oracle = wiener_refine(y, x, sigma)
    assert psnr(x, oracle, data_range=1.0) > psnr(x, refined, data_range=1.0) + 2.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(noisy=np.zeros((3, 32, 32))), "one image"),
    (dict(pilot=np.zeros((32, 31))), "same shape"),
    (dict(noisy=np.full((32, 32), np.nan)), "NaN"),
    (dict(pilot=np.full((32, 32), np.inf)), "NaN or infinite"),
    (dict(sigma=0.0), "positive"),
    (dict(sigma=float("nan")), "positive"),
    (dict(patch=64), "smaller side"),
    (dict(patch=1), "at least 2"),
    (dict(stride=0), "stride"),
    (dict(stride=40), "stride"),
    (dict(pilot_weight=1.5), "pilot_weight"),
])
def test_bad_input_says_what_is_wrong(kwargs, match):
    args = dict(noisy=np.zeros((32, 32)), pilot=np.zeros((32, 32)), sigma=0.1, patch=16,
                stride=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        wiener_refine(**args)


def test_complex_or_non_array_input_is_refused():
    with pytest.raises(TypeError, match="real"):
        wiener_refine(np.zeros((32, 32), np.complex64), np.zeros((32, 32)), 0.1)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        wiener_refine([[0.0] * 32] * 32, np.zeros((32, 32)), 0.1)
