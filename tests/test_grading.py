"""dlmi-grade: exercises and points from the solution, strict checks in the student's kernel,
pathological submissions graded rather than fatal, a CSV that survives interruptions.

Most tests use the fixture lab 99 (tests/fixtures/grading: two exercises, a checks module) with
short time limits; the last ones grade every real lab in solutions/.
"""

import copy
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from dlmi_utils.course.grading import (
    COLUMNS,
    GradeOptions,
    LabSpec,
    Limits,
    feedback_dir_for,
    find_solution,
    grade_notebook,
    grade_submissions,
    inkernel,
    main,
    student_id,
    submission_files,
)
from dlmi_utils.course.grading.lab import Exercise, cells_to_run, wrong_lab_reason
from dlmi_utils.course.notebooks import make_student_notebook, solution_notebooks

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
FIXTURE = FIXTURES / "99_fixture.ipynb"
SOLUTIONS = solution_notebooks(ROOT / "solutions")
# fast limits for the fixture lab; the normal notebooks need ~1 s
LIMITS = Limits(total=6, cell=3, check=3)
OPTIONS = GradeOptions(limits=LIMITS)


@pytest.fixture(scope="module")
def spec():
    return LabSpec.from_solution(FIXTURE)


def _solution():
    return nbformat.read(FIXTURE, as_version=4)


def _write(nb, folder: Path, name: str) -> Path:
    path = folder / name
    nbformat.write(nb, path)
    return path


