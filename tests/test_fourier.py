import numpy as np
import pytest
import torch

from dlmi_utils.fourier import (
    channels_to_complex,
    complex_to_channels,
    complex_to_channels_last,
    fft2c,
    from_fft_layout,
    ifft2c,
    to_fft_layout,
)


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((3, 32, 40)) + 1j * rng.standard_normal((3, 32, 40))).astype(
        np.complex64
    )


def test_matches_fastmri_convention(image):
    expected = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(image, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(fft2c(image), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(32, 40), (33, 41), (2, 16, 17)])
def test_inverse_recovers_image(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    np.testing.assert_allclose(ifft2c(fft2c(x)), x, atol=1e-10)


def test_parseval_holds(image):
    assert np.linalg.norm(fft2c(image)) == pytest.approx(np.linalg.norm(image), rel=1e-5)


@pytest.mark.parametrize("shape", [(32, 40), (31, 45)])
def test_dc_term_at_centre(shape):
    k = fft2c(np.ones(shape))
    h, w = shape
    assert abs(k[h // 2, w // 2]) == pytest.approx(np.sqrt(h * w))
    k[h // 2, w // 2] = 0
    assert np.abs(k).max() < 1e-9


def test_torch_matches_numpy(image):
    kt = fft2c(torch.from_numpy(image))
    assert isinstance(kt, torch.Tensor) and kt.dtype == torch.complex64
    np.testing.assert_allclose(kt.numpy(), fft2c(image), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ifft2c(kt).numpy(), image, rtol=1e-5, atol=1e-5)


def test_dtypes_follow_precision():
    assert fft2c(np.zeros((4, 4), np.float32)).dtype == np.complex64
    assert fft2c(np.zeros((4, 4), np.float64)).dtype == np.complex128
    assert fft2c(torch.zeros(4, 4, dtype=torch.float64)).dtype == torch.complex128


def test_torch_fft_is_differentiable():
    x = torch.randn(1, 8, 8, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: fft2c(v).abs().sum(), (x,))


def test_bad_input_has_clear_error():
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        fft2c(np.zeros(5))
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        fft2c([[1, 2], [3, 4]])


def test_channels_round_trip():
    x = torch.randn(2, 8, 8, dtype=torch.complex64)
    ch = complex_to_channels(x)
    assert ch.shape == (2, 2, 8, 8)
    assert torch.equal(channels_to_complex(ch), x)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        channels_to_complex(torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize("shape", [(2, 8, 6), (10, 4), (3, 2, 130)])
def test_fft_layout_is_the_order_of_plain_fft2(shape):
    x = torch.randn(*shape, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(to_fft_layout(fft2c(x)), torch.fft.fft2(x, norm="ortho"))
    # and back: the plain inverse FFT of the reordered k-space is the image
    torch.testing.assert_close(torch.fft.ifft2(to_fft_layout(fft2c(x)), norm="ortho"), x)


def test_fft_layout_needs_even_sizes():
    with pytest.raises(ValueError, match="even height and width"):
        to_fft_layout(torch.zeros(4, 5, dtype=torch.complex64))
    with pytest.raises(TypeError, match="torch tensor"):
        to_fft_layout(np.zeros((4, 4)))


def test_complex_to_channels_last_is_a_channels_last_view():
    z = torch.randn(2, 6, 4, dtype=torch.complex64)
    x = complex_to_channels_last(z)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert x.data_ptr() == z.data_ptr()  # no copy
    torch.testing.assert_close(x, complex_to_channels(z))
    with pytest.raises(TypeError, match="complex"):
        complex_to_channels_last(torch.zeros(2, 6, 4))


def test_from_fft_layout_inverts_to_fft_layout():
    k = torch.randn(3, 6, 8, dtype=torch.complex128)
    torch.testing.assert_close(from_fft_layout(to_fft_layout(k)), k)
    with pytest.raises(ValueError, match="even"):
        from_fft_layout(torch.zeros(4, 5, dtype=torch.complex64))
