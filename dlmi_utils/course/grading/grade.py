"""Grade one submission, and a folder of them into a CSV that survives interruptions.

A submission is graded, never fatal: a file that is not a notebook, the notebook of another
lab, a kernel that dies or hangs, an exercise that does not compile or is missing each give
zero points on what they affect with a feedback line saying why, and the rest is graded. When
the kernel dies or hangs in a cell, the grader starts a fresh kernel with only the setup and
exercise cells, without that cell, and grades what is left (at most ``max_sessions`` kernels).
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat

from dlmi_utils.course.grading.kernel import CellEvent, Limits, run_session
from dlmi_utils.course.grading.lab import (
    Exercise,
    LabSpec,
    cells_to_run,
    defining_cells,
    similar_names,
    student_id,
    wrong_lab_reason,
)
from dlmi_utils.course.notebooks import NB_VERSION

COLUMNS = ["student", "lab", "exercise", "points", "max_points", "feedback"]
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


@dataclass
class StudentGrade:
    student: str
    lab: str
    submission: Path
    exercises: list[ExerciseGrade]
    notes: list[str] = field(default_factory=list)  # about the notebook as a whole
    grader_errors: list[str] = field(default_factory=list)  # the instructor's problem

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> float:
        return sum(e.max_points for e in self.exercises)


def grade_notebook(
    path: Path | str, spec: LabSpec, options: GradeOptions | None = None,
    student: str | None = None,
) -> StudentGrade:
    """Run one submitted notebook in fresh kernels and grade every exercise of ``spec``."""
    options = options or GradeOptions()
    path = Path(path)
    student = student or student_id(path)
    nb, problem = _read(path)
    if problem is None:
        problem = wrong_lab_reason(nb, spec)
    if problem is not None:
        return StudentGrade(student, spec.number, path, [
            ExerciseGrade(e.name, 0.0, e.points, _one_line(problem)) for e in spec.exercises
        ], [problem])
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
                              options.kernel_name)
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
    return StudentGrade(student, spec.number, path, grades, notes, grader_errors)


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
    elif status == "imported":
        text = messages[0]
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
    return ExerciseGrade(e.name, points, e.points, _one_line(text), messages)


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
) -> list[StudentGrade]:
    """Grade every submission not yet in ``out_csv``; append its rows as soon as it is done.

    Students already in the CSV for this lab are skipped (an interrupted run resumes); a
    student whose rows are incomplete is removed from it and graded again. With ``preflight``
    the solution notebook is graded first and must get full marks (else ``ValueError``: the
    kernel or the checks are not set up right, and no student is graded). Returns the grades
    made by this call; the summary printed covers the whole CSV for this lab.
    """
    options = options or GradeOptions()
    out_csv = Path(out_csv)
    files = submission_files(submissions)
    done = _students_done(out_csv, spec)
    feedback_dir = feedback_dir_for(out_csv)
    grades = []
    if preflight and set(files) - done:
        check_solution_gets_full_marks(spec, options, log)
    for number, (student, path) in enumerate(files.items(), start=1):
        if student in done:
            log(f"[{number}/{len(files)}] {student}: already in {out_csv.name}, skipped")
            continue
        log(f"[{number}/{len(files)}] {student} ({path.name}) ...")
        start = time.monotonic()
        try:
            grade = grade_notebook(path, spec, options, student)
        except Exception as e:  # a grader bug must not stop the others: grade this one by hand
            problem = f"the grader failed on this notebook ({type(e).__name__}: {e})"
            grade = StudentGrade(student, spec.number, path, [
                ExerciseGrade(x.name, 0.0, x.points, _one_line(problem + ": graded by hand"))
                for x in spec.exercises], [problem], [problem])
        _append_rows(out_csv, grade)
        write_feedback(grade, spec, feedback_dir, options)
        grades.append(grade)
        extra = f"; {len(grade.notes)} note(s) on the notebook" if grade.notes else ""
        log(f"    {grade.points:g}/{grade.max_points:g} points in {time.monotonic() - start:.0f} s"
            f"{extra}")
        for error in grade.grader_errors:
            log(f"    GRADER ERROR (check the lab's checks module): {error}")
    log(format_summary(summarize(out_csv, spec)))
    return grades


def check_solution_gets_full_marks(spec: LabSpec, options: GradeOptions,
                                   log: Callable[[str], None] = print) -> StudentGrade:
    """Grade the solution itself (setup and exercise cells); ``ValueError`` unless full marks."""
    log(f"preflight: grading the solution {spec.path.name} (it must get full marks) ...")
    grade = grade_notebook(spec.path, spec, replace(options, exercises_only=True), "solution")
    if grade.points < grade.max_points:
        problems = "; ".join(f"{e.exercise}: {e.feedback}" for e in grade.exercises
                             if e.points < e.max_points)
        raise ValueError(
            f"the solution gets {grade.points:g}/{grade.max_points:g} points in the grader, so "
            f"nobody was graded. Is dlmi_utils importable in the kernel (--kernel "
            f"{options.kernel_name}) and are the checks right? {problems}")
    return grade


def _read_rows(out_csv: Path) -> list[dict]:
    with open(out_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise ValueError(f"{out_csv} is not a grades file of dlmi-grade (its columns are "
                             f"{reader.fieldnames}, expected {COLUMNS}): choose another --out")
        return list(reader)


def _students_done(out_csv: Path, spec: LabSpec) -> set[str]:
    """Students with a complete set of rows for this lab; incomplete ones are removed."""
    if not out_csv.exists() or out_csv.stat().st_size == 0:
        return set()
    rows = _read_rows(out_csv)
    wanted = {e.name for e in spec.exercises}
    seen: dict[str, set[str]] = {}
    for row in rows:
        if _same_lab(row.get("lab"), spec.number) and None not in row.values():
            seen.setdefault(row["student"], set()).add(row["exercise"])
    done = {s for s, exercises in seen.items() if exercises >= wanted}
    keep = [r for r in rows if not _same_lab(r.get("lab"), spec.number) or r["student"] in done]
    if len(keep) != len(rows):  # an interrupted write: rewrite without the partial student
        tmp = out_csv.with_suffix(out_csv.suffix + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows({k: r.get(k) or "" for k in COLUMNS} for r in keep)
        os.replace(tmp, out_csv)
    return done


def _same_lab(value: str | None, number: str) -> bool:
    return value is not None and value.strip().isdigit() and int(value) == int(number)


def _append_rows(out_csv: Path, grade: StudentGrade) -> None:
    """Append one student's rows in a single write, flushed to disk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    new = not out_csv.exists() or out_csv.stat().st_size == 0
    if new:
        writer.writerow(COLUMNS)
    for e in grade.exercises:
        writer.writerow([grade.student, grade.lab, e.exercise, f"{e.points:g}",
                         f"{e.max_points:g}", e.feedback])
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "a", newline="", encoding="utf-8") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())


