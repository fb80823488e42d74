"""Grade one submission, and a folder of them into a CSV that survives interruptions.

A submission is graded, never fatal: a file that is not a notebook, the notebook of another
lab, a kernel that dies or hangs, an exercise that does not compile or is missing each give
zero points on what they affect with a feedback line saying why, and the rest is graded. When
the kernel dies or hangs in a cell, the grader starts a fresh kernel with only the setup and
exercise cells, without that cell, and grades what is left (at most ``max_sessions`` kernels).

A folder is graded ``jobs`` notebooks at a time, each in its own kernel with its own limits.
Each student's feedback file, then rows, are written as soon as they are graded; at the end
(or on Ctrl-C) the CSV is put in a stable order, by student then the lab's items, whatever
finished first. Answers to questions are collected from the notebooks for marking by hand
(:mod:`~dlmi_utils.course.grading.marks`).
"""

from __future__ import annotations

import secrets
import signal
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat

from dlmi_utils.course.grading.gradefile import (
    append_rows,
    read_rows,
    same_lab,
    sort_rows,
    students_done,
)
from dlmi_utils.course.grading.kernel import CellEvent, Limits, Stopper, run_session
from dlmi_utils.course.grading.lab import (
    Exercise,
    LabSpec,
    cells_to_run,
    defining_cells,
    similar_names,
    student_answers,
    student_id,
    wrong_lab_reason,
)
from dlmi_utils.course.grading.marks import (
    TO_MARK,
    UNANSWERED,
    answers_dir_for,
    question_heading,
    safe_name,
    total_line,
    write_answer_files,
    write_marks_template,
)
from dlmi_utils.course.notebooks import NB_VERSION

MAX_FEEDBACK = 500  # characters of feedback in one CSV cell (the feedback file has it all)
MAX_FILE_BYTES = 200_000_000


@dataclass(frozen=True)
class GradeOptions:
    """How submissions are run and scored."""

    limits: Limits = field(default_factory=Limits)
    exercises_only: bool = False  # run only the setup and exercise cells
    seed: int = 1  # the strict checks' seed (the students' self-checks use 0)
    partial_credit: bool = False  # points x passed/total instead of all or nothing
    kernel_name: str = "python3"
    max_sessions: int = 4  # fresh kernels per submission when one dies or hangs


@dataclass
class ExerciseGrade:
    exercise: str
    points: float
    max_points: float
    feedback: str  # one line, for the CSV
    details: list[str] = field(default_factory=list)  # every check message, for the file
    delegated: bool = False  # the function was, or only called, the package's reference


@dataclass
class QuestionGrade:
    """An answer marked by hand: ``points`` None until marked (0 when unanswered)."""

    question: str
    points: float | None
    max_points: float
    feedback: str
    answer: str | None  # the student's text


@dataclass
class StudentGrade:
    student: str
    lab: str
    submission: Path
    exercises: list[ExerciseGrade]
    notes: list[str] = field(default_factory=list)  # about the notebook as a whole
    grader_errors: list[str] = field(default_factory=list)  # the instructor's problem
    questions: list[QuestionGrade] = field(default_factory=list)

    @property
    def points(self) -> float:
        """Exercise points, and the points of answers marked so far."""
        return sum(e.points for e in self.exercises) + sum(q.points or 0 for q in self.questions)

    @property
    def max_points(self) -> float:
        return sum(e.max_points for e in self.exercises) + sum(q.max_points
                                                               for q in self.questions)

    @property
    def to_mark(self) -> float:
        """Points of the answers still to be marked by hand."""
        return sum(q.max_points for q in self.questions if q.points is None)

    def rows(self) -> list[dict]:
        """The CSV rows: the exercises, then the questions, in the lab's order."""
        rows = [{"student": self.student, "lab": self.lab, "exercise": e.exercise,
                 "points": f"{e.points:g}", "max_points": f"{e.max_points:g}",
                 "delegated": "yes" if e.delegated else "no", "feedback": e.feedback}
                for e in self.exercises]
        rows += [{"student": self.student, "lab": self.lab, "exercise": q.question,
                  "points": "" if q.points is None else f"{q.points:g}",
                  "max_points": f"{q.max_points:g}", "delegated": "", "feedback": q.feedback}
                 for q in self.questions]
        return rows


