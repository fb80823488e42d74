"""The grader gives no points to an exercise that only returns the package's reference, and
says so in the feedback and the CSV's ``delegated`` column; real work that uses package helpers
is not flagged."""

import copy
import csv
import functools
from pathlib import Path

import nbformat
import numpy as np
import pytest

from dlmi_utils import fourier, metrics
from dlmi_utils.course.grading import (
    GradeOptions,
    LabSpec,
    Limits,
    grade_notebook,
    grade_submissions,
    inkernel,
)
from dlmi_utils.course.grading.delegation import delegation
from dlmi_utils.course.grading.gradefile import COLUMNS, LEGACY_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
FIXTURE = FIXTURES / "99_fixture.ipynb"
LAB00 = ROOT / "solutions" / "00_metrics_and_losses.ipynb"
OPTIONS = GradeOptions(limits=Limits(total=60, cell=30, check=30), exercises_only=True)


# ------------------------------------------------------------------- the rule, on functions
def only_returns_psnr(ref, x, data_range):
    """Docstrings do not count."""
    return metrics.psnr(ref, x, data_range=data_range)


def imports_then_returns(ref, x, data_range):
    from dlmi_utils.metrics import psnr as p

    return p(ref, x, data_range)


def aliases_then_converts(ref, x, data_range):
    f = metrics.psnr
    scale: float = 1.0  # noqa: F841 - a trivial assignment
    return float(f(ref, x, data_range))


def method_on_the_result(ref, x, data_range):
    return metrics.psnr(ref, x, data_range).item()


def attribute_of_the_result(ref, x, data_range):
    return metrics.psnr(ref, x, data_range).real


def passes_everything_on(*args, **kwargs):
    import dlmi_utils.metrics as m

    return m.psnr(*args, **kwargs)


def _closure():
    helper = metrics.psnr

    def inner(ref, x, data_range):
        return helper(ref, x, data_range)

    return inner


as_lambda = lambda ref, x, data_range: metrics.psnr(ref, x, data_range=data_range)  # noqa: E731
IN_A_DICT = {"psnr": lambda ref, est: metrics.psnr(ref, est, data_range=1.0),
             "other": lambda u: u + 1}


def computes_itself(ref, x, data_range):
    mse = np.mean((np.asarray(ref) - np.asarray(x)) ** 2)
    return float(10 * np.log10(data_range ** 2 / mse))


def helper_inside_real_work(kspace, mask):
    return fourier.ifft2c(kspace * mask)  # the argument is the exercise


def helper_in_a_longer_body(x):
    k = fourier.fft2c(x)
    k[..., 0] = 0
    return fourier.ifft2c(k)


def converts_first(ref, x, data_range):
    x = np.asarray(x, dtype=float)  # a call: real work, however small
    return metrics.psnr(ref, x, data_range)


def calls_the_course_helpers(fn):
    from dlmi_utils.course.checks import lab00

    return lab00.check_psnr(fn)


def returns_a_parameter_call(f, x):
    return f(x)


@pytest.mark.parametrize("fn", [
    only_returns_psnr, imports_then_returns, aliases_then_converts, method_on_the_result,
    attribute_of_the_result, passes_everything_on, _closure(), as_lambda, IN_A_DICT["psnr"],
    functools.partial(metrics.psnr, data_range=1.0),
], ids=lambda f: getattr(f, "__name__", "partial"))
def test_delegation_to_the_package_is_flagged(fn):
    assert "dlmi_utils.metrics.psnr" in delegation(fn)


@pytest.mark.parametrize("fn", [
    computes_itself, helper_inside_real_work, helper_in_a_longer_body, converts_first,
    calls_the_course_helpers, returns_a_parameter_call, IN_A_DICT["other"], np.mean, len,
    metrics.psnr,  # the package's own function: told apart earlier, as "imported"
])
def test_real_work_is_not_flagged(fn):
    assert delegation(fn) is None


def test_function_without_source_is_not_flagged():
    namespace = {"metrics": metrics}
    exec("def psnr(r, x, d):\n    return metrics.psnr(r, x, d)", namespace)
    assert delegation(namespace["psnr"]) is None


def test_hostile_objects_give_no_verdict_and_run_nothing():
    class Trap:
        def __getattr__(self, name):
            raise AssertionError("the rule must not run the student's attribute code")

        def __call__(self, *args):
            return 0

    def looped(x):
        return x

    looped.__wrapped__ = looped  # inspect.unwrap cycle
    trap = Trap()

    def uses_trap(x):
        return trap.psnr(x)

    for fn in (Trap(), looped, uses_trap, 42, None):
        assert delegation(fn) is None


