"""Patch datasets: inside the mask, seeded, flipped, paired with reproducible noise."""

import numpy as np
import pytest
import torch

from dlmi_utils.patches import (
    NoisyPatches,
    PatchDataset,
    anscombe_poisson_noise,
    anscombe_target,
    breast_crops,
    gaussian_noise,
    poisson_noise,
    salient_crop,
    window_fraction,
)


def _image_and_disc(shape=(120, 90), radius=35):
    rng = np.random.default_rng(0)
    image = rng.random(shape).astype(np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2 < radius**2
    return image, mask


def test_window_fraction_matches_brute_force():
    _, mask = _image_and_disc()
    frac = window_fraction(mask, 16)
    assert frac.shape == (120 - 15, 90 - 15)
    for r, c in [(0, 0), (40, 10), (52, 22), (104, 74)]:
        assert frac[r, c] == pytest.approx(mask[r : r + 16, c : c + 16].mean())


def test_patches_lie_inside_the_mask():
    image, mask = _image_and_disc()
    ds = PatchDataset([image], [mask], patch_size=16, n_patches=200, min_inside=1.0, seed=3)
    for i in range(len(ds)):
        _, r, c, _, _ = ds.locate(i)
        assert mask[r : r + 16, c : c + 16].all()


def test_patch_is_the_image_content_with_its_flips():
    image, mask = _image_and_disc()
    ds = PatchDataset([image], [mask], patch_size=16, n_patches=100, seed=1)
    flips = set()
    for i in range(len(ds)):
        _, r, c, fh, fv = ds.locate(i)
        expected = image[r : r + 16, c : c + 16]
        expected = expected[:, ::-1] if fh else expected
        expected = expected[::-1] if fv else expected
        np.testing.assert_array_equal(ds[i][0].numpy(), expected)
        flips.add((fh, fv))
    assert flips == {(False, False), (False, True), (True, False), (True, True)}


def test_same_seed_same_patches_new_epoch_new_patches():
    image, mask = _image_and_disc()
    a = PatchDataset([image], [mask], patch_size=16, n_patches=20, seed=5)
    b = PatchDataset([image], [mask], patch_size=16, n_patches=20, seed=5)
    assert all(torch.equal(a[i], b[i]) for i in reversed(range(20)))  # any order
    before = [a.locate(i) for i in range(20)]
    a.set_epoch(1)
    assert [a.locate(i) for i in range(20)] != before
    c = PatchDataset([image], [mask], patch_size=16, n_patches=20, seed=6)
    assert [c.locate(i) for i in range(20)] != before


def test_images_are_sampled_in_proportion_to_their_valid_positions():
    image, mask = _image_and_disc()
    small = np.zeros_like(mask)
    small[40:60, 30:50] = True  # 5 x 5 = 25 valid 16-pixel corners vs ~1000 in the disc
    ds = PatchDataset([image, image], [mask, small], patch_size=16, n_patches=2000,
                      min_inside=1.0, seed=0)
    counts = np.bincount([ds.locate(i)[0] for i in range(len(ds))], minlength=2)
    n_valid = [(window_fraction(m, 16) >= 1).sum() for m in (mask, small)]
    expected = n_valid[1] / sum(n_valid)
    assert counts[1] / counts.sum() == pytest.approx(expected, abs=0.015)


def _chest_wall_mask(shape=(120, 90)) -> np.ndarray:
    """A half disc against column 0, as a breast lies against the film's chest-wall edge."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - shape[0] / 2) ** 2 + xx**2 < 50**2


def test_edge_fraction_draws_that_share_against_the_border():
    image, _ = _image_and_disc()
    mask = _chest_wall_mask()
    ds = PatchDataset([image], [mask], patch_size=16, n_patches=2000, min_inside=1.0,
                      edge_fraction=0.3, seed=2)
    corners = [ds.locate(i)[1:3] for i in range(len(ds))]
    at_border = np.mean([r == 0 or c == 0 or r == 120 - 16 or c == 90 - 16 for r, c in corners])
    assert at_border == pytest.approx(0.3, abs=0.04)
    assert all(mask[r : r + 16, c : c + 16].all() for r, c in corners)
    uniform = PatchDataset([image], [mask], patch_size=16, n_patches=2000, min_inside=1.0,
                           seed=2)
    assert np.mean([uniform.locate(i)[2] == 0 for i in range(2000)]) < 0.05


def test_edge_fraction_zero_keeps_the_uniform_draw():
    image, mask = _image_and_disc()
    a = PatchDataset([image], [mask], patch_size=16, n_patches=50, seed=4)
    b = PatchDataset([image], [mask], patch_size=16, n_patches=50, seed=4, edge_fraction=0.0)
    assert [a.locate(i) for i in range(50)] == [b.locate(i) for i in range(50)]


def test_edge_fraction_without_a_border_patch_is_a_clear_error():
    image, _ = _image_and_disc()
    mask = np.zeros(image.shape, bool)
    mask[20:100, 20:70] = True  # away from the borders
    with pytest.raises(ValueError, match="touches an image border"):
        PatchDataset([image], [mask], patch_size=16, min_inside=1.0, edge_fraction=0.2)
    with pytest.raises(ValueError, match="edge_fraction"):
        PatchDataset([image], [mask], patch_size=16, edge_fraction=1.5)


def test_anywhere_fraction_draws_that_share_outside_the_mask_and_keeps_the_others():
    """The masked draw puts no patch in the background; with ``anywhere_fraction`` about that
    share is drawn uniformly over the whole image (most of it outside this small disc), and
    the other patches are exactly those of the masked draw."""
    image, mask = _image_and_disc(radius=25)
    kw = dict(patch_size=16, n_patches=1000, min_inside=1.0, seed=5)
    masked = PatchDataset([image], [mask], **kw)
    mixed = PatchDataset([image], [mask], anywhere_fraction=0.25, **kw)

    def inside(ds, i):
        _, r, c, _, _ = ds.locate(i)
        return mask[r : r + 16, c : c + 16].all()

    assert all(inside(masked, i) for i in range(1000))
    anywhere = np.array([mixed.rng(i, 3).random() < 0.25 for i in range(1000)])
    assert anywhere.mean() == pytest.approx(0.25, abs=0.03)
    assert all(mixed.locate(i) == masked.locate(i) for i in np.flatnonzero(~anywhere))
    corners = np.array([mixed.locate(i)[1:3] for i in np.flatnonzero(anywhere)])
    outside = np.mean([not inside(mixed, i) for i in np.flatnonzero(anywhere)])
    share_outside = np.mean(window_fraction(mask, 16) < 1.0)  # of all 105 x 75 corners
    assert outside == pytest.approx(share_outside, abs=0.06)
    assert corners[:, 0].max() > 95 and corners[:, 1].max() > 65  # the far corner is reached
    with pytest.raises(ValueError, match="anywhere_fraction"):
        PatchDataset([image], [mask], patch_size=16, anywhere_fraction=1.2)


def test_edge_lines_paint_a_constant_strip_along_the_border_and_nothing_else():
    """Patches against the chest wall (column 0) get lines of 1-3 constant columns there, in
    the range asked, on about the share asked; the other patches are untouched, and with
    ``edge_lines=0`` every patch is the same as before."""
    image, _ = _image_and_disc()
    image *= 0.3  # the tissue stays below the line range
    mask = _chest_wall_mask()
    kw = dict(patch_size=16, n_patches=1500, min_inside=1.0, edge_fraction=0.5, seed=5,
              flips=False)
    plain = PatchDataset([image], [mask], **kw)
    lined = PatchDataset([image], [mask], edge_lines=0.6, line_range=(0.6, 0.9), **kw)
    same = PatchDataset([image], [mask], edge_lines=0.0, **kw)
    widths, at_border = [], 0
    for i in range(len(plain)):
        a, b = plain.patch(i), lined.patch(i)
        assert np.array_equal(a, same.patch(i))
        _, row, col, _, _ = plain.locate(i)
        sides = plain.border_sides(0, row, col)
        changed = ~np.isclose(a, b)
        if not sides:
            assert not changed.any()
            continue
        at_border += 1
        if not changed.any():
            continue
        assert sides == ["left"]  # the disc's mask meets only column 0
        w = int(changed.any(axis=0).sum())
        assert changed[:, :w].all() and not changed[:, w:].any()
        assert np.ptp(b[:, :w], axis=0).max() == 0  # constant along the border
        assert ((b[:, :w] >= 0.6) & (b[:, :w] <= 0.9)).all()
        widths.append(w)
    assert len(widths) / at_border == pytest.approx(0.6, abs=0.06)
    assert sorted(set(widths)) == [1, 2, 3]


def test_edge_lines_follow_the_flips_and_bad_settings_are_refused():
    image, _ = _image_and_disc()
    mask = _chest_wall_mask()
    kw = dict(patch_size=16, n_patches=400, min_inside=1.0, edge_fraction=1.0, seed=6,
              edge_lines=1.0, line_range=(2.0, 2.0))  # outside the image's [0, 1]: easy to find
    ds = PatchDataset([image * 0.5], [mask], **kw)
    for i in range(len(ds)):
        fh = ds.locate(i)[3]
        column = ds.patch(i)[:, -1 if fh else 0]
        assert (column == 2.0).all()
    with pytest.raises(ValueError, match="edge_lines"):
        PatchDataset([image], [mask], patch_size=16, edge_lines=-0.1)
    with pytest.raises(ValueError, match="max_line_width"):
        PatchDataset([image], [mask], patch_size=16, max_line_width=16)
    with pytest.raises(ValueError, match="line_range"):
        PatchDataset([image], [mask], patch_size=16, line_range=(0.9, 0.5))


def test_no_valid_patch_is_a_clear_error():
    image, _ = _image_and_disc()
    with pytest.raises(ValueError, match="min_inside"):
        PatchDataset([image], [np.zeros(image.shape, bool)], patch_size=16)
    with pytest.raises(ValueError, match="smaller than patch_size"):
        PatchDataset([image[:10]], patch_size=16)


def test_noisy_pairs_are_reproducible_and_have_the_noise_level():
    image, mask = _image_and_disc((200, 200), 90)
    image[:] = 0.5
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=64, seed=0),
                      gaussian_noise(25 / 255))
    noisy, clean = ds[7]
    assert noisy.shape == clean.shape == (1, 32, 32) and noisy.dtype == torch.float32
    assert torch.equal(ds[7][0], noisy)
    residuals = torch.stack([ds[i][0] - ds[i][1] for i in range(len(ds))])
    assert residuals.std().item() == pytest.approx(25 / 255, rel=0.03)
    assert not torch.equal(ds[8][0] - ds[8][1], noisy - clean)


def test_blind_noise_draws_a_level_per_patch():
    image, mask = _image_and_disc((200, 200), 90)
    image[:] = 0.5
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=100, seed=0),
                      gaussian_noise((5 / 255, 50 / 255)))
    stds = np.array([(ds[i][0] - ds[i][1]).std().item() * 255 for i in range(len(ds))])
    assert stds.min() < 12 and stds.max() > 43


def test_poisson_patches_are_unbiased_with_signal_dependent_variance():
    image, mask = _image_and_disc((200, 200), 90)
    image[:] = 0.25
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=50, seed=0),
                      poisson_noise(400))
    diff = torch.stack([ds[i][0] - ds[i][1] for i in range(len(ds))])
    assert abs(diff.mean().item()) < 2e-3
    assert diff.var().item() == pytest.approx(0.25 / 400, rel=0.05)


def test_anscombe_pairs_are_noisy_transformed_counts_and_their_expectation():
    from dlmi_utils.noise import anscombe_mean, vst_sigma

    image, mask = _image_and_disc((200, 200), 90)
    image[:] = 0.4
    photons = 100.0
    ds = NoisyPatches(PatchDataset([image], [mask], patch_size=32, n_patches=60, seed=0),
                      anscombe_poisson_noise(photons), anscombe_target(photons))
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
    _, mask = _image_and_disc((300, 300), 130)
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
