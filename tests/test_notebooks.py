"""The notebook pipeline: labs/ is generated from solutions/, and every exercise is stubbed."""

from pathlib import Path

import nbformat
import pytest

from dlmi_utils.course import colab
from dlmi_utils.course.notebooks import (
    NOT_IMPLEMENTED,
    generate_labs,
    main,
    make_student_notebook,
    notebook_client,
    notebook_text,
    relink_files,
    relink_notebook,
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


OLD_SETUP = colab.setup_cell_source().replace(colab.PIP_SPEC,
                                              "dlmi-labs @ git+https://github.com/old/repo@main")


def _notebook_with_old_links() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    title = ("# Lab 07 — Demo\n\n[![Open In Colab](https://colab.research.google.com/assets/"
             "colab-badge.svg)](https://colab.research.google.com/github/old/repo/blob/main/"
             "labs/07_demo.ipynb)")
    setup = nbformat.v4.new_code_cell(OLD_SETUP, metadata={"tags": ["setup"]}, execution_count=1)
    setup.outputs = [nbformat.v4.new_output("stream", text="Running on a local Jupyter kernel\n")]
    other = nbformat.v4.new_code_cell("print('https://colab.research.google.com/github/a/b/blob/c/')")
    nb.cells = [nbformat.v4.new_markdown_cell(title), setup, other]
    return nb


def test_relink_notebook_updates_badges_and_setup_cell_and_keeps_outputs():
    nb = _notebook_with_old_links()
    assert relink_notebook(nb) is True
    assert colab.colab_badge("labs/07_demo.ipynb") in nb.cells[0].source
    assert nb.cells[1].source == colab.setup_cell_source()
    assert nb.cells[1].outputs[0].text.startswith("Running on")
    assert nb.cells[2].source == _notebook_with_old_links().cells[2].source, "code is left alone"
    assert relink_notebook(nb) is False, "relinking twice changes nothing"


def test_student_notebook_points_at_the_release():
    lab = make_student_notebook(_notebook_with_old_links())
    assert colab.colab_badge("labs/07_demo.ipynb") in lab.cells[0].source
    assert lab.cells[1].source == colab.setup_cell_source() and lab.cells[1].outputs == []


def test_relink_command_rewrites_solutions_and_readme_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "solutions").mkdir()
    nbformat.write(_notebook_with_old_links(), tmp_path / "solutions" / "07_demo.ipynb")
    current = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lab 08")])
    (tmp_path / "solutions" / "08_ok.ipynb").write_text(notebook_text(current))
    (tmp_path / "README.md").write_text(
        "[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/old/repo/main)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["relink"]) == 0
    assert relink_files(tmp_path / "solutions", tmp_path / "README.md") == [], "idempotent"
    assert "relinked 2 file(s)" in capsys.readouterr().out
    assert (tmp_path / "README.md").read_text() == colab.binder_badge() + "\n"
    assert (tmp_path / "solutions" / "08_ok.ipynb").read_text() == notebook_text(current)


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
    notebook_client(small, ROOT / "labs", timeout=300).execute()
    checks = [c for c in small.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert checks
    for cell in checks:
        text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                       for o in cell.outputs)
        assert NOT_IMPLEMENTED in text, f"{cell.source!r} printed {text!r}"
