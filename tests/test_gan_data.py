import pytest
import torch

from dlmi_utils.gan_data import (
    ImageSampler,
    brain_images,
    brain_sampler,
    from_gan_range,
    mammo_patches,
    to_gan_range,
)


def test_brain_images_cover_three_orientations_in_gan_range():
    train, test = brain_images("train"), brain_images("test")
    assert train.shape[1:] == (1, 64, 64) and train.dtype == torch.float32
    assert len(train) > 3 * len(test) > 0
    assert train.min() == -1.0 and train.max() <= 1.0
    # the crop keeps the whole brain: its border rows and columns are background (up to the
    # anti-aliasing blur of the downsampling)
    border = torch.cat([train[..., 0, :], train[..., -1, :], train[..., :, 0], train[..., :, -1]])
    assert (border < -0.98).all()


def test_brain_images_split_slabs_do_not_share_slices():
    train, test = brain_images("train").flatten(1), brain_images("test").flatten(1)
    assert torch.cdist(test, train).min() > 1.0


@pytest.mark.parametrize("size", [32, 128])
def test_brain_images_other_sizes(size):
    x = brain_images("val", size=size, orientations=("axial",))
    assert x.shape[1:] == (1, size, size)


def test_mammo_patches_are_reproducible_tissue():
    a, b = mammo_patches("test", n=16, seed=3), mammo_patches("test", n=16, seed=3)
    assert a.shape == (16, 1, 64, 64) and torch.equal(a, b)
    assert -1 <= a.min() and a.max() <= 1
    assert (a.mean(dim=(1, 2, 3)) > -0.9).all(), "patches lie in the breast, not the background"


def test_range_conversions_round_trip():
    x = torch.rand(3, 1, 4, 4)
    assert torch.allclose(from_gan_range(to_gan_range(x)), x)


def test_sampler_without_augmentation_draws_the_images():
    images = torch.randn(10, 1, 8, 8)
    batch = ImageSampler(images, flip=False)(6, torch.Generator().manual_seed(0))
    dists = torch.cdist(batch.flatten(1), images.flatten(1))
    assert (dists.min(dim=1).values < 1e-6).all()


def test_sampler_is_reproducible_and_pads_with_background():
    images = torch.ones(4, 1, 32, 32)
    sampler = ImageSampler(images, max_rotation_deg=20, max_scale=0.2, max_shift_px=4,
                           background=-1.0)
    a = sampler(8, torch.Generator().manual_seed(1))
    assert torch.equal(a, sampler(8, torch.Generator().manual_seed(1)))
    assert a.min() >= -1 - 1e-5 and a.max() <= 1 + 1e-5
    assert (a < 0).any(), "the rotated / shifted images leave background corners"
    assert torch.allclose(a[:, :, 16, 16], torch.ones(8, 1)), "the centre stays inside"


def test_brain_sampler_flips_and_moves():
    images = brain_images("val", orientations=("axial",))[:2]
    batch = brain_sampler(images)(32, torch.Generator().manual_seed(0))
    assert torch.cdist(batch.flatten(1), images.flatten(1)).min(dim=1).values.max() > 1.0


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        ImageSampler(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="non-negative"):
        ImageSampler(torch.zeros(4, 1, 8, 8), max_scale=1.5)
