"""The MNI152 brain loaders: shapes, range, split disjointness and tissue masks."""

import time

import numpy as np
import pytest

from dlmi_utils.data import (
    TISSUES,
    brain_split_indices,
    load_brain_slices,
    load_brain_tissue_masks,
    load_brain_volume,
)


def test_volume_is_the_1mm_template_in_unit_range():
    start = time.perf_counter()
    vol, spacing = load_brain_volume()
    assert time.perf_counter() - start < 5.0
    assert vol.shape == (197, 233, 189)
    assert vol.dtype == np.float32
    assert spacing == (1.0, 1.0, 1.0)
    assert vol.min() == 0.0 and 0.9 < vol.max() <= 1.0
    assert not vol.flags.writeable


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_splits_are_disjoint_slabs_with_gaps(orientation):
    idx = brain_split_indices(orientation)
    train, val, test = (set(idx[k].tolist()) for k in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test <= set(idx["all"].tolist())
    held_out = np.concatenate([idx["val"], idx["test"]])
    nearest = np.abs(idx["train"][:, None] - held_out[None, :]).min()
    assert nearest > 5  # no training slice within 5 mm of a held-out one
    for split in ("val", "test"):  # contiguous slabs
        assert np.all(np.diff(idx[split]) == 1)
    assert len(idx["train"]) > len(idx["test"]) > len(idx["val"]) > 5


def test_sagittal_slices_have_no_mirror_twin_in_another_split():
    vol, _ = load_brain_volume()
    idx = brain_split_indices("sagittal")
    mirrored = {vol.shape[0] - 1 - i for i in idx["all"].tolist()}
    assert mirrored & set(idx["all"].tolist()) <= {(vol.shape[0] - 1) // 2}


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_slices_are_padded_centred_and_mostly_brain(orientation):
    x = load_brain_slices("all", orientation, size=256)
    n = len(brain_split_indices(orientation)["all"])
    assert x.shape == (n, 256, 256) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.all(x[:, :, :20] == 0) and np.all(x[:, :, -20:] == 0)  # zero padding
    assert np.all((x > 0).mean(axis=(1, 2)) > 0.15 * 189 * 197 / 256**2)


def test_slices_are_deterministic_and_fresh_copies():
    a = load_brain_slices("val")
    b = load_brain_slices("val")
    np.testing.assert_array_equal(a, b)
    a[:] = 0
    assert load_brain_slices("val").max() > 0


def test_axial_slice_has_anterior_at_the_top():
    vol, _ = load_brain_volume()
    idx = brain_split_indices("axial")["test"][0]
    x = load_brain_slices("test", "axial", size=256)[0]
    native = vol[:, ::-1, idx].T  # rows: y from anterior to posterior; columns: x
    top, left = (256 - 233) // 2, (256 - 197) // 2
    np.testing.assert_array_equal(x[top : top + 233, left : left + 197], native)


def test_pixel_size_downsamples_and_too_small_size_is_refused():
    x = load_brain_slices("val", size=128, pixel_size_mm=2.0)
    assert x.shape[1:] == (128, 128) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(ValueError, match="do not fit"):
        load_brain_slices("val", size=128)
    with pytest.raises(ValueError, match="split"):
        load_brain_slices("training")
    with pytest.raises(ValueError, match="orientation"):
        load_brain_slices("val", orientation="transverse")


def test_tissue_masks_partition_the_slice_and_match_the_image():
    masks = load_brain_tissue_masks("test", "axial")
    x = load_brain_slices("test", "axial")
    assert tuple(masks) == TISSUES
    total = sum(m.astype(int) for m in masks.values())
    assert np.all(total == 1)
    assert masks["gm"].shape == x.shape
    np.testing.assert_array_equal(masks["background"], x == 0)
    # on T1, white matter is brighter than grey matter, which is brighter than CSF
    mean = {k: x[masks[k]].mean() for k in ("csf", "gm", "wm")}
    assert mean["wm"] > mean["gm"] > mean["csf"]
    assert 0.05 < masks["gm"].mean() < 0.3 and 0.05 < masks["wm"].mean() < 0.3


def test_tissue_masks_of_one_slice_and_of_the_volume():
    one = load_brain_tissue_masks("test", "axial", index=3)
    many = load_brain_tissue_masks("test", "axial")
    np.testing.assert_array_equal(one["wm"], many["wm"][3])
    vol = load_brain_tissue_masks(split=None)
    assert vol["gm"].shape == (197, 233, 189)
    with pytest.raises(IndexError):
        load_brain_tissue_masks("val", index=1000)
