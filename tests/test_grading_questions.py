"""dlmi-grade and "predict, then run" questions: read from the solution, answers collected for
marking by hand, marks merged back with every bad row named.

The fixture lab 99 with questions (tests/fixtures/grading/questions) is lab 99 with two
question/answer pairs: ``q_dtype`` (2 points) after ``double``, ``q_constant`` (1 point) before
the end.
"""

import copy
import csv
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from dlmi_utils.course.grading import (
    GradeOptions,
    LabSpec,
    Limits,
    answers_dir_for,
    feedback_dir_for,
    grade_submissions,
    main,
    merge_marks,
)
from dlmi_utils.course.grading.grade import check_solution_gets_full_marks
from dlmi_utils.course.grading.lab import student_answers, wrong_lab_reason
from dlmi_utils.course.notebooks import ANSWER_HERE, make_student_notebook

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
QUESTIONS = FIXTURES / "questions"
SOLUTION = QUESTIONS / "99_questions.ipynb"
OPTIONS = GradeOptions(limits=Limits(total=20, cell=10, check=10), exercises_only=True)
DTYPE_ANSWER = 6  # index of q_dtype's answer cell in the solution


@pytest.fixture(scope="module")
def spec():
    return LabSpec.from_solution(SOLUTION)


def _solution():
    return nbformat.read(SOLUTION, as_version=4)


def _student(answers: dict[int, str] | None = None):
    """The generated student lab, with the answer cells at these indices filled."""
    nb = make_student_notebook(_solution())
    for index, text in (answers or {}).items():
        nb.cells[index].source = text
    return nb


def _write(nb, folder: Path, name: str) -> Path:
    path = folder / name
    nbformat.write(nb, path)
    return path


# ------------------------------------------------------------------- reading the solution
def test_spec_reads_questions_beside_the_exercises(spec):
    assert [e.name for e in spec.exercises] == ["double", "normalize"]
    assert [(q.name, q.points) for q in spec.questions] == [("q_dtype", 2), ("q_constant", 1)]
    dtype = spec.questions[0]
    assert dtype.text.startswith("**Predict, then run.** What does `double` return")
    assert dtype.model_answer == "Integers: `2 * x` keeps the dtype of `x`."
    assert spec.exercise_points == 3 and spec.max_points == 6
    assert spec.item_names == ["double", "normalize", "q_dtype", "q_constant"]


def test_a_lab_without_questions_has_none():
    plain = LabSpec.from_solution(FIXTURES / "99_fixture.ipynb")
    assert plain.questions == () and plain.max_points == plain.exercise_points == 3


@pytest.mark.parametrize("break_it, message", [
    (lambda nb: nb.cells.pop(DTYPE_ANSWER - 1), "must follow its question cell"),
    (lambda nb: nb.cells[DTYPE_ANSWER].metadata.nbgrader.pop("points"), "carry nbgrader"),
    (lambda nb: setattr(nb.cells[DTYPE_ANSWER], "source", "Integers."), "between the solution"),
    (lambda nb: nb.cells[DTYPE_ANSWER].metadata.nbgrader.update(grade_id="double"),
     "share a grade_id: double"),
])
def test_spec_rejects_a_malformed_answer_cell(tmp_path, break_it, message):
    nb = _solution()
    break_it(nb)
    with pytest.raises(ValueError, match=message):
        LabSpec.from_solution(_write(nb, tmp_path, "99_broken.ipynb"))


# ------------------------------------------------------------------- finding the answers
def test_untouched_student_lab_has_no_answers(spec):
    nb = _student()
    assert nb.cells[DTYPE_ANSWER].source == ANSWER_HERE
    assert student_answers(nb, spec) == {"q_dtype": None, "q_constant": None}
    assert wrong_lab_reason(nb, spec) is None


def test_answers_are_found_by_grade_id_wherever_the_cell_moved(spec):
    nb = _student({DTYPE_ANSWER: "Integers, I think."})
    nb.cells.append(nb.cells.pop(DTYPE_ANSWER))  # moved to the end
    assert student_answers(nb, spec)["q_dtype"] == "Integers, I think."


def test_placeholder_left_beside_an_answer_is_dropped(spec):
    nb = _student({DTYPE_ANSWER: f"{ANSWER_HERE}\nFloats."})
    assert student_answers(nb, spec)["q_dtype"] == "Floats."


def test_answer_without_metadata_is_the_cell_after_the_question(spec):
    nb = _student({DTYPE_ANSWER: "Floats, because of the 2."})
    for cell in nb.cells:
        cell.metadata = {}  # copied into a fresh notebook: metadata lost
    assert student_answers(nb, spec) == {"q_dtype": "Floats, because of the 2.",
                                         "q_constant": None}


