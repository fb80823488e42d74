"""The denoisers' patches: noisy pairs drawn reproducibly, fixed crops, crops on details."""

import numpy as np
import pytest
import torch
from patch_images import image_and_disc

from dlmi_utils.denoising.patches import NoisyPatches, breast_crops, salient_crop
from dlmi_utils.noise import GaussianNoise, PoissonNoise, anscombe_mean, vst_sigma
from dlmi_utils.patches import PatchDataset


def test_noisy_pairs_are_reproducible_and_have_the_noise_level():
    image, mask = image_and_disc((200, 200), 90)
    image[:] = 0.5
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=64, seed=0),
                      GaussianNoise(25 / 255))
    noisy, clean = ds[7]
    assert noisy.shape == clean.shape == (1, 32, 32) and noisy.dtype == torch.float32
    assert torch.equal(ds[7][0], noisy)
    residuals = torch.stack([ds[i][0] - ds[i][1] for i in range(len(ds))])
    assert residuals.std().item() == pytest.approx(25 / 255, rel=0.03)
    assert not torch.equal(ds[8][0] - ds[8][1], noisy - clean)


def test_blind_noise_draws_a_level_per_patch():
    image, mask = image_and_disc((200, 200), 90)
    image[:] = 0.5
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=100, seed=0),
                      GaussianNoise((5 / 255, 50 / 255)))
    stds = np.array([(ds[i][0] - ds[i][1]).std().item() * 255 for i in range(len(ds))])
    assert stds.min() < 12 and stds.max() > 43


def test_anscombe_pairs_are_noisy_transformed_counts_and_their_expectation():
    image, mask = image_and_disc((200, 200), 90)
    image[:] = 0.4
    photons = 100.0
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=60, seed=0),
                      PoissonNoise(photons))
    noisy, target = ds[3]
    assert noisy.shape == target.shape == (1, 32, 32)
    assert noisy.dtype == target.dtype == torch.float32
    assert torch.equal(ds[3][0], noisy)  # the same draw when read twice
    assert torch.allclose(target, torch.tensor(anscombe_mean(np.full((1, 32, 32), 0.4), photons),
                                               dtype=torch.float32))
    diff = torch.stack([ds[i][0] - ds[i][1] for i in range(len(ds))])
    assert abs(diff.mean().item()) < 1e-3  # the target is the mean of the input
    assert diff.std().item() == pytest.approx(vst_sigma(photons), rel=0.05)


def test_breast_crops_are_fixed_inside_and_disjoint():
    _, mask = image_and_disc((300, 300), 130)
    crops = breast_crops(mask, 64, 4)
    assert crops == breast_crops(mask, 64, 4)
    for r, c in crops:
        assert mask[r : r + 64, c : c + 64].all()
    for i, a in enumerate(crops):
        for b in crops[i + 1 :]:
            assert max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= 64
    with pytest.raises(ValueError, match="non-overlapping"):
        breast_crops(mask, 64, 50)


def _tissue(shape=(120, 150), seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = 0.4 + 0.05 * ndimage.gaussian_filter(rng.standard_normal(shape), 6) / 0.02
    return x.clip(0, 1), np.ones(shape, bool)


def test_salient_crop_finds_a_planted_speck():
    x, mask = _tissue()
    x[70:72, 101:103] += 0.5  # a 2 x 2 bright speck
    r, c = salient_crop(x, mask, 32, "spots", radius=3)
    assert r <= 70 and 72 <= r + 32 and c <= 101 and 103 <= c + 32
    assert abs(r + 16 - 71) <= 1 and abs(c + 16 - 102) <= 1


def test_salient_crop_finds_a_planted_margin_and_stays_in_the_mask():
    x, mask = _tissue()
    x[30:60, 40:70] += 0.3  # a bright block: its outline is the strongest edge
    mask[:, 120:] = False
    r, c = salient_crop(x, mask, 40, "edges", radius=1.5)
    assert mask[r : r + 40, c : c + 40].all()
    box = np.zeros_like(mask)
    box[r : r + 40, c : c + 40] = True
    outline = np.zeros_like(mask)
    outline[29:61, 39:71] = True
    outline[31:59, 41:69] = False
    assert (box & outline).any()


def test_salient_crop_bad_input_is_a_clear_error():
    x, mask = _tissue((40, 40))
    with pytest.raises(ValueError, match="kind"):
        salient_crop(x, mask, 16, "blobs")
    with pytest.raises(ValueError, match="mask"):
        salient_crop(x, mask[:20], 16)
    with pytest.raises(ValueError, match="no 16x16 crop"):
        salient_crop(x, np.zeros_like(mask), 16)


def test_salient_crop_margin_keeps_candidates_off_the_border():
    x, mask = _tissue()
    x[5:7, 60:62] += 0.8  # the brightest speck, 5 pixels from the film's top edge
    x[60:62, 80:82] += 0.4
    r, c = salient_crop(x, mask, 32, "spots", radius=2, margin=0)
    assert r == 0  # the border speck wins without a margin
    r, c = salient_crop(x, mask, 32, "spots", radius=2, margin=10)
    assert r <= 60 and 62 <= r + 32 and c <= 80 and 82 <= c + 32
    with pytest.raises(ValueError, match="margin"):
        salient_crop(x, mask, 32, margin=-1)


def test_pairs_with_level_carry_the_std_each_patch_was_drawn_with():
    image, mask = image_and_disc((200, 200), 90)
    image[:] = 0.5
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=40, seed=0),
                      GaussianNoise((5 / 255, 50 / 255)), with_level=True)
    (noisy, sigma), clean = ds[5]
    assert sigma.shape == () and sigma.dtype == torch.float32
    plain = NoisyPatches(ds.patches, ds.noise)[5]
    assert torch.equal(plain[0], noisy)  # the same draw with or without the level
    levels = np.array([ds[i][0][1].item() for i in range(len(ds))])
    stds = np.array([(ds[i][0][0] - ds[i][1]).std().item() for i in range(len(ds))])
    assert np.allclose(stds, levels, rtol=0.08)
    assert levels.min() >= 5 / 255 and levels.max() <= 50 / 255 and np.ptp(levels) > 20 / 255


def test_breast_crops_keep_the_margin_from_the_film_border():
    from dlmi_utils.denoising.patches import FILM_BORDER_MARGIN

    mask = np.ones((300, 300), bool)  # tissue up to the film's edge, as at the chest wall
    crops = breast_crops(mask, 64, 4, margin=FILM_BORDER_MARGIN)
    for r, c in crops:
        assert FILM_BORDER_MARGIN <= r <= 300 - 64 - FILM_BORDER_MARGIN
        assert FILM_BORDER_MARGIN <= c <= 300 - 64 - FILM_BORDER_MARGIN
    assert min(min(r, c) for r, c in breast_crops(mask, 64, 4)) == 0  # without: on the edge
    with pytest.raises(ValueError, match="16 px from the border"):
        breast_crops(mask, 64, 20, margin=16)
    with pytest.raises(ValueError, match="margin"):
        breast_crops(mask, 64, 1, margin=-1)
