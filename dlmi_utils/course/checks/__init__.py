"""Student self-checks: run a student's function on small cases with known answers.

Each lab has a module ``dlmi_utils.course.checks.labNN`` with one
``check_<exercise>(fn, strict=False)``
per exercise. A check never raises: an exception from the student's code is caught and
summarised, and the result prints as a short pass/fail report with a hint of what is off
(shape, dtype, scale, a sign, an fftshift), never the solution.

``strict=True`` is what the grader (``dlmi-grade``) uses: other sizes and other seeds, so an
answer hard-coded for the self-check cases fails.

Every check remembers its last result in the kernel; :func:`yours_or_reference` then lets a lab
run the rest of its story on the student's own function once that passed its check, and on the
package's reference (saying so) until it does.
"""

from __future__ import annotations

import numbers
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

NOT_IMPLEMENTED = "not implemented yet"


class CheckFailed(AssertionError):
    """Raised inside a case with a hint for the student (never the answer)."""


def numpy_result(value, what: str, shape: tuple[int, ...], shape_hint: str = "",
                 torch_hint: str = "return a numpy array") -> np.ndarray:
    """A student's return value, checked to be a numpy array of ``shape``; else a hint.

    ``shape_hint`` follows the shape message (e.g. which axes to work on), ``torch_hint`` the
    one for a torch tensor. Each lab adds its own checks of the dtype.
    """
    if hasattr(value, "detach"):
        raise CheckFailed(f"{what} returned a torch tensor: {torch_hint}")
    if not isinstance(value, np.ndarray):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a numpy array")
    if value.shape != tuple(shape):
        raise CheckFailed(f"{what} returned shape {value.shape}, expected {tuple(shape)}"
                          + shape_hint)
    return value


def number_result(value, what: str, reduce_hint: str = "did you forget to average?") -> float:
    """A student's number (a Python or numpy number, or a one-element array or tensor) as a
    float; else a hint, ``reduce_hint`` for an array or a tensor of several values."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise CheckFailed(f"{what} returned an array of shape {value.shape}, expected one "
                              f"number: {reduce_hint}")
        return float(value.reshape(()))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a number")
    return float(value)


def scalar_result(value, what: str):
    """A student's loss, checked to be a torch tensor holding one number (one that
    ``.backward()`` can be called on), returned as a 0-d tensor; else a hint."""
    if not (hasattr(value, "backward") and hasattr(value, "numel")):
        raise CheckFailed(f"{what} returned {type(value).__name__}: return a torch tensor "
                          "(a loss that .backward() can be called on)")
    if value.numel() != 1:
        raise CheckFailed(f"{what} returned shape {tuple(value.shape)}, expected one number: "
                          "average over the batch with .mean()")
    return value.reshape(())


@dataclass
class CheckResult:
    """The outcome of one exercise's checks; ``score`` is the fraction of cases passed."""

    exercise: str
    passed: int
    total: int
    status: str  # "passed", "failed", "not_implemented" or "error"
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def report(self) -> str:
        head = {
            "passed": f"PASSED  {self.exercise}: all {self.total} checks passed",
            "failed": f"FAILED  {self.exercise}: {self.passed}/{self.total} checks passed",
            "not_implemented": f"TODO    {self.exercise}: {NOT_IMPLEMENTED}",
            "error": f"ERROR   {self.exercise}: your code raised an exception",
        }[self.status]
        return "\n".join([head, *("        - " + m for m in self.messages)])

    def __repr__(self) -> str:
        return self.report()

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython display
        printer.text(self.report())


Case = Callable[[Callable], None]

LAST_RESULTS: dict[str, CheckResult] = {}  # exercise -> its latest check in this kernel


def yours_or_reference(exercise: str, yours: Callable | None, reference: Callable) -> Callable:
    """The student's ``yours`` if its last check of ``exercise`` passed, else ``reference``.

    Prints which one the lab goes on with, so a student sees their code drive the figures below
    (or why it does not yet). Raises ``ValueError`` when ``exercise`` has never been checked.
    """
    result = LAST_RESULTS.get(exercise)
    if result is None:
        raise ValueError(f"no check of {exercise!r} has run in this kernel: run its check cell "
                         f"first (known: {', '.join(sorted(LAST_RESULTS)) or 'none'})")
    name = getattr(reference, "__qualname__", repr(reference))
    if result.ok and callable(yours):
        print(f"using your {exercise} (its check passed)")
        return yours
    print(f"using the package's {name}: your {exercise} has not passed its check yet "
          f"({result.status.replace('_', ' ')})")
    return reference


def _student_frame(exc: BaseException) -> str:
    """Where in the student's code the exception came from (the last frame outside dlmi_utils)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "dlmi_utils" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at line {f.lineno}: `{(f.line or '').strip()}`)"


def run_check(exercise: str, fn: Callable | None, cases: Iterable[tuple[str, Case]]) -> CheckResult:
    """Run ``case(fn)`` for each named case; a case fails by raising ``CheckFailed(hint)``.

    ``NotImplementedError`` from the student's code ends the check as *not implemented*;
    any other exception is caught, counted as a failure and summarised in one line. The result
    is also kept in ``LAST_RESULTS[exercise]`` for :func:`yours_or_reference`.
    """
    result = _run_cases(exercise, fn, list(cases))
    LAST_RESULTS[exercise] = result
    return result


def _run_cases(exercise: str, fn: Callable | None, cases: list[tuple[str, Case]]) -> CheckResult:
    if fn is None or not callable(fn):
        return CheckResult(
            exercise, 0, len(cases), "error",
            [f"expected a function, got {type(fn).__name__}: did you run the exercise cell?"],
        )
    passed, messages, raised = 0, [], 0
    for name, case in cases:
        try:
            case(fn)
            passed += 1
        except NotImplementedError:
            return CheckResult(
                exercise, passed, len(cases), "not_implemented",
                ["replace `raise NotImplementedError` in the exercise cell with your code"],
            )
        except CheckFailed as e:
            messages.append(f"{name}: {e}")
        except Exception as e:  # the student's code raised: summarise, never crash the kernel
            raised += 1
            messages.append(f"{name}: {type(e).__name__}: {e}{_student_frame(e)}")
    if passed == len(cases):
        status = "passed"
    elif raised == len(cases) - passed and passed == 0:
        status = "error"
    else:
        status = "failed"
    return CheckResult(exercise, passed, len(cases), status, messages)
