"""Denoising: residual CNN denoisers, and the tools to train and apply them to whole images.

- ``models``: DnCNN, the dilated (IRCNN) denoiser, the noise-aware net told the noise level
  (FFDNet), a multi-scale residual U-Net, batch-norm folding; shipped weights load with
  ``dlmi_utils.pretrained.load_pretrained(name)``;
- ``geometry``: the layers' geometry and the receptive field (how many input pixels one
  output pixel sees);
- ``patches``: noisy training pairs, fixed evaluation crops, crops on small details;
- ``training``: how noisy batches feed a noise-aware net, supervised or by SURE;
- ``tiling``: a whole film denoised in overlapping tiles.
"""

from dlmi_utils.denoising import geometry, models, patches, tiling, training
from dlmi_utils.denoising.geometry import receptive_field
from dlmi_utils.denoising.models import (
    DilatedDenoiser,
    DnCNN,
    NoiseAwareDenoiser,
    ResUNetDenoiser,
    count_parameters,
    fold_batch_norm,
)
from dlmi_utils.denoising.patches import NoisyPatches, breast_crops, salient_crop
from dlmi_utils.denoising.tiling import predict_tiled

__all__ = [
    "DilatedDenoiser",
    "DnCNN",
    "NoiseAwareDenoiser",
    "NoisyPatches",
    "ResUNetDenoiser",
    "breast_crops",
    "count_parameters",
    "fold_batch_norm",
    "geometry",
    "models",
    "patches",
    "predict_tiled",
    "receptive_field",
    "salient_crop",
    "tiling",
    "training",
]
