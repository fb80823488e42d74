"""Run a submission's cells, then the grader's strict checks, in one fresh kernel.

Limits: each cell gets ``Limits.cell`` seconds and the submission's cells together
``Limits.total``; each exercise's strict checks get ``Limits.check``; with ``Limits.memory`` the
kernel's data memory is capped (an allocation past it raises ``MemoryError``). A cell that runs
past its limit is interrupted; if the kernel does not answer afterwards it is *stuck* and the
session ends. A watchdog thread kills the kernel's process group after a hard limit, whatever
happens (a flood of output, a kernel that ignores interrupts). Printed output is counted, not
kept, so megabytes of prints cost no memory; error tracebacks are kept, shortened.

The kernel runs in an empty temporary folder; nothing of the student's is copied there.
Sessions may run in several threads at once (``dlmi-grade --jobs``): each has its own kernel,
limits and watchdog, and a shared :class:`Stopper` ends them all on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import output_from_msg

from dlmi_utils.course.grading.inkernel import (
    GRADE_MIME,
    grading_cell_source,
    memory_limit_source,
)
from dlmi_utils.course.grading.lab import Exercise

TIMEOUT_ENAME = "DlmiGraderTimeout"  # the error nbclient reports for a cell past its limit
PROBE_TIMEOUT = 10.0  # seconds an interrupted kernel has to answer again
IOPUB_TIMEOUT = 1  # seconds to collect a cell's last outputs after its reply
MAX_TEXT = 2000  # characters kept of an error message or traceback line
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Limits:
    """Time and output limits of one submission (seconds, characters)."""

    total: float = 1800.0  # all of the submission's cells together
    cell: float = 600.0  # one cell
    check: float = 120.0  # the strict checks of one exercise
    output: int = 1_000_000  # characters one cell may print before the feedback says so
    memory: int | None = None  # bytes of data memory of the kernel (None: no cap)

    def __post_init__(self) -> None:
        for name in ("total", "cell", "check", "output"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)}")
        if self.memory is not None and self.memory <= 0:
            raise ValueError(f"limit memory must be positive or None, got {self.memory}")


class Stopper:
    """Stops every session that shares it: kills their kernels, and later ones never start.

    A session that sees :meth:`stop` raises ``KeyboardInterrupt`` (its student is not graded)
    instead of taking the killed kernel for the student's doing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: set[NotebookClient] = set()
        self.stopped = False

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            clients = list(self._clients)
        for client in clients:
            _kill_kernel(client)

    def add(self, client: NotebookClient) -> None:
        with self._lock:
            self._clients.add(client)
            stopped = self.stopped
        if stopped:
            _kill_kernel(client)
            raise KeyboardInterrupt("grading stopped")

    def discard(self, client: NotebookClient) -> None:
        with self._lock:
            self._clients.discard(client)


@dataclass
class CellEvent:
    """Something the student should hear about one cell (index in the submission, or None)."""

    index: int | None
    kind: str  # "error", "timeout", "deadline", "died", "stuck", "output", "watchdog"
    message: str


@dataclass
class SessionResult:
    events: list[CellEvent] = field(default_factory=list)
    outcomes: dict[str, dict] = field(default_factory=dict)  # exercise -> what the check said
    broke_at: tuple[str, int | str | None] | None = None  # ("cell", i) or ("exercise", name)


class _GraderClient(NotebookClient):
    """A NotebookClient that counts printed characters instead of keeping them."""

    def __init__(self, nb: nbformat.NotebookNode, **kw) -> None:
        super().__init__(nb, **kw)
        self.printed: dict[int, int] = defaultdict(int)
        self.replies: dict[int, dict] = {}
        self.cell_timeout: float = 1.0
        self.timeout_func = lambda cell: self.cell_timeout
        self.on_cell_executed = self._record_reply

    def _record_reply(self, cell, cell_index: int, execute_reply: dict | None) -> None:
        self.replies[cell_index] = (execute_reply or {}).get("content", {})

    def output(self, outs, msg, display_id, cell_index):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            self.printed[cell_index] += len(content.get("text", ""))
            return None
        if kind == "error":
            out = nbformat.v4.new_output(
                "error",
                ename=_short(content.get("ename", "")),
                evalue=_short(content.get("evalue", "")),
                traceback=[_short(t) for t in list(content.get("traceback", []))[-12:]],
            )
        elif kind in ("display_data", "execute_result") and GRADE_MIME in content.get("data", {}):
            if len(outs) >= 4:  # the grading cell displays one result; more is not ours
                return None
            out = output_from_msg(msg)
        else:  # figures, rich displays: the grader needs none of them
            return None
        outs.append(out)
        return out


