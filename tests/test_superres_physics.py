"""The thick-slice operator: its adjoint (dot test), its geometry, the DC projection, errors."""

import numpy as np
import pytest
import torch

from dlmi_utils.superres import ThickSliceForward, slice_centres, slice_profile
from dlmi_utils.superres.physics import FACTORS, PROFILES


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("factor", list(FACTORS))
def test_adjoint_matches_inner_product(profile, factor):
    rng = np.random.default_rng(factor)
    physics = ThickSliceForward(factor, profile)
    n = 5 * factor + factor // 2  # a remainder the thick slices do not cover
    x = rng.normal(size=(n, 6, 7))
    y = rng.normal(size=(n // factor, 6, 7))
    lhs = np.vdot(physics.A(x), y)
    rhs = np.vdot(x, physics.A_adjoint(y, n))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("profile", PROFILES)
def test_torch_and_numpy_agree_and_keep_their_kind(profile):
    physics = ThickSliceForward(3, profile)
    x = np.random.default_rng(0).normal(size=(2, 1, 12, 5, 4)).astype(np.float32)
    y_np = physics.A(x)
    y_t = physics.A(torch.from_numpy(x))
    assert isinstance(y_t, torch.Tensor) and y_t.dtype == torch.float32 and y_np.dtype == np.float32
    assert y_np.shape == (2, 1, 4, 5, 4)
    np.testing.assert_allclose(y_t.numpy(), y_np, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(physics.A_adjoint(y_t).numpy(), physics.A_adjoint(y_np), atol=1e-6)


def test_profiles_sum_to_one_and_gaussian_is_symmetric():
    for factor in FACTORS:
        for profile in PROFILES:
            w = slice_profile(factor, profile)
            assert w.shape == (factor,) and w.sum() == pytest.approx(1.0)
            np.testing.assert_allclose(w, w[::-1])
        gauss = slice_profile(factor, "gaussian")
        if factor > 2:  # the centre of the slab weighs most (two slices: the boxcar)
            assert gauss[(factor - 1) // 2] > gauss[0]


def test_boxcar_thick_slice_is_the_mean_of_its_slab():
    x = np.arange(12.0)[:, None, None] * np.ones((1, 2, 2))
    y = ThickSliceForward(4).A(x)
    np.testing.assert_allclose(y[:, 0, 0], [1.5, 5.5, 9.5])
    np.testing.assert_allclose(y[:, 0, 0], slice_centres(3, 4))  # a ramp's value at the centre


def test_explicit_axis():
    x = np.random.default_rng(1).normal(size=(5, 6, 8))
    along_last = ThickSliceForward(2, axis=-1).A(x)
    assert along_last.shape == (5, 6, 4)
    np.testing.assert_allclose(along_last, ThickSliceForward(2, axis=0).A(x.T).T)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("factor", [2, 4, 5])
def test_projection_is_exact_and_idempotent(profile, factor):
    rng = np.random.default_rng(3)
    physics = ThickSliceForward(factor, profile)
    x_true = rng.uniform(size=(6 * factor, 4, 5))
    y = physics.A(x_true)
    x_sr = x_true + rng.normal(scale=0.1, size=x_true.shape)
    x_dc = physics.project(x_sr, y)
    np.testing.assert_allclose(physics.A(x_dc), y, atol=1e-12)
    np.testing.assert_allclose(physics.project(x_dc, y), x_dc, atol=1e-12)
    # the true volume is in the set: projecting can only bring the estimate closer to it
    assert np.linalg.norm(x_dc - x_true) <= np.linalg.norm(x_sr - x_true)


def test_projection_is_the_nearest_consistent_volume():
    """x_dc - x_sr is in the range of A^T, so x_dc is the orthogonal projection."""
    rng = np.random.default_rng(4)
    physics = ThickSliceForward(3, "gaussian")
    x_sr, y = rng.normal(size=(9, 2, 2)), rng.normal(size=(3, 2, 2))
    x_dc = physics.project(x_sr, y)
    other = x_dc + physics.A_adjoint(np.zeros_like(y)) + rng.normal(size=x_sr.shape)
    other = physics.project(other, y)  # another volume with A x = y
    assert np.vdot(x_sr - x_dc, other - x_dc) == pytest.approx(0.0, abs=1e-10)


def test_projection_is_differentiable_in_torch():
    physics = ThickSliceForward(2)
    x = torch.randn(1, 1, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 1, 3, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: physics.project(a, y), (x,))


def test_a_2d_image_is_refused():
    with pytest.raises(ValueError, match="2D image"):
        ThickSliceForward(2).A(np.zeros((8, 8)))


@pytest.mark.parametrize("factor", [1, 0, -3, 2.5, "4"])
def test_a_factor_below_two_or_not_an_integer_is_refused(factor):
    with pytest.raises(ValueError, match="factor"):
        ThickSliceForward(factor)


def test_fewer_slices_than_the_factor_and_mismatched_shapes_are_refused():
    physics = ThickSliceForward(4)
    with pytest.raises(ValueError, match="fewer than the factor"):
        physics.A(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        physics.project(np.zeros((8, 4, 4)), np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="n_slices"):
        physics.A_adjoint(np.zeros((2, 4, 4)), n_slices=12)
