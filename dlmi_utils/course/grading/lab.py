"""What a lab asks for, read from its solution notebook (trusted), never from a submission.

A solution notebook ``solutions/NN_name.ipynb`` follows CONTRIBUTING.md: each exercise cell
(nbgrader ``solution: true``, ``grade_id: <name>``) is followed by its check cell (nbgrader
``grade: true``, ``points: <int>``) whose source is ``check_<name>(<function>)``. The check
function is imported in a setup cell (``from dlmi_utils.course.checks.labNN import check_<name>``),
which tells the grader which module holds it.

A "predict, then run" question is a markdown cell (tag ``question``) directly followed by its
answer cell: markdown, nbgrader ``solution: true``, ``grade: true``, ``grade_id: <name>``,
``points``, tag ``answer``, source ``### BEGIN SOLUTION`` / the model answer / ``### END
SOLUTION`` (``_YOUR ANSWER HERE_`` in the student lab). Answers are marked by hand.

This module also reads what a submission claims to be (title, exercise ids) and picks the cells
the grader runs; the submission's metadata is only a hint there, never a source of points.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from dlmi_utils.course.notebooks import (
    ANSWER_HERE,
    BEGIN_SOLUTION,
    END_SOLUTION,
    NB_VERSION,
    solution_notebooks,
)

SETUP_TAG = "setup"
EXERCISE_TAG = "exercise"
QUESTION_TAG = "question"
ANSWER_TAG = "answer"
QUESTION_START = "**Predict, then run.**"
_TITLE = re.compile(r"^#\s*Lab\s+(\d+)\b", re.IGNORECASE | re.MULTILINE)
_STUDENT = re.compile(r"^(?P<student>.+?)_(?P<lab>\d\d)(?:_.*)?$")


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: the student's ``function`` is passed to ``module.check``."""

    name: str  # the exercise cell's grade_id (the CSV's ``exercise`` column)
    function: str  # the name the student's cell defines
    check: str  # ``check_<name>``
    module: str  # where ``check`` lives, e.g. ``dlmi_utils.course.checks.lab00``
    points: float


@dataclass(frozen=True)
class Question:
    """One question whose answer is marked by hand (the CSV's ``exercise`` column: ``name``)."""

    name: str  # the answer cell's grade_id
    points: float
    text: str  # the question cell's markdown
    model_answer: str  # between the solution markers of the answer cell
    text_after: str = ""  # the solution's cell after the answer (an answer deleted is not it)


@dataclass(frozen=True)
class LabSpec:
    """A lab as its solution notebook defines it."""

    number: str  # "00"
    title: str
    path: Path
    exercises: tuple[Exercise, ...]
    setup_sources: tuple[str, ...]  # the solution's setup cells (used when a submission lost its)
    questions: tuple[Question, ...] = ()

    @property
    def exercise_points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> float:
        """Exercises and questions together."""
        return self.exercise_points + sum(q.points for q in self.questions)

    @property
    def item_names(self) -> list[str]:
        """The CSV's ``exercise`` values, in the order of its rows: exercises, then questions."""
        return [e.name for e in self.exercises] + [q.name for q in self.questions]

    @classmethod
    def from_solution(cls, path: Path | str, checks_module: str | None = None) -> LabSpec:
        """Read the exercises, their points and check functions from a solution notebook.

        ``checks_module`` overrides where the check functions are imported from. Raises
        ``ValueError`` when an exercise is not followed by a check cell with points, or an
        answer cell lacks its question, points or solution markers.
        """
        path = Path(path)
        match = re.match(r"(\d\d)_", path.name)
        if not match:
            raise ValueError(f"{path.name}: a solution notebook is named NN_name.ipynb")
        nb = nbformat.read(path, as_version=NB_VERSION)
        imports = _imported_names(c.source for c in nb.cells if c.cell_type == "code")
        exercises = []
        for i, cell in enumerate(nb.cells):
            meta = _nbgrader(cell)
            if cell.cell_type != "code" or not meta.get("solution"):
                continue
            name = meta.get("grade_id")
            check_cell = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            check_meta = _nbgrader(check_cell) if check_cell is not None else {}
            if not name or not check_meta.get("grade") or not check_meta.get("points"):
                raise ValueError(
                    f"{path.name}: exercise cell {i} ({name or 'no grade_id'}) must be followed "
                    "by its check cell with nbgrader grade=true and points (see CONTRIBUTING.md)"
                )
            check, function = _check_call(check_cell.source, f"{path.name}, cell {i + 1}")
            module, check = imports.get(check, (f"dlmi_utils.course.checks.lab{match[1]}", check))
            module = checks_module or module
            exercises.append(Exercise(name, function, check, module, float(check_meta["points"])))
        if not exercises:
            raise ValueError(f"{path.name} has no exercise (nbgrader solution cell)")
        setup = tuple(c.source for c in nb.cells if SETUP_TAG in _tags(c) and c.cell_type == "code")
        setup_nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in setup])
        for e in exercises:
            if defining_cells(setup_nb, e.function) or e.function in _imported_names(setup):
                raise ValueError(
                    f"{path.name}: a setup cell defines or imports `{e.function}`, the name the "
                    "student's exercise defines: a student whose cell fails would be graded on "
                    "it. Import the module instead (`from dlmi_utils import metrics`)."
                )
        questions = tuple(_questions(nb, path.name))
        names = [e.name for e in exercises] + [q.name for q in questions]
        if len(set(names)) != len(names):
            raise ValueError(f"{path.name}: two exercises or questions share a grade_id: "
                             f"{', '.join(sorted({n for n in names if names.count(n) > 1}))}")
        return cls(match[1], notebook_title(nb) or path.stem, path, tuple(exercises), setup,
                   questions)


