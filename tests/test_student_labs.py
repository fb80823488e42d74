"""The student labs as a student gets them: each runs top to bottom untouched, and asks questions.

A fresh lab has every exercise stubbed; it must still run whole (its self-checks print TODO and
the cells after them go on with the package's reference), so that a student who opens it sees
a working story before writing a line. Each lab also asks at least two "predict, then run"
questions as nbgrader answer cells, each right after its question and before the cell that
answers it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from dlmi_utils.course.notebooks import (
    ANSWER_HERE,
    NB_VERSION,
    notebook_client,
    solution_notebooks,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solution_notebooks(ROOT / "solutions")
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))


def _tags(cell: nbformat.NotebookNode) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _text_outputs(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") or out.get("data", {}).get("text/plain", "")
                   for out in cell.get("outputs", []))


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_student_lab_runs_whole_untouched(path, tmp_path):
    # Copy the lab's folder so the run writes nothing into labs/ (checkpoints, figures).
    work = tmp_path / "labs"
    shutil.copytree(path.parent, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nb = nbformat.read(work / path.name, as_version=NB_VERSION)
    notebook_client(nb, work, timeout=600).execute()
    checks = [c for c in nb.cells if "check" in _tags(c)]
    assert checks, f"{path.name} has no self-check cell"
    for cell in checks:
        assert "TODO" in _text_outputs(cell), (
            f"{path.name}: a self-check of an untouched lab should print TODO, got "
            f"{_text_outputs(cell)[:200]!r}")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_each_lab_asks_predict_then_run_questions(path):
    cells = nbformat.read(path, as_version=NB_VERSION).cells
    answers = [i for i, c in enumerate(cells) if "answer" in _tags(c)]
    assert len(answers) >= 2, f"{path.name}: {len(answers)} answer cells, want at least 2"
    for i in answers:
        cell, question = cells[i], cells[i - 1]
        meta = cell.metadata.get("nbgrader", {})
        assert cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade"), (
            f"{path.name} cell {i}: an answer cell is markdown with nbgrader solution and grade")
        assert meta.get("grade_id", "").startswith("q_") and meta.get("points", 0) > 0, (
            f"{path.name} cell {i}: grade_id 'q_<name>' and points, got {meta}")
        assert cell.source.startswith("### BEGIN SOLUTION") and cell.source.rstrip().endswith(
            "### END SOLUTION"), f"{path.name} cell {i}: the model answer is the whole cell"
        assert "question" in _tags(question) and question.source.startswith(
            "**Predict, then run.**"), f"{path.name} cell {i}: not right after its question"
        assert cells[i + 1].cell_type == "code", (
            f"{path.name} cell {i}: the cell after an answer runs the experiment that answers it")


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_student_lab_leaves_the_answers_to_the_student(path):
    cells = nbformat.read(path, as_version=NB_VERSION).cells
    for i, cell in enumerate(cells):
        if "answer" in _tags(cell):
            assert cell.source.strip() == ANSWER_HERE, f"{path.name} cell {i}: {cell.source!r}"
