"""Questions marked by hand: the answers to read, a marks file to fill, marks merged back.

After grading, ``<out>_answers/`` holds one ``<question>.md`` per question (the question, the
model answer, then every student's answer under their id, sorted by id; unanswered ones say
so) and ``marks_template.csv`` (``student, question, points, comment``: one row per answer
still to mark). The instructor copies the template, fills ``points`` (and a ``comment`` if
they like) and merges it with ``dlmi-grade merge-marks``: the rows are checked first (known
student and question, 0 <= points <= the question's points, no pair twice) and nothing is
written unless all are right. A row with empty points is left to mark.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlmi_utils.course.grading.gradefile import read_rows, same_lab, write_rows
from dlmi_utils.course.grading.lab import LabSpec

MARKS_COLUMNS = ["student", "question", "points", "comment"]
MAX_ANSWER = 20_000  # characters of one answer shown in the answers file
TO_MARK = "to be marked by hand"
UNANSWERED = "unanswered: 0 points"
MARKED = "marked by hand"


def answers_dir_for(out_csv: Path | str) -> Path:
    """The folder of answer files next to a grades CSV: ``grades.csv`` -> ``grades_answers``."""
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + "_answers")


def safe_name(name: str) -> str:
    """A file name from a student id or question name."""
    return re.sub(r"[^\w.-]", "_", name)


def question_heading(name: str, points: float | None, max_points: float) -> str:
    shown = "to be marked" if points is None else f"{points:g}"
    return f"## Question `{name}`: {shown} / {max_points:g}"


def total_line(points: float, max_points: float, to_mark: float) -> str:
    line = f"**Total: {points:g} / {max_points:g} points**"
    return line + (f" ({to_mark:g} points of answers still to be marked)" if to_mark else "")


def write_answer_files(answers: dict[str, dict[str, str | None]], spec: LabSpec,
                       folder: Path, why_none: dict[str, str] | None = None) -> list[Path]:
    """One ``<question>.md`` per question with every student's answer, sorted by student id.

    ``answers`` is ``{student: {question: text or None}}``; ``why_none`` says why a student has
    no answers at all (a damaged notebook, another lab).
    """
    why_none = why_none or {}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for q in spec.questions:
        lines = [f"# {spec.title}: question `{q.name}` ({q.points:g} points)", "",
                 q.text, "", "## Model answer", "", _quote(q.model_answer), "",
                 "## Answers", ""]
        for student in sorted(answers):
            text = answers[student].get(q.name)
            lines += [f"### {student}", ""]
            if text is None:
                reason = why_none.get(student)
                lines += [f"_unanswered{f' ({reason})' if reason else ''}_", ""]
            else:
                if len(text) > MAX_ANSWER:
                    text = text[:MAX_ANSWER] + f"\n[... {len(text) - MAX_ANSWER} more characters]"
                lines += [_quote(text), ""]
        path = folder / f"{safe_name(q.name)}.md"
        _write_text(path, "\n".join(lines))
        paths.append(path)
    return paths


def write_marks_template(out_csv: Path, spec: LabSpec, folder: Path) -> Path | None:
    """``marks_template.csv``: a row per answer of this lab still to mark (None: no question)."""
    if not spec.questions:
        return None
    names = {q.name for q in spec.questions}
    rows = [r for r in read_rows(out_csv) if same_lab(r["lab"], spec.number)
            and r["exercise"] in names and not r["points"].strip()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "marks_template.csv"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MARKS_COLUMNS)
        writer.writerows([r["student"], r["exercise"], "", ""] for r in rows)
    tmp.replace(path)
    return path


@dataclass
class MergeReport:
    marked: int  # rows whose points were set
    left: int  # rows of the marks file with empty points
    to_mark: int  # answers of the lab still without points in the grades CSV


def merge_marks(marks_csv: Path | str, out_csv: Path | str, spec: LabSpec,
                feedback_dir: Path | None = None,
                log: Callable[[str], None] = print) -> MergeReport:
    """Set the points (and comments) of ``marks_csv`` on the question rows of ``out_csv``.

    Raises ``ValueError`` naming every bad row (unknown student or question, an exercise, points
    that are not a number, negative or above the question's points, a pair given twice) before
    anything is written. Feedback files in ``feedback_dir`` get the marks and new totals.
    """
    marks_csv, out_csv = Path(marks_csv), Path(out_csv)
    if not marks_csv.is_file():
        raise ValueError(f"no marks file at {marks_csv}")
    if not spec.questions:
        raise ValueError(f"{spec.title} has no question marked by hand: nothing to merge")
    rows = read_rows(out_csv, log) if out_csv.exists() else []
    ours = {(r["student"], r["exercise"]): r for r in rows if same_lab(r["lab"], spec.number)}
    if not ours:
        raise ValueError(f"{out_csv} has no rows of lab {spec.number}: grade the lab first "
                         "(dlmi-grade SUBMISSIONS --lab NN --out ...)")
    students = {s for s, _ in ours}
    questions = {q.name: q for q in spec.questions}
    exercises = {e.name for e in spec.exercises}
    with open(marks_csv, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MARKS_COLUMNS[:3] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{marks_csv.name}: the header must have the columns student, "
                             f"question, points (and comment); missing {', '.join(missing)}")
        entries = list(reader)
    problems, updates, seen, left = [], [], {}, 0
    for line, entry in enumerate(entries, start=2):
        where = f"{marks_csv.name} line {line}"
        student = (entry.get("student") or "").strip()
        name = (entry.get("question") or "").strip()
        text = (entry.get("points") or "").strip()
        comment = " ".join((entry.get("comment") or "").split())
        if not student and not name and not text:
            continue  # a blank line
        if name in exercises:
            problems.append(f"{where}: `{name}` is an exercise, graded by its checks, not a "
                            "question")
            continue
        if name not in questions:
            problems.append(f"{where}: unknown question `{name}` (lab {spec.number} has "
                            f"{', '.join(questions)})")
            continue
        if student not in students:
            problems.append(f"{where}: unknown student `{student}` (not in {out_csv.name} for "
                            f"lab {spec.number})")
            continue
        if (student, name) in seen:
            problems.append(f"{where}: {student}, {name} given twice (also on line "
                            f"{seen[(student, name)]}): keep one")
            continue
        seen[(student, name)] = line
        if not text:
            left += 1
            continue
        try:
            points = float(text)
        except ValueError:
            points = math.nan
        maximum = questions[name].points
        if not math.isfinite(points) or not 0 <= points <= maximum:
            problems.append(f"{where}: points `{text}` for {student}, {name}: give a number "
                            f"from 0 to {maximum:g}")
            continue
        updates.append((student, name, points, comment))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20
                                 else [])
        raise ValueError("the marks were not merged, fix these rows first:\n  "
                         + "\n  ".join(shown))
    for student, name, points, comment in updates:
        row = ours[(student, name)]
        row["points"] = f"{points:g}"
        row["feedback"] = f"{MARKED}: {comment}" if comment else MARKED
    write_rows(out_csv, rows)
    if feedback_dir is not None:
        for student in sorted({s for s, *_ in updates}):
            _update_feedback(feedback_dir / f"{safe_name(student)}.md", student, ours, spec)
    to_mark = sum(1 for (s, n), r in ours.items() if n in questions and not r["points"].strip())
    return MergeReport(len(updates), left, to_mark)


def _update_feedback(path: Path, student: str, ours: dict, spec: LabSpec) -> None:
    """Put the marks and the new total into a student's feedback file, if it is there."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    points = to_mark = maximum = 0.0
    for name in spec.item_names:
        row = ours.get((student, name))
        if row is None:
            continue
        maximum += float(row["max_points"] or 0)
        if row["points"].strip():
            points += float(row["points"])
        else:
            to_mark += float(row["max_points"] or 0)
    for q in spec.questions:
        row = ours.get((student, q.name))
        if row is None or not row["points"].strip():
            continue
        block = re.compile(rf"^## Question `{re.escape(q.name)}`: .*\n\n.*$", re.MULTILINE)
        new = f"{question_heading(q.name, float(row['points']), q.points)}\n\n{row['feedback']}"
        text = block.sub(lambda _, new=new: new, text, count=1)
    text = re.sub(r"^\*\*Total: .*$", lambda _: total_line(points, maximum, to_mark), text,
                  count=1, flags=re.MULTILINE)
    _write_text(path, text)


def _quote(text: str) -> str:
    """Markdown quote, so an answer's own headings cannot break the file's structure."""
    return "\n".join("> " + line if line.strip() else ">" for line in text.splitlines())


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
