"""benchmarks/recon.py runs end to end on a tiny image and writes every method's scores."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each test runs a benchmark script

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("zero_filled", "cs", "cascade", "unet")


def test_recon_benchmark_writes_scores_of_every_method(tmp_path):
    yy, xx = np.mgrid[:48, :48]
    image = ((yy - 24) ** 2 + (xx - 22) ** 2 < 300).astype(np.float32) * (0.4 + yy / 96)
    np.save(tmp_path / "tiny.npy", image)
    out = tmp_path / "recon.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "recon.py"), "--accel", "4",
           "--image", str(tmp_path / "tiny.npy"), "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| cascade" in done.stdout and "R = 4, 1 slices" in done.stdout
    results = json.loads(out.read_text())
    assert results["accel"] == 4 and results["n_slices"] == 1
    for name in METHODS:
        scores = results[name]
        assert {"psnr", "ssim", "seconds", "per_slice_psnr"} <= set(scores), name
        assert np.isfinite(scores["psnr"]) and -1 <= scores["ssim"] <= 1, name
        assert scores["seconds"] >= 0 and len(scores["per_slice_psnr"]) == 1, name
    assert results["cs"]["method"] == "tv" and results["cs"]["lam"] > 0
    # the cascade keeps the measured samples: it cannot do worse than zero filling here
    assert results["cascade"]["psnr"] > results["zero_filled"]["psnr"]


def test_recon_benchmark_refuses_an_untuned_acceleration():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "recon.py"), "--accel", "6"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode != 0 and "invalid choice" in done.stderr


def test_recon_benchmark_scores_each_image_given_as_its_own_data_set(tmp_path):
    yy, xx = np.mgrid[:40, :56]  # not square: the benchmark takes the centred square
    for k, name in enumerate(("disc", "ring")):
        r2 = (yy - 20) ** 2 + (xx - 28) ** 2
        image = (r2 < 250).astype(np.float32) if k == 0 else ((r2 > 60) & (r2 < 300)) * 0.7
        np.save(tmp_path / f"{name}.npy", image.astype(np.float32))
    out = tmp_path / "recon.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "recon.py"), "--accel", "8",
           "--image", str(tmp_path / "disc.npy"), "--image", str(tmp_path / "ring.npy"),
           "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "PSNR (dB) on each data set, R = 8" in done.stdout
    results = json.loads(out.read_text())
    assert results["n_slices"] == 2 and list(results["sets"]) == ["disc", "ring"]
    for name in METHODS:  # the mean over the data sets is the overall mean (one image each)
        per_set = [results["sets"][s][name] for s in ("disc", "ring")]
        assert np.mean(per_set) == pytest.approx(results[name]["psnr"])
        assert per_set == pytest.approx(results[name]["per_slice_psnr"])
