"""The CBIS-DDSM mammograms: orientation, range, breast masks, split by case."""

import numpy as np
import pytest

from dlmi_utils.data import breast_mask, load_mammogram, load_mammograms


@pytest.fixture(scope="module")
def all_views():
    return load_mammograms("all", pixel_size_mm=0.4)


def test_images_are_unit_range_float_with_the_asked_pixel_size(all_views):
    assert len(all_views) == 8
    for m in all_views:
        assert m.image.dtype == np.float32 and m.image.ndim == 2
        assert m.image.min() == 0.0 and m.image.max() == 1.0
        assert m.pixel_size_mm == 0.4
        # native 0.05 mm films of ~4500 x 2800 pixels -> about 560 x 350 at 0.4 mm
        assert 500 < m.image.shape[0] < 620 and 300 < m.image.shape[1] < 380
        assert m.path.exists()


def test_breast_masks_cover_a_plausible_fraction(all_views):
    for m in all_views:
        assert m.breast_mask.shape == m.image.shape and m.breast_mask.dtype == bool
        assert 0.1 < m.breast_mask.mean() < 0.5, (m.case, m.view)
        # the breast is brighter than the film around it
        assert m.image[m.breast_mask].mean() > 5 * m.image[~m.breast_mask].mean()


def test_chest_wall_is_on_the_left(all_views):
    for m in all_views:
        w = m.image.shape[1]
        left = m.breast_mask[:, : w // 2].sum()
        right = m.breast_mask[:, w // 2 :].sum()
        assert left > 2 * right, (m.case, m.view)
        assert m.flipped == (m.view[0] == "r")


def test_split_is_by_case():
    train = load_mammograms("train", pixel_size_mm=0.4)
    test = load_mammograms("test", pixel_size_mm=0.4)
    assert {m.case for m in train} == {"sfm-benign-0"}
    assert {m.case for m in test} == {"sfm-malign-0"}
    assert {m.view for m in train} == {m.view for m in test} == {"rcc", "lcc", "rmlo", "lmlo"}


def test_breast_mask_drops_a_burnt_in_label_and_fills_holes():
    img = np.zeros((200, 120), np.float32)
    yy, xx = np.mgrid[:200, :120]
    img[(yy - 100) ** 2 + xx**2 < 70**2] = 0.6  # a half-disc on the chest wall
    img[95:105, 20:30] = 0.0  # a dark hole inside the breast
    img[10:25, 90:110] = 1.0  # a bright label away from the breast
    mask = breast_mask(img, pixel_size_mm=0.4)
    assert mask[100, 25] and mask[100, 5]
    assert not mask[15:20, 95:105].any()


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(ValueError, match="view"):
        load_mammogram("sfm-benign-0", "ap")
    with pytest.raises(ValueError, match="case"):
        load_mammogram("benign", "rcc")
    with pytest.raises(ValueError, match="finer"):
        load_mammogram("sfm-benign-0", "rcc", pixel_size_mm=0.01)
    with pytest.raises(ValueError, match="split"):
        load_mammograms("val")
    with pytest.raises(ValueError, match="2-D"):
        breast_mask(np.zeros((3, 4, 5)))