def _insert(nb, position: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(position, new_code_cell(source))
    return nb


def _with_source(nb, index: int, source: str):
    nb = copy.deepcopy(nb)
    nb.cells[index].source = source
    return nb


def _before_end(nb, *sources):
    """Add code cells, in order, before the closing markdown cell."""
    nb = copy.deepcopy(nb)
    nb.cells[-1:-1] = [new_code_cell(s) for s in sources]
    return nb


# code cells of the fixture: 1 setup, 3 double, 4 its check, 5 prints, 7 normalize, 8 its check
PATHOLOGICAL = {
    "infinite_loop": lambda nb: _insert(nb, 6, "while True:\n    pass"),
    "ignores_interrupts": lambda nb: _insert(nb, 6, (
        "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
        "    except KeyboardInterrupt:\n        pass")),
    "slow_function": lambda nb: _with_source(nb, 3, (
        "def double(x):\n    while x.ndim > 1:  # hangs on the grader's 2-D case only\n"
        "        pass\n    return 2 * x")),
    "kernel_dies": lambda nb: _insert(nb, 6, "import os\nos._exit(1)"),
    "dies_in_check": lambda nb: _with_source(nb, 3, (
        "import os\n\ndef double(x):\n    if x.ndim > 1:\n        os._exit(1)\n"
        "    return 2 * x")),
    "syntax_error": lambda nb: _with_source(nb, 3, "def double(x)\n    return 2 * x"),
    "renamed": lambda nb: _with_source(nb, 3, "def doubled(x):\n    return 2 * x"),
    "hardcoded": lambda nb: _with_source(nb, 3, (
        "def double(x):\n    return np.array([2.0, 4.0, 6.0])  # the self-check's answer")),
    "chatty": lambda nb: _insert(nb, 6, "for _ in range(30):\n    print('x' * 100_000)"),
    "too_slow_overall": lambda nb: _before_end(nb, "import time\n\ntime.sleep(2)",
                                               *["time.sleep(2)"] * 3),
    "wrong_lab": lambda nb: _with_source(nb, 0, "# Lab 03 — Deep cascades\n\nAnother lab."),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, fixture_env, spec):
    """Grade one folder with the solution, the untouched lab and every pathology, once."""
    folder = tmp_path_factory.mktemp("submissions")
    solution = _solution()
    _write(solution, folder, "solution_99.ipynb")
    _write(make_student_notebook(solution), folder, "untouched.ipynb")
    for name, make in PATHOLOGICAL.items():
        _write(make(solution), folder, f"{name}_99_fixture.ipynb")
    (folder / "corrupted.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    log = []
    grades = grade_submissions(folder, spec, out, OPTIONS, log=log.append, preflight=False)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "rows": {(r["student"], r["exercise"]): r for r in rows},
        "n_rows": len(rows),
        "grades": {g.student: g for g in grades},
        "feedback": feedback_dir_for(out),
        "log": "\n".join(log),
        "out": out,
    }


def _points(graded, student):
    return {ex: float(graded["rows"][(student, ex)]["points"]) for ex in ("double", "normalize")}


def _feedback_file(graded, student) -> str:
    return (graded["feedback"] / f"{student}.md").read_text()


# ------------------------------------------------------------------- the lab, from its solution
def test_spec_reads_exercises_points_and_checks_from_the_solution(spec):
    assert spec.number == "99" and spec.title.startswith("Lab 99")
    assert [(e.name, e.function, e.check, e.module, e.points) for e in spec.exercises] == [
        ("double", "double", "check_double", "lab99_checks", 1.0),
        ("normalize", "normalize", "check_normalize", "lab99_checks", 2.0),
    ]
    assert spec.max_points == 3


def test_spec_rejects_an_exercise_without_a_check_cell(tmp_path):
    nb = _solution()
    del nb.cells[4]  # double's check cell
    with pytest.raises(ValueError, match="must be followed by its check cell"):
        LabSpec.from_solution(_write(nb, tmp_path, "99_broken.ipynb"))


def test_points_come_from_the_solution_not_the_submission(tmp_path, spec, fixture_env):
    nb = _solution()
    nb.cells[4].metadata["nbgrader"]["points"] = 100  # a student edits the metadata
    grade = grade_notebook(_write(nb, tmp_path, "greedy.ipynb"), spec, OPTIONS)
    assert [(e.points, e.max_points) for e in grade.exercises] == [(1, 1), (2, 2)]


@pytest.mark.parametrize("name, student", [
    ("alice.ipynb", "alice"), ("alice_03.ipynb", "alice"), ("alice_03_cascade.ipynb", "alice"),
    ("bob_smith_00.ipynb", "bob_smith"), ("carol_v2.ipynb", "carol_v2"),
])
def test_student_id_is_the_file_name_up_to_the_lab_number(name, student):
    assert student_id(name) == student


def test_two_files_of_one_student_are_an_error(tmp_path):
    for name in ("alice.ipynb", "alice_99.ipynb", "bob.ipynb"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ValueError, match="alice: alice.ipynb, alice_99.ipynb"):
        submission_files(tmp_path)


def test_wrong_lab_is_told_by_title_or_by_exercise_ids(spec):
    nb = _solution()
    assert wrong_lab_reason(nb, spec) is None
    assert "is Lab 03" in wrong_lab_reason(PATHOLOGICAL["wrong_lab"](nb), spec)
    untitled = _with_source(nb, 0, "Some notes")
    for cell in untitled.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.grade_id = "psnr" + cell.metadata.nbgrader.grade_id
    assert "none of this notebook's exercises" in wrong_lab_reason(untitled, spec)
    bare = nbformat.v4.new_notebook(cells=[new_code_cell("def double(x):\n    return 2 * x")])
    assert wrong_lab_reason(bare, spec) is None, "no title, no metadata: graded by function name"


def test_exercises_only_runs_setup_and_exercise_cells(spec):
    nb = _insert(_solution(), 6, "train_for_an_hour()")
    sources = [src for _, src in cells_to_run(nb, spec, exercises_only=True)]
    assert sources == [nb.cells[i].source for i in (1, 3, 8)]
    assert len(cells_to_run(nb, spec, exercises_only=False)) == 7  # every code cell


def test_exercises_only_finds_an_exercise_without_metadata_and_falls_back_to_solution_setup(spec):
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("x = 1"), new_code_cell("def normalize(x):\n    return x")])
    chosen = cells_to_run(nb, spec, exercises_only=True)
    assert chosen == [(None, spec.setup_sources[0]), (1, nb.cells[1].source)]


