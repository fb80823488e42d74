"""dlmi_utils.metrics: agreement with scikit-image / scipy, hand-computed cases, clear errors."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.spatial.distance import cdist, directed_hausdorff
from skimage.metrics import (
    mean_squared_error,
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from dlmi_utils import metrics as M


@pytest.fixture
def pair():
    """A smooth 64x64 image in [0, 1] and a noisy copy of it."""
    rng = np.random.default_rng(0)
    ref = ndimage.gaussian_filter(rng.random((64, 64)), 3)
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    return ref, ref + 0.05 * rng.standard_normal(ref.shape)


# ------------------------------------------------------------------ image metrics vs skimage
def test_mse_and_nmse_match_skimage(pair):
    ref, x = pair
    assert M.mse(ref, x) == pytest.approx(mean_squared_error(ref, x), rel=1e-12)
    nrmse = normalized_root_mse(ref, x, normalization="euclidean")
    assert M.nmse(ref, x) == pytest.approx(nrmse**2, rel=1e-12)


@pytest.mark.parametrize("data_range", [1.0, 2.0, 0.5])
def test_psnr_matches_skimage(pair, data_range):
    ref, x = pair
    expected = peak_signal_noise_ratio(ref, x, data_range=data_range)
    assert M.psnr(ref, x, data_range=data_range) == pytest.approx(expected, abs=1e-6)


def test_psnr_default_data_range_is_reference_span(pair):
    ref, x = pair
    ref = 3 * ref + 1
    expected = peak_signal_noise_ratio(ref, x, data_range=ref.max() - ref.min())
    assert M.psnr(ref, x) == pytest.approx(expected, abs=1e-6)


def test_psnr_of_identical_images_is_inf(pair):
    assert M.psnr(pair[0], pair[0], data_range=1) == float("inf")


@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_matches_skimage_2d(pair, gaussian):
    ref, x = pair
    options = (
        dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) if gaussian else {}
    )
    expected = structural_similarity(ref, x, data_range=1.0, **options)
    assert M.ssim(ref, x, data_range=1.0, gaussian_weights=gaussian) == pytest.approx(
        expected, abs=1e-6
    )


def test_ssim_matches_skimage_3d():
    rng = np.random.default_rng(1)
    ref = ndimage.gaussian_filter(rng.random((12, 20, 20)), 2)
    x = ref + 0.01 * rng.standard_normal(ref.shape)
    expected = structural_similarity(ref, x, data_range=ref.max() - ref.min())
    assert M.ssim(ref, x) == pytest.approx(expected, abs=1e-6)


def test_ssim_full_mask_equals_unmasked_and_region_differs(pair):
    ref, x = pair
    x = x.copy()
    x[:, 32:] = ref[:, 32:]  # the right half is perfect
    full = M.ssim(ref, x, data_range=1, mask=np.ones(ref.shape, bool))
    assert full == pytest.approx(M.ssim(ref, x, data_range=1), abs=1e-12)
    right = np.zeros(ref.shape, bool)
    right[:, 40:] = True
    assert M.ssim(ref, x, data_range=1, mask=right) == pytest.approx(1.0)


def test_snr_hand_computed():
    ref = np.ones((8, 8))
    x = ref + 0.1  # noise power 0.01, signal power 1 -> 20 dB
    assert M.snr(ref, x) == pytest.approx(20.0)


def test_snr_is_minus_ten_log10_of_nmse(pair):
    ref, x = pair
    assert M.snr(ref, x) == pytest.approx(-10 * np.log10(M.nmse(ref, x)))


def test_coc_matches_corrcoef_and_ignores_affine_change(pair):
    ref, x = pair
    assert M.coc(ref, x) == pytest.approx(np.corrcoef(ref.ravel(), x.ravel())[0, 1], abs=1e-12)
    assert M.coc(ref, 2.5 * ref - 3) == pytest.approx(1.0)
    assert M.coc(ref, -ref) == pytest.approx(-1.0)


def test_epi_is_correlation_of_laplacians_and_drops_with_blur(pair):
    ref, x = pair
    lr, lx = ndimage.laplace(ref).ravel(), ndimage.laplace(x).ravel()
    assert M.epi(ref, x) == pytest.approx(np.corrcoef(lr, lx)[0, 1], abs=1e-12)
    assert M.epi(ref, 2 * ref + 1) == pytest.approx(1.0)
    slightly, heavily = (M.epi(ref, ndimage.gaussian_filter(ref, s)) for s in (0.7, 2.0))
    assert 1 > slightly > heavily


def test_masked_metrics_equal_metrics_on_the_region(pair):
    ref, x = pair
    mask = np.zeros(ref.shape, bool)
    mask[10:40, 5:30] = True
    assert M.mse(ref, x, mask=mask) == pytest.approx(M.mse(ref[mask], x[mask]))
    assert M.psnr(ref, x, 1.0, mask=mask) == pytest.approx(M.psnr(ref[mask], x[mask], 1.0))
    assert M.snr(ref, x, mask=mask) == pytest.approx(M.snr(ref[mask], x[mask]))
    assert M.coc(ref, x, mask=mask) == pytest.approx(M.coc(ref[mask], x[mask]))
    assert M.nmse(ref, x, mask=mask) == pytest.approx(M.nmse(ref[mask], x[mask]))


def test_torch_tensors_give_the_same_floats(pair):
    ref, x = pair
    tr, tx = torch.from_numpy(ref).float(), torch.from_numpy(x).float().requires_grad_()
    for fn in (M.mse, M.nmse, M.snr, M.coc, M.epi):
        value = fn(tr, tx)
        assert isinstance(value, float)
        assert value == pytest.approx(fn(ref, x), rel=1e-4)
    assert M.psnr(tr, tx, 1.0) == pytest.approx(M.psnr(ref, x, 1.0), rel=1e-5)
    assert M.ssim(tr, tx, 1.0) == pytest.approx(M.ssim(ref, x, 1.0), abs=1e-4)


# ------------------------------------------------------------------ errors
def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(np.zeros((4, 4)), np.zeros((4, 5)), 1.0)


def test_complex_input_asks_for_the_magnitude():
    z = np.ones((8, 8), complex)
    with pytest.raises(TypeError, match=r"np.abs\(x\)"):
        M.mse(np.ones((8, 8)), z)
    with pytest.raises(TypeError, match=r"np.abs\(ref\)"):
        M.ssim(z, np.ones((8, 8)))


def test_nan_input_is_an_error():
    x = np.ones((8, 8))
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.psnr(np.ones((8, 8)), x, 1.0)


def test_constant_reference_needs_explicit_data_range():
    with pytest.raises(ValueError, match="data_range"):
        M.psnr(np.ones((8, 8)), np.zeros((8, 8)))
    assert M.psnr(np.ones((8, 8)), np.zeros((8, 8)), data_range=1.0) == pytest.approx(0.0)


def test_mask_must_be_boolean_and_non_empty(pair):
    ref, x = pair
    with pytest.raises(TypeError, match="boolean"):
        M.mse(ref, x, mask=np.ones(ref.shape))
    with pytest.raises(ValueError, match="empty"):
        M.mse(ref, x, mask=np.zeros(ref.shape, bool))


def test_constant_image_makes_correlation_undefined(pair):
    with pytest.raises(ValueError, match="constant"):
        M.coc(pair[0], np.zeros_like(pair[0]))


# ------------------------------------------------------------------ segmentation
def _square(shape, top, left, size):
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def test_dice_hand_computed():
    a = _square((20, 20), 0, 0, 10)  # 100 pixels
    b = _square((20, 20), 5, 0, 10)  # overlap 50
    assert M.dice(a, b) == pytest.approx(2 * 50 / 200)
    assert M.dice(a, a) == 1.0
    assert M.dice(a, ~a) == 0.0


def test_dice_empty_masks():
    empty = np.zeros((5, 5), bool)
    assert M.dice(empty, empty) == 1.0
    assert M.dice(empty, _square((5, 5), 0, 0, 2)) == 0.0


def test_segmentation_masks_must_be_boolean():
    with pytest.raises(TypeError, match="boolean"):
        M.dice(np.ones((4, 4)), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="same shape"):
        M.dice(np.ones((4, 4), bool), np.ones((4, 5), bool))


def test_generalized_dice_hand_computed_and_single_label_equals_dice():
    ref = np.zeros((10, 10), int)
    ref[:8] = 1  # 80 pixels
    ref[8:, :2] = 2  # 4 pixels: the small structure
    est = ref.copy()
    est[8:, :2] = 1  # the small structure is missed entirely
    w1, w2 = 1 / 80**2, 1 / 4**2
    expected = 2 * (w1 * 80) / (w1 * (80 + 84) + w2 * (4 + 0))
    assert M.generalized_dice(ref, est) == pytest.approx(expected)
    # the miss of the small label weighs much more than its 4 pixels
    assert M.generalized_dice(ref, est) < M.dice(ref > 0, est > 0) - 0.5
    assert M.generalized_dice(ref, est, labels=[1]) == pytest.approx(M.dice(ref == 1, est == 1))


def test_generalized_dice_errors():
    ref = np.array([[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="absent"):
        M.generalized_dice(ref, ref, labels=[1, 2])
    with pytest.raises(TypeError, match="integer"):
        M.generalized_dice(ref.astype(float), ref)


def test_volume_similarity():
    a = _square((20, 20), 0, 0, 10)  # 100
    b = _square((20, 20), 10, 10, 5)  # 25, disjoint
    assert M.volume_similarity(a, b) == pytest.approx(1 - 75 / 125)
    assert M.volume_similarity(a, _square((20, 20), 10, 10, 10)) == 1.0  # sizes only
    empty = np.zeros((4, 4), bool)
    assert M.volume_similarity(empty, empty) == 1.0


@pytest.mark.parametrize("k", [1, 3])
def test_hausdorff_of_offset_squares_with_anisotropic_spacing(k):
    spacing = (2.0, 0.5)
    a = _square((40, 40), 10, 10, 10)
    along_cols = _square((40, 40), 10, 10 + k, 10)
    along_rows = _square((40, 40), 10 + k, 10, 10)
    assert M.hausdorff_distance(a, along_cols, spacing) == pytest.approx(k * 0.5)
    assert M.hausdorff_distance(a, along_rows, spacing) == pytest.approx(k * 2.0)
    assert M.hausdorff_distance(a, along_rows) == pytest.approx(k)


def test_surface_distances_of_parallel_segments_hand_computed():
    spacing = (2.0, 0.5)
    ref = np.zeros((12, 14), bool)
    est = np.zeros((12, 14), bool)
    ref[5, 2:9] = True  # columns 2..8
    est[8, 4:11] = True  # three rows below, columns 4..10
    # est -> ref: columns 4..8 are 3 rows away; 9 and 10 also 1 and 2 columns past the end
    d_est = [6.0] * 5 + [np.hypot(6, 0.5), np.hypot(6, 1.0)]
    d_ref = [np.hypot(6, 1.0), np.hypot(6, 0.5)] + [6.0] * 5  # mirror image
    assert M.average_surface_distance(ref, est, spacing) == pytest.approx(
        np.mean(d_est + d_ref)
    )
    assert M.hausdorff_distance(ref, est, spacing) == pytest.approx(np.hypot(6, 1.0))


def _surface_points(mask, spacing):
    surface = mask ^ ndimage.binary_erosion(mask, ndimage.generate_binary_structure(mask.ndim, 1))
    return np.argwhere(surface) * np.asarray(spacing)


def _random_blob(shape, seed):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 2.5) > 0.5


@pytest.mark.parametrize(
    "shape,spacing", [((48, 40), (1.0, 1.0)), ((48, 40), (0.7, 1.9)), ((14, 20, 18), (3, 1, 0.8))]
)
def test_surface_distances_match_brute_force_point_sets(shape, spacing):
    ref, est = _random_blob(shape, 0), _random_blob(shape, 1)
    p, q = _surface_points(ref, spacing), _surface_points(est, spacing)
    expected_hd = max(directed_hausdorff(p, q)[0], directed_hausdorff(q, p)[0])
    assert M.hausdorff_distance(ref, est, spacing) == pytest.approx(expected_hd)
    d = cdist(q, p)  # est surface -> ref surface
    d_est, d_ref = d.min(axis=1), d.min(axis=0)
    assert M.average_surface_distance(ref, est, spacing) == pytest.approx(
        np.concatenate([d_est, d_ref]).mean()
    )
    hd95 = max(np.percentile(d_est, 95), np.percentile(d_ref, 95))
    assert M.hausdorff_distance(ref, est, spacing, percentile=95) == pytest.approx(hd95)
    assert M.hausdorff_distance(ref, est, spacing, percentile=95) <= expected_hd


def test_surface_distances_are_zero_for_identical_masks_and_accept_torch():
    a = _random_blob((30, 30), 2)
    assert M.hausdorff_distance(a, a) == 0.0
    assert M.average_surface_distance(torch.from_numpy(a), torch.from_numpy(a)) == 0.0


def test_surface_distance_with_an_empty_mask_names_it():
    a = _square((10, 10), 2, 2, 3)
    empty = np.zeros_like(a)
    with pytest.raises(ValueError, match="est mask is empty"):
        M.hausdorff_distance(a, empty)
    with pytest.raises(ValueError, match="ref mask is empty"):
        M.average_surface_distance(empty, a)


def test_spacing_must_match_dimensions():
    a = _square((10, 10), 2, 2, 3)
    with pytest.raises(ValueError, match="spacing"):
        M.hausdorff_distance(a, a, spacing=(1.0, 1.0, 1.0))


# ------------------------------------------------------------------ error by frequency band
def test_error_bands_sum_to_the_mse_parseval(pair):
    ref, x = pair
    bands = M.error_bands(ref, x)
    assert len(bands) == len(M.DEFAULT_BANDS) - 1
    assert sum(bands) == pytest.approx(M.mse(ref, x), rel=1e-10)
    assert M.error_bands(torch.from_numpy(ref), torch.from_numpy(x)) == pytest.approx(bands)


def test_error_bands_put_white_noise_by_area_and_a_slow_error_low():
    rng = np.random.default_rng(1)
    ref = np.zeros((4, 128, 128))
    noise = 0.1 * rng.standard_normal(ref.shape)
    edges = (0.0, 0.25, 0.5, 0.75)
    got = np.array(M.error_bands(ref, noise, edges))
    f = np.fft.fftfreq(128)
    radius = np.hypot(f[:, None], f[None, :])
    area = np.array([np.mean((radius >= lo) & (radius < hi))
                     for lo, hi in zip(edges[:-1], edges[1:], strict=True)])
    np.testing.assert_allclose(got / got.sum(), area, atol=0.01)  # white: flat spectrum
    # a slow cosine (3 periods across the image) lives in the lowest band only
    ramp = np.cos(2 * np.pi * 3 * np.arange(128) / 128)[None, :] * np.ones((128, 1))
    low = M.error_bands(np.zeros((128, 128)), 0.01 * ramp, edges)
    assert low[0] == pytest.approx(sum(low), rel=1e-12) and low[0] > 0


def test_distance_edges_double_up_to_the_width():
    assert M.distance_edges(256) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert M.distance_edges(96) == [0, 1, 2, 4, 8, 16, 32, 64, 96]
    assert M.distance_edges(1) == [0, 1]
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            M.distance_edges(bad)


def test_error_by_distance_is_the_mean_error_of_each_band_of_columns(pair):
    ref, x = pair  # (..., H, W)
    got = M.error_by_distance(ref, x)
    edges = M.distance_edges(ref.shape[-1])
    want = [np.mean((x[..., a:b] - ref[..., a:b]) ** 2)
            for a, b in zip(edges[:-1], edges[1:], strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # weighted by the bands' widths the entries average to the MSE
    assert np.dot(got, np.diff(edges)) / ref.shape[-1] == pytest.approx(M.mse(ref, x), rel=1e-12)
    assert M.error_by_distance(torch.from_numpy(ref), torch.from_numpy(x)) == pytest.approx(got)


def test_error_by_distance_finds_an_error_at_the_first_column_only():
    ref = np.zeros((3, 16, 40))
    x = ref.copy()
    x[..., 0] = 0.5  # a wrong edge column
    got = M.error_by_distance(ref, x, edges=(0, 1, 8, 40))
    assert got == pytest.approx([0.25, 0.0, 0.0])
    flipped = M.error_by_distance(ref[..., ::-1], x[..., ::-1], edges=(0, 1, 8, 40))
    assert flipped == pytest.approx([0.0, 0.0, 0.25 / 32])  # seen from the other side


def test_error_by_distance_names_bad_edges_and_shapes(pair):
    ref, x = pair
    width = ref.shape[-1]
    for edges in ((0,), (0, 4, 2), (-1, 4), (0, 1.5, 4), (0, width + 1)):
        with pytest.raises(ValueError, match="edges must be"):
            M.error_by_distance(ref, x, edges)
    with pytest.raises(ValueError, match="needs images"):
        M.error_by_distance(ref[0], x[0])
    with pytest.raises(ValueError, match="same shape"):
        M.error_by_distance(ref, x[..., :10])


def test_error_bands_name_bad_edges_and_shapes(pair):
    ref, x = pair
    for edges in ((0.1,), (0.0, 0.3, 0.2), (-0.1, 0.5)):
        with pytest.raises(ValueError, match="edges must be"):
            M.error_bands(ref, x, edges)
    with pytest.raises(ValueError, match="needs images"):
        M.error_bands(ref[0], x[0])
    with pytest.raises(ValueError, match="same shape"):
        M.error_bands(ref, x[:10])
