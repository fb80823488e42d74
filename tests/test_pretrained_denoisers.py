"""The shipped denoisers: small, trained on the training case only, and they reproduce the
validation figures recorded when they were made; the training script records its runs as one
command; the denoising benchmark picks the shipped nets of a level and runs end to end."""

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dlmi_utils import pretrained
from dlmi_utils.denoising import DilatedDenoiser, DnCNN, ResUNetDenoiser, receptive_field
from dlmi_utils.metrics import DEFAULT_BANDS, distance_edges
from dlmi_utils.noise import GaussianNoise, PoissonNoise, add_gaussian_noise, sigma_8bit
from dlmi_utils.pretrained import WEIGHTS_DIR, available, load_pretrained, load_record

ROOT = Path(__file__).resolve().parents[1]
DENOISERS = [n for n in available() if load_record(n)["model"].startswith("dlmi_utils.denoising.")]
# the nets of a Gaussian level: a tenth of their last run's patches anywhere on the film
LEVEL = {"dilated_sigma15": 15.0, "dilated_sigma25": 25.0, "dncnn_sigma15": 15.0,
         "dncnn_sigma25": 25.0, "resunet_sigma15": 15.0, "resunet_sigma25": 25.0}


def _load_script(path: str):
    """The script at ``ROOT / path`` as a module (scripts and benchmarks are not a package)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train_script():
    return _load_script("scripts/train_denoisers.py")


def _validation(name: str, model: torch.nn.Module | None = None) -> dict[str, float]:
    """The validation scores of ``model`` (default: the shipped ``name``) on the validation
    crops and noise of the record of ``name``."""
    td = _train_script()
    data = load_record(name)["data"]
    model = load_pretrained(name) if model is None else model
    return td.validation_scores(model, td.validation_noise(data), data["pixel_size_mm"])


def test_the_shipped_denoisers_are_those_the_lab_and_the_benchmark_load():
    assert sorted(DENOISERS) == sorted(
        ["dilated_blind", "dncnn_blind", "dilated_sigma12.75", "dilated_photons100",
         "dilated_sigma25_breast_only", *LEVEL])


@pytest.mark.parametrize("name", DENOISERS)
def test_weights_are_small(name):
    limit = 4.5e6 if name.startswith("resunet") else 1e6  # the ResUNet: 1.04M float32 parameters
    assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size < limit


@pytest.mark.parametrize("name", DENOISERS)
def test_trained_on_the_training_case_only(name):
    data = load_record(name)["data"]
    assert data["split"] == "train" and data["case"] == "sfm-benign-0"
    assert data["val_view"] not in data["train_views"]
    assert data["pixel_size_mm"] == 0.2


@pytest.mark.parametrize("name", DENOISERS)
def test_record_names_the_noise_it_was_trained_for(name):
    record = load_record(name)
    keys = {"sigma_8bit", "sigma_range_8bit", "photons"} & set(record)
    assert len(keys) == 1, keys
    if "photons" in record:
        assert record["data"]["val_photons"] == record["photons"]
    elif "sigma_8bit" in record:
        assert record["data"]["val_sigma_8bit"] == record["sigma_8bit"]
    for run in record["training"]["runs"]:
        assert len(run["val_psnr"]) >= 1 and run["steps"] % len(run["val_psnr"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", DENOISERS)
def test_reproduces_recorded_validation_figures(name):
    record = load_record(name)
    scores = _validation(name)
    assert scores["psnr"] == pytest.approx(record["validation"]["psnr"], abs=0.02)
    assert scores["ssim"] == pytest.approx(record["validation"]["ssim"], abs=2e-4)
    if "val_sigma_8bit" in record["data"]:
        noisy_psnr = 10 * np.log10(255**2 / record["data"]["val_sigma_8bit"] ** 2)
        assert record["validation"]["psnr"] > noisy_psnr + 10, "the denoiser must denoise"


@pytest.mark.slow
def test_quantum_net_beats_the_film_net_of_its_level_on_quantum_noise():
    """``dilated_photons100`` against ``dilated_sigma12.75`` (films with Gaussian noise of the
    Anscombe level) in the Anscombe domain: 40.24 against 39.55 dB."""
    film = _validation("dilated_photons100", load_pretrained("dilated_sigma12.75"))
    assert load_record("dilated_photons100")["validation"]["psnr"] > film["psnr"] + 0.5


@pytest.mark.parametrize(("name", "sigma"), LEVEL.items())
def test_level_nets_denoise_the_black_film_around_the_breast(name, sigma):
    """Flat black film (two thirds of a mammogram) with the level's noise: the nets of a level
    (a tenth of their last run's patches anywhere on the film) must flatten it."""
    assert load_record(name)["training"]["runs"][-1]["anywhere_fraction"] >= 0.1
    y = add_gaussian_noise(np.zeros((160, 160), np.float32), sigma / 255, seed=0)
    with torch.no_grad():
        x_hat = load_pretrained(name)(torch.from_numpy(y)[None, None])[0, 0, 16:-16, 16:-16]
    assert float(x_hat.std()) < 0.15 * sigma / 255  # 0.08 - 0.10 of it
    assert abs(float(x_hat.mean())) < 0.1 * sigma / 255


def test_the_net_trained_only_inside_the_breast_leaves_noise_on_the_black_film():
    """``dilated_sigma25_breast_only`` is ``dilated_sigma25`` before its last run: Lab 04 shows
    what the patches drawn anywhere on the film changed."""
    before, after = load_record("dilated_sigma25_breast_only"), load_record("dilated_sigma25")
    assert after["command"].startswith(before["command"] + " && ")
    assert after["training"]["runs"][:-1] == before["training"]["runs"]
    y = add_gaussian_noise(np.zeros((160, 160), np.float32), 25 / 255, seed=0)
    left = {}
    for name in ("dilated_sigma25_breast_only", "dilated_sigma25"):
        with torch.no_grad():
            left[name] = float(load_pretrained(name)(torch.from_numpy(y)[None, None]).std())
    assert left["dilated_sigma25_breast_only"] > 2 * left["dilated_sigma25"]


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [15, 25])
def test_level_nets_beat_the_blind_net_of_their_kind_and_the_resunet_beats_them(sigma):
    """On the validation crops of the level: the nets trained for it above the blind net
    trained on [10, 55] / 255, the ResUNet above the dilated net (a reason to ship it)."""
    for kind in ("dilated", "dncnn"):
        name = f"{kind}_sigma{sigma}"
        blind = _validation(name, load_pretrained(f"{kind}_blind"))
        assert load_record(name)["validation"]["psnr"] > blind["psnr"] + 0.2, name
    resunet = load_record(f"resunet_sigma{sigma}")["validation"]["psnr"]
    assert resunet > load_record(f"dilated_sigma{sigma}")["validation"]["psnr"] + 0.1