def write_feedback(grade: StudentGrade, spec: LabSpec, folder: Path, options: GradeOptions) -> Path:
    """Write ``folder/<student>.md``: the points and every message for the student."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {spec.title}: feedback for {grade.student}",
        "",
        f"Submission `{grade.submission.name}`, graded by `dlmi-grade` with checks stronger "
        f"than the self-checks (other sizes, seed {options.seed}).",
        "",
        f"**Total: {grade.points:g} / {grade.max_points:g} points**",
        "",
    ]
    for e in grade.exercises:
        lines += [f"## `{e.exercise}`: {e.points:g} / {e.max_points:g}", "", e.feedback, ""]
        lines += [f"- {_one_line(m)}" for m in e.details if m not in e.feedback]
        lines += [""] if e.details else []
    if grade.notes:
        lines += ["## About your notebook", ""] + [f"- {_one_line(n)}" for n in grade.notes]
        lines.append("")
    path = folder / (re.sub(r"[^\w.-]", "_", grade.student) + ".md")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def summarize(out_csv: Path | str, spec: LabSpec) -> list[dict]:
    """Per exercise of ``spec``: students, mean points, full marks, from the CSV."""
    out_csv = Path(out_csv)
    rows = _read_rows(out_csv) if out_csv.exists() else []
    rows = [r for r in rows if _same_lab(r["lab"], spec.number)]
    summary = []
    for e in spec.exercises:
        points = [float(r["points"]) for r in rows if r["exercise"] == e.name]
        summary.append({
            "exercise": e.name,
            "max_points": e.points,
            "students": len(points),
            "mean": sum(points) / len(points) if points else 0.0,
            "full_marks": sum(p >= e.points for p in points),
        })
    return summary


def format_summary(summary: list[dict]) -> str:
    head = f"{'exercise':<24}{'students':>9}{'mean':>8}{'max':>6}{'full marks':>12}"
    lines = ["", head, "-" * len(head)]
    for s in summary:
        lines.append(f"{s['exercise']:<24}{s['students']:>9}{s['mean']:>8.2f}"
                     f"{s['max_points']:>6g}{s['full_marks']:>12}")
    return "\n".join(lines)
