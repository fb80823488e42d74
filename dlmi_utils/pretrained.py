"""Small pretrained weights shipped with the package, so a student on a CPU can skip training.

Each set is two files in ``dlmi_utils/weights/``: ``NAME.pt`` (a ``state_dict``) and
``NAME.json``, its record. Every record has the same five keys::

    {"model": "dlmi_utils.denoising.models.DilatedDenoiser",  # import path of the class
     "model_kwargs": {...},   # its constructor arguments (the model's ``config``)
     "command": "python scripts/train_denoisers.py ...",  # remakes the weights from scratch
     "data": {...},           # what it was trained and validated on
     "validation": {...}}     # the figures measured at the end of training (psnr, ssim, ...)

plus a few extra keys that a notebook, a test or a benchmark reads (``sigma_8bit``,
``photons``, a ``training`` summary, ...). Weights trained in stages (``--init OTHER``) have
the stages joined with `` && `` in ``command``: still one command to run.

:func:`load_pretrained` builds the model of a record and loads its weights in one call;
scripts in ``scripts/`` write both files with :func:`save_pretrained`. The class is imported
from its path only when a set is loaded, so this base module imports no domain.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RECORD_KEYS = ("model", "model_kwargs", "command", "data", "validation")
_HOW_TO_MAKE = "weights are made by the scripts in scripts/ (each record's 'command' says how)"


def available() -> list[str]:
    """Names of the shipped weight sets (those with a ``NAME.json`` record), sorted."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.json"))


def load_record(name: str) -> dict[str, Any]:
    """The ``NAME.json`` record of a weight set, checked to have the five keys of the schema."""
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no pretrained weights named {name!r}; available: {', '.join(available())}. "
            f"New {_HOW_TO_MAKE}."
        )
    record = json.loads(path.read_text())
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path.name} is not a weights record: it lacks {', '.join(missing)} "
                         f"(a record has the keys {', '.join(RECORD_KEYS)})")
    if not (isinstance(record["model"], str) and "." in record["model"]
            and isinstance(record["model_kwargs"], dict)):
        raise ValueError(f"{path.name}: 'model' must be the import path of a class "
                         "(e.g. 'dlmi_utils.denoising.models.DnCNN') and 'model_kwargs' a dict, "
                         f"got {record['model']!r} and {record['model_kwargs']!r}")
    return record


def model_class(path: str) -> type[nn.Module]:
    """The ``nn.Module`` subclass at the import path ``path`` (``package.module.Class``)."""
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import the model class {path!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{path!r} is not a torch.nn.Module subclass")
    return cls


def load_pretrained(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The shipped weights ``name`` in the model its record names, on ``device``, eval mode.

    Builds ``record["model"](**record["model_kwargs"])``, loads ``NAME.pt`` into it (strict:
    every tensor must match) and sets ``model.weights_name = name``;
    :func:`load_record` gives the record (how it was made, on what data, how it scored).
    """
    record = load_record(name)
    model = model_class(record["model"])(**record["model_kwargs"])
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{name}.json is shipped but its weights {path.name} are "
                                f"missing; {_HOW_TO_MAKE}: {record['command']}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = model.to(device).eval()
    model.weights_name = name
    return model


def save_pretrained(name: str, model: nn.Module, *, command: str, data: dict[str, Any],
                    validation: dict[str, Any], **extra: Any) -> Path:
    """Write ``NAME.pt`` (its float32 ``state_dict``, on the CPU) and ``NAME.json``.

    The record takes the class's import path and ``model.config`` (its constructor
    arguments) from ``model``, then ``command``, ``data``, ``validation`` and the ``extra``
    keys. Returns the path of ``NAME.pt``.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no 'config' dict of its constructor "
                        "arguments: a shipped model needs one to be rebuilt")
    clash = set(extra) & set(RECORD_KEYS)
    if clash:
        raise ValueError(f"extra keys {sorted(clash)} would overwrite the record's own keys")
    record = {"model": f"{type(model).__module__}.{type(model).__qualname__}",
              "model_kwargs": config, "command": command, "data": data,
              "validation": validation, **extra}
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    path = WEIGHTS_DIR / f"{name}.pt"
    torch.save(state, path)
    (WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path
