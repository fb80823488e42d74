"""Regions of the template, the (Z, Y, X) layout, views and the scores of a volume."""

import numpy as np
import pytest

from dlmi_utils.data import load_brain_volume
from dlmi_utils.superres import (
    crop_to_slabs,
    orthogonal_views,
    score_volume,
    template_region,
    template_regions,
    to_zyx,
)


def test_regions_are_disjoint_with_gaps():
    regions = template_regions()
    covered = {name: set().union(*(range(s.start, s.stop) for s in slices))
               for name, slices in regions.items()}
    assert not covered["train"] & covered["test"] and not covered["val"] & covered["test"]
    train = np.array(sorted(covered["train"]))
    held_out = np.array(sorted(covered["test"] | covered["val"]))
    assert np.abs(train[:, None] - held_out[None]).min() > 5
    assert len(regions["test"]) == len(regions["val"]) == 1


def test_template_region_is_zyx_and_covered_by_slabs():
    x = template_region("test", 4)
    (ys,) = template_regions()["test"]
    volume = load_brain_volume()[0]
    assert x.shape == (188, ys.stop - ys.start, 197)
    np.testing.assert_array_equal(x[10, 3], volume[:, ys.start + 3, 10])
    assert template_region("val", 5).shape[0] == 185
    with pytest.raises(ValueError, match="'val' or 'test'"):
        template_region("train", 4)


def test_layout_helpers():
    vol = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (X, Y, Z)
    zyx = to_zyx(vol)
    assert zyx.shape == (4, 3, 2) and zyx[3, 2, 1] == vol[1, 2, 3]
    assert crop_to_slabs(np.zeros((10, 2, 2)), 3).shape == (9, 2, 2)
    views = orthogonal_views(np.zeros((5, 6, 7)))
    assert {k: v.shape for k, v in views.items()} == {"axial": (6, 7), "coronal": (5, 7),
                                                      "sagittal": (5, 6)}
    with pytest.raises(ValueError, match="volume"):
        to_zyx(np.zeros((4, 4)))


def test_score_of_the_reference_itself_is_perfect():
    x = template_region("val", 4)[:, :, 60:140]
    scores = score_volume(x, x)
    assert scores["psnr"] == float("inf") and scores["ssim"] == pytest.approx(1.0)
    assert scores["dice"] == 1.0 and scores["hd95"] == 0.0
    assert set(scores["tissue"]) == {"csf", "gm", "wm"}
    blurred = score_volume(x, 0.5 * (x + np.roll(x, 1, axis=0)))
    assert blurred["psnr"] < 40 and blurred["dice"] < 1.0
