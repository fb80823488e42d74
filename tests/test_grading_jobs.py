"""dlmi-grade --jobs N: several notebooks at once, one CSV in a stable order whatever finishes
first, and a run killed or interrupted in the middle resumes without losing or doubling a row."""

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

from dlmi_utils.course.grading import GradeOptions, LabSpec, Limits, grade_submissions, main
from dlmi_utils.course.grading.gradefile import students_done
from dlmi_utils.course.notebooks import make_student_notebook

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
FIXTURE = FIXTURES / "99_fixture.ipynb"
LIMITS = ["--timeout", "60", "--cell-timeout", "20", "--check-timeout", "20"]
OPTIONS = GradeOptions(limits=Limits(total=60, cell=20, check=20))  # importing torch: seconds
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(ROOT)]),
       "PYTHONUNBUFFERED": "1"}  # the log lines reach the test as they are printed


def _solution():
    return nbformat.read(FIXTURE, as_version=4)


def _with_cell(source: str, position: int = 6):
    nb = copy.deepcopy(_solution())
    nb.cells.insert(position, new_code_cell(source))
    return nb


def _class(folder: Path) -> None:
    """Submissions that finish in very different times, named so that the slow come first."""
    folder.mkdir()
    nbformat.write(_with_cell("while True:\n    pass"), folder / "a_loops.ipynb")
    nbformat.write(_with_cell("import os\nos._exit(1)"), folder / "b_dies.ipynb")
    nbformat.write(_solution(), folder / "c_right.ipynb")
    nbformat.write(make_student_notebook(_solution()), folder / "d_untouched.ipynb")
    nbformat.write(_with_cell("import sys\nsys.exit(3)"), folder / "e_exits.ipynb")
    nb = copy.deepcopy(_solution())
    nb.cells[3].source = ("from dlmi_utils import metrics\n\n"
                          "def double(x):\n    return metrics.mse(x, x)")
    nbformat.write(nb, folder / "f_delegates.ipynb")


def _grade(folder: Path, out: Path, jobs: int) -> list[str]:
    log = []
    grade_submissions(folder, LabSpec.from_solution(FIXTURE), out, OPTIONS, log=log.append,
                      preflight=False, jobs=jobs)
    return log


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory, fixture_env):
    """The class, and its grades made one notebook at a time."""
    tmp = tmp_path_factory.mktemp("jobs")
    folder = tmp / "in"
    _class(folder)
    _grade(folder, tmp / "one" / "grades.csv", jobs=1)
    return folder, tmp / "one" / "grades.csv"


@pytest.mark.notebooks
def test_jobs_give_the_same_csv_and_feedback_as_one_at_a_time(tmp_path, one_at_a_time):
    folder, one = one_at_a_time
    three = tmp_path / "three" / "grades.csv"
    log = _grade(folder, three, jobs=3)
    assert one.read_bytes() == three.read_bytes()
    rows = list(csv.DictReader(three.open()))
    students = ["a_loops", "b_dies", "c_right", "d_untouched", "e_exits", "f_delegates"]
    assert [(r["student"], r["exercise"]) for r in rows] == [
        (s, e) for s in students for e in ("double", "normalize")]
    feedback_one = sorted((one.parent / "grades_feedback").iterdir())
    feedback_three = sorted((tmp_path / "three" / "grades_feedback").iterdir())
    assert [p.name for p in feedback_one] == [p.name for p in feedback_three] == [
        f"{s}.md" for s in students]
    assert all(a.read_text() == b.read_text() for a, b in zip(feedback_one, feedback_three,
                                                                    strict=True))
    finished = [line.split(":")[0].strip() for line in log if " points in " in line]
    assert sorted(finished) == students


def test_jobs_must_be_positive(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "in"), "--lab", "99", "--solutions", str(FIXTURES),
              "--out", str(tmp_path / "g.csv"), "--jobs", "0"])


def test_partial_last_line_of_a_killed_append_is_dropped(tmp_path):
    out = tmp_path / "grades.csv"
    header = "student,lab,exercise,points,max_points,delegated,feedback\n"
    alice = "alice,99,double,1,1,no,passed\nalice,99,normalize,2,2,no,passed\n"
    out.write_text(header + alice + 'bob,99,double,1,1,no,passed\nbob,99,normalize,2,2,no,"pas')
    assert students_done(out, "99", ["double", "normalize"]) == {"alice"}
    assert out.read_text() == header + alice
    out.write_text("student,lab,exer")  # killed inside the header of the first append
    assert students_done(out, "99", ["double", "normalize"]) == set()
    assert out.read_text() == header


def test_a_student_with_a_duplicated_row_is_graded_again(tmp_path):
    out = tmp_path / "grades.csv"
    out.write_text("student,lab,exercise,points,max_points,delegated,feedback\n"
                   "alice,99,double,1,1,no,a\nalice,99,double,1,1,no,a\n"
                   "alice,99,normalize,2,2,no,b\n")
    assert students_done(out, "99", ["double", "normalize"]) == set()
    assert "alice" not in out.read_text()


def _command(folder: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dlmi_utils.course.grading.cli", str(folder), "--lab", "99",
            "--solutions", str(FIXTURES), "--out", str(out), "--no-preflight", *extra]


def _wait_for(run: subprocess.Popen, text: str) -> None:
    for line in run.stdout:
        if text in line:
            return
    raise AssertionError(f"the grader ended before printing {text!r}")


@pytest.mark.notebooks
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl_c"])
def test_run_stopped_mid_class_resumes_to_the_same_csv(tmp_path, one_at_a_time, stop):
    folder, reference = one_at_a_time

    out = tmp_path / "grades.csv"
    run = subprocess.Popen(_command(folder, out, "--jobs", "2", "--cell-timeout", "300",
                                    "--timeout", "600"),
                           env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(run, " points in ")  # someone is saved while a_loops hangs in its loop
    time.sleep(1)
    start = time.monotonic()
    run.send_signal(stop)
    _, err = run.communicate(timeout=60)
    assert time.monotonic() - start < 30, "the kernels were stopped, not waited for"
    if stop == signal.SIGINT:
        assert run.returncode == 130 and "run the same command again" in err
    saved = list(csv.DictReader(out.open()))
    assert saved and "a_loops" not in {r["student"] for r in saved}

    again = subprocess.run(_command(folder, out, "--jobs", "2", *LIMITS),
                           env=ENV, text=True, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert out.read_text() == reference.read_text()