def test_dilated_blind_records_the_loss_ablation():
    ablation = load_record("dilated_blind")["loss_ablation"]
    assert "--ablation" in ablation["command"]
    assert set(ablation["results"]) == {"l2", "l1", "l1_msssim"}
    for result in ablation["results"].values():
        assert 25 < result["validation"]["psnr"] < 50 and 0 < result["validation"]["ms_ssim"] <= 1
        assert len(result["val_psnr"]) >= 1


# ---------------------------------------------------------------- the training script
def _args(**changes) -> argparse.Namespace:
    args = dict(threads=1, pixel_size=0.2, patch_size=32, batch_size=2, min_inside=0.9, seed=0,
                sigma_range=None, sigma=25.0, photons=None, val_sigma=25, kind="dilated",
                features=8, depth=17, unshuffle=2, widths=[32, 64, 128], blocks=2, init=None,
                epochs=1, lr=1e-3, device="cpu", edge_fraction=0.25, edge_lines=0.5,
                anywhere_fraction=0.1)
    return argparse.Namespace(**{**args, **changes})


@pytest.mark.slow
def test_training_run_records_its_curve_on_the_scale_of_its_final_score():
    """Two steps: the last point of the recorded validation curve is the recorded validation
    PSNR (both peak 1), and the model comes back on the CPU."""
    td = _train_script()
    args = _args()
    model, run, scores = td.train(args, td.initial_model(args), "l2", steps=2)
    assert next(model.parameters()).device.type == "cpu" and model.config["unshuffle"] == 2
    assert run["steps"] == 2 and run["val_psnr_peak"] == 1.0
    assert run["val_psnr"][-1] == pytest.approx(scores["psnr"], abs=2e-3)


@pytest.mark.slow
def test_training_script_trains_a_resunet():
    td = _train_script()
    args = _args(kind="resunet", sigma=15.0, widths=[4, 8], blocks=1)
    assert td.model_kwargs(args) == {"features": (4, 8), "blocks": 1, "unshuffle": 2}
    model, run, scores = td.train(args, td.initial_model(args), "l2", steps=2)
    assert isinstance(model, ResUNetDenoiser) and model.config["features"] == [4, 8]
    assert run["steps"] == 2 and np.isfinite(scores["psnr"])