def is_answer_cell(cell) -> bool:
    """A markdown cell that holds the answer to a question (by nbgrader metadata or tag)."""
    meta = _nbgrader(cell)
    return cell.get("cell_type") == "markdown" and (
        ANSWER_TAG in _tags(cell) or bool(meta.get("solution") and meta.get("grade")))


def is_question_cell(cell) -> bool:
    return cell.get("cell_type") == "markdown" and (
        QUESTION_TAG in _tags(cell) or cell.get("source", "").lstrip().startswith(QUESTION_START))


def _questions(nb: nbformat.NotebookNode, where: str) -> list[Question]:
    questions = []
    for i, cell in enumerate(nb.cells):
        if not is_answer_cell(cell):
            continue
        meta = _nbgrader(cell)
        name = meta.get("grade_id")
        fix = (f"{where}: answer cell {i} ({name or 'no grade_id'}) must follow its question "
               "cell (markdown, tag question) and carry nbgrader grade_id, points, grade and "
               "solution, with the model answer between the solution markers (see "
               "CONTRIBUTING.md)")
        before = nb.cells[i - 1] if i > 0 else None
        if not name or not meta.get("points") or before is None or not is_question_cell(before):
            raise ValueError(fix)
        model = solution_text(cell.source)
        if BEGIN_SOLUTION not in cell.source or not model:
            raise ValueError(fix)
        after = nb.cells[i + 1].source if i + 1 < len(nb.cells) else ""
        questions.append(Question(name, float(meta["points"]), before.source.strip(), model,
                                  after))
    return questions


def solution_text(source: str) -> str:
    """The text of an answer cell without the solution markers and the placeholder."""
    lines = [line for line in source.splitlines()
             if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION, ANSWER_HERE)]
    return "\n".join(lines).strip()


def student_answers(nb: nbformat.NotebookNode, spec: LabSpec) -> dict[str, str | None]:
    """``{question name: the submission's answer, or None when unanswered}``.

    The answer cell is found by its grade_id (several cells with it are joined); when the
    metadata was lost, it is the cell right after the question's text, unless that cell is the
    lab's next one. An answer appended to the question cell itself counts too. An answer cell
    left at ``_YOUR ANSWER HERE_`` (or empty) is unanswered.
    """
    by_id: dict[str, list[str]] = {}
    for cell in nb.cells:
        grade_id = _nbgrader(cell).get("grade_id")
        if cell.get("cell_type") in ("markdown", "raw") and grade_id:
            by_id.setdefault(grade_id, []).append(cell.source)
    answers: dict[str, str | None] = {}
    for q in spec.questions:
        text = "\n\n".join(by_id[q.name]) if q.name in by_id else _answer_by_position(nb, q)
        answers[q.name] = solution_text(text or "") or None
    return answers


def _answer_by_position(nb: nbformat.NotebookNode, q: Question) -> str | None:
    question, after = _words(q.text), _words(q.text_after)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        words = _words(cell.source)
        if words != question:
            if question and words.startswith(question):  # answered inside the question cell
                source = cell.source.strip()
                return source[len(q.text):] if source.startswith(q.text) else words[len(question):]
            continue
        following = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        if (following is None or following.cell_type not in ("markdown", "raw")
                or is_question_cell(following) or _nbgrader(following).get("grade_id")
                or (after and _words(following.source) == after)):
            return None
        return following.source
    return None


def _words(text: str) -> str:
    return " ".join(str(text).split())


def find_solution(solutions_dir: Path | str, lab: str | int) -> Path:
    """The solution notebook ``NN_*.ipynb`` of lab ``lab`` (``3``, ``"03"``) in a folder."""
    number = f"{int(lab):02d}"
    found = [p for p in solution_notebooks(Path(solutions_dir)) if p.name.startswith(number + "_")]
    if len(found) != 1:
        have = ", ".join(p.name for p in solution_notebooks(Path(solutions_dir))) or "none"
        raise ValueError(
            f"expected one solution notebook {number}_*.ipynb in {solutions_dir} (found: {have}); "
            "run from the repository root or pass --solutions"
        )
    return found[0]


