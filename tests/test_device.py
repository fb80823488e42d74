import numpy as np
import pytest
import torch

from dlmi_utils.device import get_device, seed_everything


def test_seed_everything_repeats_draws():
    rng = seed_everything(3)
    a = (torch.rand(3), np.random.rand(3), rng.random(3))
    rng = seed_everything(3)
    b = (torch.rand(3), np.random.rand(3), rng.random(3))
    assert torch.equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


def test_seed_rejects_negative():
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(-1)


def test_get_device_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("DLMI_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device().type in {"cpu", "mps"}
    assert get_device("cpu") == torch.device("cpu")


def test_asking_for_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no.*available|none is available"):
        get_device("cuda")