def grade_notebook(
    path: Path | str, spec: LabSpec, options: GradeOptions | None = None,
    student: str | None = None,
    stopper: Stopper | None = None,
) -> StudentGrade:
    """Run one submitted notebook in fresh kernels and grade every exercise of ``spec``.

    Its answers to the lab's questions are read (not run) and left to mark by hand.
    ``stopper`` ends the grading (``KeyboardInterrupt``) when stopped.
    """
    options = options or GradeOptions()
    path = Path(path)
    student = student or student_id(path)
    nb, problem = read_submission(path, spec)
    if problem is not None:
        return StudentGrade(student, spec.number, path, [
            ExerciseGrade(e.name, 0.0, e.points, _one_line(problem)) for e in spec.exercises
        ], [problem], questions=_question_grades(spec, {}, problem))
    questions = _question_grades(spec, student_answers(nb, spec))
    for cell in nb.cells:  # stored outputs are never looked at (and may be megabytes)
        if cell.cell_type == "code":
            cell.outputs = []

    nonce = secrets.token_hex(8)
    outcomes: dict[str, dict] = {}
    events: list[CellEvent] = []
    skip: set[int] = set()
    notes: list[str] = []
    exercises_only = options.exercises_only
    remaining = list(spec.exercises)
    for _ in range(options.max_sessions):
        cells = cells_to_run(nb, spec, exercises_only, skip)
        session = run_session(cells, remaining, options.limits, options.seed, nonce,
                              options.kernel_name, stopper)
        events += session.events
        outcomes.update(session.outcomes)
        if session.broke_at is None:
            break
        kind, where = session.broke_at
        remaining = [e for e in spec.exercises if e.name not in outcomes]
        if not remaining or (kind == "cell" and (where is None or where in skip)):
            break
        if kind == "cell":
            skip.add(where)
        exercises_only = True
        notes.append("after that, the grader ran your setup and exercise cells again in a fresh "
                     "kernel" + (", without that cell," if kind == "cell" else "")
                     + " to grade the remaining exercises")

    notes = list(dict.fromkeys([_describe_event(nb, e) for e in events] + notes))
    grades, grader_errors = [], []
    for e in spec.exercises:
        grade = _exercise_grade(e, outcomes.get(e.name), nb, events, skip, options)
        grades.append(grade)
        if outcomes.get(e.name, {}).get("status") == "grader_error":
            grader_errors.append(f"{e.name}: {'; '.join(outcomes[e.name].get('messages', []))}")
    return StudentGrade(student, spec.number, path, grades, notes, grader_errors, questions)


def read_submission(path: Path, spec: LabSpec) -> tuple[nbformat.NotebookNode | None, str | None]:
    """The submitted notebook, or why it cannot be graded as lab ``spec``."""
    nb, problem = _read(path)
    if problem is None:
        problem = wrong_lab_reason(nb, spec)
    return (nb, None) if problem is None else (None, problem)


def _question_grades(spec: LabSpec, answers: dict[str, str | None],
                     problem: str | None = None) -> list[QuestionGrade]:
    grades = []
    for q in spec.questions:
        answer = answers.get(q.name)
        if answer is None:
            text = UNANSWERED + (f" ({problem})" if problem else "")
            grades.append(QuestionGrade(q.name, 0.0, q.points, _one_line(text), None))
        else:
            grades.append(QuestionGrade(q.name, None, q.points, TO_MARK, answer))
    return grades


def _read(path: Path) -> tuple[nbformat.NotebookNode | None, str | None]:
    """The notebook, or why it cannot be graded."""
    advice = "download it again from Jupyter (File > Download) and resubmit"
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None, f"the file is larger than {MAX_FILE_BYTES / 1e6:g} MB: clear the outputs"
        with warnings.catch_warnings():  # old notebooks (no cell ids) are fine to grade
            warnings.simplefilter("ignore")
            nb = nbformat.read(path, as_version=NB_VERSION)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no list of cells")
        for cell in nb.cells:
            if cell.get("cell_type") not in ("code", "markdown", "raw") or not isinstance(
                    cell.get("source"), str):
                raise ValueError("a cell has no type or no source")
            cell.setdefault("metadata", nbformat.NotebookNode())
    except nbformat.reader.NotJSONError:
        return None, f"the file is not a valid notebook (it is not JSON; damaged?): {advice}"
    except UnicodeDecodeError:
        return None, f"the file is not a valid notebook (not UTF-8 text): {advice}"
    except Exception as e:  # anything else nbformat cannot read
        return None, f"the file is not a valid notebook ({type(e).__name__}: {e}): {advice}"
    return nb, None


