import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs a benchmark script

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"swd_model", "swd_real_vs_real", "swd_pca", "nn_ratio", "precision", "recall",
        "n_heldout", "target_met", "seconds"}


def _run(*args, timeout=600):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gan.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_gan_benchmark_scores_the_brain_generator_against_both_references(tmp_path):
    out = tmp_path / "gan.json"
    done = _run("--data", "brain", "--repeats", "1", "--json", str(out))
    results = json.loads(out.read_text())
    assert set(results) == {"brain"}
    scores = results["brain"]
    assert set(scores) == KEYS
    assert scores["n_heldout"] == 40
    assert 0 < scores["swd_real_vs_real"] < scores["swd_pca"]  # the baseline is not real data
    met = abs(scores["swd_model"] - scores["swd_real_vs_real"]) < abs(
        scores["swd_pca"] - scores["swd_real_vs_real"])
    assert scores["target_met"] == met
    assert done.returncode == (0 if met else 1), done.stderr
    assert "| brain" in done.stdout and "SWD PCA (x1e3)" in done.stdout


def test_gan_benchmark_refuses_bad_arguments():
    assert _run("--repeats", "0").returncode == 2
    assert _run("--data", "chest").returncode == 2
