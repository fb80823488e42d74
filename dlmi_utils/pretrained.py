"""Small pretrained weights shipped with the package, so a student on a CPU can skip training.

Each set is two files in ``dlmi_utils/weights/``: ``NAME.pt`` (a ``state_dict``) and
``NAME.json`` (how it was made: the script and its arguments, the model's constructor
arguments, and the validation figures recorded at the end of training). Scripts in
``scripts/`` write them with :func:`save_pretrained`; notebooks load them with
:func:`load_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def available() -> list[str]:
    """Names of the shipped weight sets."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def save_pretrained(name: str, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``NAME.pt`` (float32 state_dict, on the CPU) and ``NAME.json`` (``meta``)."""
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    path = WEIGHTS_DIR / f"{name}.pt"
    torch.save(state, path)
    (WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def load_meta(name: str) -> dict[str, Any]:
    """The ``NAME.json`` record of a weight set."""
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no pretrained weights named {name!r}; available: {available()}. "
            "Weights are made by the scripts in scripts/ (see README)."
        )
    return json.loads(path.read_text())


def load_pretrained(name: str, model: torch.nn.Module, device: torch.device | str = "cpu"):
    """Load ``NAME.pt`` into ``model`` (strict), move it to ``device``, set eval mode.

    Returns ``(model, meta)``.
    """
    meta = load_meta(name)
    state = torch.load(WEIGHTS_DIR / f"{name}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval(), meta


def lineage(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The training runs behind a record, first to last.

    A run started from other shipped weights (``--init NAME`` of the training scripts) keeps
    their record under ``"init"``; this follows that chain back to the run from scratch.
    ``scripts/train_cascade.py`` keeps the whole record of the earlier run;
    ``scripts/train_denoisers.py`` a summary (its name, command, training and scores).
    """
    if not isinstance(meta, dict):
        raise TypeError(f"lineage expects a weights record (a dict), got {type(meta).__name__}")
    runs = []
    while meta:
        runs.append(meta)
        meta = meta.get("init")
    return runs[::-1]