def run_session(
    cells: list[tuple[int | None, str]],
    exercises: list[Exercise],
    limits: Limits,
    seed: int,
    nonce: str,
    kernel_name: str = "python3",
    stopper: Stopper | None = None,
) -> SessionResult:
    """Run ``cells`` (submission index, source) then grade ``exercises`` in a fresh kernel.

    Raises ``KeyboardInterrupt`` when ``stopper`` was stopped (Ctrl-C), before or during it.
    """
    stopper = stopper or Stopper()
    if stopper.stopped:
        raise KeyboardInterrupt("grading stopped")
    return run_sync(_run_session)(cells, exercises, limits, seed, nonce, kernel_name, stopper)


async def _run_session(cells, exercises, limits, seed, nonce, kernel_name,
                       stopper) -> SessionResult:
    result = SessionResult()
    nb = nbformat.v4.new_notebook()
    if limits.memory is not None:  # the grader's cell, before any of the student's
        cells = [(None, memory_limit_source(limits.memory)), *cells]
    nb.cells = [nbformat.v4.new_code_cell(src) for _, src in cells]
    nb.cells += [nbformat.v4.new_code_cell(grading_cell_source(e, seed, nonce)) for e in exercises]
    with tempfile.TemporaryDirectory(prefix="dlmi-grade-") as workdir:
        client = _GraderClient(
            nb,
            kernel_name=kernel_name,
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
            iopub_timeout=IOPUB_TIMEOUT,
            shutdown_kernel="immediate",
            record_timing=False,
            resources={"metadata": {"path": workdir}},
        )
        hard_limit = (limits.total + limits.cell + 2 * PROBE_TIMEOUT
                      + len(exercises) * (limits.check + PROBE_TIMEOUT + IOPUB_TIMEOUT) + 60)
        # the kernel's own stdout/stderr (its log, C-level prints) would flood the grader's
        # terminal: what the student prints reaches the grader through the kernel's messages
        async with client.async_setup_kernel(stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL):
            stopper.add(client)
            watchdog = _Watchdog(client, hard_limit)
            try:
                with _StopOnSignal(stopper):
                    await _run_cells(client, cells, limits, result)
                    if result.broke_at is None:
                        await _run_checks(client, len(cells), exercises, limits, nonce, result)
            finally:
                watchdog.cancel()
                stopper.discard(client)
            if watchdog.fired:
                result.events.append(CellEvent(None, "watchdog", (
                    f"the grader killed the kernel at its hard limit of {hard_limit:.0f} s")))
    if stopper.stopped:  # Ctrl-C: stop grading, this student's rows are not written
        raise KeyboardInterrupt("grading interrupted")
    return result


async def _run_cells(client: _GraderClient, cells, limits: Limits, result: SessionResult) -> None:
    deadline = time.monotonic() + limits.total
    for pos, (index, _) in enumerate(cells):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            result.events.append(CellEvent(index, "deadline", (
                f"the notebook used up the total time limit of {limits.total:g} s before this "
                "cell: it and the cells after it were not run")))
            return
        cut_by_deadline = remaining < limits.cell
        outcome = await _execute(client, pos, min(limits.cell, remaining))
        if client.printed[pos] > limits.output:
            result.events.append(CellEvent(index, "output", (
                f"printed {client.printed[pos] / 1e6:.1f} MB of text (the grader keeps none of "
                f"it beyond {limits.output / 1e6:g} MB): print less, e.g. a summary line")))
        if outcome == "died":
            result.events.append(CellEvent(index, "died", (
                "the kernel died while running this cell (os._exit, exit(), a crash or out of "
                "memory): nothing after it ran in that kernel")))
            result.broke_at = ("cell", index)
            return
        if outcome == "timeout":
            limit = "the total time limit" if cut_by_deadline else "the time limit per cell"
            seconds = limits.total if cut_by_deadline else limits.cell
            message = f"did not finish within {limit} ({seconds:g} s): the grader stopped it"
            if not await _responsive(client, limits):
                result.events.append(CellEvent(index, "stuck", (
                    message + ", and the kernel did not answer after the interrupt")))
                result.broke_at = ("cell", index)
                return
            result.events.append(CellEvent(index, "deadline" if cut_by_deadline else "timeout",
                                           message))
            continue
        reply = client.replies.get(pos, {})
        if reply.get("status") == "error":
            result.events.append(CellEvent(index, "error", _error_text(reply)))


