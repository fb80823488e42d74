"""CT: parallel-beam projection, filtered back-projection and low-dose simulation.

- ``physics``: :class:`ParallelBeamProjector` (``A`` the Radon transform by Joseph's method,
  ``A_adjoint`` its exact transpose, ``fbp`` filtered back-projection), scikit-image's geometry;
- ``filters``: the ramp filter and its windows (Shepp-Logan, cosine, Hamming, Hann);
- ``system_matrix``: the sparse matrices behind the projector, reduced by the symmetries of the
  square grid and cached per geometry;
- ``dose``: HU and attenuation, Beer-Lambert, Poisson and electronic noise, low-dose and
  full-dose images of a slice (:func:`simulate_dose_pair`);
- ``noise_texture``: the noise SD of a region and the noise power spectrum.

The real slices to simulate from are in :mod:`dlmi_utils.data.ct` (``load_ct_slice``).
"""

from dlmi_utils.ct.dose import (
    ELECTRONIC_SIGMA,
    MU_WATER,
    DosePair,
    hu_to_mu,
    line_integrals,
    mu_to_hu,
    noisy_sinogram,
    reconstruct_hu,
    simulate_dose_pair,
    simulate_low_dose,
)
from dlmi_utils.ct.filters import FILTERS, fbp_filter, filter_sinogram
from dlmi_utils.ct.noise_texture import (
    NoisePowerSpectrum,
    noise_power_spectrum,
    roi_sd,
    square_roi,
)
from dlmi_utils.ct.physics import ParallelBeamProjector

__all__ = [
    "ELECTRONIC_SIGMA",
    "FILTERS",
    "MU_WATER",
    "DosePair",
    "NoisePowerSpectrum",
    "ParallelBeamProjector",
    "fbp_filter",
    "filter_sinogram",
    "hu_to_mu",
    "line_integrals",
    "mu_to_hu",
    "noise_power_spectrum",
    "noisy_sinogram",
    "reconstruct_hu",
    "roi_sd",
    "simulate_dose_pair",
    "simulate_low_dose",
    "square_roi",
]
