"""The student release: the repository students get, written from the instructors' one.

:func:`release` writes the generated labs, the package without the instructors' grader, the
data notes, a student README and install files; no solutions, tests, benchmarks or training
scripts (``publish_solutions`` adds a lab's worked solution, after its deadline). Its command
line is ``dlmi-labs release OUT`` (:mod:`dlmi_utils.course.notebooks`).
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from dlmi_utils.course import colab
from dlmi_utils.course.notebooks import (
    NB_VERSION,
    make_student_notebook,
    notebook_text,
    solution_notebooks,
)


class ReleaseError(ValueError):
    """The student release cannot be written where or as asked."""


# What a release writes at the top of its folder; ``--force`` replaces exactly these.
RELEASE_ENTRIES = ("README.md", "LICENSE", ".gitignore", "pyproject.toml", "environment.yml",
                   "labs", "solutions", "data", "dlmi_utils")
INSTRUCTOR_ONLY_PACKAGES = ("course/grading",)  # under dlmi_utils/: never shipped to students
INSTRUCTOR_ONLY_SCRIPTS = ("dlmi-grade",)
_NOT_PACKAGED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")
STUDENT_GITIGNORE = """.venv/
__pycache__/
*.pyc
*.egg-info/
build/
.ipynb_checkpoints/
data/cache/
"""
STUDENT_ENVIRONMENT_HEADER = """# Conda environment of the DLMI labs (also what Binder builds):
#   conda env create -f environment.yml && conda activate dlmi-labs
"""


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[\n" + "".join(f"    {_toml_value(v)},\n" for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_text(document: dict[str, Any], prefix: str = "") -> str:
    """``document`` (tables of strings, numbers, booleans and lists) as TOML text.

    Each table's keys come first, then its sub-tables as ``[a.b]`` headers; a table with
    only sub-tables gets no header of its own. ``tomllib.loads`` gives ``document`` back.
    """
    keys = {k: v for k, v in document.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in document.items() if isinstance(v, dict)}
    if keys and not prefix:
        raise ValueError(f"top-level keys {sorted(keys)}: a pyproject holds only tables")
    text = ""
    if keys:
        text = f"[{prefix}]\n" + "".join(f"{_toml_key(k)} = {_toml_value(v)}\n"
                                          for k, v in keys.items()) + "\n"
    for key, table in tables.items():
        text += toml_text(table, f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key))
    return text


def student_pyproject(pyproject: dict[str, Any], with_license: bool) -> dict[str, Any]:
    """The release's pyproject from the instructors': the same package and dependencies,
    without the test and dev extras, the ``dlmi-grade`` command and the tools' settings; its
    repository is the student release."""
    project = {k: v for k, v in pyproject["project"].items() if k != "optional-dependencies"}
    project["scripts"] = {name: target for name, target in project.get("scripts", {}).items()
                          if name not in INSTRUCTOR_ONLY_SCRIPTS}
    project["urls"] = {"Repository": colab.REPOSITORY_URL}
    if not with_license:
        project.pop("license-files", None)
    return {"build-system": pyproject["build-system"], "project": project,
            "tool": {"setuptools": pyproject["tool"]["setuptools"]}}


def student_environment_text(environment_text: str, pyproject: dict[str, Any]) -> str:
    """The instructors' environment.yml without the packages only the test and dev extras
    need (pytest, ruff, ...), under a student header."""
    project = pyproject["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    extras = [r for reqs in project.get("optional-dependencies", {}).values() for r in reqs]
    dev_only = {_requirement_name(r) for r in extras} - runtime
    lines = []
    for line in environment_text.splitlines():
        listed = re.match(r"\s*-\s+([A-Za-z0-9_.-]+)", line)
        if line.startswith("#") or (listed and _requirement_name(listed[1]) in dev_only):
            continue
        lines.append(line)
    return STUDENT_ENVIRONMENT_HEADER + "\n".join(lines) + "\n"


def lab_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first line of the title cell without its ``#`` (``Lab 01 — k-space ...``)."""
    first = nb.cells[0].source.strip().splitlines()[0] if nb.cells else ""
    return first.lstrip("#").strip() if first.startswith("#") else fallback