def test_deleted_answer_cell_is_unanswered_not_the_next_lab_cell(spec):
    nb = _student()
    for cell in nb.cells:
        cell.metadata = {}
    last_answer = len(nb.cells) - 2
    del nb.cells[last_answer]  # q_constant's answer: the next cell is "What to remember"
    del nb.cells[DTYPE_ANSWER]  # q_dtype's: the next cell is code
    assert student_answers(nb, spec) == {"q_dtype": None, "q_constant": None}


def test_answer_written_into_the_question_cell_counts(spec):
    nb = _student()
    del nb.cells[DTYPE_ANSWER]
    nb.cells[DTYPE_ANSWER - 1].source += "\n\nMy answer: integers."
    assert student_answers(nb, spec)["q_dtype"] == "My answer: integers."


# ------------------------------------------------------------------- grading a folder
@pytest.fixture(scope="module")
def graded(tmp_path_factory, fixture_env, spec):
    folder = tmp_path_factory.mktemp("submissions")
    _write(_solution(), folder, "solution_99.ipynb")
    _write(_student(), folder, "untouched.ipynb")
    answered = _student({DTYPE_ANSWER: "# Floats\n\nBecause *2* is a float."})
    _write(answered, folder, "carol_99.ipynb")
    lost = _student({DTYPE_ANSWER: "Integers."})
    for cell in lost.cells:
        cell.metadata = {}
    _write(lost, folder, "bob.ipynb")
    (folder / "broken.ipynb").write_text("{not json")
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    log = []
    grade_submissions(folder, spec, out, OPTIONS, log=log.append)
    return {"out": out, "log": "\n".join(log), "rows": list(csv.DictReader(out.open()))}


def _row(graded, student, item):
    return next(r for r in graded["rows"] if (r["student"], r["exercise"]) == (student, item))


@pytest.mark.notebooks
def test_preflight_passes_with_questions_and_finds_the_model_answers(graded, spec):
    assert "preflight" in graded["log"]
    grade = check_solution_gets_full_marks(spec, OPTIONS, log=lambda s: None)
    assert [q.answer for q in grade.questions] == [q.model_answer for q in spec.questions]


@pytest.mark.notebooks
def test_csv_has_a_row_per_student_and_question_in_the_lab_order(graded):
    students = ["bob", "broken", "carol", "solution", "untouched"]
    items = ["double", "normalize", "q_dtype", "q_constant"]
    assert [(r["student"], r["exercise"]) for r in graded["rows"]] == [
        (s, i) for s in students for i in items]


@pytest.mark.notebooks
def test_answered_questions_wait_for_marks_and_unanswered_get_zero(graded):
    carol = _row(graded, "carol", "q_dtype")
    assert carol["points"] == "" and carol["max_points"] == "2"
    assert "to be marked by hand" in carol["feedback"] and carol["delegated"] == ""
    assert _row(graded, "bob", "q_dtype")["points"] == ""  # found without metadata
    for student, item in [("untouched", "q_dtype"), ("carol", "q_constant"),
                          ("broken", "q_dtype")]:
        row = _row(graded, student, item)
        assert row["points"] == "0" and row["feedback"].startswith("unanswered")
    assert "not a valid notebook" in _row(graded, "broken", "q_dtype")["feedback"]
    assert "to mark" in graded["log"]


@pytest.mark.notebooks
def test_answer_file_holds_question_model_answer_and_every_student_in_order(graded):
    text = (answers_dir_for(graded["out"]) / "q_dtype.md").read_text()
    assert text.index("What does `double` return") < text.index("## Model answer") \
        < text.index("> Integers: `2 * x`")
    positions = [text.index(f"### {s}\n") for s in
                 ("bob", "broken", "carol", "solution", "untouched")]
    assert positions == sorted(positions)
    assert "> # Floats\n>\n> Because *2* is a float." in text  # quoted: its heading stays inside
    untouched = text[text.index("### untouched"):]
    assert "_unanswered_" in untouched and ANSWER_HERE not in untouched
    assert "_unanswered (the file is not a valid notebook" in text


@pytest.mark.notebooks
def test_marks_template_lists_the_answers_to_mark(graded):
    rows = list(csv.reader((answers_dir_for(graded["out"]) / "marks_template.csv").open()))
    assert rows == [["student", "question", "points", "comment"],
                    ["bob", "q_dtype", "", ""], ["carol", "q_dtype", "", ""],
                    ["solution", "q_dtype", "", ""], ["solution", "q_constant", "", ""]]


