"""``benchmarks/ldct.py``: its JSON on a downsized held-out slice and clear errors on bad input
(not a CT slice, no rescale tags, no dose). Its body mask and flat ROI are tested in
``tests/test_ct_noise_texture.py``."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

pytest.importorskip("bm3d")

ROOT = Path(__file__).resolve().parents[1]
SCORES = {"psnr", "ssim", "psnr_slice", "roi_sd", "nps_fav", "seconds"}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ldct_bench", ROOT / "benchmarks/ldct.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # runs the benchmark (about 15 s on a 128 x 128 slice)
def test_main_writes_every_method_and_the_full_dose(bench, tmp_path, capsys):
    out = tmp_path / "ldct.json"
    results = bench.main(["--size", "128", "--angles", "90", "--tv-iter", "30",
                          "--threads", "1", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written == results
    assert list(written) == ["ldct", "bm3d", "bm3d_white", "tv", "cnn_mse", "wgan_mse",
                             "cnn_vgg", "wgan_vgg", "full_dose"]
    for name in set(written) - {"full_dose"}:
        assert set(written[name]) == SCORES, name
        assert -1 <= written[name]["ssim"] <= 1 and written[name]["seconds"] > 0, name
    assert set(written["full_dose"]) == {"roi_sd", "nps_fav", "psnr_slice"}
    ldct, full = written["ldct"], written["full_dose"]
    assert ldct["roi_sd"] > 1.5 * full["roi_sd"]  # a quarter of the dose: twice the noise SD
    for name in ("bm3d", "tv", "cnn_mse"):
        assert written[name]["psnr"] > ldct["psnr"] + 1.5, name
        assert written[name]["roi_sd"] < ldct["roi_sd"], name
    assert written["bm3d"]["psnr"] > written["bm3d_white"]["psnr"]
    # what the MSE net leaves is blotchier (lower frequencies) than the full dose's noise
    assert written["cnn_mse"]["nps_fav"] < full["nps_fav"]
    stdout = capsys.readouterr().out
    assert "not shipped" not in stdout
    assert "| bm3d_white" in stdout and "I0 100000 photons per ray" in stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["--dose", "0"], "--dose: must be positive"),
    (["--dose=-1e4"], "--dose: must be positive"),
    (["--methods", "ldct", "nlm"], "unknown methods ['nlm']"),
    (["--image", "ct_lung"], "ct_lung is neither a CT example (ct_small, ct_head"),
])
def test_bad_arguments_are_refused(bench, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_files_that_are_not_ct_slices_in_hu_are_refused(bench, tmp_path, capsys):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.RescaleSlope
    ds.save_as(tmp_path / "no_rescale.dcm")
    np.save(tmp_path / "unit.npy", np.random.default_rng(0).random((32, 32)))
    wide = np.full((32, 16), -1000.0)
    wide[4:28, 4:12] = 0.0
    np.save(tmp_path / "wide.npy", wide)
    np.save(tmp_path / "cube.npy", np.zeros((4, 32, 32)))
    (tmp_path / "notes.txt").write_text("not an image")
    cases = {
        get_testdata_file("MR_small.dcm"): "is not a CT image (Modality 'MR')",
        str(tmp_path / "no_rescale.dcm"): "lacks RescaleSlope",
        str(tmp_path / "unit.npy"): "is not a CT slice in HU",
        str(tmp_path / "wide.npy"): "the slice is 32 x 16; crop it to a square",
        str(tmp_path / "cube.npy"): "expected one real slice (H, W) in HU",
        str(tmp_path / "notes.txt"): "neither a CT example, a .npy in HU nor a DICOM file",
        str(tmp_path / "missing.npy"): "is neither a CT example",
    }
    for path, message in cases.items():
        with pytest.raises(SystemExit) as stop:
            bench.parse_args(["--image", path])
        assert stop.value.code == 2 and message in capsys.readouterr().err, path


def test_a_square_npy_in_hu_is_read_with_1_mm_pixels(bench, tmp_path):
    hu = np.full((40, 40), -1024.0, dtype=np.float32)
    hu[5:35, 5:35] = 30.0
    np.save(tmp_path / "slice.npy", hu)
    image, pixel = bench.load_slice(str(tmp_path / "slice.npy"))
    assert pixel == 1.0 and image.dtype == np.float32 and image.min() == -1024.0
    small, pixel = bench.load_slice(str(tmp_path / "slice.npy"), size=20)
    assert small.shape == (20, 20) and pixel == 2.0
