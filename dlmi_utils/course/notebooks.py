"""Student labs are generated from the instructor solutions: one source of truth.

In ``solutions/NN_name.ipynb`` the solution code sits between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (the nbgrader convention). :func:`make_student_notebook` replaces each
such region by ``# YOUR CODE HERE`` and a ``raise NotImplementedError`` that names the
exercise, keeps the indentation, clears every output, and keeps the cell metadata (nbgrader's
``grade_id`` and ``points``), so the generated labs also work with nbgrader itself.

The labs' Colab and Binder links and their setup cell point at the student release (set in
:mod:`dlmi_utils.course.colab`): :func:`make_student_notebook` applies them, and ``relink``
rewrites them in the solutions and the README after ``colab.REPOSITORY`` changes.

:func:`release` writes the repository students get: the generated labs, the package without
the instructors' grader, the data notes, a student README and install files; no solutions,
tests, benchmarks or training scripts (``--publish-solutions NN`` adds a lab's worked
solution, after its deadline).

Command line (installed as ``dlmi-labs``)::

    dlmi-labs generate            # solutions/*.ipynb -> labs/*.ipynb
    dlmi-labs check               # exit 1 when labs/ is out of date with solutions/
    dlmi-labs relink              # Colab/Binder links and setup cells -> colab.py's
    dlmi-labs release ../dlmi-labs-student --force   # the student repository
    dlmi-labs execute solutions/00_metrics_and_losses.ipynb   # re-run a solution in place
    dlmi-labs new 06 super_resolution --title "Super-resolution"   # a new lab from the template

``solutions/_template.ipynb`` is the template of a lab; its name has no ``NN_`` so it is never
turned into a student lab.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from dlmi_utils.course import colab

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
NOT_IMPLEMENTED = "not implemented yet"
ANSWER_HERE = "_YOUR ANSWER HERE_"

REPO_ROOT = Path(__file__).resolve().parents[2]
NB_VERSION = 4
TEMPLATE = "_template.ipynb"


def _exercise_name(cell: nbformat.NotebookNode) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or "this exercise"


def strip_solution(source: str, exercise: str, markdown: bool = False) -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a cell source.

    Code regions become ``# YOUR CODE HERE`` + ``raise NotImplementedError(...)`` at the
    indentation of the ``BEGIN`` marker; markdown regions become ``_YOUR ANSWER HERE_``.
    Raises ``ValueError`` on an unbalanced or nested pair of markers.
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"{exercise}: nested '{BEGIN_SOLUTION}' at line {number}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            if markdown:
                out.append(indent + ANSWER_HERE)
            else:
                out.append(indent + "# YOUR CODE HERE")
                out.append(
                    f'{indent}raise NotImplementedError("{exercise} is {NOT_IMPLEMENTED}: '
                    f'write your code in place of this line")'
                )
        elif stripped == END_SOLUTION:
            if not inside:
                raise ValueError(f"{exercise}: '{END_SOLUTION}' without a BEGIN at line {number}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{exercise}: '{BEGIN_SOLUTION}' is never closed")
    return "\n".join(out)


def _is_colab_setup_cell(cell: nbformat.NotebookNode) -> bool:
    return (cell.cell_type == "code" and "setup" in cell.get("metadata", {}).get("tags", [])
            and "report_environment" in cell.source)


def relink_notebook(nb: nbformat.NotebookNode) -> bool:
    """Point the Colab and Binder links of every markdown cell at the student release and make
    the setup cell (tag ``setup``, calls ``report_environment``) ``colab.setup_cell_source()``.

    In place, outputs kept; returns whether anything changed.
    """
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            source = colab.relink(cell.source)
        elif _is_colab_setup_cell(cell):
            source = colab.setup_cell_source()
        else:
            continue
        if source != cell.source:
            cell.source, changed = source, True
    return changed


def relink_files(solutions_dir: Path, readme: Path | None = None) -> list[Path]:
    """Relink every notebook of ``solutions_dir`` (the template too) and the links of
    ``readme``; write and return the files that changed. Running it again changes nothing."""
    changed = []
    for path in sorted(solutions_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=NB_VERSION)
        if relink_notebook(nb):
            path.write_text(notebook_text(nb), encoding="utf-8")
            changed.append(path)
    if readme is not None:
        text = readme.read_text(encoding="utf-8")
        if colab.relink(text) != text:
            readme.write_text(colab.relink(text), encoding="utf-8")
            changed.append(readme)
    return changed


def make_student_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student lab made from a solution notebook: solutions stripped, outputs cleared,
    Colab and Binder links and the setup cell pointing at the student release."""
    lab = copy.deepcopy(solution)
    relink_notebook(lab)
    for cell in lab.cells:
        if BEGIN_SOLUTION in cell.source or END_SOLUTION in cell.source:
            cell.source = strip_solution(
                cell.source, _exercise_name(cell), markdown=cell.cell_type == "markdown"
            )
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    lab.metadata.pop("widgets", None)
    return lab


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The notebook serialised the way it is committed (stable, newline-terminated)."""
    return nbformat.writes(nb, version=NB_VERSION) + "\n"


def lab_path_for(solution_path: Path, labs_dir: Path) -> Path:
    return labs_dir / solution_path.name


def solution_notebooks(solutions_dir: Path) -> list[Path]:
    return sorted(p for p in solutions_dir.glob("*.ipynb") if re.match(r"\d\d_", p.name))


def generate_labs(solutions_dir: Path, labs_dir: Path, check: bool = False) -> list[Path]:
    """Write (or with ``check``, compare) every ``labs/NN_*.ipynb``; return the stale ones."""
    stale = []
    labs_dir.mkdir(parents=True, exist_ok=True)
    for sol_path in solution_notebooks(solutions_dir):
        solution = nbformat.read(sol_path, as_version=NB_VERSION)
        text = notebook_text(make_student_notebook(solution))
        lab_path = lab_path_for(sol_path, labs_dir)
        current = lab_path.read_text(encoding="utf-8") if lab_path.exists() else None
        if current != text:
            stale.append(lab_path)
            if not check:
                lab_path.write_text(text, encoding="utf-8")
    if check:
        known = {lab_path_for(p, labs_dir).name for p in solution_notebooks(solutions_dir)}
        stale += [p for p in sorted(labs_dir.glob("*.ipynb")) if p.name not in known]
    return stale


def execute_notebook(path: Path, timeout: int = 900, kernel_name: str = "python3") -> None:
    """Run a notebook top to bottom in a fresh kernel, in its own folder, and save it in place."""
    nb = nbformat.read(path, as_version=NB_VERSION)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    path.write_text(notebook_text(nb), encoding="utf-8")


def new_lab(solutions_dir: Path, number: int | str, name: str, title: str) -> Path:
    """Write ``solutions/NN_name.ipynb`` from ``solutions/_template.ipynb``; return its path.

    The title cell's placeholders ``Lab NN``, ``Title of the lab`` and the badges' path
    ``labs/NN_name.ipynb`` are filled in; outputs are cleared. Raises ``ValueError`` for a
    bad number or name, or when lab ``NN`` exists already.
    """
    if not re.fullmatch(r"\d{1,2}", str(number)):
        raise ValueError(f"the lab number is one or two digits, got {number!r}")
    if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name):
        raise ValueError(f"the lab name is lower_snake_case (e.g. super_resolution), got {name!r}")
    stem = f"{int(number):02d}_{name}"
    taken = [p.name for p in solution_notebooks(solutions_dir) if p.name[:3] == stem[:3]]
    if taken:
        raise ValueError(f"lab {stem[:2]} exists already: {taken[0]}; pick another number")
    nb = nbformat.read(solutions_dir / TEMPLATE, as_version=NB_VERSION)
    nb.cells[0].source = (nb.cells[0].source.replace("NN_name", stem)
                          .replace("Lab NN", f"Lab {stem[:2]}")
                          .replace("Title of the lab", title.strip() or name))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    path = solutions_dir / f"{stem}.ipynb"
    path.write_text(notebook_text(nb), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ the release
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlmi-labs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in [
        ("generate", "write labs/ from solutions/"),
        ("check", "fail when labs/ is out of date with solutions/"),
    ]:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--solutions", type=Path, default=Path("solutions"))
        p.add_argument("--labs", type=Path, default=Path("labs"))
    p = sub.add_parser("relink", help="point the Colab/Binder links and setup cells of "
                       "solutions/ and README.md at colab.REPOSITORY (then: generate)")
    p.add_argument("--solutions", type=Path, default=Path("solutions"))
    p.add_argument("--readme", type=Path, default=Path("README.md"))
    p = sub.add_parser("release", help="write the student repository into OUT")
    p.add_argument("out", type=Path, help="a new or empty folder, e.g. a clone of "
                   f"{colab.REPOSITORY_URL}")
    p.add_argument("--force", action="store_true",
                   help="replace the files a release writes in a non-empty OUT "
                   f"({', '.join(RELEASE_ENTRIES)}); keep the rest")
    p.add_argument("--publish-solutions", nargs="+", default=[], metavar="NN",
                   help="also ship solutions/NN_*.ipynb of these labs (after their deadline)")
    p.add_argument("--root", type=Path, default=Path("."), help="the instructor repository")
    p = sub.add_parser("execute", help="re-run solution notebooks in place (then: generate)")
    p.add_argument("notebooks", type=Path, nargs="+")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p = sub.add_parser("new", help=f"start solutions/NN_name.ipynb from solutions/{TEMPLATE}")
    p.add_argument("number", help="two digits, e.g. 06")
    p.add_argument("name", help="lower_snake_case, e.g. super_resolution")
    p.add_argument("--title", required=True, help='e.g. "Super-resolution"')
    p.add_argument("--solutions", type=Path, default=Path("solutions"))
    args = parser.parse_args(argv)

    if args.command == "execute":
        for path in args.notebooks:
            print(f"executing {path} ...", flush=True)
            execute_notebook(path, timeout=args.timeout)
        return 0
    if args.command == "release":
        try:
            written = release(args.root, args.out, force=args.force,
                              publish_solutions=args.publish_solutions)
        except ReleaseError as e:
            parser.error(str(e))
        print(f"wrote the student release in {args.out}: {', '.join(written)}\n"
              f"next: commit it and push it to {colab.REPOSITORY_URL} ({colab.BRANCH})")
        return 0
    if not args.solutions.is_dir():
        parser.error(f"no solutions folder at {args.solutions}: run from the repository root")
    if args.command == "relink":
        readme = args.readme if args.readme.is_file() else None
        changed = relink_files(args.solutions, readme)
        print(f"relinked {len(changed)} file(s) to {colab.REPOSITORY}@{colab.BRANCH}"
              + "".join(f"\n  {p}" for p in changed)
              + ("\nnext: dlmi-labs generate" if changed else ""))
        return 0
    if args.command == "new":
        try:
            path = new_lab(args.solutions, args.number, args.name, args.title)
        except ValueError as e:
            parser.error(str(e))
        print(f"wrote {path}; next (docs/instructors.md):\n"
              f"  1. write the story and exercises; their checks in "
              f"dlmi_utils/course/checks/lab{path.name[:2]}.py\n"
              f"  2. dlmi-labs execute {path} && dlmi-labs generate\n"
              f"  3. pytest {path} tests/test_notebooks.py tests/test_colab.py "
              f"tests/test_grading.py")
        return 0
    stale = generate_labs(args.solutions, args.labs, check=args.command == "check")
    if args.command == "check":
        if stale:
            print("labs/ is out of date with solutions/; run `dlmi-labs generate`:")
            for p in stale:
                print(f"  {p}")
            return 1
        print("labs/ is up to date with solutions/")
        return 0
    print(f"wrote {len(stale)} lab(s)" + "".join(f"\n  {p}" for p in stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
