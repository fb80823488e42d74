import numpy as np
import pytest

from dlmi_utils.fourier import ifft2c
from dlmi_utils.mri.sampling import (
    MASK_KINDS,
    EquispacedCartesianMask,
    PoissonDiscMask,
    RadialMask,
    RandomCartesianMask,
    VariableDensityCartesianMask,
    center_columns,
    effective_acceleration,
    make_mask,
    point_spread_function,
    psf_sidelobe_to_peak,
)

SHAPES = [(256, 256), (255, 257), (96, 64)]
CARTESIAN = ["random", "equispaced", "variable_density"]


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("acceleration", [2, 4, 6.5, 8])
def test_every_draw_meets_the_acceleration(kind, shape, acceleration):
    seeds = range(2) if kind == "poisson" else range(10)
    target = shape[0] * shape[1] / acceleration
    for seed in seeds:
        mask = make_mask(kind, shape, acceleration, seed=seed)
        assert mask.shape == shape and mask.dtype == bool
        if kind == "radial" and min(shape) < 128:
            # radial meets it within half a spoke, more than 3% of a small image
            assert abs(mask.sum() - target) <= max(shape)
        else:
            assert effective_acceleration(mask) == pytest.approx(acceleration, rel=0.03)


@pytest.mark.parametrize("kind", CARTESIAN)
@pytest.mark.parametrize("shape", [(64, 64), (63, 67)])
def test_cartesian_centre_fully_sampled_and_columns_repeated(kind, shape):
    mask = make_mask(kind, shape, 4, center_fraction=0.1, seed=3)
    w = shape[1]
    n_center = round(0.1 * w)
    centre = center_columns(w, n_center)
    assert mask[:, centre].all()
    assert centre.start <= w // 2 < centre.stop  # the DC column of fft2c is inside
    assert (mask == mask[:1]).all()  # whole columns: the read-out is fully sampled


def test_poisson_calibration_square_fully_sampled():
    mask = PoissonDiscMask(5, calib_fraction=0.1)((128, 96), seed=1)
    side = round(0.1 * 96)
    assert mask[center_columns(128, side), center_columns(96, side)].all()


def test_poisson_density_falls_towards_high_frequencies():
    mask = PoissonDiscMask(4, calib_fraction=0.0, variable_density=2.0)((128, 128), seed=0)
    inner = mask[48:80, 48:80].mean()
    outer = np.concatenate([mask[:16].ravel(), mask[-16:].ravel()]).mean()
    assert inner > 2 * outer


def test_uniform_poisson_points_are_spread():
    mask = PoissonDiscMask(6, calib_fraction=0.0, variable_density=0.0)((96, 96), seed=0)
    # no two neighbours (4-connectivity) sampled: a minimum distance, unlike i.i.d. points
    pairs = (mask[1:] & mask[:-1]).sum() + (mask[:, 1:] & mask[:, :-1]).sum()
    assert pairs <= 0.02 * mask.sum()


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_same_seed_same_mask_other_seed_other_mask(kind):
    a = make_mask(kind, (128, 96), 4, seed=7)
    b = make_mask(kind, (128, 96), 4, seed=7)
    c = make_mask(kind, (128, 96), 4, seed=8)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_achieved_acceleration_recorded():
    fn = RandomCartesianMask(4, 0.08)
    mask = fn((64, 100), seed=0)
    assert fn.achieved_acceleration == effective_acceleration(mask) == 100 / 25


def test_random_mask_selects_columns_uniformly():
    width, fn = 100, RandomCartesianMask(4, 0.1)
    counts = sum(fn((1, width), seed=s)[0].astype(int) for s in range(2000))
    others = np.ones(width, dtype=bool)
    others[center_columns(width, 10)] = False
    p = counts[others] / 2000
    # the fastMRI probability (N / R - N_low) / (N - N_low) for every non-central column
    assert p == pytest.approx(np.full(others.sum(), (25 - 10) / 90), abs=0.05)


def test_variable_density_prefers_low_frequencies():
    width, fn = 128, VariableDensityCartesianMask(4, 0.04, power=3)
    counts = sum(fn((1, width), seed=s)[0].astype(int) for s in range(300))
    near = counts[width // 2 - 20 : width // 2 - 5].mean()
    far = np.concatenate([counts[:15], counts[-15:]]).mean()
    assert near > 3 * far


def test_equispaced_columns_regularly_spaced():
    mask = EquispacedCartesianMask(4, center_fraction=0.0)((8, 128), seed=0)
    cols = np.flatnonzero(mask[0])
    assert len(cols) == 32 and set(np.diff(cols)) == {4}


def test_radial_spokes_pass_through_centre_and_golden_angle_differs():
    uniform = RadialMask(n_lines=16)((64, 64), seed=0)
    golden = RadialMask(n_lines=16, golden=True)((64, 64), seed=0)
    assert uniform[32, 32] and golden[32, 32]
    assert (uniform != golden).any()
    assert RadialMask(n_lines=32)((64, 64), seed=0).sum() > uniform.sum()


def test_equispaced_aliasing_coherent_random_incoherent():
    equi = [psf_sidelobe_to_peak(make_mask("equispaced", (256, 256), 4, seed=s)) for s in range(5)]
    rand = [psf_sidelobe_to_peak(make_mask("random", (256, 256), 4, seed=s)) for s in range(5)]
    pois = psf_sidelobe_to_peak(make_mask("poisson", (256, 256), 4, seed=0))
    assert min(equi) > 0.5 and max(rand) < 0.45 and min(equi) > max(rand) + 0.1
    assert pois < min(rand)  # 2D sampling spreads the aliasing over both axes


def test_equispaced_without_centre_folds_into_copies():
    mask = EquispacedCartesianMask(4, center_fraction=0.0)((64, 64), seed=0)
    assert psf_sidelobe_to_peak(mask) == pytest.approx(1.0)


def test_psf_is_normalised_and_centred():
    mask = make_mask("random", (64, 80), 4, seed=0)
    psf = point_spread_function(mask)
    assert psf.max() == 1.0 and psf[32, 40] == 1.0
    raw = np.abs(ifft2c(mask.astype(float)))
    np.testing.assert_allclose(psf, raw / raw.max())


@pytest.mark.parametrize("acceleration", [0.5, 0, -2, float("nan")])
def test_acceleration_below_one_rejected(acceleration):
    with pytest.raises(ValueError, match="acceleration must be >= 1"):
        RandomCartesianMask(acceleration, 0.08)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_center_fraction_outside_unit_interval_rejected(fraction):
    with pytest.raises(ValueError, match=r"center_fraction must be in \[0, 1\)"):
        EquispacedCartesianMask(4, fraction)


def test_center_larger_than_budget_rejected():
    with pytest.raises(ValueError, match="lower center_fraction"):
        RandomCartesianMask(8, 0.3)((64, 64), seed=0)


@pytest.mark.parametrize("shape", [(64,), (2, 64, 64)])
def test_non_2d_shape_rejected(shape):
    with pytest.raises(ValueError, match="shape must be 2D"):
        RandomCartesianMask(4, 0.08)(shape, seed=0)


def test_unknown_kind_rejected():
    with pytest.raises(ValueError, match="choose one of"):
        make_mask("spiral", (64, 64), 4)


def test_radial_needs_acceleration_or_lines():
    with pytest.raises(ValueError, match="exactly one of"):
        RadialMask()
    with pytest.raises(ValueError, match="exactly one of"):
        RadialMask(acceleration=4, n_lines=10)
