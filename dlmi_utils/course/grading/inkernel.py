"""The grader's side inside the student's kernel: one strict check, reported as one display.

The grader appends one cell per exercise, ``grading_cell_source(...)``, after the submission
has run. It calls :func:`grade` on the student's object by name; the student's prints during
the checks are discarded, and the result is displayed as a JSON object under the MIME type
``GRADE_MIME``, with the nonce of this grading run, messages shortened. (The check module is
the one already imported: re-importing it would not stop a determined cheat, who can patch
anything the kernel holds, and would split its exception classes in two.)
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import TYPE_CHECKING

from dlmi_utils.course.grading.delegation import delegation

if TYPE_CHECKING:  # the kernel imports this module: keep it free of the grader's imports
    from dlmi_utils.course.grading.lab import Exercise

GRADE_MIME = "application/vnd.dlmi-grade+json"
MAX_MESSAGE = 400  # characters kept of one check message
MAX_MESSAGES = 10


def grading_cell_source(exercise: Exercise, seed: int, nonce: str) -> str:
    """The cell the grader runs in the student's kernel to grade ``exercise``."""
    return (
        "__import__('dlmi_utils.course.grading.inkernel', fromlist=['grade']).grade("
        f"globals(), {exercise.function!r}, {exercise.module!r}, {exercise.check!r}, "
        f"seed={int(seed)}, nonce={nonce!r});"
    )


def grade(namespace: dict, function: str, module: str, check: str, seed: int, nonce: str) -> dict:
    """Run ``module.check(namespace[function], strict=True, seed=seed)``; display and return it.

    Statuses: those of :class:`dlmi_utils.course.checks.CheckResult`, ``"missing"`` when the
    notebook defines no ``function``, ``"imported"`` when it is the package's own (imported
    from ``dlmi_utils``), ``"delegated"`` when its body only returns the package's reference
    (:mod:`~dlmi_utils.course.grading.delegation`; the check is not run), ``"grader_error"``
    when the check itself failed to run.
    """
    payload: dict = {"nonce": nonce, "function": function}
    try:
        origin = getattr(namespace.get(function), "__module__", None) or ""
        if function not in namespace:
            payload["status"] = "missing"
        elif origin.split(".")[0] == "dlmi_utils":  # the package's solution, imported
            payload.update(status="imported", messages=[
                f"`{function}` comes from {origin}, not from your exercise cell: write your own"])
        elif (reason := delegation(namespace[function])) is not None:
            payload.update(status="delegated", messages=[
                f"`{function}` hands the work to the package: {reason}. Write the computation "
                "yourself (the package's version is there to compare with, after the exercise)"])
        else:
            checks = importlib.import_module(module)
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), \
                    contextlib.redirect_stderr(sink):
                result = getattr(checks, check)(namespace[function], strict=True, seed=seed)
            payload.update(
                status=str(result.status),
                passed=int(result.passed),
                total=int(result.total),
                messages=[_short(m) for m in list(result.messages)[:MAX_MESSAGES]],
            )
    except SystemExit:  # exit() inside the student's function: the kernel survives it
        payload.update(status="error", passed=0, messages=[
            "your function called exit() or sys.exit(): return a value instead"])
    except Exception as e:  # the check could not run: the grader's problem, reported as such
        payload.update(status="grader_error", messages=[_short(f"{type(e).__name__}: {e}")])
    _display(payload)
    return payload


def memory_limit_source(max_bytes: int) -> str:
    """The cell that caps the kernel's data memory at ``max_bytes`` (``RLIMIT_DATA``, hard).

    Past it an allocation raises ``MemoryError`` in the student's cell instead of exhausting
    the machine. Where ``resource`` is missing (Windows) the cell does nothing.
    """
    return (
        "try:\n"
        "    import resource as _dlmi_resource\n"
        f"    _dlmi_resource.setrlimit(_dlmi_resource.RLIMIT_DATA, ({int(max_bytes)}, "
        f"{int(max_bytes)}))\n"
        "    del _dlmi_resource\n"
        "except (ImportError, AttributeError, ValueError, OSError):\n"
        "    pass"
    )


def _short(text) -> str:
    text = str(text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def _display(payload: dict) -> None:
    try:
        from IPython.display import display
    except ImportError:  # not in IPython: nothing to display to
        return
    display({GRADE_MIME: payload}, raw=True)