def test_in_kernel_grade_reports_missing_passed_and_grader_errors(fixture_env):
    ns = {"double": lambda x: 2 * x}
    ok = inkernel.grade(ns, "double", "lab99_checks", "check_double", seed=1, nonce="ab")
    assert ok["status"] == "passed" and ok["total"] == 2 and ok["nonce"] == "ab"
    assert inkernel.grade(ns, "normalize", "lab99_checks", "check_normalize", 1, "ab")[
        "status"] == "missing"
    bad = inkernel.grade(ns, "double", "no_such_checks", "check_double", 1, "ab")
    assert bad["status"] == "grader_error" and "no_such_checks" in bad["messages"][0]


def test_in_kernel_grade_survives_exit_and_discards_prints(fixture_env, capsys):
    def chatty_exit(x):
        print("spam " * 1000)
        raise SystemExit(3)

    out = inkernel.grade({"double": chatty_exit}, "double", "lab99_checks", "check_double", 1, "n")
    assert out["status"] == "error" and "exit()" in out["messages"][0]
    assert "spam" not in capsys.readouterr().out


def test_in_kernel_grade_refuses_the_package_own_function(fixture_env):
    from dlmi_utils import metrics

    out = inkernel.grade({"double": metrics.mse}, "double", "lab99_checks", "check_double", 1, "n")
    assert out["status"] == "imported" and "dlmi_utils.metrics" in out["messages"][0]


def test_notebook_with_a_malformed_cell_is_not_run(tmp_path, spec):
    path = tmp_path / "odd.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", "metadata": {}}], "metadata": {}, '
                    '"nbformat": 4, "nbformat_minor": 5}')
    grade = grade_notebook(path, spec, OPTIONS)
    assert grade.points == 0 and "not a valid notebook" in grade.exercises[0].feedback


def test_grading_cell_uses_strict_checks_and_the_grader_seed():
    source = inkernel.grading_cell_source(Exercise("a", "f", "check_a", "m", 1.0), 17, "ff")
    assert "'f', 'm', 'check_a', seed=17, nonce='ff'" in source
    with pytest.raises(ValueError, match="total must be positive"):
        Limits(total=0)


# ------------------------------------------------------------------- a folder of submissions
@pytest.mark.notebooks
def test_every_submission_gets_a_row_per_exercise(graded):
    students = {"solution", "untouched", "corrupted", *PATHOLOGICAL}
    assert {s for s, _ in graded["rows"]} == students
    assert graded["n_rows"] == 2 * len(students)
    for student in students:
        assert (graded["feedback"] / f"{student}.md").exists()
    assert list(graded["rows"].values())[0].keys() == set(COLUMNS)


@pytest.mark.notebooks
def test_solution_gets_full_marks_and_untouched_lab_zero(graded):
    assert _points(graded, "solution") == {"double": 1, "normalize": 2}
    assert _points(graded, "untouched") == {"double": 0, "normalize": 0}
    for ex in ("double", "normalize"):
        assert "not implemented yet" in graded["rows"][("untouched", ex)]["feedback"]


@pytest.mark.notebooks
def test_infinite_loop_is_stopped_and_the_rest_graded(graded):
    assert _points(graded, "infinite_loop") == {"double": 1, "normalize": 2}
    assert "did not finish within the time limit per cell (3 s)" in _feedback_file(
        graded, "infinite_loop")


@pytest.mark.notebooks
def test_kernel_that_ignores_interrupts_is_replaced(graded):
    assert _points(graded, "ignores_interrupts") == {"double": 1, "normalize": 2}
    text = _feedback_file(graded, "ignores_interrupts")
    assert "did not answer after the interrupt" in text and "fresh kernel" in text


@pytest.mark.notebooks
def test_function_that_hangs_on_the_grader_cases_gets_zero(graded):
    assert _points(graded, "slow_function") == {"double": 0, "normalize": 2}
    assert "did not finish within 3 s" in graded["rows"][("slow_function", "double")]["feedback"]


