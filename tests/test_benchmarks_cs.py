import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sigpy")

pytestmark = pytest.mark.slow  # each test runs a benchmark script

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "zero_filled",
    "fista_wavelet",
    "fista_wavelet_plain",
    "tv",
    "tv_anisotropic",
    "dictionary",
    "sigpy_l1wavelet",
    "sigpy_tv",
}


def test_cs_benchmark_writes_scores_of_every_method(tmp_path):
    yy, xx = np.mgrid[:32, :32]
    image = ((yy - 16) ** 2 + (xx - 15) ** 2 < 120).astype(np.float32) * (0.5 + yy / 64)
    np.save(tmp_path / "tiny.npy", image)
    out = tmp_path / "cs.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "cs.py"),
        "--image",
        str(tmp_path / "tiny.npy"),
        "--iters",
        "3",
        "--dl-iters",
        "1",
        "--accel",
        "2",
        "--json",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| fista_wavelet" in done.stdout
    results = json.loads(out.read_text())
    assert set(results) == METHODS
    for name, scores in results.items():
        assert set(scores) == {"psnr", "ssim", "seconds", "iterations"}, name
        assert all(isinstance(v, float) for v in scores.values())
        assert -1 <= scores["ssim"] <= 1 and scores["seconds"] >= 0
    assert results["fista_wavelet"]["iterations"] == 3
    assert results["dictionary"]["iterations"] == 1
    assert results["tv"]["psnr"] > results["zero_filled"]["psnr"]
