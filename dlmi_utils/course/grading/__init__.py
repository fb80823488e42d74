"""Autograding of the labs: ``dlmi-grade SUBMISSIONS --lab NN``.

Each submitted notebook runs in a fresh kernel, in an empty temporary folder, with a time limit
per cell and for the whole notebook (:mod:`~dlmi_utils.course.grading.kernel`). Then, in the same
kernel, every exercise is graded by its check with ``strict=True`` and the grader's seed (other
sizes and seeds than the self-checks, so answers hard-coded for those fail)
(:mod:`~dlmi_utils.course.grading.inkernel`). Exercises, check functions and points come from the
solution notebook (:mod:`~dlmi_utils.course.grading.lab`); rows go to a CSV as each student is done,
with a feedback file per student (:mod:`~dlmi_utils.course.grading.grade`,
:mod:`~dlmi_utils.course.grading.gradefile`), several students at a time with ``--jobs``. An
exercise that only returns the package's reference gets no points
(:mod:`~dlmi_utils.course.grading.delegation`). Answers to "predict, then run" questions are
collected for marking by hand, and the marks merged back (:mod:`~dlmi_utils.course.grading.marks`).

The grader runs the students' code: it is not a sandbox. Run it as a user that can lose
nothing (a container), and read any surprising score.

The names below are imported on first use, so that the student's kernel, which imports
:mod:`~dlmi_utils.course.grading.inkernel`, does not pay for nbclient and nbformat.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "main": "cli",
    "COLUMNS": "gradefile",
    "ExerciseGrade": "grade", "GradeOptions": "grade", "QuestionGrade": "grade",
    "StudentGrade": "grade", "feedback_dir_for": "grade", "grade_notebook": "grade",
    "grade_submissions": "grade", "submission_files": "grade", "summarize": "grade",
    "Limits": "kernel",
    "Exercise": "lab", "LabSpec": "lab", "Question": "lab", "find_solution": "lab",
    "student_id": "lab",
    "answers_dir_for": "marks", "merge_marks": "marks",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
