"""The shipped denoisers: small, trained on the training case only, and they reproduce the
validation PSNR recorded when they were made; the denoising benchmark runs end to end."""

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dlmi_utils.denoising import (
    DilatedDenoiser,
    ResUNetDenoiser,
    load_denoiser,
    pretrained_denoiser,
)
from dlmi_utils.denoising.models import PREFERRED_WEIGHTS, pretrained_name, receptive_field
from dlmi_utils.metrics import DEFAULT_BANDS, distance_edges
from dlmi_utils.noise import add_gaussian_noise, sigma_8bit, vst_sigma
from dlmi_utils.pretrained import WEIGHTS_DIR, available, lineage, load_meta

ROOT = Path(__file__).resolve().parents[1]
BLIND = ["dilated_blind", "dncnn_blind"]  # one blind net per kind covers sigma 10 - 55 / 255
# dncnn_blind trained on (--init), the blind DnCNN the lab uses
BLIND_TRAINED_ON = ["dncnn_blindB"]
# dncnn_blindB trained on at one level each, the DnCNN rows of the benchmark
DNCNN_LEVEL = {"dncnn_s15": 15.0, "dncnn_s25": 25.0}
# the dilated net trained on for the benchmark levels and for Lab 04's quantum noise after the
# Anscombe transform (N0 = 100: 255 / (2 sqrt(N0)) = 12.75)
SPECIFIC = ["dilated_s15", "dilated_s25", "dilated_s12.75"]
# trained on quantum noise itself, Anscombe-transformed counts at N0 = 100 (Lab 04's dose)
QUANTUM = ["dilated_p100"]
# the FFDNet layout (7 dilated layers on the 2 x 2 unshuffled film, 64 channels), trained from
# scratch at sigma 15, then on with synthetic film-edge lines (--edge-lines); benchmarks/README
FFDNET_LAYOUT = {"dilated2x_s15L": 15.0, "dilated2x_s25L": 25.0,
                 # trained on with a tenth of the patches anywhere on the film (--anywhere-fraction)
                 "dilated2x_s15B": 15.0, "dilated2x_s25B": 25.0}
NAMES = BLIND + BLIND_TRAINED_ON + SPECIFIC + list(DNCNN_LEVEL)
# the multi-scale residual U-Net (ResUNetDenoiser, 1.04M parameters), an extra benchmark row
RESUNET = {"resunet_s15": 15.0, "resunet_s25": 25.0}
# the preferred nets of a level (a float); the key (kind, "blind") names the preferred blind net
LEVEL_PREFERRED = [key for key in PREFERRED_WEIGHTS if key[1] != "blind"]


