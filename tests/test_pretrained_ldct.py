"""The shipped low-dose CT denoisers: Yang et al.'s four objectives on one generator, trained
without the held-out slice, remade by the command of their record, and on that slice they show
Yang's finding (the MSE net smoothest and best in PSNR, WGAN-VGG's texture closest to the full
dose's)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dlmi_utils import ct, metrics
from dlmi_utils.ct.denoising import HELDOUT_SLICE, denoise_hu
from dlmi_utils.data import load_ct_slice
from dlmi_utils.denoising import DnCNN
from dlmi_utils.pretrained import available, load_pretrained, load_record

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = {"ldct_cnn_mse": "mse", "ldct_cnn_vgg": "vgg", "ldct_wgan_mse": "wgan_mse",
              "ldct_wgan_vgg": "wgan_vgg"}
SCRIPT = "python scripts/train_ldct.py "
WINDOW_HU = (-160.0, 240.0)
I0 = 1e5


def _script():
    spec = importlib.util.spec_from_file_location("train_ldct", ROOT / "scripts" / "train_ldct.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_ldct_networks_are_yangs_four_objectives():
    assert sorted(n for n in available() if n.startswith("ldct_")) == sorted(OBJECTIVES)
    for name, objective in OBJECTIVES.items():
        record = load_record(name)
        assert record["objective"] == objective
        assert isinstance(load_pretrained(name), DnCNN)
        assert record["model_kwargs"] == load_record("ldct_cnn_mse")["model_kwargs"]
        assert record["data"]["heldout"] == HELDOUT_SLICE
        assert HELDOUT_SLICE not in record["data"]["slices"]


def test_each_wgan_starts_from_the_cnn_of_its_content_loss():
    for content in ("mse", "vgg"):
        cnn, wgan = load_record(f"ldct_cnn_{content}"), load_record(f"ldct_wgan_{content}")
        first, second = wgan["command"].split(" && ")
        assert first == cnn["command"]
        assert second.startswith(SCRIPT) and f"--init ldct_cnn_{content}" in second
        assert [r["objective"] for r in wgan["training"]["runs"]] == [content, f"wgan_{content}"]


def test_the_perceptual_objectives_use_the_shipped_course_network():
    for name in ("ldct_cnn_vgg", "ldct_wgan_vgg"):
        runs = load_record(name)["training"]["runs"]
        assert {r["feature_network"] for r in runs} == {"feature_net"}
    assert "feature_net" in available()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_record_reproduces_its_validation_scores(name):
    recorded = load_record(name)["validation"]
    script = _script()
    again = script.validate(load_pretrained(name), recorded["slice"], recorded["dose_i0"],
                            recorded["dose_factor"], load_record(name)["data"]["n_angles"],
                            "cpu")
    assert again["psnr_denoised"] == pytest.approx(recorded["psnr_denoised"], abs=0.02)
    assert again["ssim_denoised"] == pytest.approx(recorded["ssim_denoised"], abs=0.002)


@pytest.fixture(scope="module")
def abdomen():
    """The held-out slice at I0 = 1e5 (the benchmark's setting): its images, body and ROI,
    and every shipped network's output."""
    slice_ = load_ct_slice(HELDOUT_SLICE)
    pixel = slice_.pixel_spacing[0]
    pair = ct.simulate_dose_pair(slice_.hu, pixel, I0, 4.0, seed=0)
    body = ct.body_mask(pair.full)
    roi = ct.flat_rois(pair.noiseless, body, pixel)[0]
    outputs = {name: denoise_hu(load_pretrained(name), pair.low) for name in OBJECTIVES}
    return pair, body, roi, outputs


def _psnr(pair, body, image) -> float:
    lo, hi = WINDOW_HU
    return metrics.psnr(np.clip(pair.full, lo, hi), np.clip(image, lo, hi), data_range=hi - lo,
                        mask=body)


@pytest.mark.slow
def test_every_network_gains_over_fbp_and_keeps_the_hu_of_soft_tissue(abdomen):
    pair, body, roi, outputs = abdomen
    fbp = _psnr(pair, body, pair.low)
    truth = float(ct.square_roi(pair.noiseless, *roi).mean())
    for name, image in outputs.items():
        assert _psnr(pair, body, image) > fbp + 1.5, name
        assert abs(float(ct.square_roi(image, *roi).mean()) - truth) < 10.0, name


@pytest.mark.slow
def test_mse_is_best_in_psnr_and_smoothest_and_wgan_vgg_keeps_the_full_dose_texture(abdomen):
    """Yang et al. 2018, Table and flat-region SD: CNN-MSE too smooth, WGAN-VGG closest."""
    pair, body, roi, outputs = abdomen
    psnr = {name: _psnr(pair, body, image) for name, image in outputs.items()}
    sd = {name: ct.roi_sd(image, *roi) for name, image in outputs.items()}
    full = ct.roi_sd(pair.full, *roi)
    assert max(psnr, key=psnr.get) == "ldct_cnn_mse"
    assert sd["ldct_cnn_mse"] < 0.5 * full
    assert abs(sd["ldct_wgan_vgg"] - full) < abs(sd["ldct_cnn_mse"] - full)
    assert abs(sd["ldct_cnn_vgg"] - full) < abs(sd["ldct_cnn_mse"] - full)


@pytest.mark.slow
def test_air_stays_air():
    """Outside the patient there is nothing to invent: an image of air stays air."""
    air = np.full((96, 96), -1000.0, dtype=np.float32)
    for name in OBJECTIVES:
        out = denoise_hu(load_pretrained(name), air)
        assert np.abs(out + 1000.0).max() < 30.0, name
