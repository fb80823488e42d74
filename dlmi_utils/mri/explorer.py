"""One undersampling experiment at a glance, and an ipywidgets explorer over its settings.

:func:`simulate_undersampling` takes a complex image ``x`` ``(H, W)``, draws a mask ``M`` (the
set ``Omega``) of one family of :mod:`dlmi_utils.mri.sampling`, measures ``y = M (F x + n)`` and
reconstructs the zero-filled image ``x_u = F^H y``; it scores ``|x_u|`` against ``|x|`` (PSNR
in dB, SSIM, with an explicit ``data_range``, on a region of interest ``roi`` if given).
:func:`show_undersampling` draws the mask, its point-spread function, ``|x_u|`` and the error
map; :func:`undersampling_explorer` wires the mask family, the acceleration ``R`` and the
centre fraction to sliders (``ipywidgets``).
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure

from dlmi_utils import metrics
from dlmi_utils.mri.physics import MRIForward
from dlmi_utils.mri.sampling import (
    MASK_KINDS,
    effective_acceleration,
    make_mask,
    point_spread_function,
    psf_sidelobe_to_peak,
)
from dlmi_utils.viz import ERROR_CMAP, STYLE

PSF_FLOOR_DB = -50.0  # the PSF is shown in dB down to this level


@dataclass(frozen=True)
class UndersamplingResult:
    """What one setting gives: ``mask`` ``(H, W)`` bool, ``psf`` ``(H, W)`` float (peak 1),
    ``zero_filled`` ``(H, W)`` complex, scores of ``|x_u|`` against ``|x|``."""

    kind: str
    acceleration: float  # achieved, H W / |Omega|
    center_fraction: float
    mask: np.ndarray
    psf: np.ndarray
    zero_filled: np.ndarray
    psnr: float  # dB
    ssim: float
    sidelobe_to_peak: float

    def summary(self) -> str:
        """One line: family, achieved R, centre, PSNR (dB), SSIM, PSF side lobe."""
        return (f"{self.kind}, R = {self.acceleration:.2f}, centre {self.center_fraction:.0%}: "
                f"PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.3f}, "
                f"PSF side lobe {self.sidelobe_to_peak:.2f}")


def _complex_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array (H, W), got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"image must be one 2D image (H, W), got shape {image.shape}")
    if not np.iscomplexobj(image):
        raise ValueError(
            "image is real: MR images are complex, and a real image has a Hermitian k-space "
            "that makes undersampling unfairly easy; give it a phase first "
            "(dlmi_utils.mri.add_smooth_phase)"
        )
    return image


def simulate_undersampling(
    image: np.ndarray,
    kind: str,
    acceleration: float,
    center_fraction: float = 0.08,
    seed: int = 0,
    data_range: float = 1.0,
    noise_sigma: float = 0.0,
    roi: np.ndarray | None = None,
) -> UndersamplingResult:
    """Mask, PSF and zero-filled image of ``image`` ``(H, W)`` complex for one setting.

    ``kind`` one of :data:`dlmi_utils.mri.sampling.MASK_KINDS`; ``acceleration`` ``R``;
    ``center_fraction`` the fully sampled centre (see :func:`dlmi_utils.mri.sampling.make_mask`);
    ``noise_sigma`` complex k-space noise (:meth:`dlmi_utils.mri.MRIForward.measure`). The scores
    compare magnitudes, ``|x_u|`` with ``|x|``, with ``data_range`` (1 for images in [0, 1]),
    over the boolean ``roi`` ``(H, W)`` (e.g. the head) or the whole image.
    Raises ``ValueError`` for a real image or an impossible setting (a centre larger than
    ``1 / R`` of k-space).
    """
    x = _complex_image(image)
    mask = make_mask(kind, x.shape, acceleration, center_fraction, seed=seed)
    physics = MRIForward(mask)
    x_u = physics.zero_filled(physics.measure(x, noise_sigma, seed=seed))
    ref, est = np.abs(x), np.abs(x_u)
    return UndersamplingResult(
        kind=kind,
        acceleration=effective_acceleration(mask),
        center_fraction=float(center_fraction),
        mask=mask,
        psf=point_spread_function(mask),
        zero_filled=x_u,
        psnr=metrics.psnr(ref, est, data_range=data_range, mask=roi),
        ssim=metrics.ssim(ref, est, data_range=data_range, mask=roi),
        sidelobe_to_peak=psf_sidelobe_to_peak(mask),
    )


def show_undersampling(
    image: np.ndarray,
    kind: str,
    acceleration: float,
    center_fraction: float = 0.08,
    seed: int = 0,
    data_range: float = 1.0,
    error_vmax: float | None = None,
    roi: np.ndarray | None = None,
) -> Figure:
    """Four panels for one setting: the mask ``M``, its PSF (dB, the row through the peak),
    ``|x_u|`` and the error map ``||x_u| - |x||``.

    The suptitle holds :meth:`UndersamplingResult.summary`; the error map's colour scale is
    ``error_vmax`` (a quarter of ``data_range`` by default), fixed so that settings compare;
    the scores are over ``roi`` when given.
    """
    r = simulate_undersampling(image, kind, acceleration, center_fraction, seed, data_range,
                               roi=roi)
    h, w = r.mask.shape
    extent = (-w // 2 - 0.5, w - w // 2 - 0.5, h - h // 2 - 0.5, -h // 2 - 0.5)
    # the row through the peak: all of a Cartesian PSF, a cut through a 2D one
    profile_db = 20 * np.log10(np.maximum(r.psf[h // 2], 10 ** (PSF_FLOOR_DB / 20)))
    error = np.abs(np.abs(r.zero_filled) - np.abs(image))
    vmax = error_vmax if error_vmax is not None else 0.25 * data_range
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 4, figsize=(15, 4.0), layout="constrained")
        axes[0].imshow(r.mask, cmap="gray", vmin=0, vmax=1, extent=extent)
        axes[0].set_title(f"mask $M$ ({100 / r.acceleration:.1f} % of k-space)")
        axes[0].set_xlabel("$k_x$ (samples from the centre)")
        axes[0].set_ylabel("$k_y$ (samples from the centre)")
        axes[1].plot(np.arange(w) - w // 2, profile_db, lw=0.8)
        axes[1].set_ylim(PSF_FLOOR_DB, 3)
        axes[1].grid(True, alpha=0.3)
        axes[1].set_title("point-spread function, row through the peak")
        axes[1].set_xlabel("x (pixels from the peak)")
        axes[1].set_ylabel("|psf| (dB, peak = 0 dB)")
        im = axes[2].imshow(np.abs(r.zero_filled), cmap="gray", vmin=0, vmax=data_range)
        axes[2].set_title(f"zero-filled $|x_u|$\nPSNR {r.psnr:.2f} dB, SSIM {r.ssim:.3f}")
        fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.02).set_label("intensity (a.u.)")
        im = axes[3].imshow(error, cmap=ERROR_CMAP, vmin=0, vmax=vmax)
        axes[3].set_title(r"error $||x_u| - |x||$")
        fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.02).set_label("absolute error (a.u.)")
        for ax in axes[2:]:
            ax.set_xlabel("x (pixels)")
            ax.set_ylabel("y (pixels)")
        fig.suptitle(r.summary())
    return fig


def undersampling_explorer(
    image: np.ndarray,
    kinds: tuple[str, ...] = MASK_KINDS,
    seed: int = 0,
    data_range: float = 1.0,
    roi: np.ndarray | None = None,
):
    """An ``ipywidgets.interactive``: mask family, ``R`` (2 to 12) and centre fraction -> the
    figure of :func:`show_undersampling`. Display it in a notebook; an impossible setting (a
    centre larger than ``1 / R``) prints why instead of a figure. The sliders update on
    release (Poisson-disc masks take a second or two to draw)."""
    _complex_image(image)
    unknown = [k for k in kinds if k not in MASK_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be some of {MASK_KINDS}, got {kinds!r}")

    def update(kind: str, acceleration: float, center_fraction: float) -> None:
        try:
            fig = show_undersampling(image, kind, acceleration, center_fraction, seed, data_range,
                                     roi=roi)
        except ValueError as e:
            print(f"not possible: {e}")
            return
        display(fig)
        plt.close(fig)  # shown once, in the explorer's output area only

    return widgets.interactive(
        update,
        kind=widgets.Dropdown(options=list(kinds), value=kinds[0], description="mask"),
        acceleration=widgets.FloatSlider(value=4.0, min=2.0, max=12.0, step=0.5,
                                         description="R", continuous_update=False),
        center_fraction=widgets.FloatSlider(value=0.08, min=0.0, max=0.3, step=0.01,
                                            description="centre", continuous_update=False,
                                            readout_format=".2f"),
    )
