"""Reconstruction and denoising networks, one module each.

``dc``: the data-consistency layer; ``cascade``: the deep cascade of CNNs (Schlemper et al.
2017) and its pretrained weights; ``unet``: a small fastMRI-style U-Net baseline;
``denoisers``: DnCNN, the dilated (IRCNN) denoiser, a multi-scale residual U-Net (DRUNet-style)
and the receptive field of a network.
"""

# Re-exports are written ``name as name`` (explicit for ruff): one line per module.
from dlmi_utils.models.cascade import DeepCascade as DeepCascade
from dlmi_utils.models.cascade import ResidualCNNBlock as ResidualCNNBlock
from dlmi_utils.models.cascade import pretrained_cascade as pretrained_cascade
from dlmi_utils.models.cascade import with_data_consistency as with_data_consistency
from dlmi_utils.models.dc import DataConsistency as DataConsistency
from dlmi_utils.models.dc import DataConsistencyFunction as DataConsistencyFunction
from dlmi_utils.models.dc import data_consistency as data_consistency
from dlmi_utils.models.denoisers import DilatedDenoiser as DilatedDenoiser
from dlmi_utils.models.denoisers import DnCNN as DnCNN
from dlmi_utils.models.denoisers import ResUNetDenoiser as ResUNetDenoiser
from dlmi_utils.models.denoisers import fold_batch_norm as fold_batch_norm
from dlmi_utils.models.denoisers import load_denoiser as load_denoiser
from dlmi_utils.models.denoisers import pretrained_denoiser as pretrained_denoiser
from dlmi_utils.models.denoisers import receptive_field as receptive_field
from dlmi_utils.models.unet import UNet as UNet
from dlmi_utils.models.unet import UNetRecon as UNetRecon
from dlmi_utils.models.unet import pretrained_unet as pretrained_unet
