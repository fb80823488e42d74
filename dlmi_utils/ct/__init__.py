"""CT: parallel-beam projection, filtered back-projection and low-dose simulation.

- ``physics``: :class:`ParallelBeamProjector` (``A`` the Radon transform by Joseph's method,
  ``A_adjoint`` its exact transpose, ``fbp`` filtered back-projection), scikit-image's geometry;
- ``filters``: the ramp filter and its windows (Shepp-Logan, cosine, Hamming, Hann);
- ``system_matrix``: the sparse matrices behind the projector, reduced by the symmetries of the
  square grid and cached per geometry;
- ``dose``: HU and attenuation, Beer-Lambert, Poisson and electronic noise, low-dose and
  full-dose images of a slice (:func:`simulate_dose_pair`);
- ``noise_texture``: where to measure noise (:func:`body_mask`, the flattest squares of soft
  tissue :func:`flat_rois`), the noise SD of a region and the noise power spectrum;
- ``classical``: the classical low-dose baselines, BM3D told the FBP noise's power spectrum
  (simulated from the physics, :func:`fbp_noise_psd`) and TV-regularised weighted least
  squares from the sinogram (PDHG, :func:`tv_reconstruct`);
- ``denoising``: low-/full-dose patch pairs of the training slices over a range of doses, the
  network units of the learned denoisers and :func:`denoising.denoise_hu` to apply them.

The real slices to simulate from are in :mod:`dlmi_utils.data.ct` (``load_ct_slice``).
"""

from dlmi_utils.ct.classical import (
    HU_SCALE,
    TV_LAMBDA,
    TVReconstruction,
    blind_white_sigma,
    bm3d_denoise,
    count_weights,
    fbp_noise_psd,
    noise_psd,
    tv_reconstruct,
)
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
    body_mask,
    flat_rois,
    mean_frequency,
    noise_power_spectrum,
    roi_sd,
    square_roi,
)
from dlmi_utils.ct.physics import ParallelBeamProjector

__all__ = [
    "ELECTRONIC_SIGMA",
    "FILTERS",
    "HU_SCALE",
    "MU_WATER",
    "TV_LAMBDA",
    "DosePair",
    "NoisePowerSpectrum",
    "ParallelBeamProjector",
    "TVReconstruction",
    "blind_white_sigma",
    "bm3d_denoise",
    "body_mask",
    "count_weights",
    "fbp_noise_psd",
    "fbp_filter",
    "filter_sinogram",
    "flat_rois",
    "hu_to_mu",
    "line_integrals",
    "mean_frequency",
    "mu_to_hu",
    "noise_power_spectrum",
    "noise_psd",
    "noisy_sinogram",
    "reconstruct_hu",
    "roi_sd",
    "simulate_dose_pair",
    "simulate_low_dose",
    "square_roi",
    "tv_reconstruct",
]