@pytest.mark.notebooks
def test_dead_kernel_is_graded_again_without_the_fatal_cell(graded):
    assert _points(graded, "kernel_dies") == {"double": 1, "normalize": 2}
    text = _feedback_file(graded, "kernel_dies")
    assert "cell 7 (`import os`) the kernel died while running this cell" in text


@pytest.mark.notebooks
def test_kernel_dying_in_a_check_costs_that_exercise_only(graded):
    assert _points(graded, "dies_in_check") == {"double": 0, "normalize": 2}
    assert "kernel died while the grader ran `double`" in graded["rows"][
        ("dies_in_check", "double")]["feedback"]


@pytest.mark.notebooks
def test_syntax_error_names_the_cell_and_line(graded):
    assert _points(graded, "syntax_error") == {"double": 0, "normalize": 2}
    feedback = graded["rows"][("syntax_error", "double")]["feedback"]
    assert "`double` is not defined" in feedback and "raised SyntaxError" in feedback
    assert "line 1 of the cell" in feedback


@pytest.mark.notebooks
def test_renamed_function_is_pointed_out(graded):
    assert _points(graded, "renamed") == {"double": 0, "normalize": 2}
    assert "did you rename it? your notebook defines doubled" in graded["rows"][
        ("renamed", "double")]["feedback"]


@pytest.mark.notebooks
def test_answer_hard_coded_for_the_self_check_fails_the_strict_check(graded):
    assert _points(graded, "hardcoded") == {"double": 0, "normalize": 2}
    assert "0/2 of the grader's checks passed" in graded["rows"][("hardcoded", "double")][
        "feedback"]


@pytest.mark.notebooks
def test_megabytes_of_output_are_counted_not_kept(graded):
    assert _points(graded, "chatty") == {"double": 1, "normalize": 2}
    assert "printed 3.0 MB of text" in _feedback_file(graded, "chatty")
    assert graded["out"].stat().st_size < 20_000
    assert all(len(r["feedback"]) <= 500 for r in graded["rows"].values())


@pytest.mark.notebooks
def test_total_time_limit_stops_the_notebook(graded):
    assert _points(graded, "too_slow_overall") == {"double": 1, "normalize": 2}
    text = _feedback_file(graded, "too_slow_overall")
    assert "the total time limit (6 s)" in text or "used up the total time limit" in text


@pytest.mark.notebooks
def test_corrupted_file_and_wrong_lab_get_zero_with_the_reason(graded):
    assert _points(graded, "corrupted") == {"double": 0, "normalize": 0}
    assert "not a valid notebook" in graded["rows"][("corrupted", "double")]["feedback"]
    assert _points(graded, "wrong_lab") == {"double": 0, "normalize": 0}
    assert "is Lab 03" in graded["rows"][("wrong_lab", "normalize")]["feedback"]


@pytest.mark.notebooks
def test_summary_lists_each_exercise(graded):
    assert "double" in graded["log"] and "full marks" in graded["log"]


