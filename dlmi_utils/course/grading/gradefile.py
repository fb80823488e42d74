"""The grades CSV: one row per student and item (exercise or question) of a lab.

Columns ``student, lab, exercise, points, max_points, delegated, feedback``. ``points`` is
empty for an answer still to be marked by hand; ``delegated`` is ``yes`` when the exercise only
handed its work to the package's reference (``no`` otherwise, empty for questions and for rows
of files written before the column existed). One CSV may hold several labs.

Writes are whole: a student's rows are appended in one flushed write, and every rewrite goes
through a temporary file and ``os.replace``. A process killed in the middle of an append leaves
a last line without its newline: that row is dropped on reading, so its student is graded again.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path

COLUMNS = ["student", "lab", "exercise", "points", "max_points", "delegated", "feedback"]
LEGACY_COLUMNS = ["student", "lab", "exercise", "points", "max_points", "feedback"]


def read_rows(out_csv: Path, log: Callable[[str], None] | None = None) -> list[dict]:
    """The rows of a grades CSV (none when it is missing or empty).

    A file of the older format (no ``delegated`` column) is rewritten in this one, its rows
    kept with ``delegated`` empty, and ``log`` says so. Raises ``ValueError`` for any other CSV.
    """
    out_csv = Path(out_csv)
    if not out_csv.exists() or out_csv.stat().st_size == 0:
        return []
    with open(out_csv, newline="", encoding="utf-8") as f:
        text = f.read()
    text = text[: text.rfind("\n") + 1]  # an append cut short leaves a partial last line
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    if reader.fieldnames not in (COLUMNS, LEGACY_COLUMNS):
        raise ValueError(f"{out_csv} is not a grades file of dlmi-grade (its columns are "
                         f"{reader.fieldnames}, expected {COLUMNS}): choose another --out")
    if reader.fieldnames == LEGACY_COLUMNS:
        for row in rows:
            row["delegated"] = ""
        write_rows(out_csv, rows)
        if log is not None:
            log(f"{out_csv.name} had no `delegated` column (an older dlmi-grade): added, empty "
                "for the rows already there (not checked)")
    return rows


def write_rows(out_csv: Path, rows: Iterable[dict]) -> None:
    """Replace the CSV by ``rows`` at once (through a temporary file)."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_csv.with_name(out_csv.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows({k: row.get(k) or "" for k in COLUMNS} for row in rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_csv)


def append_rows(out_csv: Path, rows: list[dict]) -> None:
    """Append one student's rows in a single write, flushed to disk."""
    out_csv = Path(out_csv)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS)
    if not out_csv.exists() or out_csv.stat().st_size == 0:
        writer.writeheader()
    writer.writerows({k: row.get(k) or "" for k in COLUMNS} for row in rows)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "a", newline="", encoding="utf-8") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())


def same_lab(value: str | None, number: str) -> bool:
    return value is not None and value.strip().isdigit() and int(value) == int(number)


def students_done(out_csv: Path, number: str, items: list[str],
                  log: Callable[[str], None] | None = None) -> set[str]:
    """Students with every item's row for lab ``number``; the rows of the others are removed.

    A student with a missing row (an interrupted write) or a duplicated one is graded again.
    """
    out_csv = Path(out_csv)
    if not out_csv.exists():
        return set()
    with open(out_csv, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        cut_short = size > 0 and f.seek(size - 1) >= 0 and f.read(1) != b"\n"
    rows = read_rows(out_csv, log)
    seen: dict[str, list[str]] = {}
    for row in rows:
        if same_lab(row.get("lab"), number) and None not in row and None not in row.values():
            seen.setdefault(row["student"], []).append(row["exercise"])
    done = {s for s, got in seen.items() if sorted(got) == sorted(items)}
    keep = [r for r in rows if not same_lab(r.get("lab"), number) or r["student"] in done]
    if len(keep) != len(rows) or cut_short:
        write_rows(out_csv, keep)
    return done


def sort_rows(out_csv: Path, number: str, items: list[str]) -> None:
    """Rewrite the CSV with lab ``number``'s rows by student, then in the lab's item order.

    Rows of other labs stay first, in their order; items the lab no longer has come last.
    """
    rows = read_rows(out_csv)
    if not rows:
        return
    order = {name: k for k, name in enumerate(items)}
    others = [r for r in rows if not same_lab(r.get("lab"), number)]
    ours = [r for r in rows if same_lab(r.get("lab"), number)]
    ours.sort(key=lambda r: (r["student"], order.get(r["exercise"], len(order))))
    if others + ours != rows:
        write_rows(out_csv, others + ours)