def _load_script(path: str):
    """The script at ``ROOT / path`` as a module (scripts and benchmarks are not a package)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train_script():
    return _load_script("scripts/train_denoisers.py")


@pytest.mark.parametrize("name", NAMES + QUANTUM + list(FFDNET_LAYOUT))
def test_weights_are_shipped_and_small(name):
    assert name in available()
    assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size < 2.5e6


@pytest.mark.parametrize("name", list(RESUNET))
def test_resunet_weights_are_shipped_and_a_few_megabytes(name):
    assert name in available() and load_meta(name)["kind"] == "resunet"
    assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size < 4.5e6  # 1.04M float32 parameters
    # on the same validation crops it is ahead of the dilated net of its level (37.54 / 36.06
    # against 37.37 / 35.77 dB): a reason to ship it
    dilated = load_meta(pretrained_name("dilated", RESUNET[name]))
    assert load_meta(name)["val_psnr"] > dilated["val_psnr"] + 0.1


def test_all_denoiser_weights_together_are_a_few_megabytes():
    total = sum((WEIGHTS_DIR / f"{n}.pt").stat().st_size
                for n in available() if n.startswith(("dncnn_", "dilated_")))
    assert total < 6e6


@pytest.mark.parametrize("name", NAMES + QUANTUM + list(FFDNET_LAYOUT) + list(RESUNET))
def test_trained_on_the_training_case_only(name):
    meta = load_meta(name)
    assert meta["data"]["split"] == "train" and meta["data"]["case"] == "sfm-benign-0"
    assert meta["data"]["val_view"] not in meta["data"]["train_views"]
    assert meta["pixel_size_mm"] == 0.2


@pytest.mark.parametrize("name", NAMES + list(RESUNET))
def test_reproduces_recorded_validation_psnr(name):
    meta = load_meta(name)
    sigma = meta["data"]["val_sigma_8bit"]
    model = load_denoiser(name)  # which net pretrained_denoiser picks: tested below
    assert model.weights_name == name and not model.training
    assert receptive_field(model) == meta["receptive_field"]
    scores = _train_script().validation_scores(model, sigma, meta["pixel_size_mm"])
    assert scores["psnr"] == pytest.approx(meta["val_psnr"], abs=0.02)
    assert scores["ssim"] == pytest.approx(meta["val_ssim"], abs=2e-4)
    noisy_psnr = 10 * np.log10(255**2 / sigma**2)
    assert meta["val_psnr"] > noisy_psnr + 10, "the denoiser must actually denoise"


def test_quantum_net_reproduces_its_validation_and_beats_the_film_net_of_its_level():
    """``dilated_p100``: its record's PSNR in the Anscombe domain, from ``dilated_s12.75``
    (the film net for Gaussian noise of the Anscombe level), which it must clearly beat there."""
    from dlmi_utils.denoising import load_denoiser

    meta = load_meta("dilated_p100")
    assert meta["photons"] == meta["data"]["val_photons"] == 100
    assert meta["sigma_8bit"] is None and meta["data"]["val_sigma_8bit"] is None
    assert "--photons 100 " in meta["command"] and meta["init"]["name"] == "dilated_s12.75"
    td = _train_script()
    model = load_denoiser("dilated_p100")
    scores = td.validation_scores(model, None, meta["pixel_size_mm"], photons=100)
    assert scores["psnr"] == pytest.approx(meta["val_psnr"], abs=0.02)
    assert scores["ssim"] == pytest.approx(meta["val_ssim"], abs=2e-4)
    film = td.validation_scores(pretrained_denoiser("dilated", 255 * vst_sigma(100)), None,
                                meta["pixel_size_mm"], photons=100)
    assert meta["val_psnr"] > film["psnr"] + 0.5  # 40.24 against 39.55 dB


@pytest.mark.parametrize("kind", ["dilated", "dncnn"])
@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_every_level_of_the_lab_has_weights(kind, sigma):
    meta = load_meta(pretrained_name(kind, sigma))
    if meta["sigma_range_8bit"] is None:
        assert meta["sigma_8bit"] == sigma
    else:
        lo, hi = meta["sigma_range_8bit"]
        assert lo <= sigma <= hi


def test_level_specific_weights_are_preferred():
    assert pretrained_name("dilated", 15) == "dilated2x_s15B"
    assert pretrained_name("dilated", 25.0) == "dilated2x_s25B"
    assert pretrained_name("dilated", 255 * vst_sigma(100)) == "dilated_s12.75"
    assert pretrained_name("dilated", 50) == "dilated_blind"
    assert pretrained_name("dilated", "blind") == "dilated_blind"
    assert pretrained_name("dncnn", 15) == "dncnn_s15"
    assert pretrained_name("dncnn", 25) == "dncnn_s25"
    assert pretrained_name("dncnn", 50) == pretrained_name("dncnn", "blind") == "dncnn_blindB"


@pytest.mark.parametrize(("kind", "sigma"), LEVEL_PREFERRED)
def test_preferred_weights_are_of_their_level_and_beat_the_first_ones_shipped(kind, sigma):
    preferred = load_meta(PREFERRED_WEIGHTS[kind, sigma])
    first = load_meta(f"{kind}_s{sigma:g}")
    assert (preferred["kind"], preferred["sigma_8bit"]) == (kind, sigma)
    for key in ("case", "val_view", "val_crops", "val_crop", "val_seed", "val_sigma_8bit"):
        assert preferred["data"][key] == first["data"][key], key  # same crops and noise draw
    assert preferred["val_psnr"] > first["val_psnr"] + 0.2  # 37.38 / 35.81 against 37.13 / 35.48


@pytest.mark.parametrize("kind", ["dilated", "dncnn"])
@pytest.mark.parametrize("sigma", [15, 25])
def test_default_nets_denoise_the_black_film_around_the_breast(kind, sigma):
    """Flat black film (two thirds of a mammogram) with the level's noise: the nets picked by
    default (a tenth of their last run's patches anywhere on the film) must flatten it. Nets
    trained only inside the breast left 28 - 40 % of the noise there."""
    y = add_gaussian_noise(np.zeros((160, 160), np.float32), sigma / 255, seed=0)
    net = pretrained_denoiser(kind, sigma)
    assert load_meta(net.weights_name)["training"]["anywhere_fraction"] >= 0.1
    with torch.no_grad():
        x_hat = net(torch.from_numpy(y)[None, None])[0, 0, 16:-16, 16:-16]
    assert float(x_hat.std()) < 0.15 * sigma / 255  # 0.08 - 0.10 of it
    assert abs(float(x_hat.mean())) < 0.1 * sigma / 255


def test_dncnn_trained_on_records_its_start_and_beats_it():
    """``dncnn_blindB``: ``dncnn_blind`` (400 steps) trained on, on the same validation crops;
    it must keep the range of levels and clearly beat its start (34.95 against 31.47 dB)."""
    meta, start = load_meta("dncnn_blindB"), load_meta("dncnn_blind")
    assert meta["init"]["name"] == "dncnn_blind" and "--init dncnn_blind " in meta["command"]
    assert meta["init"]["command"] == start["command"]
    assert meta["sigma_range_8bit"] == start["sigma_range_8bit"]
    assert meta["model_kwargs"] == start["model_kwargs"]
    for key in start["data"]:  # same training views, validation crops and noise draw
        assert meta["data"][key] == start["data"][key], key
    assert meta["val_psnr"] > start["val_psnr"] + 3.0


@pytest.mark.parametrize(("name", "sigma"), DNCNN_LEVEL.items())
def test_dncnn_of_a_level_records_its_blind_start_and_beats_it_there(name, sigma):
    """``dncnn_s15`` / ``dncnn_s25``: ``dncnn_blindB`` trained on at one level (4400 steps),
    same architecture and validation crops; at that level it must beat its start (36.73 ->
    37.00 and 34.95 -> 35.33 dB on validation)."""
    meta, start = load_meta(name), load_meta("dncnn_blindB")
    assert meta["sigma_8bit"] == meta["data"]["val_sigma_8bit"] == sigma
    assert meta["init"]["name"] == "dncnn_blindB" and "--init dncnn_blindB " in meta["command"]
    assert meta["init"]["command"] == start["command"]
    assert meta["model_kwargs"] == start["model_kwargs"]
    for key in ("case", "train_views", "val_view", "val_crops", "val_crop", "val_seed"):
        assert meta["data"][key] == start["data"][key], key
    blind = _train_script().validation_scores(load_denoiser("dncnn_blindB"), sigma,
                                              meta["pixel_size_mm"])
    assert meta["val_psnr"] > blind["psnr"] + 0.2


def test_without_the_preferred_weights_the_level_net_is_picked(monkeypatch):
    import dlmi_utils.pretrained as pretrained

    shipped = [n for n in available() if n not in PREFERRED_WEIGHTS.values()]
    monkeypatch.setattr(pretrained, "available", lambda: shipped)
    assert pretrained_name("dilated", 15) == "dilated_s15"
    assert pretrained_name("dilated", 25) == "dilated_s25"
    assert pretrained_name("dncnn", 25) == "dncnn_s25"
    assert pretrained_name("dncnn", 50) == pretrained_name("dncnn", "blind") == "dncnn_blind"


@pytest.mark.parametrize("name", SPECIFIC)
def test_level_specific_weights_record_where_they_started_and_beat_the_blind_net(name):
    meta = load_meta(name)
    first, *trained_on = runs = lineage(meta)  # from scratch, then each run from the one before
    assert runs[-1] is meta and "--init" not in first["command"]
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later["init"] is earlier and f"--init {earlier['name']}" in later["command"]
    if first.get("name", name) == "dilated_blind":  # the blind net trained on at the level
        assert trained_on and first["command"] == load_meta("dilated_blind")["command"]
    else:  # trained from scratch at the level
        assert f"--sigma {meta['sigma_8bit']:g} " in first["command"]
    assert all(r["name"] == name for r in trained_on[:-1])
    sigma = meta["sigma_8bit"]
    assert meta["data"]["val_sigma_8bit"] == sigma
    blind = _train_script().validation_scores(pretrained_denoiser("dilated", "blind"), sigma,
                                              meta["pixel_size_mm"])
    assert meta["val_psnr"] > blind["psnr"] + 0.3


def test_dilated_weights_record_the_loss_ablation():
    ablation = load_meta("dilated_blind")["loss_ablation"]["results"]
    assert set(ablation) == {"l2", "l1", "l1_msssim"}
    for record in ablation.values():
        assert 25 < record["val"]["psnr"] < 50 and 0 < record["val"]["ms_ssim"] <= 1


def test_resunet_is_picked_by_level_and_has_no_blind_fallback():
    """Lab 04 asks ``pretrained_denoiser("resunet", 255 * sigma)``: the float level finds its
    net, and a level without one says how to train it (no blind ResUNet is shipped)."""
    for name, level in RESUNET.items():
        assert pretrained_name("resunet", 255 * sigma_8bit(level)) == name
    with pytest.raises(FileNotFoundError, match="--kind resunet --sigma 50"):
        pretrained_name("resunet", 50)


def test_unknown_level_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="train_denoisers"):
        pretrained_name("dilated", 7)
    with pytest.raises(ValueError, match="kind"):
        pretrained_name("bm3d", 25)


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


@pytest.mark.parametrize("kind", ["flip", "transpose", "shift"])
def test_self_ensemble_passes_undo_their_transform(kind):
    """With a denoiser that returns its input, each second pass and the ensemble are exact;
    with one that sees position, the pass differs (it is a real second look)."""
    bench = _load_script("benchmarks/denoise.py")
    y = np.random.default_rng(0).random((6, 10)).astype(np.float32)
    np.testing.assert_array_equal(bench.SECOND_PASS[kind](lambda z: z, y), y)
    np.testing.assert_allclose(bench._self_ensemble(lambda z: z, kind)(y), y)
    column = lambda z: z * np.arange(z.shape[1])  # noqa: E731 - depends on where a pixel is
    assert not np.allclose(bench.SECOND_PASS[kind](column, y), column(y))


def test_denoise_benchmark_self_ensemble_runs_the_dilated_row_twice(tmp_path,
                                                                     plain_benchmark_s25):
    plain_out, plain = plain_benchmark_s25
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--sigma", "25",
                                                            "--self-ensemble", "flip")
    assert "(flip self-ensemble)" in stdout and "self-ensemble" not in plain_out
    for name in ("noisy", "bm3d", "dncnn"):  # the same noise draw, the other rows unchanged
        assert results[name]["psnr"] == pytest.approx(plain[name]["psnr"], abs=1e-6), name
    assert results["dilated"]["psnr"] != plain["dilated"]["psnr"]
    assert abs(results["dilated"]["psnr"] - plain["dilated"]["psnr"]) < 1.0


def test_denoise_benchmark_writes_every_method(plain_benchmark_s25):
    stdout, results = plain_benchmark_s25
    assert "| dilated" in stdout
    assert set(results) == {"noisy", "bm3d", "dncnn", "dilated"}
    for name, scores in results.items():
        assert set(scores) == {"psnr", "ssim", "seconds", "psnr_interior", "psnr_per_image"}, name
        assert -1 <= scores["ssim"] <= 1 and scores["seconds"] >= 0
        assert scores["psnr_per_image"] == [pytest.approx(scores["psnr"])]
    # white noise is as strong at the edge as inside; a denoiser's edge pixels are harder
    noisy = results["noisy"]
    assert noisy["psnr_interior"] == pytest.approx(noisy["psnr"], abs=0.5)
    assert results["dilated"]["psnr_interior"] > results["dilated"]["psnr"]
    margin = receptive_field(load_denoiser(pretrained_name("dilated", 25))) // 2  # the default
    assert "| smooth.npy" in stdout and f"interior (more than {margin} px" in stdout
    for name in ("bm3d", "dncnn", "dilated"):
        assert results[name]["psnr"] > results["noisy"]["psnr"] + 5, name


def test_denoise_benchmark_also_adds_a_row_per_named_denoiser(tmp_path, plain_benchmark_s25):
    _, plain = plain_benchmark_s25
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--sigma", "25",
                                                            "--also", "dilated_s15", "dncnn_s15")
    assert "| dilated_s15" in stdout and "| dncnn_s15" in stdout
    assert set(results) == {"noisy", "bm3d", "dncnn", "dilated", "dilated_s15", "dncnn_s15"}
    for name in ("noisy", "bm3d", "dncnn", "dilated"):  # the same draw, the same rows
        assert results[name]["psnr"] == pytest.approx(plain[name]["psnr"], abs=1e-6), name
    for name in ("dilated_s15", "dncnn_s15"):  # nets for a lower level still denoise
        assert results[name]["psnr"] > results["noisy"]["psnr"] + 3, name
        assert results[name]["psnr"] != results["dilated"]["psnr"]
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "denoise.py"), "--also",
                          "gan_brain", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--also gan_brain nope: not shipped denoiser" in bad.stderr
    assert "dilated_s25" in bad.stderr


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


def test_denoise_benchmark_on_the_training_case_says_so(tmp_path):
    """``--split train``: one crop per view of the case the nets learned from, labelled as such
    (an overfitting check); with ``--image`` the option is refused."""
    pytest.importorskip("bm3d")
    bench = [sys.executable, str(ROOT / "benchmarks" / "denoise.py"), "--sigma", "15"]
    out = tmp_path / "train.json"
    done = subprocess.run([*bench, "--split", "train", "--crop", "96", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "TRAINING case" in done.stdout and "sfm-benign-0" in done.stdout
    assert len(json.loads(out.read_text())["dilated"]["psnr_per_image"]) == 4
    bad = subprocess.run([*bench, "--split", "train", "--image", "x.npy"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "no meaning with --image" in bad.stderr
    too_big = subprocess.run([*bench, "--split", "train", "--crop", "2000"],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert too_big.returncode != 0 and "give a smaller --crop" in too_big.stderr


def test_denoise_benchmark_under_quantum_noise_runs_every_method_through_anscombe(tmp_path):
    stdout, results = _denoise_benchmark_on_a_smooth_image(tmp_path, "--photons", "100")
    assert "quantum noise N0 = 100" in stdout and "dilated_p100" in stdout
    # Poisson noise of N0 = 100 at x ~ 0.5: std sqrt(0.5 / 100) ~ 18 / 255
    assert 21 < results["noisy"]["psnr"] < 26
    for name in ("bm3d", "dncnn", "dilated"):
        assert results[name]["psnr"] > results["noisy"]["psnr"] + 5, name
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "denoise.py"), "--photons",
                          "-3"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--photons must be positive" in bad.stderr


def test_init_from_weights_of_another_network_is_a_clear_error():
    common = ["--sigma", "25", "--steps", "1", "--epochs", "1", "--name", "never_written"]
    with pytest.raises(SystemExit, match="give the same --kind and --features"):
        _train_script().main(["--kind", "dilated", "--features", "32", "--unshuffle", "2",
                              "--init", "dilated_blind", *common])
    with pytest.raises(SystemExit, match="give the same --kind and --features"):
        _train_script().main(["--kind", "dncnn", "--features", "64", "--init", "dncnn_blindB",
                              *common])  # a DnCNN is not widened
    with pytest.raises(SystemExit, match=r"widened from it \(--features >= 32\)"):
        _train_script().main(["--kind", "dilated", "--features", "16", "--init", "dilated_blind",
                              *common])
    assert "never_written" not in available()


def test_init_of_a_wider_net_starts_from_the_shipped_function():
    """``--init dilated2x_s15B --features 96``: the shipped net widened, the same outputs."""
    td = _train_script()
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(2, 1, 48, 48, generator=g) * 0.6 + 0.2
         + torch.randn(2, 1, 48, 48, generator=g) * 15 / 255)
    wider = td.init_model("dilated2x_s15B", DilatedDenoiser(features=96, unshuffle=2),
                          calibration=lambda: pytest.fail("no calibration to widen"), seed=0)
    assert wider.training and wider.config["features"] == 96
    with torch.no_grad():
        assert torch.allclose(wider.eval()(y), load_denoiser("dilated2x_s15B")(y), atol=1e-4)


def test_init_of_a_deeper_net_starts_from_the_shipped_function():
    """``--init dilated2x_s15L --dilations 1 2 3 4 5 4 3 2 1``: the shipped net deepened, the
    same outputs; dilations that drop one of its layers are refused before any data is read."""
    td = _train_script()
    deeper_dilations = (1, 2, 3, 4, 5, 4, 3, 2, 1)
    deeper = DilatedDenoiser(features=64, unshuffle=2, dilations=deeper_dilations)
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(2, 1, 48, 48, generator=g) * 0.6 + 0.2
         + torch.randn(2, 1, 48, 48, generator=g) * 15 / 255)
    deeper = td.init_model("dilated2x_s15L", deeper, calibration=lambda: y)
    assert deeper.training and deeper.config["dilations"] == list(deeper_dilations)
    same = td.init_model("dilated2x_s15L", DilatedDenoiser(features=64, unshuffle=2),
                         calibration=lambda: pytest.fail("no calibration at the same depth"))
    with torch.no_grad():
        assert torch.allclose(deeper.eval()(y), load_denoiser("dilated2x_s15L")(y), atol=1e-4)
        assert torch.equal(same.eval()(y), load_denoiser("dilated2x_s15L")(y))  # same depth: loaded
    with pytest.raises(SystemExit, match="must contain the model's"):
        td.main(["--kind", "dilated", "--features", "64", "--unshuffle", "2", "--sigma", "15",
                 "--dilations", "1", "2", "3", "2", "1", "--steps", "1", "--epochs", "1",
                 "--init", "dilated2x_s15L", "--name", "never_written"])
    assert "never_written" not in available()


def test_training_run_records_its_curve_on_the_scale_of_its_final_score():
    """Two steps of the training script: the last point of the recorded validation curve is
    the recorded validation PSNR (both peak 1), and the model comes back on the CPU."""
    td = _train_script()
    args = argparse.Namespace(threads=1, pixel_size=0.2, patch_size=32, batch_size=2,
                              min_inside=0.9, seed=0, sigma_range=None, sigma=25.0, photons=None,
                              kind="dilated", features=8, unshuffle=2, init=None, val_sigma=25,
                              epochs=1, lr=1e-3, device="cpu", edge_fraction=0.25,
                              edge_lines=0.5, anywhere_fraction=0.1,
                              dilations=[1, 2, 3, 4, 3, 2, 1])
    model, record = td.train(args, "l2", steps=2)
    assert next(model.parameters()).device.type == "cpu" and model.config["unshuffle"] == 2
    assert record["steps"] == 2 and record["history_data_range"] == 1.0
    assert record["history"]["val_psnr"][-1] == pytest.approx(record["val"]["psnr"], abs=2e-3)


def test_training_script_trains_a_resunet():
    """``--kind resunet --widths .. --blocks ..``: two steps, the layout asked for, a record."""
    td = _train_script()
    args = argparse.Namespace(threads=1, pixel_size=0.2, patch_size=32, batch_size=2,
                              min_inside=0.9, seed=0, sigma_range=None, sigma=15.0, photons=None,
                              kind="resunet", features=64, widths=[4, 8], blocks=1, unshuffle=2,
                              init=None, val_sigma=25, epochs=1, lr=1e-3, device="cpu",
                              edge_fraction=0.25, edge_lines=0.5, anywhere_fraction=0.1,
                              dilations=[1, 2, 3, 4, 3, 2, 1])
    assert td.model_kwargs(args) == {"features": (4, 8), "blocks": 1, "unshuffle": 2}
    model, record = td.train(args, "l2", steps=2)
    assert isinstance(model, ResUNetDenoiser) and model.config["features"] == [4, 8]
    assert record["steps"] == 2 and np.isfinite(record["val"]["psnr"])
    assert record["history"]["val_psnr"][-1] == pytest.approx(record["val"]["psnr"], abs=2e-3)


def test_quantum_noise_training_runs_in_the_anscombe_domain():
    """Two steps with ``--photons``: Poisson draws, the Anscombe domain, the record says so."""
    td = _train_script()
    args = argparse.Namespace(threads=1, pixel_size=0.2, patch_size=32, batch_size=2,
                              min_inside=0.9, seed=0, sigma_range=None, sigma=None, photons=100.0,
                              kind="dilated", features=8, unshuffle=1, init=None, val_sigma=25,
                              epochs=1, lr=1e-3, device="cpu", edge_fraction=0.0,
                              edge_lines=0.0, anywhere_fraction=0.0,
                              dilations=[1, 2, 3, 4, 3, 2, 1])
    assert td.validation_sigma(args) is None
    model, record = td.train(args, "l2", steps=2)
    assert record["history"]["val_psnr"][-1] == pytest.approx(record["val"]["psnr"], abs=2e-3)
    (noisy, target), = td.validation_pairs(None, 0.2, n=1, photons=100.0)
    assert noisy.dtype == target.dtype == torch.float32
    # a net that has learned nothing returns its input: the PSNR of anscombe(y) itself
    untrained = td.validation_scores(torch.nn.Identity(), None, 0.2, photons=100.0)
    assert untrained["psnr"] == pytest.approx(10 * np.log10(1 / (vst_sigma(100) ** 2)), abs=0.3)
    with pytest.raises(ValueError, match="one of sigma and photons"):
        td.validation_pairs(25, 0.2, photons=100.0)
    with pytest.raises(SystemExit):
        td.main(["--photons", "0", "--steps", "1", "--name", "never_written"])
    assert "never_written" not in available()


def test_the_init_record_is_read_before_training(monkeypatch):
    """A run must not need its ``--init`` files at the end: they may be overwritten or moved
    while it trains (a lost run, stop 16)."""
    td = _train_script()
    calls = []
    monkeypatch.setattr(td, "init_record", lambda name: calls.append(("init_record", name)))

    def train_stops_here(args, loss, steps):
        calls.append(("train",))
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(td, "train", train_stops_here)
    with pytest.raises(RuntimeError, match="stopped before training"):
        td.main(["--kind", "dilated", "--features", "32", "--sigma", "25", "--steps", "1",
                 "--epochs", "1", "--init", "dilated_s25", "--name", "never_written"])
    assert calls == [("init_record", "dilated_s25"), ("train",)]
    assert "never_written" not in available()


def test_init_record_keeps_the_chain_back_to_the_run_from_scratch():
    record = _train_script().init_record("dilated_s25")
    assert record["name"] == "dilated_s25"
    assert record["init"] == load_meta("dilated_s25")["init"]
    assert lineage({"init": record})[0]["name"] == "dilated_blind"


def test_load_denoiser_builds_the_recorded_network_by_name():
    from dlmi_utils.denoising import load_denoiser

    net = load_denoiser("dilated_s25")
    assert net.weights_name == "dilated_s25" and not net.training
    assert net.config == {**net.config, **load_meta("dilated_s25")["model_kwargs"]}
    with pytest.raises(ValueError, match="not denoiser weights"):
        load_denoiser("cascade_r4")



@pytest.mark.parametrize("name", FFDNET_LAYOUT)
def test_ffdnet_layout_weights_reproduce_their_validation_and_record_their_chain(name):
    meta = load_meta(name)
    sigma = FFDNET_LAYOUT[name]
    assert meta["data"]["val_sigma_8bit"] == sigma
    assert meta["model_kwargs"]["unshuffle"] == 2 and meta["training"]["edge_lines"] > 0
    runs = lineage(meta)
    assert "--init" not in runs[0]["command"] and "--unshuffle 2" in runs[0]["command"]
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later["init"] is earlier and f"--init {earlier['name']}" in later["command"]
    model = load_denoiser(name)
    assert receptive_field(model) == meta["receptive_field"] == 66
    scores = _train_script().validation_scores(model, sigma, meta["pixel_size_mm"])
    assert scores["psnr"] == pytest.approx(meta["val_psnr"], abs=0.02)
    # above the shipped 32-channel net of the level on the same validation crops
    assert meta["val_psnr"] > load_meta(f"dilated_s{sigma:g}")["val_psnr"] + 0.2
