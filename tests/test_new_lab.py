"""A new lab starts from solutions/_template.ipynb (`dlmi-labs new`) and works at once:
the CONTRIBUTING shape, its own badges and setup cell, generated and graded like any lab."""

import shutil
from pathlib import Path

import nbformat
import pytest

from dlmi_utils.course import colab
from dlmi_utils.course.grading import GradeOptions, LabSpec, Limits, grade_notebook
from dlmi_utils.course.notebooks import (
    TEMPLATE,
    generate_labs,
    main,
    make_student_notebook,
    new_lab,
    solution_notebooks,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = solution_notebooks(ROOT / "solutions")


@pytest.fixture
def solutions(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(ROOT / "solutions" / TEMPLATE, folder / TEMPLATE)
    return folder


def test_template_is_never_turned_into_a_student_lab(solutions, tmp_path):
    assert solution_notebooks(solutions) == []
    assert generate_labs(solutions, tmp_path / "labs") == []


def _assert_lab_shape(nb) -> None:
    """CONTRIBUTING.md's shape: what it teaches and needs on top, what to remember at the end."""
    title = nb.cells[0].source
    for part in ("What you will learn", "What you need", "Course topics"):
        assert f"**{part}" in title, f"the title cell says **{part}**"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == colab.setup_cell_source()
    assert all("setup" in c.metadata.get("tags", []) for c in code[:2]), "setup + imports cells"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "What to remember" in text and "Further reading" in text


def test_template_has_the_shape_of_a_lab():
    nb = nbformat.read(ROOT / "solutions" / TEMPLATE, as_version=4)
    assert nb.cells[0].source.startswith("# Lab NN — Title of the lab")
    _assert_lab_shape(nb)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_lab_has_the_shape_of_the_template(solution):
    _assert_lab_shape(nbformat.read(solution, as_version=4))


def test_new_lab_fills_in_title_badges_and_clears_outputs(solutions):
    path = new_lab(solutions, "6", "super_resolution", "Super-resolution")
    assert path == solutions / "06_super_resolution.ipynb"
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0].source
    assert title.startswith("# Lab 06 — Super-resolution")
    assert colab.colab_badge("labs/06_super_resolution.ipynb") in title
    assert colab.binder_badge("labs/06_super_resolution.ipynb") in title
    assert "NN" not in title.split("\n\n")[1], "no placeholder left in the badges"
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    assert solution_notebooks(solutions) == [path]


@pytest.mark.parametrize("number, name, message", [
    ("6", "Super Resolution", "lower_snake_case"),
    ("106", "sr", "one or two digits"),
    ("0", "other", "exists already"),
])
def test_new_lab_refuses_bad_names_and_taken_numbers(solutions, number, name, message):
    new_lab(solutions, "00", "first", "First")
    with pytest.raises(ValueError, match=message):
        new_lab(solutions, number, name, "Title")


def test_new_command_writes_the_lab_and_says_what_next(solutions, capsys):
    assert main(["new", "07", "gan_eval", "--title", "GAN evaluation",
                 "--solutions", str(solutions)]) == 0
    out = capsys.readouterr().out
    assert "07_gan_eval.ipynb" in out and "dlmi_utils/course/checks/lab07.py" in out
    with pytest.raises(SystemExit):
        main(["new", "07", "again", "--title", "x", "--solutions", str(solutions)])


@pytest.mark.notebooks
def test_new_lab_is_graded_full_for_its_solution_and_zero_untouched(solutions, tmp_path):
    path = new_lab(solutions, "08", "example", "Example")
    spec = LabSpec.from_solution(path)
    assert [(e.name, e.module, e.points) for e in spec.exercises] == [
        ("to_unit_range", "dlmi_utils.course.checks.template", 1.0)]
    options = GradeOptions(limits=Limits(total=300, cell=120, check=60), exercises_only=True)
    assert grade_notebook(path, spec, options).points == 1
    lab = tmp_path / "student.ipynb"
    nbformat.write(make_student_notebook(nbformat.read(path, as_version=4)), lab)
    untouched = grade_notebook(lab, spec, options)
    assert untouched.points == 0 and "not implemented yet" in untouched.exercises[0].feedback