def _exercise_grade(e: Exercise, outcome: dict | None, nb, events, skip, options) -> ExerciseGrade:
    status = (outcome or {}).get("status")
    messages = [str(m) for m in (outcome or {}).get("messages", [])]
    points = 0.0
    if status == "passed":
        points = e.points
        text = f"passed all {outcome['total']} of the grader's checks"
    elif status == "failed":
        passed, total = outcome["passed"], outcome["total"]
        if options.partial_credit:
            points = round(e.points * passed / total, 2)
        text = f"{passed}/{total} of the grader's checks passed: " + "; ".join(messages[:2])
    elif status == "not_implemented":
        text = "not implemented yet: the exercise cell still raises NotImplementedError"
    elif status == "error":
        text = "your function raised an error on the grader's cases: " + "; ".join(messages[:2])
    elif status == "missing":
        text = _missing_text(e, nb, events, skip)
    elif status in ("imported", "delegated"):
        text = "0 points: " + messages[0]
    elif status == "timeout":
        text = (f"the grader's checks of `{e.function}` did not finish within "
                f"{outcome['seconds']:g} s: an endless loop, or far too slow?")
    elif status == "died":
        text = (f"the kernel died while the grader ran `{e.function}` (os._exit, a crash or "
                "out of memory)")
    elif status == "grader_error":
        text = "the grader could not run its checks (not your fault; tell your instructor): " \
               + "; ".join(messages[:1])
    else:
        text = "not graded: the kernel died or hung each time the grader ran your notebook"
    return ExerciseGrade(e.name, points, e.points, _one_line(text), messages,
                         delegated=status in ("imported", "delegated"))


def _missing_text(e: Exercise, nb, events: list[CellEvent], skip: set[int]) -> str:
    text = f"`{e.function}` is not defined after running your notebook"
    cells = defining_cells(nb, e.function)
    if not cells:
        similar = similar_names(nb, e.function)
        if similar:
            return text + f": did you rename it? your notebook defines {', '.join(similar)}"
        return text + ": no cell defines it (deleted, or renamed?)"
    for event in events:
        if event.index in cells:
            return text + f": {_cell_name(nb, event.index)} {event.message}"
    if any(i in skip for i in cells):
        return text + ": its cell was left out after the kernel died or hung there"
    return text


def _describe_event(nb, event: CellEvent) -> str:
    if event.kind == "watchdog":
        return event.message
    return f"{_cell_name(nb, event.index)} {event.message}"


def _cell_name(nb, index: int | None) -> str:
    if index is None:
        return "the lab's setup cell (run by the grader, since no cell of yours is tagged setup)"
    first = next((line.strip() for line in nb.cells[index].source.splitlines() if line.strip()),
                 "")
    first = first if len(first) <= 50 else first[:47] + "..."
    return f"cell {index + 1} (`{first}`)"


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_FEEDBACK else text[: MAX_FEEDBACK - 3] + "..."


# ------------------------------------------------------------------------------ a folder
def submission_files(submissions: Path | str) -> dict[str, Path]:
    """``{student id: notebook}`` for the ``*.ipynb`` files of a folder (or one file).

    Raises ``ValueError`` when two files give the same student id (``alice.ipynb`` and
    ``alice_03.ipynb``): keep one of them.
    """
    submissions = Path(submissions)
    if submissions.is_file():
        paths = [submissions]
    elif submissions.is_dir():
        paths = sorted(p for p in submissions.glob("*.ipynb") if not p.name.startswith("."))
    else:
        raise ValueError(f"no submissions folder at {submissions}")
    files: dict[str, list[Path]] = {}
    for p in paths:
        files.setdefault(student_id(p), []).append(p)
    clashes = {s: ps for s, ps in files.items() if len(ps) > 1}
    if clashes:
        raise ValueError("several notebooks for one student (keep one each): " + "; ".join(
            f"{s}: {', '.join(p.name for p in ps)}" for s, ps in clashes.items()))
    return {s: ps[0] for s, ps in sorted(files.items())}


def feedback_dir_for(out_csv: Path | str) -> Path:
    """The folder of feedback files next to a grades CSV: ``grades.csv`` -> ``grades_feedback``."""
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + "_feedback")


