"""benchmarks/sr.py runs end to end on a small NIfTI crop and refuses bad input clearly."""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dlmi_utils.data import load_brain_volume

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "sr.py")
METHODS = ("linear", "cubic", "tv", "cnn", "cnn_consistent")


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def _crop(tmp_path, affine="identity", name="crop.nii.gz", data=None):
    affine = np.eye(4) if isinstance(affine, str) else affine
    if data is None:
        volume, _ = load_brain_volume()  # RAS (X, Y, Z): a 40 x 36 x 48 mm block of the brain
        data = np.ascontiguousarray(volume[78:118, 100:136, 60:108]) * 255
    image = nib.Nifti1Image(data.astype(np.float32), affine)
    nib.save(image, tmp_path / name)
    return tmp_path / name


@pytest.mark.slow
def test_sr_benchmark_writes_scores_of_every_method(tmp_path):
    out = tmp_path / "sr.json"
    done = _run("--factor", 4, "--volume", _crop(tmp_path), "--json", out, "--threads", 1)
    assert done.returncode == 0, done.stderr
    assert "above 2 % of its maximum" in done.stdout and "| cnn_consistent" in done.stdout
    results = json.loads(out.read_text())
    assert results["factor"] == 4 and results["shape"] == [48, 36, 40]  # (Z, Y, X)
    for name in METHODS:
        scores = results[name]
        assert {"psnr", "ssim", "dice", "seconds"} <= set(scores), name
        assert np.isfinite(scores["psnr"]) and 0 < scores["dice"] <= 1, name
    # the projection cannot increase the error much, even scored in a mask
    assert results["cnn_consistent"]["psnr"] > results["cnn"]["psnr"] - 0.05
    assert results["cubic"]["psnr"] > results["linear"]["psnr"]


def test_sr_benchmark_resamples_to_1mm(tmp_path):
    data = np.zeros((20, 20, 24), np.float32)
    data[4:16, 4:16, 4:20] = np.linspace(50, 200, 16)[None, None]
    path = _crop(tmp_path, affine=np.diag([2.0, 2.0, 1.0, 1.0]), data=data)
    done = _run("--factor", 2, "--volume", path, "--methods", "linear", "cubic", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(Z, Y, X) = (24, 40, 40)" in done.stdout


def test_sr_benchmark_refuses_bad_input(tmp_path):
    done = _run("--factor", 1, timeout=60)
    assert done.returncode != 0 and "factor must be at least 2" in done.stderr
    no_affine = _crop(tmp_path, affine=None, name="no_affine.nii.gz")
    done = _run("--factor", 4, "--volume", no_affine, timeout=60)
    assert done.returncode != 0 and "has no affine" in done.stderr
    flat = _crop(tmp_path, name="flat.nii.gz", data=np.ones((16, 16), np.float32))
    done = _run("--factor", 4, "--volume", flat, timeout=60)
    assert done.returncode != 0 and "2-D image" in done.stderr
