"""The shipped weights load in one call and reproduce their recorded validation scores."""

import pytest
from torch import nn
from torch.utils.data import DataLoader

from dlmi_utils.mri import DeepCascade, UNetRecon, pretrained_cascade, pretrained_unet
from dlmi_utils.mri.datasets import brain_slices_dataset
from dlmi_utils.pretrained import WEIGHTS_DIR, lineage, load_meta
from dlmi_utils.train import evaluate, recon_step

SETS = [("cascade", 4), ("cascade", 8), ("unet", 4), ("unet", 8)]


class ZeroFilled(nn.Module):
    def forward(self, x_u, k0, mask):
        return x_u


def _val_set(meta):
    data = dict(meta["val_data"])
    return brain_slices_dataset(data.pop("split"), data.pop("acceleration"),
                                orientations=tuple(data.pop("orientations")), **data)


def _load(kind, accel):
    return pretrained_cascade(accel) if kind == "cascade" else pretrained_unet(accel)


@pytest.mark.parametrize(("kind", "accel"), SETS)
def test_weights_load_in_one_call_in_eval_mode(kind, accel):
    model = _load(kind, accel)
    assert isinstance(model, DeepCascade if kind == "cascade" else UNetRecon)
    assert not model.training
    meta = load_meta(f"{kind}_r{accel}")
    assert meta["args"]["accel"] == accel and meta["val_data"]["acceleration"] == accel


def test_weights_are_small():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*_r[48].pt")
                if p.name.startswith(("cascade", "unet")))
    assert 0 < total < 5e6, f"{total / 1e6:.1f} MB of reconstruction weights"


@pytest.mark.parametrize(("kind", "accel"), SETS)
def test_recorded_validation_psnr_is_reproduced(kind, accel):
    meta = load_meta(f"{kind}_r{accel}")
    val = _val_set(meta)
    scores = evaluate(_load(kind, accel), DataLoader(val, batch_size=8), recon_step, "cpu")
    assert scores["n"] == meta["val_slices"]
    assert scores["psnr"] == pytest.approx(meta["val_psnr"], abs=0.05)
    assert scores["ssim"] == pytest.approx(meta["val_ssim"], abs=0.005)


def test_cascade_beats_zero_filling_on_validation():
    meta = load_meta("cascade_r4")
    zero_filled = evaluate(ZeroFilled(), DataLoader(_val_set(meta), batch_size=8),
                           recon_step, "cpu")
    assert meta["val_psnr"] > zero_filled["psnr"] + 5


def test_lineage_follows_the_init_records_back_to_the_run_from_scratch():
    runs = lineage(load_meta("cascade_r8"))
    assert runs[0].get("init") is None and runs[-1] == load_meta("cascade_r8")
    assert runs[-1]["val_data"]["acceleration"] == 8
    for earlier, later in zip(runs[:-1], runs[1:], strict=True):
        assert later["init"] == earlier and later["args"]["init"] == earlier["args"]["name"]
    with pytest.raises(TypeError, match="weights record"):
        lineage("cascade_r8")