def student_readme(pyproject: dict[str, Any], titles: dict[str, str],
                   published: Sequence[str] = (), with_license: bool = True) -> str:
    """The README of the release: how to open the labs (Colab, Binder, own machine), the labs
    with their badges, how an exercise works. ``titles`` maps ``NN_name.ipynb`` to its title;
    ``published`` names the files of ``solutions/`` in the release."""
    project = pyproject["project"]
    torch = next(r for r in project["dependencies"] if _requirement_name(r) == "torch")
    rows = "".join(f"| [{title}](labs/{name}) | {colab.colab_badge(f'labs/{name}')} | "
                   f"{colab.binder_badge(f'labs/{name}')} |\n" for name, title in titles.items())
    solutions = "" if not published else (
        "\n## Worked solutions\n\n`solutions/` holds the executed worked solutions of the labs "
        "whose deadline has passed: " + ", ".join(f"`{n}`" for n in published) + ".\n")
    licence = "" if not with_license else (
        f"\n## Licence\n\n{project.get('license', 'See')} licence: see `LICENSE`. Each data "
        "set keeps its own licence (`data/README.md`).\n")
    return f"""# DLMI labs

{colab.binder_badge()}

{project["description"]}.

Real medical data that install with the package (no download needed); every lab runs on a
laptop CPU in minutes, and uses a GPU when there is one.

## Open a lab

- **Colab** (nothing to install, a free GPU): click the lab's *Open in Colab* badge below. Its
  first cell installs this package on Colab only (it does nothing on your own machine) and
  says whether a GPU is present (*Runtime > Change runtime type > GPU* to get one). Save a
  copy in your Drive (*File > Save a copy in Drive*) before you start.
- **Binder** (nothing to install, no GPU): the Binder badge builds `environment.yml` and opens
  JupyterLab; the session ends when idle, so download your notebook before you leave.
- **Your own machine** (Python 3.11 and git), one command sets up and opens the labs:

```bash
{colab.student_install_command()}
```

The install keeps a PyTorch you already have if it fits `{torch}` (it installs one
otherwise). On Windows use `.venv\\Scripts\\` instead of `.venv/bin/`. With conda instead of pip:
`conda env create -f environment.yml && conda activate dlmi-labs`, then `jupyter lab labs/`.

## The labs

| lab | Colab | Binder |
|---|---|---|
{rows}
## Working on a lab

Run the cells from the top. Each exercise is a function to write in place of its
`raise NotImplementedError(...)` line; the check cell right below it says at once whether your
function is right and, if not, a hint of what is off (shape, dtype, scale, a sign, an
fftshift). After each exercise the lab goes on with the package's own version, so the rest of
it runs even while you are stuck. Hand in the notebook as your course asks.

The labs' helper code is the package `dlmi_utils` (in this folder; each lab says which modules
it uses); the data sets it ships are described in `data/README.md`.
{solutions}{licence}"""


def _files_a_release_does_not_write(out: Path) -> list[Path]:
    """Files inside the folders a release replaces that no release writes there."""
    foreign = []
    for name in ("labs", "solutions"):
        folder = out / name
        if folder.is_dir():
            foreign += [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".ipynb"
                        and ".ipynb_checkpoints" not in p.parts]
    if (out / "data").is_dir():
        foreign += [p for p in (out / "data").rglob("*") if p.is_file()
                    and p != out / "data" / "README.md"]
    package = out / "dlmi_utils"
    if package.exists() and not (package / "__init__.py").is_file():
        foreign.append(package)
    return foreign


def _check_release_folder(root: Path, out: Path, force: bool) -> None:
    if out == root or root.is_relative_to(out):
        raise ReleaseError(f"{out} is the instructor repository or holds it: the release goes "
                           "to a folder of its own (e.g. a clone of the student repository)")
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out} is a file, not a folder")
    present = sorted(p.name for p in out.iterdir() if p.name != ".git") if out.exists() else []
    if present and not force:
        raise ReleaseError(
            f"{out} is not empty ({', '.join(present[:6])}{', ...' if len(present) > 6 else ''})"
            ": pass --force to replace the files a release writes there "
            f"({', '.join(RELEASE_ENTRIES)}); everything else, .git included, is kept")
    foreign = _files_a_release_does_not_write(out) if present else []
    if foreign:
        shown = ", ".join(str(p.relative_to(out)) for p in foreign[:5])
        raise ReleaseError(f"{out} holds files that a release does not write but --force would "
                           f"delete ({shown}{', ...' if len(foreign) > 5 else ''}): move them "
                           "away or release into another folder")