@pytest.mark.slow
def test_quantum_noise_training_runs_in_the_anscombe_domain():
    """Two steps with ``--photons``: Poisson draws, the Anscombe domain, the record says so."""
    td = _train_script()
    args = _args(sigma=None, photons=100.0, unshuffle=1, edge_fraction=0.0, edge_lines=0.0,
                 anywhere_fraction=0.0)
    assert td.validation_data(args)["val_photons"] == 100.0
    assert td.noise_keys(args) == {"photons": 100.0} and td.weights_name(_args(
        sigma=None, photons=100.0, name=None)) == "dilated_photons100"
    model, run, scores = td.train(args, td.initial_model(args), "l2", steps=2)
    assert run["val_psnr"][-1] == pytest.approx(scores["psnr"], abs=2e-3)
    noise = PoissonNoise(100.0)
    (noisy, target), = td.validation_pairs(noise, 0.2, n=1)
    assert noisy.dtype == target.dtype == torch.float32
    # a net that has learned nothing returns its input: the PSNR of anscombe(y) itself
    untrained = td.validation_scores(torch.nn.Identity(), noise, 0.2)
    assert untrained["psnr"] == pytest.approx(10 * np.log10(1 / noise.level**2), abs=0.3)
    with pytest.raises(SystemExit):
        td.main(["--photons", "0", "--steps", "1", "--name", "never_written"])
    assert "never_written" not in available()


def test_validation_noise_is_that_of_the_record():
    td = _train_script()
    gaussian = td.validation_noise({"val_sigma_8bit": 15.0})
    assert isinstance(gaussian, GaussianNoise) and gaussian.level == sigma_8bit(15)
    assert td.validation_noise({"val_photons": 100.0}).photons == 100.0


def test_init_from_weights_of_another_network_is_a_clear_error():
    common = ["--sigma", "25", "--steps", "1", "--epochs", "1", "--name", "never_written"]
    with pytest.raises(SystemExit, match="give the same --kind and layout"):
        _train_script().main(["--kind", "dilated", "--features", "32", "--unshuffle", "2",
                              "--init", "dilated_blind", *common])
    with pytest.raises(SystemExit, match="give the same --kind and layout"):
        _train_script().main(["--kind", "dilated", "--features", "32", "--init", "dncnn_blind",
                              *common])
    assert "never_written" not in available()


def test_init_starts_from_the_shipped_function_in_training_mode():
    td = _train_script()
    args = _args(features=32, unshuffle=1, init="dilated_blind")
    model = td.initial_model(args)
    assert isinstance(model, DilatedDenoiser) and model.training
    y = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        assert torch.equal(model.eval()(y), load_pretrained("dilated_blind")(y))
    assert isinstance(td.initial_model(_args(kind="dncnn", features=4, depth=3)), DnCNN)


@pytest.mark.slow
def test_a_run_from_shipped_weights_records_their_command_and_runs_before_its_own(
        tmp_path, monkeypatch):
    """``--init dilated_blind``: one step, written to a scratch weights folder; the record's
    command is dilated_blind's `` && `` this one, its runs dilated_blind's then this one."""
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"dilated_blind{suffix}", tmp_path)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    argv = ["--kind", "dilated", "--features", "32", "--sigma", "25", "--steps", "1",
            "--epochs", "1", "--batch-size", "2", "--patch-size", "32", "--threads", "1",
            "--device", "cpu", "--init", "dilated_blind", "--name", "chained"]
    assert _train_script().main(argv) == 0
    start, record = load_record("dilated_blind"), load_record("chained")
    assert record["command"] == (start["command"] + " && python scripts/train_denoisers.py "
                                 + " ".join(argv))
    assert record["training"]["runs"][:-1] == start["training"]["runs"]
    assert record["sigma_8bit"] == 25.0 and record["data"]["val_sigma_8bit"] == 25.0
    assert "loss_ablation" not in record and load_pretrained("chained").weights_name == "chained"


