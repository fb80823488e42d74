"""The CT projector: exact adjoint, gradients, agreement with scikit-image, geometry, errors."""

import math
import warnings

import numpy as np
import pytest
import torch
from skimage.transform import iradon, radon

from dlmi_utils.ct import FILTERS, ParallelBeamProjector, hu_to_mu
from dlmi_utils.data.ct import load_ct_slice

GEOMETRIES = {
    "even, 180 degrees": dict(shape=(16, 16), angles=12),
    "odd, circle": dict(shape=(15, 15), angles=10, circle=True),
    "rectangular, any angles": dict(shape=(10, 13), angles=[3.0, 45, 50, 90, 91.5, 135, 170,
                                                            180, 250, 359.9, -30]),
    "few detectors": dict(shape=(12, 12), angles=9, n_detectors=7),
    "many detectors": dict(shape=(12, 12), angles=6, n_detectors=40),
}


def _relative_error(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _joseph_reference(x: np.ndarray, angles_deg, n_detectors: int) -> np.ndarray:
    """Joseph's projector written out ray by ray (skimage's geometry), for any angle."""
    h, w = x.shape
    ci, cj, kc = h // 2, w // 2, n_detectors // 2
    out = np.zeros((len(angles_deg), n_detectors))
    for a, theta in enumerate(np.deg2rad(angles_deg)):
        cos, sin = math.cos(theta), math.sin(theta)
        for k in range(n_detectors):
            t = k - kc  # the ray (j - cj) cos - (i - ci) sin = t
            if abs(cos) >= abs(sin):  # one sample per row, between two columns
                for i in range(h):
                    col = cj + (t + (i - ci) * sin) / cos
                    for j in (math.floor(col), math.floor(col) + 1):
                        if 0 <= j < w:
                            out[a, k] += max(0.0, 1 - abs(col - j)) * x[i, j] / abs(cos)
            else:  # one sample per column, between two rows
                for j in range(w):
                    row = ci + ((j - cj) * cos - t) / sin
                    for i in (math.floor(row), math.floor(row) + 1):
                        if 0 <= i < h:
                            out[a, k] += max(0.0, 1 - abs(row - i)) * x[i, j] / abs(sin)
    return out


@pytest.fixture(scope="module")
def real_slice():
    """The attenuation of a real CT slice (a vertebra, 128 x 128) and its disc."""
    mu = hu_to_mu(load_ct_slice("ct_small").hu).astype(np.float64)
    i, j = np.mgrid[:128, :128] - 64
    return mu, i**2 + j**2 <= 64**2


@pytest.mark.parametrize("geometry", list(GEOMETRIES), ids=list(GEOMETRIES))
@pytest.mark.parametrize("batched", [False, True], ids=["unbatched", "batched"])
def test_adjoint_matches_inner_product(geometry, batched):
    physics = ParallelBeamProjector(**GEOMETRIES[geometry])
    rng = np.random.default_rng(0)
    batch = (3,) if batched else ()
    x = rng.normal(size=batch + physics.shape)
    y = rng.normal(size=batch + physics.sinogram_shape)
    assert np.vdot(physics.A(x), y) == pytest.approx(np.vdot(x, physics.A_adjoint(y)), rel=1e-12)
    x32, y32 = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    lhs = torch.sum(physics.A(x32) * y32).item()
    assert lhs == pytest.approx(torch.sum(x32 * physics.A_adjoint(y32)).item(), rel=1e-5)


def test_gradients_are_the_adjoints_in_float64():
    physics = ParallelBeamProjector((5, 6), [0.0, 60, 100, 150])
    x = torch.randn(1, 5, 6, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, *physics.sinogram_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(physics.A, (x,))  # the whole Jacobian, column by column
    # the others by random projections u^T J v: a few calls instead of one per entry
    assert torch.autograd.gradcheck(physics.A_adjoint, (y,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda s: physics.fbp(s, "hann"), (y,), fast_mode=True)
    assert torch.autograd.gradgradcheck(physics.A, (x,), fast_mode=True)


@pytest.mark.parametrize("name", list(GEOMETRIES), ids=list(GEOMETRIES))
def test_projection_is_josephs_method_at_every_angle(name):
    geometry = GEOMETRIES[name]
    physics = ParallelBeamProjector(**geometry)
    x = np.random.default_rng(1).normal(size=physics.shape)
    if physics.circle:  # the projector sees the inscribed disc only
        h, w = physics.shape
        i, j = np.mgrid[:h, :w]
        x[(i - h // 2) ** 2 + (j - w // 2) ** 2 > (min(h, w) // 2) ** 2] = 0
    expected = _joseph_reference(x, physics.angles, physics.n_detectors)
    np.testing.assert_allclose(physics.A(x), expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("circle", [True, False], ids=["circle", "whole image"])
def test_projection_matches_skimage_radon_on_a_real_slice(real_slice, circle):
    mu, disc = real_slice
    x = mu * disc if circle else mu
    theta = np.arange(180) * 1.0
    physics = ParallelBeamProjector(x.shape, 180, circle=circle)
    expected = radon(x, theta, circle=circle).T
    assert physics.sinogram_shape == expected.shape
    assert _relative_error(physics.A(x), expected) < 0.01


@pytest.mark.parametrize("filter_name", FILTERS)
@pytest.mark.parametrize("circle", [True, False], ids=["circle", "whole image"])
def test_fbp_matches_skimage_iradon_on_a_real_slice(real_slice, filter_name, circle):
    mu, disc = real_slice
    theta = np.arange(180) * 1.0
    sinogram = radon(mu * disc if circle else mu, theta, circle=circle)
    expected = iradon(sinogram, theta, circle=circle, filter_name=filter_name)
    physics = ParallelBeamProjector(mu.shape, 180, circle=circle)
    assert _relative_error(physics.fbp(sinogram.T, filter_name), expected) < 0.01


def test_fbp_of_the_projection_recovers_the_image(real_slice):
    mu, disc = real_slice
    physics = ParallelBeamProjector(mu.shape, 180)
    recon = physics.fbp(physics.A(mu))
    inner = np.zeros_like(disc)
    inner[16:-16, 16:-16] = True  # away from the borders, which FBP of a crop gets wrong
    assert _relative_error(recon[inner], mu[inner]) < 0.05


def test_projection_of_a_disc_is_its_chord_length():
    n, radius = 64, 24.0
    i, j = np.mgrid[:n, :n] - n // 2
    disc = (i**2 + j**2 <= radius**2).astype(np.float64)
    physics = ParallelBeamProjector((n, n), [0.0, 17.0, 45.0, 71.0, 120.0])
    t = np.arange(physics.n_detectors) - physics.n_detectors // 2
    chord = 2 * np.sqrt(np.maximum(radius**2 - t**2, 0))
    central = np.abs(t) < 0.8 * radius  # the edge of a pixelated disc is ragged
    np.testing.assert_allclose(physics.A(disc)[:, central], np.broadcast_to(
        chord[central], (5, central.sum())), rtol=0.03, atol=0.5)


def test_opposite_angles_give_flipped_projections():
    physics = ParallelBeamProjector((11, 11), [20.0, 200.0, 70.0, 250.0], n_detectors=15)
    y = physics.A(np.random.default_rng(2).random((11, 11)))
    np.testing.assert_allclose(y[1], y[0, ::-1], atol=1e-5)
    np.testing.assert_allclose(y[3], y[2, ::-1], atol=1e-5)


def test_circle_ignores_the_pixels_outside_the_disc():
    physics = ParallelBeamProjector((16, 16), 8, circle=True)
    corner = np.zeros((16, 16), np.float32)
    corner[0, 0] = 1.0
    assert np.abs(physics.A(corner)).max() == 0
    assert physics.fbp(np.ones(physics.sinogram_shape))[0, 0] == 0


def test_numpy_and_torch_agree_and_keep_their_kind():
    physics = ParallelBeamProjector((12, 12), 8)
    x = np.random.default_rng(3).random((2, 12, 12)).astype(np.float32)
    y_np, y_t = physics.A(x), physics.A(torch.from_numpy(x))
    assert isinstance(y_np, np.ndarray) and y_np.dtype == np.float32
    assert isinstance(y_t, torch.Tensor) and y_t.dtype == torch.float32
    assert y_np.shape == (2, 8, 17) and physics.A(x[0]).shape == (8, 17)
    np.testing.assert_allclose(y_t.numpy(), y_np, atol=1e-6)
    assert physics.A(x.astype(np.float64)).dtype == np.float64
    assert physics.A(torch.from_numpy(x).double()).dtype == torch.float64
    assert physics.fbp(torch.from_numpy(y_np)).shape == (2, 12, 12)
    assert physics.A((x > 0.5)[0]).dtype == np.float32  # bool and integer images are made float


def test_default_detectors_follow_skimage():
    assert ParallelBeamProjector((64, 64), 10).n_detectors == math.ceil(64 * math.sqrt(2))
    assert ParallelBeamProjector((64, 64), 10, circle=True).n_detectors == 64
    physics = ParallelBeamProjector((8, 8), 4)
    np.testing.assert_allclose(physics.angles, [0, 45, 90, 135])
    assert physics.sinogram_shape == (4, 12)


def test_projection_warns_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        physics = ParallelBeamProjector((9, 9), 4)
        physics.fbp(physics.A(torch.ones(9, 9)))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: p.A(np.zeros((12, 13))), ValueError, r"expected an image \(12, 12\)"),
        (lambda p: p.A(np.zeros((1, 2, 12, 12))), ValueError, "got shape"),
        (lambda p: p.A_adjoint(np.zeros((12, 12))), ValueError, "expected a sinogram"),
        (lambda p: p.A(np.zeros((12, 12), complex)), TypeError, "real values"),
        (lambda p: p.A(np.full((12, 12), np.nan)), ValueError, "NaN or inf"),
        (lambda p: p.fbp(torch.full(p.sinogram_shape, np.inf)), ValueError, "NaN or inf"),
        (lambda p: p.A([[0.0] * 12] * 12), TypeError, "numpy array or a torch tensor"),
        (lambda p: p.fbp(np.zeros(p.sinogram_shape), "gaussian"), ValueError, "unknown FBP"),
    ],
    ids=["wrong image shape", "too many axes", "image as sinogram", "complex", "nan", "inf",
         "list", "unknown filter"],
)
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(ParallelBeamProjector((12, 12), 6))


BAD_GEOMETRIES = {
    "int shape": dict(shape=12, angles=4),
    "1-d shape": dict(shape=(12,), angles=4),
    "empty shape": dict(shape=(12, 0), angles=4),
    "no angles": dict(shape=(12, 12), angles=0),
    "empty angles": dict(shape=(12, 12), angles=[]),
    "2-d angles": dict(shape=(12, 12), angles=[[1.0]]),
    "nan angle": dict(shape=(12, 12), angles=[0.0, np.nan]),
    "no detectors": dict(shape=(12, 12), angles=4, n_detectors=0),
}


@pytest.mark.parametrize("name", list(BAD_GEOMETRIES), ids=list(BAD_GEOMETRIES))
def test_bad_geometry_raises_a_clear_error(name):
    with pytest.raises(ValueError, match="shape|angles|n_detectors"):
        ParallelBeamProjector(**BAD_GEOMETRIES[name])
