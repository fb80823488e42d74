"""Training the super-resolution network on patches of thin slices (the script and the lab).

:class:`PatchSampler` draws thin-slice patches ``(B, 1, K F, P, P)`` from the training
region, augmented (flips along each axis, ``Y`` and ``X`` swapped, intensity scaled by a
factor in [0.8, 1.2]: the thick-slice operator commutes with all of them, since each is
applied *before* the thick slices are made). :func:`train_steps` makes ``y = A x`` and the
cubic interpolation of each batch and fits ``x`` with the mean squared error (Adam, cosine
learning rate): the recipe of ``scripts/train_superres.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from dlmi_utils.superres.interpolation import interpolate_z
from dlmi_utils.superres.models import DeepResolve
from dlmi_utils.superres.physics import ThickSliceForward

MIN_BRAIN = 0.3  # a patch holds at least this fraction of brain voxels


class PatchSampler:
    """Random augmented patches of ``volume`` ``(Z, Y, X)`` with ``y`` in one of ``ranges``.

    ``sampler()`` returns ``(batch, 1, slabs * factor, patch, patch)`` float32; the draws
    come from ``rng`` only, so a seeded generator repeats them.
    """

    def __init__(self, volume: np.ndarray, ranges: list[slice], factor: int,
                 rng: np.random.Generator, batch: int = 4, patch: int = 32, slabs: int = 12):
        self.ranges = [r for r in ranges if r.stop - r.start >= patch]
        if not self.ranges:
            raise ValueError(f"no range of y is {patch} voxels wide: use a smaller patch")
        self.volume, self.rng, self.batch, self.patch = volume, rng, batch, patch
        self.depth = slabs * factor
        if self.depth > volume.shape[0]:
            raise ValueError(f"patches of {self.depth} slices do not fit in {volume.shape[0]}")

    def _one(self) -> np.ndarray:
        rng, p = self.rng, self.patch
        while True:
            ys = self.ranges[rng.integers(len(self.ranges))]
            y0 = rng.integers(ys.start, ys.stop - p + 1)
            z0 = rng.integers(0, self.volume.shape[0] - self.depth + 1)
            x0 = rng.integers(0, self.volume.shape[2] - p + 1)
            patch = self.volume[z0:z0 + self.depth, y0:y0 + p, x0:x0 + p]
            if (patch > 0).mean() >= MIN_BRAIN:
                break
        for axis in range(3):
            if rng.random() < 0.5:
                patch = np.flip(patch, axis)
        if rng.random() < 0.5:
            patch = patch.transpose(0, 2, 1)
        return np.ascontiguousarray(patch) * rng.uniform(0.8, 1.2)

    def __call__(self) -> torch.Tensor:
        batch = np.stack([self._one() for _ in range(self.batch)])[:, None]
        return torch.from_numpy(batch.astype(np.float32))


def train_steps(model: DeepResolve, sampler: PatchSampler, physics: ThickSliceForward,
                steps: int, lr: float = 1e-3, device: torch.device | str = "cpu",
                callback=None) -> list[float]:
    """``steps`` Adam steps on the MSE of ``model(cubic(A x))`` against ``x``; the losses.

    ``physics`` acts on ``(B, 1, Z, Y, X)`` (``axis=-3``); the learning rate follows a cosine
    from ``lr`` to 0. ``callback(step, loss)``, if given, runs after each step (validation,
    logging).
    """
    if physics.factor != model.factor:
        raise ValueError(f"the network is for factor {model.factor}, the acquisition has "
                         f"factor {physics.factor}")
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    for step in range(1, steps + 1):
        x = sampler().to(device)
        with torch.no_grad():
            x_int = interpolate_z(physics.A(x), physics.factor, "cubic")
        loss = torch.mean((model(x_int) - x) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step, losses[-1])
    model.eval()
    return losses