def grade_submissions(
    submissions: Path | str,
    spec: LabSpec,
    out_csv: Path | str,
    options: GradeOptions | None = None,
    log: Callable[[str], None] = print,
    preflight: bool = True,
    jobs: int = 1,
) -> list[StudentGrade]:
    """Grade every submission not yet in ``out_csv``, ``jobs`` at a time; save each when done.

    Students already in the CSV for this lab are skipped (an interrupted run resumes); a
    student whose rows are incomplete is removed from it and graded again. With ``preflight``
    the solution notebook is graded first and must get full marks (else ``ValueError``: the
    kernel or the checks are not set up right, and no student is graded). At the end, and on
    Ctrl-C, the CSV is sorted and the answer files of the questions are written. Returns the
    grades made by this call; the summary printed covers the whole CSV for this lab.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be 1 or more, got {jobs}")
    options = options or GradeOptions()
    out_csv = Path(out_csv)
    files = submission_files(submissions)
    done = students_done(out_csv, spec.number, spec.item_names, log)
    todo = {s: p for s, p in files.items() if s not in done}
    for number, student in enumerate(files, start=1):
        if student in done:
            log(f"[{number}/{len(files)}] {student}: already in {out_csv.name}, skipped")
    if preflight and todo:
        check_solution_gets_full_marks(spec, options, log)
    grades: list[StudentGrade] = []
    try:
        if todo:
            grades = _grade_all(todo, files, spec, out_csv, options, log, jobs)
    finally:
        sort_rows(out_csv, spec.number, spec.item_names)
        if spec.questions:
            answers_dir = answers_dir_for(out_csv)
            answers, why_none = _all_answers(files, spec)
            write_answer_files(answers, spec, answers_dir, why_none)
            write_marks_template(out_csv, spec, answers_dir)
    log(format_summary(summarize(out_csv, spec)))
    if spec.questions:
        log(f"answers to mark by hand: {answers_dir_for(out_csv)}/ (then dlmi-grade "
            "merge-marks)")
    return grades


def _grade_all(todo: dict[str, Path], files: dict[str, Path], spec: LabSpec, out_csv: Path,
               options: GradeOptions, log: Callable[[str], None], jobs: int) -> list[StudentGrade]:
    """Grade ``todo`` in ``jobs`` threads (each runs its own kernels); save in this thread."""
    position = {s: k for k, s in enumerate(files, start=1)}
    lock = threading.Lock()
    stopper = Stopper()

    def say(text: str) -> None:
        with lock:
            log(text)

    def grade_one(student: str, path: Path) -> tuple[StudentGrade, float]:
        say(f"[{position[student]}/{len(files)}] {student} ({path.name}) ...")
        start = time.monotonic()
        try:
            grade = grade_notebook(path, spec, options, student, stopper)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a grader bug must not stop the others: grade this one by hand
            problem = f"the grader failed on this notebook ({type(e).__name__}: {e})"
            grade = StudentGrade(student, spec.number, path, [
                ExerciseGrade(x.name, 0.0, x.points, _one_line(problem + ": graded by hand"))
                for x in spec.exercises], [problem], [problem],
                _question_grades(spec, {}, problem + ": graded by hand"))
        return grade, time.monotonic() - start

    grades = []
    feedback_dir = feedback_dir_for(out_csv)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dlmi-grade")
    with _terminate_as_interrupt():
        try:
            submitted = {pool.submit(grade_one, s, p): s for s, p in todo.items()}
            pending = set(submitted)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=submitted.get):
                    grade, seconds = future.result()
                    # feedback first: rows without their file would be skipped on resuming
                    write_feedback(grade, spec, feedback_dir, options)
                    append_rows(out_csv, grade.rows())
                    grades.append(grade)
                    _log_grade(say, grade, seconds)
        except BaseException:
            stopper.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return grades


def _log_grade(say: Callable[[str], None], grade: StudentGrade, seconds: float) -> None:
    extra = f"; {len(grade.notes)} note(s) on the notebook" if grade.notes else ""
    extra += f"; {grade.to_mark:g} points of answers to mark" if grade.to_mark else ""
    delegated = [e.exercise for e in grade.exercises if e.delegated]
    extra += f"; delegated to the package: {', '.join(delegated)}" if delegated else ""
    say(f"    {grade.student}: {grade.points:g}/{grade.max_points:g} points in {seconds:.0f} s"
        f"{extra}")
    for error in grade.grader_errors:
        say(f"    GRADER ERROR (check the lab's checks module): {error}")


class _terminate_as_interrupt:
    """In the main thread, SIGTERM raises ``KeyboardInterrupt`` (so kernels are stopped too)."""

    def __enter__(self):
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @staticmethod
    def _raise(signum, frame) -> None:
        raise KeyboardInterrupt("terminated")


def _all_answers(files: dict[str, Path], spec: LabSpec
                 ) -> tuple[dict[str, dict[str, str | None]], dict[str, str]]:
    """Every submission's answers (read, not run), and why a notebook has none."""
    answers, why_none = {}, {}
    for student, path in files.items():
        nb, problem = read_submission(path, spec)
        answers[student] = {} if nb is None else student_answers(nb, spec)
        if problem is not None:
            why_none[student] = problem
    return answers, why_none


