"""The tissue rule: it agrees with the template's tissue maps; scores and masks behave."""

import numpy as np
import pytest

from dlmi_utils.data import load_brain_tissue_masks, load_brain_volume
from dlmi_utils.metrics import dice
from dlmi_utils.superres import brain_mask, tissue_labels, tissue_scores, tissue_thresholds


def test_rule_agrees_with_the_template_tissue_maps():
    volume, _ = load_brain_volume()
    masks = load_brain_tissue_masks(None)
    labels = tissue_labels(volume, tissue_thresholds(volume))
    assert dice(masks["gm"], labels == 2) > 0.88
    assert dice(masks["wm"], labels == 3) > 0.9
    assert dice(masks["csf"], labels == 1) > 0.7
    assert dice(masks["background"], labels == 0) > 0.99


def test_thresholds_order_and_labels():
    truth = np.repeat(np.arange(4), 50)[None, None].repeat(4, axis=0)  # (4, 1, 200)
    noise = np.random.default_rng(0).normal(scale=0.05, size=truth.shape)
    volume = np.clip(np.array([0.0, 0.3, 0.6, 0.9])[truth] + noise * (truth > 0), 0, None)
    t_brain, t1, t2 = tissue_thresholds(volume)
    assert t_brain == pytest.approx(0.02 * volume.max()) and 0.3 < t1 < 0.6 < t2 < 0.9
    labels = tissue_labels(volume, (t_brain, t1, t2))
    assert labels.dtype == np.uint8
    assert np.mean(labels == truth) > 0.97


def test_scores_of_identical_and_shifted_maps():
    labels = np.zeros((12, 12, 12), dtype=np.uint8)
    labels[2:10, 2:10, 2:10] = 1
    labels[3:9, 3:9, 3:9] = 2
    labels[4:8, 4:8, 4:8] = 3
    same = tissue_scores(labels, labels)
    assert same["mean"]["dice"] == 1.0 and same["wm"]["hd95"] == 0.0
    shifted = tissue_scores(labels, np.roll(labels, 1, axis=0), spacing=(2.0, 1.0, 1.0))
    assert shifted["wm"]["dice"] == pytest.approx(0.75) and shifted["wm"]["hd95"] == 2.0


def test_empty_volume_has_no_brain():
    with pytest.raises(ValueError, match="no positive voxel"):
        brain_mask(np.zeros((3, 3, 3)))
