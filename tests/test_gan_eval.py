import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from dlmi_utils.gan.evaluation import (
    GaussianPCA,
    laplacian_pyramid,
    nearest_neighbours,
    nn_ratio,
    pixel_features,
    precision_recall,
    score_samples,
    sliced_wasserstein,
    swd,
)


def _blobs(n, seed, size=32, width=4.0):
    """Random Gaussian blobs: a simple image distribution with structure at several scales."""
    g = torch.Generator().manual_seed(seed)
    centres = 8 + torch.rand(n, 2, generator=g) * (size - 16)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    d2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    noise = 0.05 * torch.randn(n, 1, size, size, generator=g)
    return torch.exp(-d2 / (2 * width**2))[:, None] + noise


def test_laplacian_pyramid_reconstructs_the_images():
    x = _blobs(3, 0)
    bands = laplacian_pyramid(x, 3)
    assert [b.shape[-1] for b in bands] == [32, 16, 8]
    from dlmi_utils.gan.evaluation import _upsample

    rec = bands[-1]
    for band in reversed(bands[:-1]):
        rec = band + _upsample(rec, band.shape[-2:])
    assert torch.allclose(rec, x, atol=1e-5)


def test_sliced_wasserstein_in_one_dimension_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 1)), rng.normal(1.0, 2.0, size=(200, 1))
    ours = sliced_wasserstein(torch.tensor(a), torch.tensor(b), n_projections=4)
    assert ours == pytest.approx(wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-5)


def test_sliced_wasserstein_unequal_sizes_approximates_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 1)), rng.normal(0.5, 1.0, size=(1000, 1))
    ours = sliced_wasserstein(torch.tensor(a), torch.tensor(b), n_projections=2)
    assert ours == pytest.approx(wasserstein_distance(a[:, 0], b[:, 0]), abs=0.02)


def test_swd_is_zero_for_identical_sets():
    x = _blobs(20, 0)
    result = swd(x, x.clone())
    assert result["mean"] == 0.0 and set(result["per_level"]) == {32, 16}


def test_swd_is_symmetric():
    a, b = _blobs(20, 0), _blobs(30, 1, width=3.0)
    assert swd(a, b)["mean"] == pytest.approx(swd(b, a)["mean"], rel=1e-6)


def test_swd_grows_with_a_brightness_shift():
    x, ref = _blobs(40, 0), _blobs(40, 1)
    values = [swd(ref, x + shift)["mean"] for shift in (0.0, 0.1, 0.3, 0.6)]
    assert values == sorted(values) and values[-1] > 3 * values[0]


def test_swd_separates_distributions_beyond_the_real_vs_real_reference():
    real_a, real_b = _blobs(60, 0), _blobs(60, 1)
    other = _blobs(60, 2, width=1.5)  # sharper blobs: a different distribution
    assert swd(real_a, other)["mean"] > 2 * swd(real_a, real_b)["mean"]


def test_swd_checks_its_inputs():
    with pytest.raises(ValueError, match="image size"):
        swd(_blobs(4, 0), _blobs(4, 0, size=64))
    with pytest.raises(ValueError, match="expected"):
        swd(torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 32, 32))


def test_gaussian_pca_samples_have_the_data_mean_and_variance():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(64, 3)))[0]  # 3-D data in an 8x8 image space
    coeffs = rng.normal(size=(2000, 3)) * np.array([3.0, 2.0, 1.0])
    data = torch.tensor(coeffs @ basis.T + 0.5).reshape(-1, 1, 8, 8)
    pca = GaussianPCA(n_components=3).fit(data)
    s = pca.sample(4000, seed=1).double().flatten(1)
    assert s.shape == (4000, 64)
    assert torch.allclose(s.mean(0), data.flatten(1).mean(0), atol=0.15)
    np.testing.assert_allclose(torch.linalg.svdvals(s - s.mean(0)) / np.sqrt(3999),
                               [3.0, 2.0, 1.0] + [0.0] * 61, atol=0.15)
    assert torch.equal(pca.sample(3, seed=2), pca.sample(3, seed=2))


def test_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(0)
    db, q = rng.normal(size=(50, 1, 4, 4)), rng.normal(size=(7, 1, 4, 4))
    d, i = nearest_neighbours(q, db, k=3, chunk=3)
    full = np.linalg.norm(q.reshape(7, 1, 16) - db.reshape(1, 50, 16), axis=2)
    np.testing.assert_array_equal(i.numpy(), np.argsort(full, axis=1)[:, :3])
    np.testing.assert_allclose(d.numpy(), np.sort(full, axis=1)[:, :3], rtol=1e-5)


def test_nn_ratio_flags_copies():
    train, heldout = _blobs(50, 0), _blobs(50, 1)
    copies = train[:20] + 0.001
    assert nn_ratio(copies, train, heldout) < 0.1
    assert 0.5 < nn_ratio(_blobs(50, 2), train, heldout) < 2.0


def test_precision_recall_see_mode_collapse():
    real = pixel_features(_blobs(200, 0), size=8)
    good = pixel_features(_blobs(200, 1), size=8)
    collapsed = pixel_features(_blobs(1, 2).repeat(200, 1, 1, 1), size=8)
    pr_good, pr_collapsed = precision_recall(real, good), precision_recall(real, collapsed)
    assert pr_good["precision"] > 0.7 and pr_good["recall"] > 0.7
    assert pr_collapsed["recall"] < 0.1


def test_precision_recall_of_identical_sets_is_one():
    f = torch.randn(30, 5)
    assert precision_recall(f, f) == {"precision": 1.0, "recall": 1.0}


@pytest.mark.slow
def test_score_samples_puts_a_good_sampler_near_the_reference_and_noise_far():
    train, heldout = _blobs(120, 0), _blobs(40, 1)

    def same_distribution(n, seed):
        return _blobs(n, 100 + seed)

    def noise(n, seed):
        return torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed))

    good = score_samples(same_distribution, train, heldout, repeats=2)
    bad = score_samples(noise, train, heldout, repeats=2)
    assert set(good) == {"swd_model", "swd_real_vs_real", "swd_pca", "nn_ratio", "precision",
                         "recall", "n_heldout"}
    assert good["n_heldout"] == 40
    # the references do not depend on the generator
    assert good["swd_real_vs_real"] == bad["swd_real_vs_real"]
    assert good["swd_pca"] == bad["swd_pca"]
    assert good["swd_model"] < 2 * good["swd_real_vs_real"] < bad["swd_model"]
    assert 0.5 < good["nn_ratio"] < 2 < bad["nn_ratio"]
    assert good["precision"] > 0.5 > bad["precision"]  # noise: far from every real image


@pytest.mark.slow
def test_score_samples_is_reproducible_and_checks_sizes():
    train, heldout = _blobs(60, 0), _blobs(20, 1)
    def sample(n, seed):
        return _blobs(n, 50 + seed)
    assert score_samples(sample, train, heldout, repeats=1) == score_samples(
        sample, train, heldout, repeats=1)
    with pytest.raises(ValueError, match="at least as large"):
        score_samples(sample, heldout[:10], heldout)
