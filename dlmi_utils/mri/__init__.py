"""MR reconstruction: the forward model, sampling, compressed sensing and learned recon.

- ``physics``: :class:`MRIForward` (``A = M F S``, ``A_adjoint``, simulated measurements
  ``measure``), coil maps, a smooth phase;
- ``sampling``: Cartesian, Poisson-disc and radial masks, point spread functions;
- ``cs``: ISTA / FISTA with wavelets, TV (Chambolle-Pock), dictionary learning;
- ``dc``: the data-consistency layer; ``cascade``: the deep cascade of CNNs;
  ``unet``: the U-Net baseline without DC. The DC layer, the networks and the CS solvers
  take the measured data ``y`` and the operator: ``DeepCascade(...)(y, physics)``;
- ``datasets``: training pairs of undersampled brain slices, and the scoring of methods;
- ``explorer``: one undersampling setting at a glance, and the ipywidgets explorer of Lab 01.
"""

from dlmi_utils.mri import cs, datasets, explorer, sampling
from dlmi_utils.mri.cascade import (
    DeepCascade,
    ResidualCNNBlock,
    with_data_consistency,
)
from dlmi_utils.mri.dc import DataConsistency, DataConsistencyFunction, data_consistency
from dlmi_utils.mri.physics import MRIForward, add_smooth_phase, birdcage_maps
from dlmi_utils.mri.sampling import make_mask, point_spread_function, psf_sidelobe_to_peak
from dlmi_utils.mri.unet import UNet, UNetRecon

__all__ = [
    "DataConsistency",
    "DataConsistencyFunction",
    "DeepCascade",
    "MRIForward",
    "ResidualCNNBlock",
    "UNet",
    "UNetRecon",
    "add_smooth_phase",
    "birdcage_maps",
    "cs",
    "data_consistency",
    "datasets",
    "explorer",
    "make_mask",
    "point_spread_function",
    "psf_sidelobe_to_peak",
    "sampling",
    "with_data_consistency",
]
