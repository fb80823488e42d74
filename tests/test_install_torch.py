"""The package installs next to a student's own torch: in a fresh virtual environment that
already holds the oldest torch of pyproject's range, ``pip install`` of the student release
keeps that torch, and the labs' shipped weights give their recorded validation figures there
(the validation tests of tests/test_pretrained_*.py, run by that environment's Python)."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dlmi_utils.course.release import release

ROOT = Path(__file__).resolve().parent.parent
OLDEST_TORCH = "2.13.0"  # the lower bound of torch in pyproject.toml
WHEELS = Path("/opt/wheels")
PYTHON_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"
# one MRI cascade and one mammogram denoiser: seconds each on a CPU
VALIDATION_TESTS = [
    "tests/test_pretrained_cascade.py::test_recorded_validation_psnr_is_reproduced[cascade-4]",
    "tests/test_pretrained_denoisers.py::test_reproduces_recorded_validation_figures"
    "[noise_aware]",
]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _oldest_torch_wheel() -> Path | None:
    found = sorted(WHEELS.glob(f"torch-{OLDEST_TORCH}*-{PYTHON_TAG}-*.whl"))
    return found[0] if found else None


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def _run(command: list, cwd: Path, timeout: int) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written next to this repository's tests
    run = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(map(str, command))}\n{run.stdout[-3000:]}\n" \
                                f"{run.stderr[-3000:]}"
    return run.stdout


def test_package_installs_next_to_the_oldest_torch_and_its_weights_validate(tmp_path):
    wheel = _oldest_torch_wheel()
    if wheel is None:
        pytest.skip(f"no torch {OLDEST_TORCH} wheel for {PYTHON_TAG} in {WHEELS}: this test "
                    "installs it into a fresh environment")
    if not _pypi_reachable():
        pytest.skip("pypi.org is not reachable: the package's other dependencies come from it")
    source = tmp_path / "release"
    release(ROOT, source)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path, 300)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, wheel], tmp_path, 900)
    _run([*pip, source, "pytest"], tmp_path, 1200)
    shutil.rmtree(source)  # from here on, dlmi_utils can only come from the installed package

    where = _run([python, "-c", "import dlmi_utils, torch; "
                  "print(torch.__version__); print(dlmi_utils.__file__)"], tmp_path, 300)
    torch_version, package_file = where.split()
    assert torch_version.split("+")[0] == OLDEST_TORCH, "pip replaced the student's torch"
    assert Path(package_file).is_relative_to(venv), package_file

    ini = tmp_path / "pytest.ini"  # not this repository's settings (nbval, timeouts, conftest)
    ini.write_text("[pytest]\nmarkers =\n    slow: re-validates shipped weights\n")
    out = _run([python, "-m", "pytest", "-c", ini, "--noconftest", "--import-mode=importlib",
                "-p", "no:cacheprovider", "-q", *[ROOT / t for t in VALIDATION_TESTS]],
               tmp_path, 900)
    assert f"{len(VALIDATION_TESTS)} passed" in out, out
