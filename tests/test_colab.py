"""Colab and Binder, tested offline: badges, the setup cell's logic, the environment file."""

import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest
import yaml

from dlmi_utils.course import colab
from dlmi_utils.course.notebooks import solution_notebooks

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solution_notebooks(ROOT / "solutions")
NOTEBOOKS = [p for s in SOLUTIONS for p in (s, ROOT / "labs" / s.name)]
IDS = [f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS]


def _first_code_cell(nb):
    return next(c for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_title_cell_has_badges_to_its_own_lab(path):
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    lab_path = f"labs/{path.name}"
    assert title.cell_type == "markdown"
    assert colab.colab_badge(lab_path) in title.source, f"Colab badge of {lab_path} missing"
    assert colab.binder_badge(lab_path) in title.source or colab.binder_badge() in title.source
    number = re.match(r"#\s*Lab\s+(\d+)", title.source)
    assert number and int(number[1]) == int(path.name[:2]), (
        "the title starts with '# Lab NN' of its file (the grader tells labs apart by it)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_the_setup_cell(path):
    cell = _first_code_cell(nbformat.read(path, as_version=4))
    assert cell.source == colab.setup_cell_source(), "regenerate it with setup_cell_source()"
    assert "setup" in cell.metadata.get("tags", [])


def _forbid_subprocess(*args, **kwargs):
    raise AssertionError(f"the setup cell ran a command outside Colab: {args}")


def test_setup_cell_does_nothing_locally(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", _forbid_subprocess)
    exec(colab.setup_cell_source(), {})
    out = capsys.readouterr().out
    assert out.startswith("Running on a local Jupyter kernel;")
    assert "GPU" in out


def test_setup_cell_on_colab_installs_the_package_from_the_repository(monkeypatch, capsys):
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    exec(colab.setup_cell_source(), {})
    assert calls == [([sys.executable, "-m", "pip", "install", "-q", colab.PIP_SPEC],
                      {"check": True})]
    assert colab.PIP_SPEC == f"dlmi-labs @ git+{colab.REPOSITORY_URL}@{colab.BRANCH}"
    assert capsys.readouterr().out.startswith("Running on Google Colab;")


def test_repository_url_lives_in_one_place():
    """colab.py names the student release; the instructors' repository (pyproject) is another."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"] != colab.REPOSITORY_URL
    others = [p for p in (ROOT / "dlmi_utils").rglob("*.py")
              if colab.REPOSITORY in p.read_text(encoding="utf-8") and p.name != "colab.py"]
    assert others == [], "only dlmi_utils/course/colab.py names the repository"
    assert colab.REPOSITORY in colab.setup_cell_source()
    assert colab.student_install_command().startswith(f"git clone {colab.REPOSITORY_URL}.git ")


OLD_TITLE = (
    "# Lab 03\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/someone/old-name/blob/dev/labs/03_x.ipynb) "
    "[![Binder](https://mybinder.org/badge_logo.svg)]"
    "(https://mybinder.org/v2/gh/someone/old-name/dev?urlpath=lab/tree/labs/03_x.ipynb)\n"
    "[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/someone/old-name/dev)"
)


def test_relink_points_links_at_the_release_and_keeps_the_notebook_path():
    text = colab.relink(OLD_TITLE)
    assert colab.colab_badge("labs/03_x.ipynb") in text
    assert colab.binder_badge("labs/03_x.ipynb") in text and text.endswith(colab.binder_badge())
    assert "old-name" not in text and "/dev" not in text
    assert colab.relink(text) == text, "relinking twice changes nothing"
    prose = "See https://github.com/someone/old-name and the docs."
    assert colab.relink(prose) == prose, "only Colab and Binder links are rewritten"


def test_badges_point_at_the_repository_and_notebook():
    path = "labs/03_cascade.ipynb"
    assert colab.colab_url(path) == (
        f"https://colab.research.google.com/github/{colab.REPOSITORY}/blob/{colab.BRANCH}/{path}")
    assert colab.binder_url(path) == (
        f"https://mybinder.org/v2/gh/{colab.REPOSITORY}/{colab.BRANCH}?urlpath=lab/tree/{path}")
    assert colab.binder_url() == f"https://mybinder.org/v2/gh/{colab.REPOSITORY}/{colab.BRANCH}"
    assert colab.colab_badge(path).endswith(f"({colab.colab_url(path)})")
    assert colab.binder_badge(path).endswith(f"({colab.binder_url(path)})")


def test_environment_file_is_what_binder_builds():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip_sections) == 1 and "-e ." in pip_sections[0], "Binder installs the package"
    # repo2docker prefers a binder/ folder's files: there must be none to shadow this one
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()


def test_report_environment_names_the_device(capsys):
    line = colab.report_environment()
    assert capsys.readouterr().out.strip() == line
    assert line.startswith("Running on ") and line.endswith(".")
