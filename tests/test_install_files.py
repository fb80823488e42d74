"""pyproject.toml (pip, Colab) and environment.yml (conda, Binder) name the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI ones
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0]
    return CONDA_TO_PYPI.get(name.lower(), name.lower()).replace("_", "-")


def _pyproject_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = project["dependencies"] + extras["test"] + extras["dev"]
    return {_name(r) for r in reqs if not r.startswith("dlmi-labs")}


def _environment_names() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(p) for p in dep["pip"] if not p.startswith("-e")}
        else:
            names.add(_name(dep))
    return names - {"python", "pip"}


def test_both_install_files_name_the_same_packages():
    pip_names, conda_names = _pyproject_names(), _environment_names()
    assert pip_names - conda_names == set(), "in pyproject.toml, missing from environment.yml"
    assert conda_names - pip_names == set(), "in environment.yml, missing from pyproject.toml"


def test_torch_pins_agree():
    text_pip = (ROOT / "pyproject.toml").read_text()
    text_conda = (ROOT / "environment.yml").read_text()
    for pin in ("torch==2.14.1", "torchvision==0.29.1"):
        assert pin in text_pip and pin in text_conda


def test_environment_installs_the_package_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section
