"""The ``dlmi-grade`` command: grade a folder of submitted notebooks of one lab.

``dlmi-grade SUBMISSIONS --lab NN [--jobs N]`` grades; ``dlmi-grade merge-marks MARKS --lab NN``
merges the marks of the answers graded by hand into the grades CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlmi_utils.course.grading.grade import GradeOptions, feedback_dir_for, grade_submissions
from dlmi_utils.course.grading.kernel import Limits
from dlmi_utils.course.grading.lab import LabSpec, find_solution
from dlmi_utils.course.grading.marks import answers_dir_for, merge_marks
from dlmi_utils.course.notebooks import REPO_ROOT

MERGE = "merge-marks"
EPILOG = f"""\
The student id is the file name up to its first _NN: alice.ipynb, alice_03.ipynb and
alice_03_cascade.ipynb are all "alice". Points come from the solution notebook's nbgrader
metadata, never from the submission. Each student's rows are appended to the CSV as soon as
they are graded; run the same command again to resume (students already in it are skipped).
Answers to questions go to <out>_answers/ to be marked by hand; then:
  dlmi-grade {MERGE} MARKS.csv --lab NN --out grades.csv
"""


def _default_solutions() -> Path:
    here = Path("solutions")
    return here if here.is_dir() else REPO_ROOT / "solutions"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlmi-grade", description="Grade a folder of submitted notebooks of one lab.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", type=Path, help="folder of submitted .ipynb (or one notebook)")
    p.add_argument("--lab", required=True, help="lab number, e.g. 03")
    p.add_argument("--solutions", type=Path, default=None,
                   help="folder of the solution notebooks (default: ./solutions)")
    p.add_argument("--out", type=Path, default=Path("grades.csv"),
                   help="grades CSV (default grades.csv); feedback files go to <out>_feedback/")
    p.add_argument("--timeout", type=float, default=Limits.total,
                   help=f"seconds for all of a notebook's cells (default {Limits.total:g})")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell,
                   help=f"seconds per cell (default {Limits.cell:g})")
    p.add_argument("--check-timeout", type=float, default=Limits.check,
                   help=f"seconds for one exercise's strict checks (default {Limits.check:g})")
    p.add_argument("--exercises-only", action="store_true",
                   help="run only the setup and exercise cells (fast: no training cells)")
    p.add_argument("--seed", type=int, default=GradeOptions.seed,
                   help=f"seed of the strict checks (default {GradeOptions.seed})")
    p.add_argument("--partial-credit", action="store_true",
                   help="points x (checks passed / checks) instead of all or nothing")
    p.add_argument("--checks-module", default=None,
                   help="module of the check functions (default: what the solution imports)")
    p.add_argument("--no-preflight", action="store_true",
                   help="skip grading the solution first (it must get full marks)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    p.add_argument("--jobs", type=int, default=1,
                   help="notebooks graded at once, each in its own kernel (default 1)")
    p.add_argument("--memory-gb", type=float, default=None,
                   help="cap each kernel's data memory, in GB (default: no cap; Linux)")
    return p


def build_merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"dlmi-grade {MERGE}",
        description="Merge the marks of answers graded by hand into the grades CSV.",
        epilog="MARKS has the columns student, question, points (and comment), e.g. a copy of "
               "<out>_answers/marks_template.csv with the points filled. Rows with empty "
               "points are left to mark; nothing is written unless every row is right.",
    )
    p.add_argument("marks", type=Path, help="CSV of marks: student, question, points[, comment]")
    p.add_argument("--lab", required=True, help="lab number, e.g. 07")
    p.add_argument("--solutions", type=Path, default=None,
                   help="folder of the solution notebooks (default: ./solutions)")
    p.add_argument("--out", type=Path, default=Path("grades.csv"),
                   help="the grades CSV to update (default grades.csv)")
    return p


def merge_main(argv: list[str]) -> int:
    parser = build_merge_parser()
    args = parser.parse_args(argv)
    try:
        spec = LabSpec.from_solution(find_solution(args.solutions or _default_solutions(),
                                                   args.lab))
        report = merge_marks(args.marks, args.out, spec, feedback_dir_for(args.out))
    except ValueError as e:
        parser.error(str(e))
    print(f"{report.marked} mark(s) merged into {args.out}; {report.left} row(s) of "
          f"{args.marks.name} without points; {report.to_mark} answer(s) of lab {spec.number} "
          f"still to mark (see {answers_dir_for(args.out)}/)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [MERGE]:
        return merge_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be 1 or more, got {args.jobs}")
        solution = find_solution(args.solutions or _default_solutions(), args.lab)
        spec = LabSpec.from_solution(solution, checks_module=args.checks_module)
        memory = None if args.memory_gb is None else int(args.memory_gb * 1e9)
        options = GradeOptions(
            limits=Limits(total=args.timeout, cell=args.cell_timeout, check=args.check_timeout,
                          memory=memory),
            exercises_only=args.exercises_only, seed=args.seed,
            partial_credit=args.partial_credit, kernel_name=args.kernel,
        )
        questions = (f" and {len(spec.questions)} questions marked by hand"
                     if spec.questions else "")
        print(f"{spec.title}: {len(spec.exercises)} exercises{questions}, "
              f"{spec.max_points:g} points (from {solution})")
        grades = grade_submissions(args.submissions, spec, args.out, options,
                                   preflight=not args.no_preflight, jobs=args.jobs)
    except ValueError as e:
        parser.error(str(e))
    except KeyboardInterrupt:
        print(f"\ninterrupted: the students graded so far are in {args.out}; run the same "
              "command again to go on", file=sys.stderr)
        return 130
    print(f"\ngrades: {args.out}\nfeedback: {feedback_dir_for(args.out)}/")
    return 1 if any(g.grader_errors for g in grades) else 0


if __name__ == "__main__":
    sys.exit(main())