def check_solution_gets_full_marks(spec: LabSpec, options: GradeOptions,
                                   log: Callable[[str], None] = print) -> StudentGrade:
    """Grade the solution itself (setup and exercise cells); ``ValueError`` unless full marks.

    Its answers to the questions must also be found (they are the model answers).
    """
    log(f"preflight: grading the solution {spec.path.name} (it must get full marks) ...")
    grade = grade_notebook(spec.path, spec, replace(options, exercises_only=True), "solution")
    lost = [e for e in grade.exercises if e.points < e.max_points]
    if lost:
        points = sum(e.points for e in grade.exercises)
        most = sum(e.max_points for e in grade.exercises)
        problems = "; ".join(f"{e.exercise}: {e.feedback}" for e in lost)
        raise ValueError(
            f"the solution gets {points:g}/{most:g} points in the grader, so "
            f"nobody was graded. Is dlmi_utils importable in the kernel (--kernel "
            f"{options.kernel_name}) and are the checks right? {problems}")
    unfound = [q.question for q in grade.questions if q.answer is None]
    if unfound:
        raise ValueError(f"the grader finds no answer to {', '.join(unfound)} in the solution "
                         f"{spec.path.name}: check the answer cells' metadata")
    return grade


def write_feedback(grade: StudentGrade, spec: LabSpec, folder: Path, options: GradeOptions) -> Path:
    """Write ``folder/<student>.md``: the points and every message for the student."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {spec.title}: feedback for {grade.student}",
        "",
        f"Submission `{grade.submission.name}`, graded by `dlmi-grade` with checks stronger "
        f"than the self-checks (other sizes, seed {options.seed}).",
        "",
        total_line(grade.points, grade.max_points, grade.to_mark),
        "",
    ]
    for e in grade.exercises:
        lines += [f"## `{e.exercise}`: {e.points:g} / {e.max_points:g}", "", e.feedback, ""]
        lines += [f"- {_one_line(m)}" for m in e.details if m not in e.feedback]
        lines += [""] if e.details else []
    for q in grade.questions:
        lines += [question_heading(q.question, q.points, q.max_points), "", q.feedback, ""]
    if grade.notes:
        lines += ["## About your notebook", ""] + [f"- {_one_line(n)}" for n in grade.notes]
        lines.append("")
    path = folder / (safe_name(grade.student) + ".md")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


def summarize(out_csv: Path | str, spec: LabSpec) -> list[dict]:
    """Per exercise and question of ``spec``: students, mean points, full marks, from the CSV.

    A question's mean is over the marked answers (None before any); ``to_mark`` counts the
    others.
    """
    out_csv = Path(out_csv)
    rows = [r for r in read_rows(out_csv) if same_lab(r["lab"], spec.number)]
    summary = []
    items = [(e.name, e.points) for e in spec.exercises]
    items += [(q.name, q.points) for q in spec.questions]
    for name, most in items:
        mine = [r for r in rows if r["exercise"] == name]
        points = [float(r["points"]) for r in mine if r["points"].strip()]
        summary.append({
            "exercise": name,
            "max_points": most,
            "students": len(mine),
            "mean": sum(points) / len(points) if points else None,
            "full_marks": sum(p >= most for p in points),
            "to_mark": len(mine) - len(points),
            "delegated": sum(r.get("delegated") == "yes" for r in mine),
        })
    return summary


def format_summary(summary: list[dict]) -> str:
    head = (f"{'exercise':<24}{'students':>9}{'mean':>8}{'max':>6}{'full marks':>12}"
            f"{'to mark':>9}{'delegated':>11}")
    lines = ["", head, "-" * len(head)]
    for s in summary:
        mean = "-" if s["mean"] is None else f"{s['mean']:.2f}"
        lines.append(f"{s['exercise']:<24}{s['students']:>9}{mean:>8}"
                     f"{s['max_points']:>6g}{s['full_marks']:>12}{s['to_mark']:>9}"
                     f"{s['delegated']:>11}")
    return "\n".join(lines)
