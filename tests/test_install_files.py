"""pyproject.toml (pip, Colab) and environment.yml (conda, Binder) name the same packages,
with ranges (the package installs next to a student's own torch); exact versions live only in
CI's constraints (.ci/constraints.txt)."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CI_CONSTRAINTS = ROOT / ".ci" / "constraints.txt"
# the oldest and newest torch the tests pass on (tests/test_install_torch.py checks the oldest)
TORCH_RANGE = "torch>=2.13,<2.15"
# conda-forge names that differ from the PyPI ones
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0]
    return CONDA_TO_PYPI.get(name.lower(), name.lower()).replace("_", "-")


def _pyproject_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["test"] + extras["dev"]
    return [r for r in reqs if not r.startswith("dlmi-labs")]


def _environment_requirements() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            reqs += [p for p in dep["pip"] if not p.startswith("-e")]
        else:
            reqs.append(dep)
    return [r for r in reqs if _name(r) not in ("python", "pip")]


def _ci_pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in CI_CONSTRAINTS.read_text().splitlines()]
    return {_name(line): line.split("==", 1)[1] for line in lines if line}


def test_both_install_files_name_the_same_packages():
    pip_names = {_name(r) for r in _pyproject_requirements()}
    conda_names = {_name(r) for r in _environment_requirements()}
    assert pip_names - conda_names == set(), "in pyproject.toml, missing from environment.yml"
    assert conda_names - pip_names == set(), "in environment.yml, missing from pyproject.toml"


def test_torch_is_the_same_range_in_both_files():
    for reqs in (_pyproject_requirements(), _environment_requirements()):
        assert [r for r in reqs if _name(r) == "torch"] == [TORCH_RANGE]


def test_install_files_give_ranges_never_exact_versions():
    pins = [r for r in _pyproject_requirements() + _environment_requirements() if "==" in r]
    assert pins == [], "exact versions belong in .ci/constraints.txt"


def test_ci_pins_torch_inside_the_range_and_installs_with_its_constraints():
    pins = _ci_pins()
    assert all(re.fullmatch(r"[0-9][0-9a-z.+]*", v) for v in pins.values()), pins
    assert Version(pins["torch"]) in Requirement(TORCH_RANGE).specifier
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-c .ci/constraints.txt -e ".[dev]"' in ci


def test_this_environment_has_a_torch_of_the_range():
    torch_version = Version(importlib.metadata.version("torch"))
    assert Requirement(TORCH_RANGE).specifier.contains(torch_version, prereleases=True)


def test_torchvision_is_neither_imported_nor_installed():
    imports = re.compile(r"\b(import|from)\s+torchvision\b")  # .py lines and .ipynb strings
    sources = [p for folder in ("dlmi_utils", "scripts", "benchmarks", "tests", "solutions")
               for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".ipynb")]
    assert [p for p in sources if imports.search(p.read_text(encoding="utf-8"))] == []
    named = [r for r in _pyproject_requirements() + _environment_requirements()
             if _name(r) == "torchvision"]
    assert named == []


def test_environment_installs_the_package_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section
