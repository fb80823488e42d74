import pytest
import torch

from dlmi_utils.gan.data import (
    GAN_DATASETS,
    ImageSampler,
    brain_images,
    brain_sampler,
    from_gan_range,
    load_gan_dataset,
    mammo_patches,
    to_gan_range,
)


def test_brain_images_cover_three_orientations_in_gan_range():
    train, test = brain_images("train"), brain_images("heldout")
    assert train.shape[1:] == (1, 64, 64) and train.dtype == torch.float32
    assert len(train) > 3 * len(test) > 0
    assert train.min() == -1.0 and train.max() <= 1.0
    # the crop keeps the whole brain: its border rows and columns are background (up to the
    # anti-aliasing blur of the downsampling)
    border = torch.cat([train[..., 0, :], train[..., -1, :], train[..., :, 0], train[..., :, -1]])
    assert (border < -0.98).all()


def test_brain_images_split_slabs_do_not_share_slices():
    train, test = brain_images("train").flatten(1), brain_images("heldout").flatten(1)
    assert torch.cdist(test, train).min() > 1.0


@pytest.mark.parametrize("size", [32, 128])
def test_brain_images_other_sizes(size):
    x = brain_images("heldout", size=size, orientations=("axial",))
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
    images = brain_images("heldout", orientations=("axial",))[:2]
    batch = brain_sampler(images)(32, torch.Generator().manual_seed(0))
    assert torch.cdist(batch.flatten(1), images.flatten(1)).min(dim=1).values.max() > 1.0


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        ImageSampler(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="non-negative"):
        ImageSampler(torch.zeros(4, 1, 8, 8), max_scale=1.5)


def test_brain_split_interleaves_heldout_slices_over_the_whole_brain():
    """Held-out slices come from every part of each axis (not one slab in the middle)."""
    heldout = brain_images("heldout", orientations=("axial",))
    train = brain_images("train", orientations=("axial",))
    assert len(train) > 4 * len(heldout) >= 8
    # brain area (pixels above the background) of the held-out slices spans small
    # (top/bottom of the brain) to large (middle) slices, like the training set's
    def area(x):
        return (x > -0.9).flatten(1).sum(1).float()
    a_train, a_held = area(train), area(heldout)
    assert a_held.min() < a_train.median() / 2 and a_held.max() > 0.8 * a_train.max()


def test_brain_images_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="heldout"):
        brain_images("val")


def test_load_gan_dataset_brain_returns_train_heldout_and_augmenting_sampler():
    train, heldout, sampler = load_gan_dataset("brain")
    assert torch.equal(train, brain_images("train"))
    assert torch.equal(heldout, brain_images("heldout"))
    assert len(sampler) == len(train)
    batch = sampler(8, torch.Generator().manual_seed(0))
    assert batch.shape == (8, 1, 64, 64) and -1 <= batch.min() and batch.max() <= 1


def test_load_gan_dataset_refuses_an_unknown_name():
    assert GAN_DATASETS == ("brain", "mammo")
    with pytest.raises(ValueError, match="brain"):
        load_gan_dataset("chest")
