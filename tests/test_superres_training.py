"""Patches of the training region, and a few training steps that lower the loss."""

import numpy as np
import pytest
import torch

from dlmi_utils.superres import (
    DeepResolve,
    PatchSampler,
    ThickSliceForward,
    interpolate_z,
    train_steps,
)


def _volume():
    rng = np.random.default_rng(0)
    vol = np.zeros((48, 40, 40), np.float32)
    vol[4:44, 4:36, 4:36] = 0.5 + 0.3 * np.sin(np.arange(40) / 3)[:, None, None]
    return vol + 0.05 * rng.random(vol.shape).astype(np.float32) * (vol > 0)


def test_sampler_is_reproducible_and_stays_in_its_ranges():
    vol = _volume()
    vol[:, 20:] = -1.0  # a region the sampler must never read
    draws = [PatchSampler(vol, [slice(0, 20)], 4, np.random.default_rng(5), batch=3,
                          patch=12, slabs=3)() for _ in range(2)]
    assert draws[0].shape == (3, 1, 12, 12, 12) and draws[0].dtype == torch.float32
    assert torch.equal(draws[0], draws[1])
    assert draws[0].min() >= 0


def test_sampler_refuses_patches_that_do_not_fit():
    with pytest.raises(ValueError, match="wide"):
        PatchSampler(_volume(), [slice(0, 10)], 4, np.random.default_rng(0), patch=16)
    with pytest.raises(ValueError, match="do not fit"):
        PatchSampler(_volume(), [slice(0, 40)], 4, np.random.default_rng(0), slabs=20)


def test_a_few_steps_lower_the_error_on_held_out_patches():
    torch.manual_seed(0)
    vol = _volume()
    physics = ThickSliceForward(4)
    held_out = PatchSampler(vol, [slice(0, 40)], 4, np.random.default_rng(9), batch=4,
                            patch=16, slabs=4)()

    def error(model):
        with torch.no_grad():
            return float(torch.mean((model(interpolate_z(physics.A(held_out), 4)) - held_out)
                                    ** 2))

    sampler = PatchSampler(vol, [slice(0, 40)], 4, np.random.default_rng(1), batch=2,
                           patch=16, slabs=4)
    model = DeepResolve(4, n_layers=3, n_filters=8)
    before = error(model)  # the cubic interpolation's: the last layer starts at zero
    losses = train_steps(model, sampler, physics, steps=60, lr=3e-3)
    assert len(losses) == 60 and not model.training
    assert error(model) < 0.8 * before
    with pytest.raises(ValueError, match="factor"):
        train_steps(model, sampler, ThickSliceForward(2), steps=1)
