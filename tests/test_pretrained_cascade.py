"""The shipped reconstruction weights load in one call and reproduce their recorded scores."""

import pytest
from torch import nn
from torch.utils.data import DataLoader

from dlmi_utils.data import CT_WINDOW_HU, OTHER_IMAGES, load_other_images
from dlmi_utils.mri import DeepCascade, UNetRecon
from dlmi_utils.mri.datasets import (
    VAL_SEED,
    UndersampledSlices,
    brain_slices_dataset,
    recon_step,
)
from dlmi_utils.pretrained import WEIGHTS_DIR, load_pretrained, load_record
from dlmi_utils.train import evaluate

SETS = [("cascade", 4), ("cascade", 8), ("unet", 4), ("unet", 8)]


class ZeroFilled(nn.Module):
    def forward(self, y, physics):
        return physics.A_adjoint(y)


def _val_set(record):
    data = record["data"]
    return brain_slices_dataset(
        data["val_split"], data["acceleration"], orientations=tuple(data["orientations"]),
        center_fraction=data["center_fraction"], mask_kind=data["mask_kind"],
        noise_sigma=data["noise_sigma"],
    )


@pytest.mark.parametrize(("kind", "accel"), SETS)
def test_weights_load_in_one_call_in_eval_mode(kind, accel):
    model = load_pretrained(f"{kind}_r{accel}")
    assert isinstance(model, DeepCascade if kind == "cascade" else UNetRecon)
    assert not model.training
    assert load_record(f"{kind}_r{accel}")["data"]["acceleration"] == accel


def test_weights_are_small():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*_r[48].pt")
                if p.name.startswith(("cascade", "unet")))
    assert 0 < total < 5e6, f"{total / 1e6:.1f} MB of reconstruction weights"


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "accel"), SETS)
def test_recorded_validation_psnr_is_reproduced(kind, accel):
    record = load_record(f"{kind}_r{accel}")
    scores = evaluate(load_pretrained(f"{kind}_r{accel}"),
                      DataLoader(_val_set(record), batch_size=8), recon_step, "cpu")
    assert scores["n"] == record["validation"]["slices"]
    assert scores["psnr"] == pytest.approx(record["validation"]["psnr"], abs=0.05)
    assert scores["ssim"] == pytest.approx(record["validation"]["ssim"], abs=0.005)


def _other_val_set(record):
    data = record["data"]
    return UndersampledSlices(
        load_other_images("val"), data["acceleration"], seed=VAL_SEED,
        center_fraction=data["center_fraction"], mask_kind=data["mask_kind"],
        noise_sigma=data["noise_sigma"],
    )


def test_cascades_record_the_other_images_they_were_trained_with():
    """The cascades learn from other anatomy and modalities too; the record names them, and
    they are those :func:`load_other_images` loads today (else the figures cannot be remade)."""
    for accel in (4, 8):
        other = load_record(f"cascade_r{accel}")["data"]["other_images"]
        assert other == {**{split: list(sources) for split, sources in OTHER_IMAGES.items()},
                         "ct_window_hu": list(CT_WINDOW_HU)}


@pytest.mark.slow
@pytest.mark.parametrize("accel", [4, 8])
def test_recorded_other_images_validation_is_reproduced(accel):
    record = load_record(f"cascade_r{accel}")
    loader = DataLoader(_other_val_set(record), batch_size=8)
    scores = evaluate(load_pretrained(f"cascade_r{accel}"), loader, recon_step, "cpu")
    zero_filled = evaluate(ZeroFilled(), loader, recon_step, "cpu")
    assert scores["n"] == record["validation_other"]["images"]
    assert scores["psnr"] == pytest.approx(record["validation_other"]["psnr"], abs=0.05)
    assert scores["ssim"] == pytest.approx(record["validation_other"]["ssim"], abs=0.005)
    assert scores["psnr"] > zero_filled["psnr"] + 0.5  # images unlike the brain: still a gain


@pytest.mark.slow
def test_cascade_beats_zero_filling_on_validation():
    record = load_record("cascade_r4")
    zero_filled = evaluate(ZeroFilled(), DataLoader(_val_set(record), batch_size=8),
                           recon_step, "cpu")
    assert record["validation"]["psnr"] > zero_filled["psnr"] + 5


def test_record_command_remakes_the_chain_from_scratch():
    """Weights made in stages record every stage: the first starts from scratch."""
    for name in ("cascade_r4", "cascade_r8", "unet_r4", "unet_r8"):
        stages = load_record(name)["command"].split(" && ")
        assert all(s.startswith("python scripts/train_cascade.py") for s in stages)
        assert "--init" not in stages[0]
        assert len(load_record(name)["training"]["runs"]) == len(stages)
