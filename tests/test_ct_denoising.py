"""dlmi_utils.ct.denoising: the network units of HU, the dose-pair patches (seeded, paired,
noisier at lower dose), a denoiser applied in HU; and scripts/train_ldct.py's objectives,
record and ``--init`` chain on a tiny setting."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlmi_utils import pretrained
from dlmi_utils.ct.denoising import (
    HELDOUT_SLICE,
    NETWORK_WINDOW_HU,
    TRAINING_SLICES,
    DosePairPatches,
    denoise_hu,
    hu_to_unit,
    load_slices,
    unit_to_hu,
)
from dlmi_utils.data import CT_EXAMPLES, CTSlice
from dlmi_utils.denoising import DnCNN
from dlmi_utils.features import FeatureNet
from dlmi_utils.pretrained import load_pretrained, load_record, save_pretrained

ROOT = Path(__file__).resolve().parents[1]


def _phantom(n: int = 64) -> CTSlice:
    """A water disc (0 HU) with a denser insert (300 HU) in air, 1 mm pixels."""
    i, j = np.mgrid[:n, :n] - n // 2
    hu = np.where(i**2 + j**2 <= (0.4 * n) ** 2, 0.0, -1000.0)
    hu[(i - 4) ** 2 + (j + 6) ** 2 <= 16] = 300.0
    return CTSlice(hu.astype(np.float32), (1.0, 1.0))


def _patches(**kwargs) -> DosePairPatches:
    options = dict(i0_range=(1e4, 1e6), draws_per_slice=3, patch_size=16, n_patches=32,
                   n_angles=60, seed=0)
    return DosePairPatches({"phantom": _phantom()}, **{**options, **kwargs})


def test_network_units_map_the_window_to_zero_and_one_without_clipping():
    hu = np.array([-1000.0, 0.0, 1000.0, 3000.0], np.float32)
    np.testing.assert_allclose(hu_to_unit(hu), [0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(unit_to_hu(hu_to_unit(hu)), hu)
    window = hu_to_unit(torch.tensor([-450.0, 50.0, 550.0]), (-200.0, 300.0))
    torch.testing.assert_close(window, torch.tensor([-0.5, 0.5, 1.5]))
    assert NETWORK_WINDOW_HU == (-1000.0, 1000.0)
    with pytest.raises(ValueError, match="lo < hi"):
        hu_to_unit(hu, (300.0, -200.0))


def test_the_held_out_slice_is_a_real_example_never_trained_on():
    assert HELDOUT_SLICE in CT_EXAMPLES and HELDOUT_SLICE not in TRAINING_SLICES
    assert set(TRAINING_SLICES) <= set(CT_EXAMPLES)
    ct = load_slices("ct_small")["ct_small"]
    assert isinstance(ct, CTSlice) and ct.hu.shape == (128, 128)


def test_dose_pairs_are_seeded_and_their_doses_log_uniform_in_the_range():
    a, b = _patches(), _patches()
    assert a.doses == b.doses
    assert all(1e4 <= i0 <= 1e6 for _, i0 in a.doses) and len(a.doses) == 3
    low, full = a[5]
    assert low.shape == full.shape == (1, 16, 16) and low.dtype == torch.float32
    assert torch.equal(low, b[5][0]) and torch.equal(full, b[5][1])
    assert _patches(seed=1).doses != a.doses
    a.set_epoch(1)
    assert not torch.equal(a[5][0], low)


def test_the_two_patches_of_an_item_come_from_the_same_place_of_one_pair():
    data = _patches()
    for index in range(8):
        i, row, col, fh, fv = data.patches.locate(index)
        low, full = data.pair(index)
        for image, patch in ((data.low[i], low), (data.full[i], full)):
            expected = image[row : row + 16, col : col + 16]
            expected = expected[:, ::-1] if fh else expected
            np.testing.assert_array_equal(patch, expected[::-1] if fv else expected)
        x, target = data[index]
        np.testing.assert_allclose(x[0].numpy(), hu_to_unit(low), rtol=1e-6)
        np.testing.assert_allclose(target[0].numpy(), hu_to_unit(full), rtol=1e-6)


def test_a_lower_dose_gives_more_noise_and_the_full_dose_less():
    """Two draws of one dose differ by their noise alone (FBP's artefacts cancel): its SD
    grows as 1 / sqrt(I0), and the full dose (4 x the photons) has half of it."""
    data = _patches(i0_range=(2e4, 2e4), draws_per_slice=2)
    more = _patches(i0_range=(2e5, 2e5), draws_per_slice=2)
    disc = _phantom().hu > -500

    def sd(images):
        return float(np.std(images[0][disc] - images[1][disc]))

    assert sd(data.low) / sd(more.low) == pytest.approx(np.sqrt(10), rel=0.2)
    assert sd(data.low) / sd(data.full) == pytest.approx(2.0, rel=0.2)


def test_dose_pair_patches_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="dose of 0"):
        _patches(i0_range=(0.0, 1e5))
    with pytest.raises(ValueError, match="draws_per_slice"):
        _patches(draws_per_slice=0)
    with pytest.raises(ValueError, match="at least one slice"):
        DosePairPatches({})
    with pytest.raises(TypeError, match="CTSlice"):
        DosePairPatches({"raw": np.zeros((64, 64))})


def test_denoise_hu_goes_through_network_units_and_keeps_kind_and_mode():
    model = DnCNN(features=4, depth=3, batch_norm=False)  # starts as the identity
    hu = _phantom(32).hu
    out = denoise_hu(model, hu)
    assert isinstance(out, np.ndarray) and out.shape == hu.shape
    np.testing.assert_allclose(out, hu, atol=1e-3)
    halve = torch.nn.Conv2d(1, 1, 1, bias=False)
    torch.nn.init.constant_(halve.weight, 0.5)
    batch = torch.from_numpy(np.stack([hu, hu]))
    halved = denoise_hu(halve.train(), batch)
    assert isinstance(halved, torch.Tensor) and halved.shape == (2, 32, 32) and halve.training
    torch.testing.assert_close(halved, unit_to_hu(0.5 * hu_to_unit(batch)))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        denoise_hu(model, hu[None, None])


def _script():
    spec = importlib.util.spec_from_file_location("train_ldct", ROOT / "scripts" / "train_ldct.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_objectives_take_their_steps_rate_and_yangs_content_weight():
    script = _script()
    mse = script.parse_args(["--objective", "mse"])
    wgan = script.parse_args(["--objective", "wgan_vgg"])
    assert (mse.lr, mse.steps) == (1e-3, script.DEFAULT_STEPS["mse"])
    assert (wgan.lr, wgan.n_critic, wgan.gp_weight) == (1e-4, 4, 10.0)
    content = script.Content("wgan_mse", None, (-200.0, 300.0))
    assert script.YANG_LAMBDA_1 * content.values_per_patch(64, "cpu") / 2 == pytest.approx(204.8)
    with pytest.raises(SystemExit):
        script.parse_args(["--objective", "mse", "--val-dose", "0"])


def test_a_wgan_vgg_run_from_a_cnn_records_both_commands_and_its_scores(tmp_path, monkeypatch):
    """Two tiny runs on ct_small (60 views), into a scratch weights folder."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    save_pretrained("tiny_features", FeatureNet(widths=(4, 8)), command="python scripts/x.py",
                    data={}, validation={})
    script = _script()
    common = ["--slices", "ct_small", "--val-slice", "ct_small", "--n-angles", "60",
              "--draws-per-slice", "1", "--batch-size", "2", "--patch-size", "32",
              "--features", "8", "--depth", "3", "--threads", "1",
              "--feature-weights", "tiny_features", "--feature-layers", "relu2_2"]
    first = ["--objective", "vgg", "--steps", "2", "--name", "tiny_cnn", *common]
    assert script.main(first) == 0
    second = ["--objective", "wgan_vgg", "--steps", "1", "--n-critic", "2", "--ndf", "4",
              "--init", "tiny_cnn", "--name", "tiny_wgan", *common]
    assert script.main(second) == 0
    record = load_record("tiny_wgan")
    prefix = "python scripts/train_ldct.py "
    assert record["command"] == prefix + " ".join(first) + " && " + prefix + " ".join(second)
    runs = record["training"]["runs"]
    assert [r["objective"] for r in runs] == ["vgg", "wgan_vgg"]
    assert runs[1]["feature_network"] == "tiny_features" and runs[1]["n_critic"] == 2
    assert runs[1]["content_weight"] == pytest.approx(0.1 * 8 * 16 * 16 / 2)  # relu2_2's size
    assert record["validation"]["slice"] == "ct_small"
    assert np.isfinite(record["validation"]["psnr_denoised"])
    assert isinstance(load_pretrained("tiny_wgan"), DnCNN)
    json.dumps(record)
    with pytest.raises(SystemExit, match="DnCNN"):
        script.main(["--objective", "mse", "--init", "tiny_cnn", *common, "--features", "16"])
