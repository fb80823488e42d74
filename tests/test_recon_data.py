import numpy as np
import pytest
import torch

from dlmi_utils.fourier import fft2c, ifft2c
from dlmi_utils.mri.datasets import UndersampledSlices, simulate_acquisition


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.random((5, 32, 32)).astype(np.float32)


def test_acquisition_is_consistent(images):
    ex = simulate_acquisition(images[0], acceleration=4, seed=3)
    assert ex["target"].dtype == torch.complex64 and ex["mask"].shape == (32, 32)
    torch.testing.assert_close(ex["target"].abs(), torch.from_numpy(images[0]))
    torch.testing.assert_close(ex["y"], fft2c(ex["target"]) * ex["mask"])
    torch.testing.assert_close(ex["x_u"], ifft2c(ex["y"]))
    assert ex["mask"].sum() / ex["mask"].numel() == pytest.approx(0.25, abs=1 / 32)


def test_noise_only_on_sampled_entries(images):
    ex = simulate_acquisition(images[0], acceleration=4, seed=3, noise_sigma=0.1)
    resid = ex["y"] - fft2c(ex["target"]) * ex["mask"]
    assert resid[ex["mask"] == 0].abs().max() == 0
    rms = resid[ex["mask"] == 1].abs().pow(2).mean().sqrt()
    assert rms.item() == pytest.approx(0.1, rel=0.1)


def test_fixed_dataset_repeats_and_training_dataset_changes_per_epoch(images):
    val = UndersampledSlices(images, 4, seed=1, fixed=True)
    a = val[2]["mask"].clone()
    val.set_epoch(5)
    torch.testing.assert_close(val[2]["mask"], a)
    train = UndersampledSlices(images, 4, seed=1, fixed=False)
    m0 = train[2]["mask"].clone()
    torch.testing.assert_close(train[2]["mask"], m0)
    train.set_epoch(1)
    assert not torch.equal(train[2]["mask"], m0)


def test_same_seed_same_data(images):
    a = UndersampledSlices(images, 8, seed=7, fixed=False, augment=True)[1]
    b = UndersampledSlices(images, 8, seed=7, fixed=False, augment=True)[1]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_bad_images_are_rejected(images):
    with pytest.raises(ValueError, match="magnitude"):
        UndersampledSlices(images[0], 4)
    with pytest.raises(ValueError, match="magnitude"):
        simulate_acquisition(images[0].astype(np.complex64), 4)
    with pytest.raises(ValueError, match="center_fraction"):
        UndersampledSlices(images, 16, center_fraction=0.2)


def test_row_crops_keep_every_column(images):
    ds = UndersampledSlices(images, 4, seed=1, fixed=False, crop_rows=16)
    ex = ds[0]
    assert ex["target"].shape == (16, 32) and ex["mask"].shape == (16, 32)
    torch.testing.assert_close(ex["x_u"], ifft2c(ex["y"]))
    rows = [r for r in range(17) if torch.allclose(
        torch.from_numpy(images[0][r : r + 16]), ex["target"].abs())]
    assert len(rows) == 1
