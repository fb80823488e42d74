"""Denoising: residual CNN denoisers, and the tools to train and apply them to whole images.

- ``models``: DnCNN, the dilated (IRCNN) denoiser, a multi-scale residual U-Net, their
  receptive field and the shipped weights;
- ``tiling``: a whole film denoised in overlapping tiles;
- ``wiener``: BM3D's empirical Wiener step guided by any first estimate.
"""

from dlmi_utils.denoising import models, tiling, wiener
from dlmi_utils.denoising.models import (
    DilatedDenoiser,
    DnCNN,
    ResUNetDenoiser,
    fold_batch_norm,
    load_denoiser,
    pretrained_denoiser,
    receptive_field,
)
from dlmi_utils.denoising.tiling import predict_tiled
from dlmi_utils.denoising.wiener import wiener_refine

__all__ = [
    "DilatedDenoiser",
    "DnCNN",
    "ResUNetDenoiser",
    "fold_batch_norm",
    "load_denoiser",
    "models",
    "predict_tiled",
    "pretrained_denoiser",
    "receptive_field",
    "tiling",
    "wiener",
    "wiener_refine",
]
