"""Fixtures shared by the grader's tests (the repository's conftest.py sets up nbval)."""

import os
from pathlib import Path

import pytest

GRADING_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"


@pytest.fixture(scope="module")
def fixture_env():
    """The kernels find the fixture labs' checks modules (e.g. ``lab99_checks``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(
            [str(GRADING_FIXTURES), os.environ.get("PYTHONPATH", "")]))
        mp.syspath_prepend(str(GRADING_FIXTURES))
        yield
