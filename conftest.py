"""pytest set-up shared by the unit tests (tests/) and nbval (solutions/).

Markers (registered in pyproject.toml): ``notebooks`` for every solution notebook that nbval
runs and every test that executes a notebook, ``slow`` for tests that train, run a benchmark
or re-validate shipped weights. The quick loop is ``pytest -m "not notebooks and not slow"``.
"""

import os
from pathlib import Path

import matplotlib
import pytest

# The executed solutions store their figures as inline display data (image/png + text/plain).
# A kernel started with MPLBACKEND=Agg shows no figure at all, and nbval would report every
# figure cell as changed: the kernels must get Jupyter's inline backend, so the variable goes
# before nbval starts them. This process itself draws off-screen.
os.environ.pop("MPLBACKEND", None)
matplotlib.use("Agg")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
