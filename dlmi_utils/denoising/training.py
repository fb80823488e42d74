"""How a batch of noisy patches feeds a noise-aware denoiser: supervised or by SURE.

The batches are ``((y, sigma), x)`` (:class:`~dlmi_utils.denoising.patches.NoisyPatches`
with ``with_level=True``): noisy patches ``(B, 1, P, P)``, the std of their noise ``(B,)``
and the clean patches.

- :func:`noise_aware_step` is a ``step`` of :func:`dlmi_utils.train.fit`:
  ``(model(y, sigma), x)``, scored by the MSE against the clean patch (supervised);
- :func:`sure_loss_step` is a ``loss_step``: the Monte-Carlo SURE of ``model(., sigma)`` at
  ``y`` (:func:`dlmi_utils.losses.mc_sure_loss`). It never reads ``x``: the network learns
  from noisy images only, and ``x`` serves validation alone; :func:`relative_sure_loss_step`
  weighs every noise level the same.
"""

from __future__ import annotations

import torch
from torch import nn

from dlmi_utils.losses import mc_sure_loss
from dlmi_utils.train import Batch


def _unpack(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    try:
        (y, sigma), x = batch
        if y.ndim != 4 or sigma.ndim > 1:
            raise ValueError
    except (TypeError, ValueError, AttributeError):
        raise TypeError("noise-aware batches are ((noisy, sigma), clean) with noisy (B, C, H, W)"
                        " and sigma (B,): build them with NoisyPatches(..., with_level=True)"
                        ) from None
    return y.to(device), sigma.to(device), x.to(device)


def noise_aware_step(model: nn.Module, batch: Batch, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``((y, sigma), x)`` -> ``(model(y, sigma), x)`` on ``device``."""
    y, sigma, x = _unpack(batch, device)
    return model(y, sigma), x


def sure_loss_step(model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
    """The MC-SURE loss of ``model(., sigma)`` on the noisy patches of ``batch`` (the clean
    patches are not used)."""
    y, sigma, _ = _unpack(batch, device)
    return mc_sure_loss(lambda z: model(z, sigma), y, sigma)


def relative_sure_loss_step(model: nn.Module, batch: Batch, device: torch.device
                            ) -> torch.Tensor:
    """The mean over patches of each one's MC-SURE divided by its ``sigma^2``: an unbiased
    estimate of the MSE relative to the noise's variance. Over a range of levels the plain
    mean is ruled by the noisiest patches (SURE scales as ``sigma^2``), and a net trained on
    it may learn to leave the least noisy ones as they are."""
    y, sigma, _ = _unpack(batch, device)
    per_patch = mc_sure_loss(lambda z: model(z, sigma), y, sigma, reduction="none")
    return (per_patch / sigma.reshape(-1) ** 2).mean()