def test_the_init_record_is_read_before_training(monkeypatch):
    """A run must not need its ``--init`` files at the end: a run ``--init X --name X``
    overwrites X."""
    td = _train_script()
    calls = []
    monkeypatch.setattr(td, "load_record", lambda name: calls.append(("load_record", name)))
    monkeypatch.setattr(td, "initial_model", lambda args: calls.append(("initial_model",)))

    def train_stops_here(args, model, loss, steps):
        calls.append(("train",))
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(td, "train", train_stops_here)
    with pytest.raises(RuntimeError, match="stopped before training"):
        td.main(["--kind", "dilated", "--features", "32", "--sigma", "25", "--steps", "1",
                 "--epochs", "1", "--init", "dilated_blind", "--name", "never_written"])
    assert calls == [("load_record", "dilated_blind"), ("initial_model",), ("train",)]
    assert "never_written" not in available()


# ---------------------------------------------------------------- the benchmark
def test_benchmark_picks_the_nets_of_the_level_else_the_blind_ones():
    bench = _load_script("benchmarks/denoise.py")
    gaussian = GaussianNoise(sigma_8bit(25))
    assert bench.shipped_denoiser("dilated", gaussian, 25) == "dilated_sigma25"
    assert bench.shipped_denoiser("dncnn", gaussian, 15) == "dncnn_sigma15"
    assert bench.shipped_denoiser("dilated", gaussian, 12.75) == "dilated_sigma12.75"
    assert bench.shipped_denoiser("dilated", gaussian, 50) == "dilated_blind"
    quantum = PoissonNoise(100)
    assert bench.shipped_denoiser("dilated", quantum, 12.75) == "dilated_photons100"
    assert bench.shipped_denoiser("dncnn", quantum, 12.75) == "dncnn_blind"
    with pytest.raises(SystemExit, match="--kind dncnn --sigma 7"):
        bench.shipped_denoiser("dncnn", gaussian, 7)
    assert sorted(bench.shipped_denoisers()) == sorted(DENOISERS)


@pytest.fixture(scope="module")
def plain_benchmark_s25(tmp_path_factory):
    """The benchmark at sigma 25 on the smooth image, run once for the tests that read it."""
    return _denoise_benchmark_on_a_smooth_image(tmp_path_factory.mktemp("plain"), "--sigma", "25")


def _denoise_benchmark_on_a_smooth_image(tmp_path, *noise_args: str):
    """``benchmarks/denoise.py NOISE_ARGS`` on a smooth 96 x 96 ``.npy``: its stdout and JSON."""
    pytest.importorskip("bm3d")
    yy, xx = np.mgrid[:96, :96]
    image = 0.5 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    np.save(tmp_path / "smooth.npy", image.astype(np.float32))
    out = tmp_path / "denoise.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "denoise.py"), *noise_args,
           "--image", str(tmp_path / "smooth.npy"), "--crop", "0", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_denoise_benchmark_writes_every_method(plain_benchmark_s25):
    stdout, results = plain_benchmark_s25
    assert "| dilated" in stdout and "weights dncnn_sigma25, dilated_sigma25" in stdout
    assert set(results) == {"noisy", "bm3d", "dncnn", "dilated"}
    for name, scores in results.items():
        assert set(scores) == {"psnr", "ssim", "seconds", "psnr_interior", "psnr_per_image"}, name
        assert -1 <= scores["ssim"] <= 1 and scores["seconds"] >= 0
        assert scores["psnr_per_image"] == [pytest.approx(scores["psnr"])]
    # white noise is as strong at the edge as inside; a denoiser's edge pixels are harder
    noisy = results["noisy"]
    assert noisy["psnr_interior"] == pytest.approx(noisy["psnr"], abs=0.5)
    assert results["dilated"]["psnr_interior"] > results["dilated"]["psnr"]
    margin = receptive_field(load_pretrained("dilated_sigma25")) // 2  # the default
    assert "| smooth.npy" in stdout and f"interior (more than {margin} px" in stdout
    for name in ("bm3d", "dncnn", "dilated"):
        assert results[name]["psnr"] > results["noisy"]["psnr"] + 5, name


@pytest.mark.slow
def test_denoise_benchmark_also_adds_a_row_per_named_denoiser(tmp_path, plain_benchmark_s25):
    _, plain = plain_benchmark_s25
    stdout, results = _denoise_benchmark_on_a_smooth_image(
        tmp_path, "--sigma", "25", "--also", "dilated_sigma15", "dncnn_sigma15")
    assert "| dilated_sigma15" in stdout and "| dncnn_sigma15" in stdout
    assert set(results) == {"noisy", "bm3d", "dncnn", "dilated", "dilated_sigma15",
                            "dncnn_sigma15"}
    for name in ("noisy", "bm3d", "dncnn", "dilated"):  # the same draw, the same rows
        assert results[name]["psnr"] == pytest.approx(plain[name]["psnr"], abs=1e-6), name
    for name in ("dilated_sigma15", "dncnn_sigma15"):  # nets for a lower level still denoise
        assert results[name]["psnr"] > results["noisy"]["psnr"] + 3, name
        assert results[name]["psnr"] != results["dilated"]["psnr"]
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "denoise.py"), "--also",
                          "gan_brain", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--also gan_brain nope: not shipped denoiser" in bad.stderr
    assert "dilated_sigma25" in bad.stderr


