"""The notebook pipeline: labs/ is generated from solutions/, and every exercise is stubbed."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dlmi_utils.course.notebooks import (
    NOT_IMPLEMENTED,
    generate_labs,
    make_student_notebook,
    solution_notebooks,
    strip_solution,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solution_notebooks(ROOT / "solutions")


def test_strip_solution_keeps_indentation_and_names_exercise():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    out = strip_solution(src, "double")
    assert "return 2 * x" not in out
    assert "    # YOUR CODE HERE" in out
    assert f'    raise NotImplementedError("double is {NOT_IMPLEMENTED}' in out
    ns: dict = {}
    exec(out, ns)
    with pytest.raises(NotImplementedError, match=NOT_IMPLEMENTED):
        ns["f"](1)


def test_strip_solution_markdown_answer():
    out = strip_solution("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", "q", True)
    assert "Because" not in out and "YOUR ANSWER HERE" in out


@pytest.mark.parametrize(
    "src", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
            "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"]
)
def test_unbalanced_markers_are_an_error(src):
    with pytest.raises(ValueError, match="SOLUTION|BEGIN"):
        strip_solution(src, "ex")


def test_student_notebook_clears_outputs_and_keeps_grading_metadata():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
        metadata={"nbgrader": {"grade_id": "f", "solution": True}},
    )
    cell.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    cell.execution_count = 3
    nb.cells.append(cell)
    lab = make_student_notebook(nb)
    assert lab.cells[0].outputs == [] and lab.cells[0].execution_count is None
    assert lab.cells[0].metadata["nbgrader"]["grade_id"] == "f"
    assert "return 1" in nb.cells[0].source, "the solution notebook itself is left untouched"


def test_generate_and_check_round_trip(tmp_path):
    sol_dir, lab_dir = tmp_path / "solutions", tmp_path / "labs"
    sol_dir.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION"))
    nbformat.write(nb, sol_dir / "07_demo.ipynb")
    assert generate_labs(sol_dir, lab_dir, check=True) == [lab_dir / "07_demo.ipynb"]
    generate_labs(sol_dir, lab_dir)
    assert generate_labs(sol_dir, lab_dir, check=True) == []
    (lab_dir / "07_demo.ipynb").write_text("edited by hand")
    assert generate_labs(sol_dir, lab_dir, check=True) == [lab_dir / "07_demo.ipynb"]


def test_labs_are_up_to_date_with_solutions():
    stale = generate_labs(ROOT / "solutions", ROOT / "labs", check=True)
    assert stale == [], f"run `dlmi-labs generate`: {[p.name for p in stale]} out of date"


def _has_tag(cell, tag):
    return tag in cell.get("metadata", {}).get("tags", [])


def _is_exercise(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("solution", False) and (
        cell.cell_type == "code"
    )


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_exercise_has_a_check_with_points(solution):
    nb = nbformat.read(solution, as_version=4)
    exercises = [i for i, c in enumerate(nb.cells) if _is_exercise(c)]
    assert exercises, f"{solution.name} has no exercise"
    for i in exercises:
        check = nb.cells[i + 1]
        meta = check.metadata.get("nbgrader", {})
        assert meta.get("grade") and meta.get("points", 0) > 0, (
            f"{solution.name}: exercise {nb.cells[i].metadata['nbgrader']['grade_id']} "
            "is not followed by a check cell with points"
        )


@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_student_lab_exercises_report_not_implemented(solution):
    """Run only the setup cells and each exercise with its check, in a fresh kernel.

    Every check must say "not implemented yet" without an error: the student lab works as
    handed out, and nothing in it leaks the solution. The training cells are not run again.
    """
    lab = nbformat.read(ROOT / "labs" / solution.name, as_version=4)
    keep = []
    for i, cell in enumerate(lab.cells):
        if _has_tag(cell, "setup"):
            keep.append(cell)
        elif _is_exercise(cell):
            keep += [cell, lab.cells[i + 1]]
    small = nbformat.v4.new_notebook(cells=keep, metadata=lab.metadata)
    NotebookClient(small, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "labs")}}).execute()
    checks = [c for c in small.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert checks
    for cell in checks:
        text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                       for o in cell.outputs)
        assert NOT_IMPLEMENTED in text, f"{cell.source!r} printed {text!r}"
