"""Pick the compute device and seed every random number generator, in one call each."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: CUDA when present (Colab), else Apple MPS, else the CPU.

    ``prefer`` forces a choice (``"cpu"``, ``"cuda"``); the environment variable
    ``DLMI_DEVICE`` does the same without touching the notebook.
    """
    choice = prefer or os.environ.get("DLMI_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                "A CUDA device was asked for but none is available; "
                "use get_device('cpu') or, on Colab, Runtime > Change runtime type > GPU."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = True) -> np.random.Generator:
    """Seed Python, numpy and torch (CPU and CUDA); return a numpy ``Generator`` seeded alike.

    With ``deterministic`` the cuDNN autotuner is off, so a run on a GPU repeats itself too.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)
