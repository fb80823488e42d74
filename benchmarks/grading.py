"""dlmi-grade on a class: the same submissions graded one at a time and ``--jobs N`` at once.

``--students`` (default 100) submissions of Lab 00 (``solutions/00_metrics_and_losses.ipynb``)
are written to a temporary folder, ten kinds in turn, the student id ``sNNN_<kind>``:

- ``correct``: the solution; ``wrong``: ``psnr`` with ``log`` for ``log10`` and ``coc`` without
  centring; ``empty``: the generated student lab, untouched; ``delegating``: ``psnr`` only
  returns ``metrics.psnr``;
- hostile, each in an exercise cell: ``loops`` (an endless loop after ``psnr``), ``exits``
  (``sys.exit`` in ``coc``'s cell), ``dies`` (``os._exit`` in ``dice``'s cell), ``hogs``
  (allocates 256 MB blocks until the kernel's memory cap stops it), ``raises`` (``psnr`` raises),
  ``deletes`` (empties its working folder, after checking that it is a temporary one).

Each ``--jobs`` value grades the folder into its own CSV with the ``dlmi-grade`` command
(``--exercises-only``: the setup and exercise cells, as the hostile cells are exercise cells;
a full Lab 00 run costs minutes a notebook), and its wall time is measured. Then the CSVs must
be byte-identical, hold exactly one row per student and exercise (and question, in the lab's
order), the expected points per kind (answers: to mark, or 0 for the empty lab), and a sentinel
file beside the submissions must be untouched. Exit status 1 if any check fails.

Usage (from the repository root)::

    python benchmarks/grading.py
    python benchmarks/grading.py --students 20 --jobs 1 2 4 --json grading.json
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_json  # noqa: E402

from dlmi_utils.course.grading import LabSpec  # noqa: E402
from dlmi_utils.course.notebooks import REPO_ROOT, make_student_notebook  # noqa: E402

SOLUTION = REPO_ROOT / "solutions" / "00_metrics_and_losses.ipynb"
EXERCISES = ["psnr", "coc", "dice"]
SENTINEL = "do_not_delete.txt"


def _exercise_cell(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code"
                and c.metadata.get("nbgrader", {}).get("grade_id") == name)


def _edit(nb, name: str, source: str, append: bool = False) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    cell = _exercise_cell(nb, name)
    cell.source = cell.source + "\n\n" + source if append else source
    return nb


WRONG_PSNR = ("def psnr(ref, x, data_range):\n"
              "    mse = np.mean((np.asarray(x, float) - np.asarray(ref, float)) ** 2)\n"
              "    return float(10 * np.log(data_range**2 / mse))")
WRONG_COC = ("def coc(ref, x):\n"
             "    a, b = np.ravel(ref).astype(float), np.ravel(x).astype(float)\n"
             "    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))")
DELETES = ("import os\nimport tempfile\n\n"
           "here = os.path.realpath(os.getcwd())\n"
           "if here.startswith(os.path.realpath(tempfile.gettempdir())):\n"
           "    for name in os.listdir(here):\n"
           "        os.remove(os.path.join(here, name))")
HOGS = ("import numpy as np\n\n_blocks = []\n"
        "try:\n"
        "    while len(_blocks) < 256:  # 64 GB, written, unless the kernel's memory cap stops it\n"
        "        _blocks.append(np.ones(2**28, dtype=np.uint8))\n"
        "finally:\n"
        "    _blocks.clear()  # what the cap left is freed, so the checks after it can run")

# kind -> (how to make it from the solution, expected points of psnr, coc, dice)
KINDS = {
    "correct": (lambda nb: nb, (2, 2, 2)),
    "wrong": (lambda nb: _edit(_edit(nb, "psnr", WRONG_PSNR), "coc", WRONG_COC), (0, 0, 2)),
    "empty": (make_student_notebook, (0, 0, 0)),
    "delegating": (lambda nb: _edit(nb, "psnr", "def psnr(ref, x, data_range):\n"
                                    "    return metrics.psnr(ref, x, data_range=data_range)"),
                   (0, 2, 2)),
    "loops": (lambda nb: _edit(nb, "psnr", "while True:\n    pass", append=True), (2, 2, 2)),
    "exits": (lambda nb: _edit(nb, "coc", "import sys\nsys.exit(1)", append=True), (2, 2, 2)),
    "dies": (lambda nb: _edit(nb, "dice", "import os\nos._exit(1)", append=True), (2, 2, 0)),
    "hogs": (lambda nb: _edit(nb, "coc", HOGS, append=True), (2, 2, 2)),
    "raises": (lambda nb: _edit(nb, "psnr", "def psnr(ref, x, data_range):\n"
                                "    raise ValueError('not today')"), (0, 2, 2)),
    "deletes": (lambda nb: _edit(nb, "dice", DELETES, append=True), (2, 2, 2)),
}


def write_class(folder: Path, students: int) -> dict[str, str]:
    """Write the submissions; ``{student id: kind}``."""
    solution = nbformat.read(SOLUTION, as_version=4)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = list(KINDS)
    roster = {}
    for n in range(students):
        kind = kinds[n % len(kinds)]
        student = f"s{n:03d}_{kind}"
        nbformat.write(KINDS[kind][0](copy.deepcopy(solution)), folder / f"{student}.ipynb")
        roster[student] = kind
    return roster


def grade(folder: Path, out: Path, jobs: int, args) -> float:
    """Run ``dlmi-grade`` on ``folder``; its wall time in seconds."""
    command = [sys.executable, "-m", "dlmi_utils.course.grading.cli", str(folder), "--lab", "00",
               "--solutions", str(REPO_ROOT / "solutions"), "--out", str(out),
               "--jobs", str(jobs), "--exercises-only", "--cell-timeout", str(args.cell_timeout),
               "--check-timeout", str(args.check_timeout), "--memory-gb", str(args.memory_gb)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (out.parent / f"log_jobs{jobs}.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"dlmi-grade --jobs {jobs} failed ({done.returncode}):\n"
                         + (done.stdout + done.stderr)[-3000:])
    return seconds


def verify(outs: dict[int, Path], roster: dict[str, str], spec: LabSpec) -> list[str]:
    """What is wrong with the CSVs (empty when all is right)."""
    problems = []
    texts = {jobs: out.read_bytes() for jobs, out in outs.items()}
    first_jobs, first = next(iter(texts.items()))
    for jobs, text in texts.items():
        if text != first:
            problems.append(f"the CSV of --jobs {jobs} differs from that of --jobs {first_jobs}")
    rows = list(csv.DictReader(outs[first_jobs].open(newline="", encoding="utf-8")))
    keys = [(r["student"], r["exercise"]) for r in rows]
    wanted = [(s, e) for s in sorted(roster) for e in spec.item_names]
    if keys != wanted:
        problems.append(f"{len(keys)} rows, {len(set(keys))} distinct, expected exactly "
                        f"{len(wanted)} (one per student and item, sorted)")
    for r in rows:
        kind = roster.get(r["student"])
        if kind is None:
            continue
        if r["exercise"] not in EXERCISES:  # a question: the model answer, or the placeholder
            if r["points"] != ("0" if kind == "empty" else ""):
                problems.append(f"{r['student']} {r['exercise']}: points {r['points']!r}")
            continue
        expected = KINDS[kind][1][EXERCISES.index(r["exercise"])]
        if float(r["points"]) != expected:
            problems.append(f"{r['student']} {r['exercise']}: {r['points']} points, expected "
                            f"{expected} ({r['feedback'][:120]})")
        if (kind == "delegating" and r["exercise"] == "psnr") != (r["delegated"] == "yes"):
            problems.append(f"{r['student']} {r['exercise']}: delegated={r['delegated']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--students", type=int, default=100)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cell-timeout", type=float, default=30.0)
    p.add_argument("--check-timeout", type=float, default=60.0)
    p.add_argument("--memory-gb", type=float, default=4.0)
    p.add_argument("--keep", type=Path, default=None,
                   help="write the submissions and CSVs here instead of a temporary folder")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dlmi-grading-bench-") as tmp:
        root = args.keep or Path(tmp)
        roster = write_class(root / "submissions", args.students)
        (root / SENTINEL).write_text("the hostile submissions must not reach this file\n")
        outs, rows = {}, []
        for jobs in args.jobs:
            outs[jobs] = root / f"jobs{jobs}" / "grades.csv"
            outs[jobs].parent.mkdir(parents=True, exist_ok=True)
            load = os.getloadavg()[0]
            seconds = grade(root / "submissions", outs[jobs], jobs, args)
            rows.append({"command": f"--jobs {jobs}", "students": len(roster),
                         "wall s": seconds, "s / student": seconds / len(roster),
                         "speed-up": rows[0]["wall s"] / seconds if rows else 1.0,
                         "load before": load, "load after": os.getloadavg()[0]})
            print(f"--jobs {jobs}: {seconds:.0f} s", flush=True)
        problems = verify(outs, roster, LabSpec.from_solution(SOLUTION))
        if not (root / SENTINEL).exists():
            problems.append(f"{SENTINEL} beside the submissions was deleted")
    print_table(rows, ["command", "students", "wall s", "s / student", "speed-up",
                       "load before", "load after"])
    print("checks: " + ("all passed (identical CSVs, one row per student and exercise, "
                        "expected points per kind, sentinel intact)" if not problems
                        else f"{len(problems)} FAILED"))
    for problem in problems[:30]:
        print("  " + problem)
    if args.json:
        write_json(args.json, {"runs": rows, "problems": problems, "nproc": os.cpu_count()})
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