@pytest.mark.slow
def test_denoise_benchmark_bands_split_each_mse_by_frequency(tmp_path, plain_benchmark_s25):
    _, plain = plain_benchmark_s25
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--sigma", "25", "--bands")
    assert "by spatial frequency of the error" in stdout and "| [0, 0.05)" in stdout
    assert results["error_band_edges"] == list(DEFAULT_BANDS)
    for name in ("noisy", "bm3d", "dncnn", "dilated"):
        bands = results[name]["error_bands"]
        assert len(bands) == len(DEFAULT_BANDS) - 1 and min(bands) >= 0, name
        # data_range 1: the bands sum to the MSE behind the PSNR, which --bands leaves alone
        assert 10 * np.log10(1 / sum(bands)) == pytest.approx(results[name]["psnr"], abs=1e-6)
        assert results[name]["psnr"] == pytest.approx(plain[name]["psnr"], abs=1e-6), name
    # white noise fills the high bands; a denoiser of a smooth image leaves little there
    assert results["dilated"]["error_bands"][-2] < 0.1 * results["noisy"]["error_bands"][-2]


@pytest.mark.slow
def test_denoise_benchmark_edge_profile_splits_each_mse_by_column(tmp_path, plain_benchmark_s25):
    _, plain = plain_benchmark_s25
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--sigma", "25",
                                                           "--edge-profile")
    assert "by distance from the first column" in stdout and "| [64, 96)" in stdout
    edges = results["error_distance_edges"]
    assert edges == distance_edges(96)  # the smooth image is 96 pixels wide
    widths = np.diff(edges)
    for name in ("noisy", "bm3d", "dncnn", "dilated"):
        profile = results[name]["error_by_distance"]
        assert len(profile) == len(edges) - 1 and min(profile) >= 0, name
        # data_range 1: weighted by their widths the bands give the MSE behind the PSNR
        mse = np.dot(profile, widths) / edges[-1]
        assert 10 * np.log10(1 / mse) == pytest.approx(results[name]["psnr"], abs=1e-6), name
        assert results[name]["psnr"] == pytest.approx(plain[name]["psnr"], abs=1e-6), name
    # white noise is the same in every column; the net removes most of it in each
    noisy = np.array(results["noisy"]["error_by_distance"])
    assert noisy[-1] == pytest.approx((25 / 255) ** 2, rel=0.1)
    assert all(np.array(results["dilated"]["error_by_distance"])[2:] < 0.2 * noisy[2:])


@pytest.mark.slow
def test_denoise_benchmark_wiener_adds_the_hybrid_row(tmp_path, plain_benchmark_s25):
    _, plain = plain_benchmark_s25
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--sigma", "25", "--wiener")
    assert "| dilated+wiener" in stdout
    assert set(results) == {"noisy", "bm3d", "dncnn", "dilated", "dilated+wiener"}
    for name in ("noisy", "bm3d", "dncnn", "dilated"):  # same noise draw, rows unchanged
        assert results[name]["psnr"] == pytest.approx(plain[name]["psnr"], abs=1e-6), name
    hybrid = results["dilated+wiener"]
    assert hybrid["psnr"] != results["dilated"]["psnr"]
    assert abs(hybrid["psnr"] - results["dilated"]["psnr"]) < 1.5
    assert hybrid["seconds"] > 0


@pytest.mark.slow
def test_denoise_benchmark_under_quantum_noise_runs_every_method_through_anscombe(tmp_path):
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--photons", "100")
    assert "quantum noise N0 = 100" in stdout and "dncnn_blind, dilated_photons100" in stdout
    # Poisson noise of N0 = 100 at x ~ 0.5: std sqrt(0.5 / 100) ~ 18 / 255
    assert 21 < results["noisy"]["psnr"] < 26
    for name in ("bm3d", "dncnn", "dilated"):
        assert results[name]["psnr"] > results["noisy"]["psnr"] + 5, name
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "denoise.py"), "--photons",
                          "-3"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--photons must be positive" in bad.stderr