def _published_solutions(solutions: list[Path], numbers: Sequence[str]) -> list[Path]:
    by_number = {p.name[:2]: p for p in solutions}
    wanted = [f"{int(n):02d}" if str(n).isdigit() else str(n) for n in numbers]
    unknown = [n for n in wanted if n not in by_number]
    if unknown:
        raise ReleaseError(f"no solution to publish for lab(s) {', '.join(unknown)}; "
                           f"the labs are {', '.join(sorted(by_number))}")
    return [by_number[n] for n in dict.fromkeys(wanted)]


def release(root: Path, out: Path, force: bool = False,
            publish_solutions: Sequence[str] = ()) -> list[str]:
    """Write the student repository of the instructor repository ``root`` into ``out``.

    ``out`` gets: ``labs/`` generated from ``solutions/`` (as ``generate`` does), the package
    ``dlmi_utils`` without ``course/grading``, ``data/README.md``, a student README, a
    ``pyproject.toml`` (the dependencies, no ``dlmi-grade``) and an ``environment.yml``, the
    ``LICENSE`` if ``root`` has one, a ``.gitignore``, and the worked solutions of the labs
    numbered in ``publish_solutions``. Nothing else of ``root`` (solutions, tests, benchmarks,
    scripts) is copied.

    ``out`` must be empty (a ``.git`` alone is fine) unless ``force``, which replaces only the
    entries a release writes (:data:`RELEASE_ENTRIES`). Raises :class:`ReleaseError` when
    ``out`` is ``root`` or holds it, or when ``force`` would delete files a release does not
    write. Returns the top-level entries written.
    """
    root, out = root.resolve(), out.resolve()
    for needed in ("solutions", "dlmi_utils", "pyproject.toml", "environment.yml"):
        if not (root / needed).exists():
            raise ReleaseError(f"{root} has no {needed}: run from the instructor repository's "
                               "root, or pass it with --root")
    _check_release_folder(root, out, force)
    solutions = solution_notebooks(root / "solutions")
    if not solutions:
        raise ReleaseError(f"no solutions/NN_*.ipynb in {root}: nothing to release")
    published = _published_solutions(solutions, publish_solutions)
    labs, titles = {}, {}
    for path in solutions:  # made in full before anything is written: a bad marker stops here
        solution = nbformat.read(path, as_version=NB_VERSION)
        labs[path.name] = notebook_text(make_student_notebook(solution))
        titles[path.name] = lab_title(solution, path.stem)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    with_license = (root / "LICENSE").is_file()

    out.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_ENTRIES:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    (out / "labs").mkdir()
    for name, text in labs.items():
        (out / "labs" / name).write_text(text, encoding="utf-8")
    if published:
        (out / "solutions").mkdir()
        for path in published:
            shutil.copyfile(path, out / "solutions" / path.name)
    instructor_only = {(root / "dlmi_utils" / p).resolve() for p in INSTRUCTOR_ONLY_PACKAGES}

    def not_shipped(folder: str, names: list[str]) -> set[str]:
        skipped = set(_NOT_PACKAGED(folder, names))
        return skipped | {n for n in names if (Path(folder) / n).resolve() in instructor_only}

    shutil.copytree(root / "dlmi_utils", out / "dlmi_utils", ignore=not_shipped)
    if (root / "data" / "README.md").is_file():
        (out / "data").mkdir()
        shutil.copyfile(root / "data" / "README.md", out / "data" / "README.md")
    if with_license:
        shutil.copyfile(root / "LICENSE", out / "LICENSE")
    (out / "pyproject.toml").write_text(
        toml_text(student_pyproject(pyproject, with_license)), encoding="utf-8")
    (out / "environment.yml").write_text(student_environment_text(
        (root / "environment.yml").read_text(encoding="utf-8"), pyproject), encoding="utf-8")
    (out / "README.md").write_text(student_readme(
        pyproject, titles, [p.name for p in published], with_license), encoding="utf-8")
    (out / ".gitignore").write_text(STUDENT_GITIGNORE, encoding="utf-8")
    return sorted(p.name for p in out.iterdir() if p.name in RELEASE_ENTRIES)