def student_id(path: Path | str) -> str:
    """The student id from a submission's file name.

    ``alice.ipynb``, ``alice_03.ipynb`` and ``alice_03_cascade.ipynb`` are all ``alice``: the
    name up to the first ``_NN`` (two digits between underscores, or at the end).
    """
    stem = Path(path).stem
    match = _STUDENT.match(stem)
    return match["student"] if match else stem


def notebook_title(nb: nbformat.NotebookNode) -> str | None:
    """The first markdown heading of a notebook, or None."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return None


def wrong_lab_reason(nb: nbformat.NotebookNode, spec: LabSpec) -> str | None:
    """Why a submission is not the lab ``spec`` (None when it may be).

    The title ``# Lab MM`` decides when present; otherwise the exercise ids in the cells'
    nbgrader metadata must share at least one with the lab. A notebook with neither is graded.
    """
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = _TITLE.search(cell.source)
            if match:
                if int(match[1]) != int(spec.number):
                    return (f"this notebook is Lab {match[1]} (its title says so), not Lab "
                            f"{spec.number}: submit the notebook of Lab {spec.number}")
                return None
            break
    ids = {_nbgrader(c).get("grade_id") for c in nb.cells} - {None}
    ours = {e.name for e in spec.exercises} | {f"{e.name}_check" for e in spec.exercises}
    ours |= {q.name for q in spec.questions}
    if ids and not ids & ours:
        return (f"none of this notebook's exercises ({', '.join(sorted(ids))}) belong to Lab "
                f"{spec.number} ({', '.join(e.name for e in spec.exercises)}): wrong notebook?")
    return None


def defining_cells(nb: nbformat.NotebookNode, name: str) -> list[int]:
    """Indices of the code cells that define ``name`` at top level (def, class or assignment)."""
    pattern = re.compile(
        rf"^(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=]*)?=(?!=)",
        re.MULTILINE,
    )
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and pattern.search(c.source)]


def similar_names(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Functions and classes the submission defines whose names look like ``name``."""
    defined = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            defined |= set(re.findall(r"^(?:async\s+def|def|class)\s+(\w+)", cell.source, re.M))
    return difflib.get_close_matches(name, sorted(defined - {name}), n=3, cutoff=0.5)


def exercise_cells(nb: nbformat.NotebookNode, spec: LabSpec) -> list[int]:
    """The submission's cells that hold an exercise: by metadata, tag or by what they define."""
    names = {e.name for e in spec.exercises}
    found = set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if _nbgrader(cell).get("grade_id") in names or EXERCISE_TAG in _tags(cell):
            found.add(i)
    for e in spec.exercises:
        found.update(defining_cells(nb, e.function))
    return sorted(found)


def cells_to_run(
    nb: nbformat.NotebookNode, spec: LabSpec, exercises_only: bool, skip: set[int] = frozenset()
) -> list[tuple[int | None, str]]:
    """``(submission cell index, source)`` of the code cells the grader runs, in order.

    All code cells; or, with ``exercises_only``, the setup cells and the exercise cells (by
    convention exercises depend only on setup cells). A submission with no cell tagged
    ``setup`` gets the solution's setup cells (index None). Cells in ``skip`` are left out.
    """
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    if not exercises_only:
        return [(i, nb.cells[i].source) for i in code if i not in skip]
    setup = [i for i in code if SETUP_TAG in _tags(nb.cells[i])]
    chosen = sorted((set(setup) | set(exercise_cells(nb, spec))) - set(skip))
    head: list[tuple[int | None, str]] = [] if setup else [(None, s) for s in spec.setup_sources]
    return head + [(i, nb.cells[i].source) for i in chosen]


def _nbgrader(cell) -> dict:
    return (cell or {}).get("metadata", {}).get("nbgrader", {}) or {}


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", []) or []


def _check_call(source: str, where: str) -> tuple[str, str]:
    """``("check_psnr", "psnr")`` from a check cell ``check_psnr(psnr)``."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise ValueError(f"{where}: the check cell is not valid Python ({e.msg})") from e
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id.startswith("check_")):
            if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Name):
                raise ValueError(
                    f"{where}: a check cell calls check_<name>(<function>) with the function "
                    "only; the grader adds strict=True and its seed"
                )
            return node.func.id, node.args[0].id
    raise ValueError(f"{where}: the check cell does not call a check_<name>(...) function")


def _imported_names(sources) -> dict[str, tuple[str, str]]:
    """``{local name: (module, name)}`` for every ``from module import name [as local]``."""
    names = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    names[alias.asname or alias.name] = (node.module, alias.name)
    return names
