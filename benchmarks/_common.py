"""Helpers shared by the benchmark scripts: timing, a plain-text table, JSON output, input images.

Run a benchmark from the repository root, e.g. ``python benchmarks/cs.py --json out.json``;
each script imports these with ``from _common import ...`` (its own folder is on the path).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def time_call(fn: Callable[..., Any], *args: Any, repeat: int = 1, **kwargs: Any):
    """``(result, seconds)``: ``fn(*args, **kwargs)`` and its best wall time over ``repeat`` runs.

    The best of several runs is the least disturbed by other work on the machine.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if math.isfinite(value) else str(value)
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` (dicts) with the given ``columns``; floats to 2 decimals."""
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join(lines)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print :func:`format_table` (paste it into ``benchmarks/README.md`` as it is)."""
    print(format_table(rows, columns), flush=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(path: str | Path, results: dict[str, Any]) -> None:
    """Write ``results`` (numpy scalars and arrays converted) to ``path`` as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(results), indent=2, allow_nan=True) + "\n")


def load_image_arg(path: str | Path) -> np.ndarray:
    """The image of a ``--image FILE`` option: ``(H, W)`` float32 in ``[0, 1]``.

    DICOM, NIfTI (middle slice), PNG/JPEG/TIFF or ``.npy``, read by
    :func:`dlmi_utils.data.read_image`.
    """
    from dlmi_utils.data import read_image

    return read_image(path)
