"""Interpolation along z puts each thick slice at its centre; TV along z with the operator."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from dlmi_utils.superres import (
    ThickSliceForward,
    interpolate_z,
    interpolation_matrix,
    slice_centres,
    thin_coordinates,
    tv_z,
)


def _ramp(n, shape=(3, 4)):
    return np.arange(n, dtype=np.float64)[:, None, None] * np.ones((1, *shape))


@pytest.mark.parametrize("factor", [2, 3, 4, 5, 6])
def test_linear_interpolation_recovers_a_ramp_between_the_slice_centres(factor):
    x = _ramp(8 * factor)
    y = ThickSliceForward(factor).A(x)  # a ramp's slab mean is its value at the slab centre
    x_lin = interpolate_z(y, factor, "linear")
    centres = slice_centres(8, factor)
    inside = (np.arange(8 * factor) >= centres[0]) & (np.arange(8 * factor) <= centres[-1])
    np.testing.assert_allclose(x_lin[inside], x[inside], atol=1e-9)
    # beyond the first and last centres the value is held constant (mode "nearest")
    np.testing.assert_allclose(x_lin[0], y[0])


@pytest.mark.parametrize("factor", [3, 4])
def test_zoom_misplaces_the_slices_and_the_centred_interpolators_do_not(factor):
    x = _ramp(20 * factor)
    y = ThickSliceForward(factor).A(x)
    zoomed = ndimage.zoom(y, (factor, 1, 1), order=1)
    assert np.abs(zoomed - x)[factor:-factor].max() > 0.25  # off by up to (F - 1) / 2 slices
    linear = interpolate_z(y, factor, "linear")
    assert np.abs(linear - x)[factor:-factor].max() < 1e-9
    # the cubic B-spline reproduces a ramp too, once away from its boundary conditions
    cubic = interpolate_z(y, factor, "cubic")
    assert np.abs(cubic - x)[7 * factor:-7 * factor].max() < 1e-3


def test_thin_coordinates_put_slice_centres_at_whole_indices():
    t = thin_coordinates(9, 3)  # odd factor: the centres are thin slices 1, 4, 7
    np.testing.assert_allclose(t[slice_centres(3, 3).astype(int)], [0, 1, 2])
    np.testing.assert_allclose(thin_coordinates(12, 4) * 4 + 1.5, np.arange(12))


@pytest.mark.parametrize("method", ["nearest", "linear", "cubic"])
def test_interpolation_keeps_constants_and_is_the_matrix(method):
    y = np.full((5, 2, 3), 0.7)
    np.testing.assert_allclose(interpolate_z(y, 3, method), 0.7, atol=1e-12)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 2, 2))
    matrix = interpolation_matrix(6, 3, method)
    np.testing.assert_allclose(interpolate_z(y, 3, method), np.einsum("nk,kab->nab", matrix, y))
    # the same as map_coordinates on the volume itself
    t = thin_coordinates(18, 3)
    coords = np.meshgrid(t, np.arange(2), np.arange(2), indexing="ij")
    order = {"nearest": 0, "linear": 1, "cubic": 3}[method]
    direct = ndimage.map_coordinates(y, coords, order=order, mode="nearest")
    np.testing.assert_allclose(interpolate_z(y, 3, method), direct, atol=1e-10)


def test_nearest_copies_each_thick_slice_into_its_own_slab():
    y = np.arange(4.0)[:, None, None] * np.ones((1, 1, 1))
    np.testing.assert_array_equal(interpolate_z(y, 3, "nearest")[:, 0, 0], np.repeat(y[:, 0, 0], 3))


def test_torch_batches_and_n_slices():
    y = torch.rand(2, 1, 5, 3, 3)
    out = interpolate_z(y, 4, "cubic")
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1, 20, 3, 3)
    np.testing.assert_allclose(out.numpy(), interpolate_z(y.numpy(), 4, "cubic"), atol=1e-6)
    assert interpolate_z(y.numpy(), 4, "linear", n_slices=22).shape == (2, 1, 22, 3, 3)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="method"):
        interpolate_z(np.zeros((3, 2, 2)), 2, "quintic")
    with pytest.raises(ValueError, match="at least 3"):
        interpolate_z(np.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match="factor"):
        interpolate_z(np.zeros((3, 2, 2)), 1)


def test_tv_fits_the_data_and_keeps_a_step():
    x = np.zeros((24, 3, 3))
    x[12:] = 1.0  # an edge on a slab boundary
    physics = ThickSliceForward(4)
    y = physics.A(x)
    out = tv_z(y, 4, lam=1e-3, n_iter=300)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.abs(physics.A(out) - y).max() < 0.01
    cubic = interpolate_z(y, 4, "cubic")
    assert np.abs(out - x).mean() < np.abs(cubic - x).mean()  # no overshoot around the edge
