"""dlmi_utils.mri.explorer: one setting's mask, PSF, zero-filled image and scores; the explorer."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlmi_utils import metrics  # noqa: E402
from dlmi_utils.fourier import fft2c, ifft2c  # noqa: E402
from dlmi_utils.mri import add_smooth_phase  # noqa: E402
from dlmi_utils.mri.explorer import (  # noqa: E402
    show_undersampling,
    simulate_undersampling,
    undersampling_explorer,
)
from dlmi_utils.mri.sampling import MASK_KINDS  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def image():
    yy, xx = np.mgrid[-1:1:64j, -1:1:48j]
    disc = ((yy / 0.8) ** 2 + (xx / 0.7) ** 2 < 1) * 0.6 + ((yy**2 + xx**2) < 0.1) * 0.3
    return add_smooth_phase(disc, seed=1)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_zero_filled_is_the_adjoint_of_the_masked_kspace(image, kind):
    r = simulate_undersampling(image, kind, 4, seed=2)
    assert r.mask.shape == image.shape and r.mask.dtype == bool
    assert np.iscomplexobj(r.zero_filled)
    np.testing.assert_allclose(r.zero_filled, ifft2c(fft2c(image) * r.mask), atol=1e-6)
    assert r.acceleration == pytest.approx(image.size / r.mask.sum())
    assert r.psnr == pytest.approx(metrics.psnr(np.abs(image), np.abs(r.zero_filled), 1.0))
    assert r.psf.max() == pytest.approx(1.0) and r.psf[32, 24] == pytest.approx(1.0)


def test_full_sampling_is_exact(image):
    r = simulate_undersampling(image, "random", 1, center_fraction=0.1)
    assert r.mask.all() and r.psnr > 200 and r.ssim == pytest.approx(1.0)  # float round-off only


def test_equispaced_aliasing_is_more_coherent_than_random(image):
    eq = simulate_undersampling(image, "equispaced", 4, center_fraction=0.0, seed=0)
    rnd = simulate_undersampling(image, "random", 4, center_fraction=0.0, seed=0)
    assert eq.sidelobe_to_peak > 0.9 > rnd.sidelobe_to_peak


def test_more_acceleration_costs_quality(image):
    scores = [simulate_undersampling(image, "random", r, seed=0).psnr for r in (2, 4, 8)]
    assert scores[0] > scores[1] > scores[2]


def test_scores_on_a_region_of_interest(image):
    roi = np.abs(image) > 0
    r = simulate_undersampling(image, "random", 4, seed=0, roi=roi)
    ref, est = np.abs(image), np.abs(r.zero_filled)
    assert r.psnr == pytest.approx(metrics.psnr(ref, est, 1.0, mask=roi))
    assert r.ssim == pytest.approx(metrics.ssim(ref, est, 1.0, mask=roi))
    assert r.psnr != pytest.approx(simulate_undersampling(image, "random", 4, seed=0).psnr)


def test_noise_lowers_the_psnr(image):
    clean = simulate_undersampling(image, "poisson", 3, seed=0)
    noisy = simulate_undersampling(image, "poisson", 3, seed=0, noise_sigma=0.05)
    assert noisy.psnr < clean.psnr


def test_real_or_batched_images_are_refused_with_a_reason(image):
    with pytest.raises(ValueError, match="add_smooth_phase"):
        simulate_undersampling(np.abs(image), "random", 4)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        simulate_undersampling(np.stack([image, image]), "random", 4)
    with pytest.raises(ValueError, match="center_fraction"):
        simulate_undersampling(image, "random", 12, center_fraction=0.3)


def test_figure_panels_are_titled_and_labelled(image):
    fig = show_undersampling(image, "equispaced", 4)
    panels = [ax for ax in fig.axes if ax.images or ax.lines]
    assert len(panels) == 4 and len(panels[1].lines) == 1  # the PSF profile is a curve
    assert [ax.get_title().split()[0] for ax in panels] == ["mask", "point-spread", "zero-filled",
                                                          "error"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in panels)
    assert panels[1].lines[0].get_ydata().max() == pytest.approx(0.0)  # the peak, 0 dB
    assert fig.get_suptitle().startswith("equispaced, R = 4.00") and "dB" in fig.get_suptitle()


def test_explorer_has_the_three_controls_and_reports_an_impossible_setting(image, capsys):
    explorer = undersampling_explorer(image, kinds=("random", "equispaced"))
    names = {w.description for w in explorer.kwargs_widgets}
    assert names == {"mask", "R", "centre"}
    explorer.f(kind="random", acceleration=12.0, center_fraction=0.3)
    assert "not possible" in capsys.readouterr().out
    explorer.f(kind="equispaced", acceleration=4.0, center_fraction=0.08)
    assert plt.get_fignums() == []  # each figure is displayed once, then closed
    with pytest.raises(ValueError, match="kinds"):
        undersampling_explorer(image, kinds=("spiral",))
