import numpy as np
import pytest
import torch

from dlmi_utils.fourier import fft2c, ifft2c
from dlmi_utils.mri import MRIForward, add_smooth_phase, birdcage_maps
from dlmi_utils.mri.sampling import make_mask

H, W = 24, 20


def _random_complex(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _inner(a, b):
    """<a, b> = sum conj(a) b, in complex128."""
    if isinstance(a, torch.Tensor):
        a, b = a.numpy(), b.numpy()
    return np.vdot(a.astype(np.complex128).ravel(), b.astype(np.complex128).ravel())


def _physics(coils, dtype, kind, batch_masks=False):
    mask = make_mask("random", (H, W), 3, seed=0)
    if batch_masks:
        mask = np.stack([make_mask("random", (H, W), 3, seed=s) for s in range(2)])
    maps = birdcage_maps(4, (H, W), dtype=dtype) if coils else None
    if kind == "torch":
        mask = torch.from_numpy(mask)
        maps = None if maps is None else torch.from_numpy(maps)
    return MRIForward(mask, maps)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("coils", [False, True])
@pytest.mark.parametrize(("dtype", "rtol"), [(np.complex64, 1e-5), (np.complex128, 1e-12)])
@pytest.mark.parametrize("batch", [None, 2])
def test_adjoint_matches_inner_product(kind, coils, dtype, rtol, batch):
    physics = _physics(coils, dtype, kind)
    xshape = (H, W) if batch is None else (batch, H, W)
    yshape = xshape if not coils else xshape[:-2] + (4, H, W)
    x, y = _random_complex(xshape, dtype, 1), _random_complex(yshape, dtype, 2)
    if kind == "torch":
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    ax, aty = physics.A(x), physics.A_adjoint(y)
    assert type(ax) is type(x) and tuple(ax.shape) == yshape and tuple(aty.shape) == xshape
    assert ax.dtype == y.dtype and aty.dtype == x.dtype  # complex64 stays complex64
    lhs, rhs = _inner(ax, y), _inner(x, aty)
    assert abs(lhs - rhs) <= rtol * abs(lhs)


def test_adjoint_with_one_mask_per_image():
    physics = _physics(True, np.complex128, "numpy", batch_masks=True)
    x, y = (
        _random_complex((2, H, W), np.complex128, 3),
        _random_complex((2, 4, H, W), np.complex128, 4),
    )
    assert _inner(physics.A(x), y) == pytest.approx(_inner(x, physics.A_adjoint(y)), rel=1e-12)
    # each image sees its own mask
    k = physics.A(np.ones((2, H, W)))
    assert ((k[0, 0] != 0) != (k[1, 0] != 0)).any()


@pytest.mark.parametrize("coils", [False, True])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_full_mask_adjoint_inverts_forward(coils, kind):
    maps = birdcage_maps(6, (H, W)) if coils else None
    mask = np.ones((H, W), dtype=bool)
    x = _random_complex((3, H, W), np.complex64, 5)
    if kind == "torch":
        mask, x = torch.from_numpy(mask), torch.from_numpy(x)
        maps = None if maps is None else torch.from_numpy(maps)
    physics = MRIForward(mask, maps)
    recon = physics.zero_filled(physics.A(x))
    np.testing.assert_allclose(np.asarray(recon), np.asarray(x), atol=1e-5)
    np.testing.assert_allclose(np.asarray(physics.normal(x)), np.asarray(recon), atol=1e-6)


def test_forward_without_coils_is_masked_fft():
    mask = make_mask("equispaced", (H, W), 4, seed=0)
    x = _random_complex((H, W), np.complex128, 6)
    np.testing.assert_allclose(MRIForward(mask).A(x), fft2c(x) * mask)


def test_real_image_is_made_complex():
    physics = MRIForward(np.ones((H, W)))
    assert physics.A(np.ones((H, W), dtype=np.float32)).dtype == np.complex64
    assert physics.A(torch.ones(H, W, dtype=torch.float64)).dtype == torch.complex128


def test_birdcage_maps_normalised_and_smooth():
    maps = birdcage_maps(8, (64, 48))
    assert maps.shape == (8, 64, 48) and maps.dtype == np.complex64
    np.testing.assert_allclose((np.abs(maps) ** 2).sum(0), 1, rtol=1e-5)
    # smooth: the energy of each map lies in the lowest spatial frequencies
    energy = np.abs(fft2c(maps)) ** 2
    assert energy[:, 27:38, 19:30].sum() > 0.95 * energy.sum()
    # each coil sees its own side best
    assert np.abs(maps[0, 32, -1]) > np.abs(maps[0, 32, 0])


def test_lipschitz_bounds_normal_operator():
    physics = _physics(True, np.complex128, "numpy")
    x = _random_complex((H, W), np.complex128, 7)
    for _ in range(30):  # power iteration
        x = physics.normal(x)
        x /= np.linalg.norm(x)
    assert np.linalg.norm(physics.normal(x)) <= physics.lipschitz + 1e-9
    assert physics.lipschitz == pytest.approx(1.0)
    assert MRIForward(np.ones((H, W))).lipschitz == 1.0


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_smooth_phase_keeps_magnitude_and_breaks_hermitian_symmetry(kind):
    yy, xx = np.mgrid[:64, :64]
    image = ((yy - 32) ** 2 + (xx - 30) ** 2 < 400).astype(np.float32)
    if kind == "torch":
        image = torch.from_numpy(image)
    z = add_smooth_phase(image, seed=0)
    assert z.dtype == (torch.complex64 if kind == "torch" else np.complex64)
    z, image = np.asarray(z), np.asarray(image)
    np.testing.assert_allclose(np.abs(z), image, atol=1e-6)

    def asymmetry(img):
        k = fft2c(img.astype(np.complex128))[1:, 1:]  # centred so that -k is the flip
        return np.linalg.norm(k - np.conj(k[::-1, ::-1])) / np.linalg.norm(k)

    assert asymmetry(image) < 1e-10  # a real image has a Hermitian k-space
    assert asymmetry(z) > 0.3
    phase = np.angle(z[image > 0])
    assert np.abs(phase).max() <= np.pi / 2 + 1e-6
    smooth = np.angle(add_smooth_phase(np.ones((128, 128)), seed=0))
    assert np.abs(np.diff(smooth, axis=-1)).max() < 0.15  # radians per pixel
    assert np.abs(np.diff(smooth, axis=-2)).max() < 0.15


def test_smooth_phase_seeded_and_per_image():
    batch = np.ones((2, 32, 32))
    a, b = add_smooth_phase(batch, seed=1), add_smooth_phase(batch, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.complex128
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(add_smooth_phase(batch, seed=2), a)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_measure_adds_noise_of_the_given_level_on_sampled_entries_only(kind):
    mask = make_mask("random", (128, 128), 4, seed=0)
    x = np.zeros((128, 128), dtype=np.complex64)
    if kind == "torch":
        x, mask = torch.from_numpy(x), torch.from_numpy(mask)
    physics = MRIForward(mask)
    y = physics.measure(x, noise_sigma=0.1, seed=0)
    assert type(y) is type(x) and y.dtype == x.dtype
    y, mask = np.asarray(y), np.asarray(mask)
    assert np.all(y[~mask] == 0)
    assert np.sqrt(np.mean(np.abs(y[mask]) ** 2)) == pytest.approx(0.1, rel=0.05)
    assert np.std(y[mask].real) == pytest.approx(0.1 / np.sqrt(2), rel=0.05)
    np.testing.assert_array_equal(physics.measure(x, 0.1, seed=0), y)


def test_measure_is_the_operator_plus_the_noise_of_the_noise_module():
    from dlmi_utils.noise import add_complex_gaussian_noise

    x = _random_complex((H, W), np.complex64, 5)
    physics = _physics(False, np.complex64, "numpy")
    np.testing.assert_array_equal(physics.measure(x), physics.A(x))
    noisy = add_complex_gaussian_noise(fft2c(x), 0.3, seed=7) * physics.mask
    np.testing.assert_array_equal(physics.measure(x, 0.3, seed=7), noisy)
    coils = _physics(True, np.complex64, "numpy")
    y = coils.measure(x, 0.3, seed=7)
    assert y.shape == (4, H, W) and np.all(y[:, ~physics.mask] == 0)


@pytest.mark.parametrize("coils", [False, True])
def test_mask_kspace_zeroes_the_unsampled_entries(coils):
    physics = _physics(coils, np.complex128, "torch")
    shape = (2, 4, H, W) if coils else (2, H, W)
    y = torch.from_numpy(_random_complex(shape, np.complex128, 6))
    masked = physics.mask_kspace(y)
    torch.testing.assert_close(masked, y * physics.mask)
    torch.testing.assert_close(physics.A_adjoint(masked), physics.A_adjoint(y))


@pytest.mark.parametrize("shape", [(8, 6), (7, 6), (9, 5)])
def test_fourier_layout_agrees_with_the_centred_transforms(shape):
    mask = torch.from_numpy(make_mask("random", shape, 2, seed=0))
    layout = MRIForward(mask).fourier_layout(torch.zeros(1, dtype=torch.complex128))
    assert layout.plain == (shape[0] % 2 == 0 and shape[1] % 2 == 0)
    x = torch.from_numpy(_random_complex((2, *shape), np.complex128, 8))
    torch.testing.assert_close(layout.fft(x), layout.to_layout(fft2c(x)))
    torch.testing.assert_close(layout.ifft(layout.to_layout(fft2c(x))), x)
    torch.testing.assert_close(layout.from_layout(layout.to_layout(fft2c(x))), fft2c(x))
    torch.testing.assert_close(layout.ifft(layout.mask * layout.fft(x)), ifft2c(fft2c(x) * mask))
    k = torch.from_numpy(_random_complex((2, *shape), np.complex128, 9))
    # from_layout is the adjoint of to_layout: <to(a), b> = <a, from(b)>
    assert _inner(layout.to_layout(fft2c(x)), k) == pytest.approx(
        _inner(fft2c(x), layout.from_layout(k)), rel=1e-12)
    with pytest.raises(ValueError, match="coil"):
        MRIForward(mask, birdcage_maps(2, shape)).fourier_layout(x)


def test_image_shape_not_matching_mask_rejected():
    physics = MRIForward(np.ones((H, W)))
    with pytest.raises(ValueError, match=r"\(H, W\) = \(24, 20\)"):
        physics.A(np.ones((W, H)))
    with pytest.raises(ValueError, match="expected k-space"):
        physics.A_adjoint(np.ones((2, 3, H, W)))


def test_coil_count_mismatch_rejected():
    physics = MRIForward(np.ones((H, W)), birdcage_maps(4, (H, W)))
    with pytest.raises(ValueError, match="3 coils, the sensitivities 4"):
        physics.A_adjoint(np.ones((3, H, W), dtype=np.complex64))


def test_bad_mask_and_maps_rejected():
    with pytest.raises(ValueError, match=r"mask must be \(H, W\)"):
        MRIForward(np.ones(5))
    with pytest.raises(ValueError, match="must share"):
        MRIForward(np.ones((H, W)), birdcage_maps(2, (H + 1, W)))
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        MRIForward([[1, 0]])
    with pytest.raises(ValueError, match="noise_sigma"):
        MRIForward(np.ones((H, W))).measure(np.ones((H, W)), noise_sigma=-1.0)
