"""checks.lab07: right answers pass (self-check and strict), usual slips get their hint."""

import numpy as np
import pytest
from scipy import ndimage

from dlmi_utils.course.checks import lab07
from dlmi_utils.course.checks.lab07 import TISSUES


def thick_slices(x, factor):
    k = x.shape[0] // factor
    return x[: k * factor].reshape(k, factor, *x.shape[1:]).mean(axis=1)


def thick_slices_adjoint(y, factor, n_slices):
    x = np.zeros((n_slices, *y.shape[1:]))
    x[: y.shape[0] * factor] = np.repeat(y, factor, axis=0) / factor
    return x


def cubic_along_z(y, factor):
    n = y.shape[0] * factor
    t = (np.arange(n) - (factor - 1) / 2) / factor
    coords = np.meshgrid(t, np.arange(y.shape[1]), np.arange(y.shape[2]), indexing="ij")
    return ndimage.map_coordinates(y, coords, order=3, mode="nearest")


def consistency_projection(x_sr, y, factor):
    x = x_sr.astype(float).copy()
    n = y.shape[0] * factor
    x[:n] += np.repeat(y - thick_slices(x_sr, factor), factor, axis=0)
    return x


def tissue_dice(ref, est):
    out = {}
    for name, k in TISSUES.items():
        r, e = ref == k, est == k
        total = r.sum() + e.sum()
        out[name] = 1.0 if total == 0 else 2 * (r & e).sum() / total
    return out


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(("check", "fn"), [
    (lab07.check_thick_slices, thick_slices),
    (lab07.check_thick_slices_adjoint, thick_slices_adjoint),
    (lab07.check_cubic_along_z, cubic_along_z),
    (lab07.check_consistency_projection, consistency_projection),
    (lab07.check_tissue_dice, tissue_dice),
    (lab07.check_thick_slices, lab07.reference_thick_slices),
    (lab07.check_thick_slices_adjoint, lab07.reference_thick_slices_adjoint),
    (lab07.check_cubic_along_z, lab07.reference_cubic_along_z),
    (lab07.check_consistency_projection, lab07.reference_consistency_projection),
    (lab07.check_tissue_dice, lab07.reference_tissue_dice),
])
def test_right_answers_pass(check, fn, strict):
    result = check(fn, strict=strict, seed=3)
    assert result.ok, result.report()


def _hints(result):
    assert not result.ok
    return " ".join(result.messages)


def test_forward_slips_are_named():
    summed = lab07.check_thick_slices(lambda x, f: thick_slices(x, f) * f)
    assert "divide by F" in _hints(summed)
    picked = lab07.check_thick_slices(lambda x, f: x[: (x.shape[0] // f) * f : f])
    assert "picked one thin slice" in _hints(picked)
    strided = lab07.check_thick_slices(
        lambda x, f: x[: (x.shape[0] // f) * f].reshape(f, -1, *x.shape[1:]).mean(0))
    assert "contiguous" in _hints(strided)


def test_adjoint_without_its_weight_fails_the_dot_test():
    result = lab07.check_thick_slices_adjoint(lambda y, f, n: thick_slices_adjoint(y, f, n) * f)
    assert "factor F" in _hints(result)


def test_zoom_and_misplaced_interpolation_are_named():
    zoom = lab07.check_cubic_along_z(lambda y, f: ndimage.zoom(y, (f, 1, 1), order=3))
    assert "ndimage.zoom" in _hints(zoom)

    def at_starts(y, f):
        t = np.arange(y.shape[0] * f) / f
        coords = np.meshgrid(t, np.arange(y.shape[1]), np.arange(y.shape[2]), indexing="ij")
        return ndimage.map_coordinates(y, coords, order=3, mode="nearest")
    assert "centre" in _hints(lab07.check_cubic_along_z(at_starts))

    def linear(y, f):
        t = (np.arange(y.shape[0] * f) - (f - 1) / 2) / f
        coords = np.meshgrid(t, np.arange(y.shape[1]), np.arange(y.shape[2]), indexing="ij")
        return ndimage.map_coordinates(y, coords, order=1, mode="nearest")
    assert "linear interpolation" in _hints(lab07.check_cubic_along_z(linear))


def test_projection_slips_are_named():
    def unscaled(x_sr, y, f):
        x = x_sr.astype(float).copy()
        x[: y.shape[0] * f] += np.repeat(y - thick_slices(x_sr, f), f, axis=0) / f
        return x
    assert "1 / F" in _hints(lab07.check_consistency_projection(unscaled))

    def overwrite(x_sr, y, f):
        x = x_sr.astype(float).copy()
        x[: y.shape[0] * f] = np.repeat(y, f, axis=0)
        return x
    assert "overwrote" in _hints(lab07.check_consistency_projection(overwrite))


def test_iou_and_wrong_labels_are_named():
    def iou(ref, est):
        return {n: ((ref == k) & (est == k)).sum() / max(((ref == k) | (est == k)).sum(), 1)
                for n, k in TISSUES.items()}
    assert "IoU" in _hints(lab07.check_tissue_dice(iou))

    def shifted(ref, est):
        right = tissue_dice(ref, est)
        return {"csf": right["gm"], "gm": right["wm"], "wm": right["csf"]}
    assert "label" in _hints(lab07.check_tissue_dice(shifted))


def test_unfinished_exercise_reports_not_implemented():
    def stub(*args):
        raise NotImplementedError("thick_slices is not implemented yet")
    assert lab07.check_thick_slices(stub).status == "not_implemented"


def test_nearest_neighbour_at_the_centres_is_the_scaled_back_projection():
    """Lab 07 draws its nearest-neighbour baseline as F A^T y: the same as interpolate_z's."""
    from dlmi_utils.superres import interpolate_z

    y = np.random.default_rng(0).random((7, 3, 4))
    for f in range(2, 7):
        np.testing.assert_allclose(f * lab07.reference_thick_slices_adjoint(y, f, 7 * f),
                                   interpolate_z(y, f, "nearest", axis=0), atol=1e-12)