# ------------------------------------------------------------------- merging the marks
def _copy_grades(graded, tmp_path: Path) -> Path:
    out = tmp_path / "grades.csv"
    out.write_bytes(graded["out"].read_bytes())
    feedback = feedback_dir_for(out)
    feedback.mkdir()
    for path in feedback_dir_for(graded["out"]).iterdir():
        (feedback / path.name).write_bytes(path.read_bytes())
    return out


def _marks(tmp_path: Path, *rows) -> Path:
    path = tmp_path / "marks.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["student", "question", "points", "comment"], *rows])
    return path


@pytest.mark.notebooks
def test_merged_marks_set_points_comment_and_feedback_total(graded, tmp_path, spec):
    out = _copy_grades(graded, tmp_path)
    marks = _marks(tmp_path, ["carol", "q_dtype", "0.5", "the dtype stays int"],
                   ["bob", "q_dtype", "2", ""], ["solution", "q_dtype", "", ""])
    report = merge_marks(marks, out, spec, feedback_dir_for(out), log=lambda s: None)
    assert (report.marked, report.left, report.to_mark) == (2, 1, 2)
    rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(out.open())}
    assert rows[("carol", "q_dtype")]["points"] == "0.5"
    assert rows[("carol", "q_dtype")]["feedback"] == "marked by hand: the dtype stays int"
    assert rows[("bob", "q_dtype")]["feedback"] == "marked by hand"
    assert rows[("solution", "q_dtype")]["points"] == ""
    text = (feedback_dir_for(out) / "carol.md").read_text()
    assert "## Question `q_dtype`: 0.5 / 2\n\nmarked by hand: the dtype stays int" in text
    assert "**Total: 0.5 / 6 points**" in text  # exercises not done, q_constant unanswered


@pytest.mark.notebooks
def test_bad_marks_are_all_named_and_nothing_is_written(graded, tmp_path, spec):
    out = _copy_grades(graded, tmp_path)
    before = out.read_bytes()
    marks = _marks(tmp_path, ["mallory", "q_dtype", "1", ""], ["carol", "q_nope", "1", ""],
                   ["carol", "double", "1", ""], ["carol", "q_dtype", "3", ""],
                   ["bob", "q_dtype", "-1", ""], ["bob", "q_constant", "many", ""],
                   ["solution", "q_dtype", "1", ""], ["solution", "q_dtype", "2", ""])
    with pytest.raises(ValueError) as error:
        merge_marks(marks, out, spec, log=lambda s: None)
    message = str(error.value)
    for expected in ["line 2: unknown student `mallory`", "line 3: unknown question `q_nope`",
                     "line 4: `double` is an exercise", "line 5: points `3`",
                     "from 0 to 2", "line 6: points `-1`", "line 7: points `many`",
                     "line 9: solution, q_dtype given twice (also on line 8)"]:
        assert expected in message
    assert out.read_bytes() == before


def test_marks_file_needs_its_columns(tmp_path, spec):
    out = tmp_path / "grades.csv"
    out.write_text("student,lab,exercise,points,max_points,delegated,feedback\n"
                   "alice,99,q_dtype,,2,,to be marked by hand\n")
    marks = tmp_path / "marks.csv"
    marks.write_text("name,mark\nalice,2\n")
    with pytest.raises(ValueError, match="missing student, question, points"):
        merge_marks(marks, out, spec, log=lambda s: None)


def test_merge_marks_command_merges_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "grades.csv"
    out.write_text("student,lab,exercise,points,max_points,delegated,feedback\n"
                   "alice,99,double,1,1,no,passed\n"
                   "alice,99,q_dtype,,2,,to be marked by hand\n")
    args = ["merge-marks", str(_marks(tmp_path, ["alice", "q_dtype", "2", "right"])),
            "--lab", "99", "--solutions", str(QUESTIONS), "--out", str(out)]
    assert main(args) == 0
    assert "1 mark(s) merged" in capsys.readouterr().out
    assert "alice,99,q_dtype,2,2,,marked by hand: right" in out.read_text()
    _marks(tmp_path, ["alice", "q_dtype", "5", ""])
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and "from 0 to 2" in capsys.readouterr().err


def test_a_question_copied_from_another_cell_keeps_its_own_answer(spec):
    """Two questions with one text would be ambiguous by position: grade_id decides."""
    nb = _student({DTYPE_ANSWER: "Integers."})
    nb = copy.deepcopy(nb)
    nb.cells.insert(3, new_markdown_cell(nb.cells[DTYPE_ANSWER - 1].source))
    assert student_answers(nb, spec)["q_dtype"] == "Integers."