# ------------------------------------------------------------------- the command, resuming
@pytest.mark.notebooks
def test_command_resumes_and_drops_a_half_written_student(tmp_path, fixture_env, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _write(_solution(), folder, "alice_99.ipynb")
    _write(make_student_notebook(_solution()), folder, "bob.ipynb")
    out = tmp_path / "grades.csv"
    args = [str(folder), "--lab", "99", "--solutions", str(FIXTURES), "--out", str(out),
            "--cell-timeout", "10", "--timeout", "20", "--exercises-only"]
    assert main(args) == 0
    first = out.read_text()
    assert "alice,99,double,1,1" in first and "bob,99,normalize,0,2" in first
    assert (tmp_path / "grades_feedback" / "bob.md").exists()

    # an interruption while bob's rows were written: his second row is lost
    out.write_text(first.rsplit("\n", 2)[0] + "\n")
    capsys.readouterr()
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "alice: already in grades.csv, skipped" in log and "bob (bob.ipynb) ..." in log
    assert "preflight" in log, "someone is graded: the solution is checked first"
    assert out.read_text() == first

    assert main(args) == 0  # everyone graded: nothing runs
    assert "preflight" not in capsys.readouterr().out


@pytest.mark.notebooks
def test_ctrl_c_stops_the_run_and_the_next_run_goes_on(tmp_path, spec):
    """Ctrl-C in the middle of a student: the students before are kept, that one is not."""
    folder = tmp_path / "in"
    folder.mkdir()
    _write(_solution(), folder, "a_first.ipynb")
    _write(PATHOLOGICAL["infinite_loop"](_solution()), folder, "b_looping.ipynb")
    out = tmp_path / "grades.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(ROOT)])}
    command = [sys.executable, "-m", "dlmi_utils.course.grading.cli", str(folder), "--lab", "99",
               "--solutions", str(FIXTURES), "--out", str(out), "--no-preflight"]
    run = subprocess.Popen([*command, "--cell-timeout", "120"], env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in run.stdout:
        if line.startswith("[2/2] b_looping"):
            break
    time.sleep(2)  # into the endless cell
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "run the same command again" in err
    assert {r["student"] for r in csv.DictReader(out.open())} == {"a_first"}

    again = subprocess.run([*command, "--cell-timeout", "3"], env=env, text=True,
                           capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "a_first: already in grades.csv, skipped" in again.stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["student"] for r in rows] == ["a_first"] * 2 + ["b_looping"] * 2


def test_command_refuses_a_file_that_is_not_its_csv(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "grades.csv").write_text("name,score\nalice,3\n")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "in"), "--lab", "99", "--solutions", str(FIXTURES),
              "--out", str(tmp_path / "grades.csv")])


def test_preflight_stops_before_grading_when_the_checks_cannot_run(tmp_path, spec, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _write(_solution(), folder, "alice.ipynb")
    broken = LabSpec.from_solution(FIXTURE, checks_module="no_such_checks_module")
    with pytest.raises(ValueError, match="solution gets 0/3 points"):
        grade_submissions(folder, broken, tmp_path / "g.csv", OPTIONS, log=lambda s: None)
    assert not (tmp_path / "g.csv").exists()


# ------------------------------------------------------------------- the real labs
@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_lab_exercise_has_a_strict_check(solution):
    import importlib
    import inspect

    spec = LabSpec.from_solution(solution)
    assert find_solution(ROOT / "solutions", spec.number) == solution
    for e in spec.exercises:
        check = getattr(importlib.import_module(e.module), e.check)
        params = inspect.signature(check).parameters
        assert "strict" in params and "seed" in params, f"{e.check} takes strict= and seed="


@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_real_lab_solution_gets_full_marks_and_untouched_lab_zero(solution, tmp_path):
    spec = LabSpec.from_solution(solution)
    options = GradeOptions(limits=Limits(total=600, cell=300, check=120), exercises_only=True)
    full = grade_notebook(solution, spec, options, "solution")
    assert full.points == spec.exercise_points, [e.feedback for e in full.exercises]
    assert not any(e.delegated for e in full.exercises)
    assert [q.answer for q in full.questions] == [q.model_answer for q in spec.questions]
    assert full.to_mark == spec.max_points - spec.exercise_points
    zero = grade_notebook(ROOT / "labs" / solution.name, spec, options, "untouched")
    assert zero.points == 0 and zero.to_mark == 0
    for e in zero.exercises:
        assert "not implemented yet" in e.feedback
    for q in zero.questions:
        assert q.answer is None and q.feedback.startswith("unanswered")


@pytest.mark.notebooks
def test_memory_cap_turns_a_huge_allocation_into_a_memory_error(tmp_path, spec, fixture_env):
    hog = _insert(_solution(), 6, "import numpy as np\nblock = np.ones(2**32, dtype=np.uint8)")
    capped = GradeOptions(limits=Limits(total=30, cell=20, check=20, memory=1_500_000_000))
    grade = grade_notebook(_write(hog, tmp_path, "hog.ipynb"), spec, capped)
    assert grade.points == 3
    assert "cell 7 (`import numpy as np`) raised MemoryError" in " ".join(grade.notes)
    with pytest.raises(ValueError, match="memory must be positive"):
        Limits(memory=0)
