import numpy as np
import pytest
import torch

from dlmi_utils.finite_differences import gradient_2d, gradient_2d_adjoint


def _pair(kind: str, shape: tuple[int, ...]):
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(shape), rng.standard_normal((2, *shape))
    if kind == "torch":
        return torch.from_numpy(x), torch.from_numpy(g)
    return x, g


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("shape", [(7, 9), (3, 5, 6)])
def test_adjoint_matches_inner_product(kind, shape):
    x, g = _pair(kind, shape)
    lhs = float((gradient_2d(x) * g).sum())
    rhs = float((x * gradient_2d_adjoint(g)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_adjoint_matches_inner_product_for_complex_images():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    g = rng.standard_normal((2, 6, 5)) + 1j * rng.standard_normal((2, 6, 5))
    lhs = np.vdot(gradient_2d(x), g)
    rhs = np.vdot(x, gradient_2d_adjoint(g))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_ramp_has_known_differences_and_zero_last_row_and_column():
    x = np.array([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0], [20.0, 21.0, 22.0], [30.0, 31.0, 32.0]])
    g = gradient_2d(x)
    assert g.shape == (2, 4, 3)
    np.testing.assert_array_equal(g[0, :-1], 10.0)
    np.testing.assert_array_equal(g[0, -1], 0.0)
    np.testing.assert_array_equal(g[1, :, :-1], 1.0)
    np.testing.assert_array_equal(g[1, :, -1], 0.0)
    # D^T D x = -Laplacian x (Neumann): zero inside a ramp, non-zero on its border
    np.testing.assert_array_equal(gradient_2d_adjoint(g)[1:-1, 1:-1], 0.0)
    np.testing.assert_array_equal(gradient_2d_adjoint(g)[0], [-11.0, -10.0, -9.0])


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_constant_image_has_zero_gradient(kind):
    x = np.full((5, 8), 3.5)
    x = torch.from_numpy(x) if kind == "torch" else x
    assert float(abs(gradient_2d(x)).max()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_torch_input_gives_torch_output_of_its_dtype(dtype):
    x = torch.ones(4, 6, dtype=dtype)
    g = gradient_2d(x)
    assert isinstance(g, torch.Tensor) and g.dtype == dtype and g.shape == (2, 4, 6)
    back = gradient_2d_adjoint(g)
    assert isinstance(back, torch.Tensor) and back.dtype == dtype and back.shape == (4, 6)


def test_numpy_input_gives_numpy_output_of_its_dtype():
    g = gradient_2d(np.ones((4, 6), dtype=np.float32))
    assert isinstance(g, np.ndarray) and g.dtype == np.float32
    assert gradient_2d_adjoint(g).dtype == np.float32


def test_autograd_goes_through_both_in_float64():
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gradient_2d, (x,))
    assert torch.autograd.gradcheck(gradient_2d_adjoint, (g,))


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        gradient_2d([[0.0, 1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        gradient_2d(np.zeros(5))
    with pytest.raises(ValueError, match=r"\(2, \.\.\., H, W\)"):
        gradient_2d_adjoint(np.zeros((3, 4, 5)))