def test_shadowed_name_is_not_resolved_to_the_package():
    def shadows(ref, x, data_range):
        metrics = np  # noqa: F841 - a student's own "metrics"
        return metrics.mean(ref - x)

    assert delegation(shadows) is None


def test_in_kernel_grade_gives_delegated_status_without_running_the_check():
    out = inkernel.grade({"psnr": only_returns_psnr}, "psnr", "no_such_module", "check_psnr",
                         1, "n")
    assert out["status"] == "delegated"
    assert "hands the work to the package" in out["messages"][0]


# ------------------------------------------------------------------- in a graded notebook
def _fixture_with(double_source: str):
    nb = copy.deepcopy(nbformat.read(FIXTURE, as_version=4))
    nb.cells[3].source = double_source
    return nb


@pytest.mark.notebooks
def test_delegating_submission_gets_zero_and_the_delegated_column(tmp_path, fixture_env):
    spec = LabSpec.from_solution(FIXTURE)
    folder = tmp_path / "in"
    folder.mkdir()
    nbformat.write(_fixture_with(
        "from dlmi_utils import metrics\n\n"
        "def double(x):\n    return metrics.nmse(x, x)"), folder / "delegates.ipynb")
    nbformat.write(_fixture_with(
        "double = lambda x: __import__('dlmi_utils.metrics').metrics.mse(x, x)"),
        folder / "hides_it.ipynb")
    nbformat.write(_fixture_with("from dlmi_utils.metrics import nmse as double"),
                   folder / "imports.ipynb")
    nbformat.write(_fixture_with("def double(x):\n    return 2 * x"), folder / "honest.ipynb")
    out = tmp_path / "grades.csv"
    grade_submissions(folder, spec, out, OPTIONS, log=lambda s: None, preflight=False)
    rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(out.open())}
    assert rows[("delegates", "double")]["points"] == "0"
    assert rows[("delegates", "double")]["delegated"] == "yes"
    assert "dlmi_utils.metrics.nmse" in rows[("delegates", "double")]["feedback"]
    assert rows[("imports", "double")]["delegated"] == "yes"
    # a call in the argument (__import__(...)) resolves to nothing: not flagged
    assert rows[("hides_it", "double")]["delegated"] == "no"
    assert rows[("honest", "double")]["points"] == "1"
    assert rows[("honest", "double")]["delegated"] == "no"
    assert rows[("delegates", "normalize")]["points"] == "2"
    text = (tmp_path / "grades_feedback" / "delegates.md").read_text()
    assert "hands the work to the package" in text


@pytest.mark.notebooks
def test_lab00_psnr_delegating_to_metrics_gets_zero_and_the_others_full_marks(tmp_path):
    spec = LabSpec.from_solution(LAB00)
    nb = nbformat.read(LAB00, as_version=4)
    index = next(i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "psnr")
    nb.cells[index].source = ("def psnr(ref, x, data_range):\n"
                              "    return metrics.psnr(ref, x, data_range=data_range)")
    path = tmp_path / "lazy_00.ipynb"
    nbformat.write(nb, path)
    grade = grade_notebook(path, spec, OPTIONS)
    by_name = {e.exercise: e for e in grade.exercises}
    assert by_name["psnr"].points == 0 and by_name["psnr"].delegated
    assert "dlmi_utils.metrics.psnr" in by_name["psnr"].feedback
    assert all(e.points == e.max_points and not e.delegated
               for name, e in by_name.items() if name != "psnr")


# ------------------------------------------------------------------- older CSVs
@pytest.mark.notebooks
def test_csv_without_the_delegated_column_is_upgraded_and_resumed(tmp_path, fixture_env):
    spec = LabSpec.from_solution(FIXTURE)
    folder = tmp_path / "in"
    folder.mkdir()
    nbformat.write(nbformat.read(FIXTURE, as_version=4), folder / "alice.ipynb")
    nbformat.write(nbformat.read(FIXTURE, as_version=4), folder / "bob.ipynb")
    out = tmp_path / "grades.csv"
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LEGACY_COLUMNS)
        writer.writerow(["alice", "99", "double", "1", "1", "passed all 2 of the grader's checks"])
        writer.writerow(["alice", "99", "normalize", "2", "2", "passed"])
    log = []
    grade_submissions(folder, spec, out, OPTIONS, log=log.append, preflight=False)
    text = "\n".join(log)
    assert "had no `delegated` column" in text and "alice: already in grades.csv" in text
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    assert [(r["student"], r["exercise"], r["delegated"]) for r in rows] == [
        ("alice", "double", ""), ("alice", "normalize", ""),
        ("bob", "double", "no"), ("bob", "normalize", "no")]
