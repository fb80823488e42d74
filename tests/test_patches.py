"""Patch datasets: inside the mask, seeded, flipped, with film-edge strips and patches anywhere."""

import numpy as np
import pytest
import torch
from patch_images import image_and_disc

from dlmi_utils.patches import PatchDataset, window_fraction


def test_window_fraction_matches_brute_force():
    _, mask = image_and_disc()
    frac = window_fraction(mask, 16)
    assert frac.shape == (120 - 15, 90 - 15)
    for r, c in [(0, 0), (40, 10), (52, 22), (104, 74)]:
        assert frac[r, c] == pytest.approx(mask[r : r + 16, c : c + 16].mean())


def test_patches_lie_inside_the_mask():
    image, mask = image_and_disc()
    ds = PatchDataset([image], [mask], patch_size=16, n_patches=200, min_inside=1.0, seed=3)
    for i in range(len(ds)):
        _, r, c, _, _ = ds.locate(i)
        assert mask[r : r + 16, c : c + 16].all()


def test_patch_is_the_image_content_with_its_flips():
    image, mask = image_and_disc()
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
    image, mask = image_and_disc()
    a = PatchDataset([image], [mask], patch_size=16, n_patches=20, seed=5)
    b = PatchDataset([image], [mask], patch_size=16, n_patches=20, seed=5)
    assert all(torch.equal(a[i], b[i]) for i in reversed(range(20)))  # any order
    before = [a.locate(i) for i in range(20)]
    a.set_epoch(1)
    assert [a.locate(i) for i in range(20)] != before
    c = PatchDataset([image], [mask], patch_size=16, n_patches=20, seed=6)
    assert [c.locate(i) for i in range(20)] != before


def test_images_are_sampled_in_proportion_to_their_valid_positions():
    image, mask = image_and_disc()
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
    image, _ = image_and_disc()
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
    image, mask = image_and_disc()
    a = PatchDataset([image], [mask], patch_size=16, n_patches=50, seed=4)
    b = PatchDataset([image], [mask], patch_size=16, n_patches=50, seed=4, edge_fraction=0.0)
    assert [a.locate(i) for i in range(50)] == [b.locate(i) for i in range(50)]


def test_edge_fraction_without_a_border_patch_is_a_clear_error():
    image, _ = image_and_disc()
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
    image, mask = image_and_disc(radius=25)
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
    image, _ = image_and_disc()
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
    image, _ = image_and_disc()
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
    image, _ = image_and_disc()
    with pytest.raises(ValueError, match="min_inside"):
        PatchDataset([image], [np.zeros(image.shape, bool)], patch_size=16)
    with pytest.raises(ValueError, match="smaller than patch_size"):
        PatchDataset([image[:10]], patch_size=16)