async def _run_checks(client: _GraderClient, first: int, exercises, limits, nonce, result) -> None:
    for k, exercise in enumerate(exercises):
        pos = first + k
        outcome = await _execute(client, pos, limits.check)
        if outcome == "died":
            result.outcomes[exercise.name] = {"status": "died"}
            result.broke_at = ("exercise", exercise.name)
            return
        if outcome == "timeout":
            result.outcomes[exercise.name] = {"status": "timeout", "seconds": limits.check}
            if not await _responsive(client, limits):
                result.broke_at = ("exercise", exercise.name)
                return
            continue
        payloads = [o.data[GRADE_MIME] for o in client.nb.cells[pos].outputs
                    if o.output_type in ("display_data", "execute_result")
                    and o.data.get(GRADE_MIME, {}).get("nonce") == nonce]
        result.outcomes[exercise.name] = payloads[-1] if payloads else {
            "status": "grader_error", "messages": ["the grading cell printed no result"]}


async def _execute(client: _GraderClient, pos: int, seconds: float) -> str:
    """Run cell ``pos``: "ok" (finished, maybe with an error), "timeout" or "died"."""
    client.cell_timeout = max(1.0, seconds)
    try:
        await client.async_execute_cell(client.nb.cells[pos], pos)
    except DeadKernelError:
        return "died"
    if client.replies.get(pos, {}).get("ename") == TIMEOUT_ENAME:
        return "timeout"
    return "ok"


async def _responsive(client: _GraderClient, limits: Limits) -> bool:
    """Whether the kernel runs a trivial cell after an interrupt."""
    client.nb.cells.append(nbformat.v4.new_code_cell("pass"))
    seconds = min(PROBE_TIMEOUT, limits.cell)
    return await _execute(client, len(client.nb.cells) - 1, seconds) == "ok"


def _error_text(reply: dict) -> str:
    """``SyntaxError: invalid syntax (line 3)`` from a cell's error reply."""
    ename, evalue = _short(reply.get("ename", "Error")), _short(reply.get("evalue", ""))
    where = ""
    for line in reversed(reply.get("traceback", []) or []):
        match = re.search(r"line (\d+)", _ANSI.sub("", str(line)))
        if match and ("Cell In" in _ANSI.sub("", str(line)) or ename == "SyntaxError"):
            where = f" (line {match[1]} of the cell)"
            break
    evalue = re.sub(r"\s*\(\d+\.py, line \d+\)$", "", evalue)
    return f"raised {ename}: {evalue}{where}" if evalue else f"raised {ename}{where}"


def _short(text, limit: int = MAX_TEXT) -> str:
    text = _ANSI.sub("", str(text))
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more]"


def _kill_kernel(client: NotebookClient) -> None:
    """SIGKILL the kernel and whatever it started (its own process group)."""
    provisioner = getattr(client.km, "provisioner", None)
    pgid = getattr(provisioner, "pgid", None)
    process = getattr(provisioner, "process", None)
    try:
        if pgid and hasattr(os, "killpg"):
            os.killpg(pgid, signal.SIGKILL)
        elif process is not None:
            process.kill()
    except OSError:
        pass  # already gone


class _StopOnSignal:
    """While a session runs in the main thread, Ctrl-C or SIGTERM stop ``stopper``'s sessions.

    (nbclient's own handler would only shut the kernel down, and the grader would take that
    for a student's dead kernel.) The previous handlers come back when the session ends.
    Sessions in other threads leave signals to the main thread, which stops the shared
    :class:`Stopper` itself.
    """

    def __init__(self, stopper: Stopper) -> None:
        self._stopper = stopper
        self._installed: list[tuple[int, object]] = []

    def __enter__(self) -> _StopOnSignal:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self._stopper.stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or Windows: Ctrl-C works as Python's default
            self._installed.append((sig, previous))
        return self

    def __exit__(self, *exc) -> None:
        loop = asyncio.get_running_loop()
        for sig, previous in self._installed:
            loop.remove_signal_handler(sig)
            if previous is not None:
                signal.signal(sig, previous)


class _Watchdog:
    """Kill the kernel's process group after ``seconds``, from a thread nothing can starve."""

    def __init__(self, client: NotebookClient, seconds: float) -> None:
        self.fired = False
        self._client = client
        self._timer = threading.Timer(seconds, self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _kill(self) -> None:
        self.fired = True
        _kill_kernel(self._client)

    def cancel(self) -> None:
        self._timer.cancel()
