import numpy as np
import pytest
import torch

from dlmi_utils.data import OTHER_IMAGES, load_other_images
from dlmi_utils.fourier import fft2c, ifft2c
from dlmi_utils.mri.datasets import (
    UndersampledSlices,
    image_test_examples,
    pydicom_data_mr_images,
    simulate_acquisition,
    to_training_size,
)


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


def test_gamma_changes_contrast_within_its_range_and_is_seeded(images):
    plain = UndersampledSlices(images, 4, seed=1, fixed=False, augment=True)
    contrast = UndersampledSlices(images, 4, seed=1, fixed=False, augment=True, gamma=2.0)
    a, b = plain[0]["target"].abs(), contrast[0]["target"].abs()
    g = np.log(b[a > 0.05].double()) / np.log(a[a > 0.05].double())  # b = a ** g, per pixel
    assert g.std() < 1e-3 and 0.5 <= g.mean() <= 2.0 and abs(g.mean() - 1) > 1e-3
    torch.testing.assert_close(contrast[0]["mask"], plain[0]["mask"])  # only the contrast moves
    with pytest.raises(ValueError, match="gamma"):
        UndersampledSlices(images, 4, gamma=0.5)


def test_to_training_size_crops_the_centre_square_and_resizes():
    image = np.zeros((40, 60), np.float32)
    image[:, 10:50] = 1.0  # the centred 40 x 40 square
    out = to_training_size(image, 32)
    assert out.shape == (32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    np.testing.assert_array_equal(to_training_size(image[:, 10:50], 40), image[:, 10:50])


def test_other_images_split_by_source_and_never_hold_pydicom_data_mr():
    assert not set(OTHER_IMAGES["train"]) & set(OTHER_IMAGES["val"])
    mr = set(pydicom_data_mr_images(size=32))
    assert mr == {"mr_abdomen", "mr_shoulder", "mr_multiframe"}
    sources = {s.split(":")[1] for split in OTHER_IMAGES.values() for s in split}
    assert not sources & mr
    val = load_other_images("val", size=32)
    assert val.shape[1:] == (32, 32) and val.dtype == np.float32
    assert val.min() >= 0 and val.max() <= 1 and val.std() > 0.05
    assert len(val) == 5 * 3  # each of the 3 sources: the whole image and a 2 x 2 grid
    photos = load_other_images("val", size=32, kinds=("photo",))
    assert len(photos) == 5 * 2 and np.array_equal(photos, val[5:])  # camera, moon
    with pytest.raises(ValueError, match="unknown kinds"):
        load_other_images("val", kinds=("mammo",))


def test_image_test_examples_are_fixed_acquisitions_at_training_size():
    rng = np.random.default_rng(0)
    images = {"a": rng.random((40, 50)).astype(np.float32), "b": rng.random((32, 32))}
    first = image_test_examples(images, 4, size=32)
    again = image_test_examples(images, 4, size=32)
    assert list(first) == ["a", "b"] and first["a"]["target"].shape == (32, 32)
    torch.testing.assert_close(first["b"]["y"], again["b"]["y"], rtol=0, atol=0)
    assert not torch.equal(first["a"]["mask"], first["b"]["mask"])  # one seed per image
