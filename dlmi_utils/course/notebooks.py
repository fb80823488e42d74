"""Student labs are generated from the instructor solutions: one source of truth.

In ``solutions/NN_name.ipynb`` the solution code sits between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (the nbgrader convention). :func:`make_student_notebook` replaces each
such region by ``# YOUR CODE HERE`` and a ``raise NotImplementedError`` that names the
exercise, keeps the indentation, clears every output, and keeps the cell metadata (nbgrader's
``grade_id`` and ``points``), so the generated labs also work with nbgrader itself.

The labs' Colab and Binder links and their setup cell point at the student release (set in
:mod:`dlmi_utils.course.colab`): :func:`make_student_notebook` applies them, and ``relink``
rewrites them in the solutions and the README after ``colab.REPOSITORY`` changes.

``dlmi-labs release`` (:mod:`dlmi_utils.course.release`) writes the repository students get.

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
import re
import sys
from pathlib import Path

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


def notebook_client(nb: nbformat.NotebookNode, folder: Path, timeout: int = 900,
                    kernel_name: str = "python3") -> NotebookClient:
    """An nbclient runner of ``nb`` in ``folder`` that cannot deadlock on an ipywidgets cell.

    nbclient mimics the Output widget by writing to the kernel's shell channel while it waits
    for the cell's reply on that channel; now and then the reply is lost and an ``interact``
    cell (Lab 01's explorer) never returns. Without that mimicry the widget's first figure is
    stored as a plain output of the cell, which is all a saved notebook can show anyway.
    """
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(folder)}})
    client.widget_registry = {}
    return client


def execute_notebook(path: Path, timeout: int = 900, kernel_name: str = "python3") -> None:
    """Run a notebook top to bottom in a fresh kernel, in its own folder, and save it in place."""
    nb = nbformat.read(path, as_version=NB_VERSION)
    notebook_client(nb, path.parent, timeout, kernel_name).execute()
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


def main(argv: list[str] | None = None) -> int:
    from dlmi_utils.course import release  # it builds on this module: imported here, not above

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
                   f"({', '.join(release.RELEASE_ENTRIES)}); keep the rest")
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
            written = release.release(args.root, args.out, force=args.force,
                                      publish_solutions=args.publish_solutions)
        except release.ReleaseError as e:
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
