"""A small trainer for the labs: a ``tqdm`` bar, validation PSNR/SSIM each epoch, checkpoints.

The pieces work for any image-to-image network, reconstruction or denoising:

- a *step* ``step(model, batch, device) -> (prediction, target)`` says how a batch feeds
  the model: :func:`pair_step` for ``(input, target)`` batches (denoising: ``model(noisy)``),
  :func:`dlmi_utils.mri.datasets.recon_step` for the dict batches of reconstruction
  (``model(y, MRIForward(mask))``);
- :func:`train_one_epoch` and :func:`evaluate` (mean PSNR/SSIM of the magnitudes over the
  validation images, in dB and [0, 1]) run one pass each;
- :func:`fit` seeds everything, loops over epochs and writes a checkpoint after each
  (:func:`save_checkpoint` / :func:`load_checkpoint`, and ``resume=True`` carries on from it).

Runs on the GPU when there is one (:func:`dlmi_utils.device.get_device`); with the same seed,
the same data and the same device, two runs give the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dlmi_utils.device import get_device, seed_everything
from dlmi_utils.losses import L2Loss
from dlmi_utils.metrics import psnr, ssim

Batch = Any
Step = Callable[[nn.Module, Batch, torch.device], tuple[torch.Tensor, torch.Tensor]]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossStep = Callable[[nn.Module, Batch, torch.device], torch.Tensor]
MSE = L2Loss()  # the default loss


def pair_step(model: nn.Module, batch: Batch, device: torch.device):
    """``(x, target)`` batch -> ``(model(x), target)``, both on ``device``."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            "pair_step expects batches of (input, target); give fit() a step= that unpacks "
            "your batches (dlmi_utils.mri.datasets.recon_step for reconstruction data)"
        )
    x, target = (t.to(device) for t in batch)
    return model(x), target


def _magnitudes(x: torch.Tensor) -> np.ndarray:
    """``(B, H, W)`` complex or ``(B, 1, H, W)`` real -> ``(B, H, W)`` float64 magnitudes."""
    x = x.detach().cpu()
    x = x.abs() if x.is_complex() else x
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"evaluate: expects one channel, got shape {tuple(x.shape)}")
        x = x[:, 0]
    return x.double().numpy()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    step: Step = pair_step,
    device: torch.device | str | None = None,
    data_range: float | None = None,
) -> dict[str, float]:
    """Mean ``psnr`` (dB) and ``ssim`` of ``|prediction|`` vs ``|target|`` over all images.

    ``data_range`` defaults to each reference's maximum magnitude (the fastMRI convention).
    Returns ``{"psnr": .., "ssim": .., "n": number of images}``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores: list[tuple[float, float]] = []
    for batch in loader:
        prediction, target = step(model, batch, device)
        for ref, est in zip(_magnitudes(target), _magnitudes(prediction), strict=True):
            dr = float(ref.max()) if data_range is None else data_range
            scores.append((psnr(ref, est, data_range=dr), ssim(ref, est, data_range=dr)))
    model.train(was_training)
    if not scores:
        raise ValueError("evaluate: the validation loader is empty")
    p, s = np.mean(np.array(scores), axis=0)
    return {"psnr": float(p), "ssim": float(s), "n": len(scores)}


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    loss_fn: Loss = MSE,
    step: Step = pair_step,
    device: torch.device | str | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    desc: str = "train",
    loss_step: LossStep | None = None,
) -> float:
    """One pass over ``loader`` (at most ``max_steps`` batches); returns the mean loss.

    ``loss_step(model, batch, device) -> loss`` replaces ``step`` and ``loss_fn`` when the
    loss is not a function of one prediction and a target (SURE calls the model twice and
    has no target)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.train()
    total, count = 0.0, 0
    n = len(loader) if hasattr(loader, "__len__") else None
    if max_steps is not None and n is not None:
        n = min(n, max_steps)
    bar = tqdm(loader, total=n, desc=desc, disable=not progress, leave=False)
    for i, batch in enumerate(bar):
        if max_steps is not None and i >= max_steps:
            break
        if loss_step is not None:
            loss = loss_step(model, batch, device)
        else:
            prediction, target = step(model, batch, device)
            loss = loss_fn(prediction, target)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {loss.item()} at step {i}: lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item()
        count += 1
        bar.set_postfix(loss=f"{total / count:.4g}")
    bar.close()
    return total / max(count, 1)


@dataclass
class History:
    """What :func:`fit` did: one entry per epoch, plus the wall-clock time in seconds."""

    train_loss: list[float] = field(default_factory=list)
    val_psnr: list[float] = field(default_factory=list)
    val_ssim: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int = 0,
    history: History | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> Path:
    """Write model, optimizer and scheduler states, the epoch count and the history."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "history": (history or History()).to_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> tuple[int, History]:
    """Restore what :func:`save_checkpoint` wrote; returns ``(epochs done, history)``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return state["epoch"], History(**state["history"])


def _set_epoch(loader: Iterable[Batch], epoch: int, seed: int) -> None:
    """Make epoch ``epoch`` depend on ``(seed, epoch)`` only, so a resumed run repeats it.

    The loader's shuffling generator (``DataLoader(..., generator=g)``) is re-seeded, and a
    dataset with ``set_epoch`` (new random masks each epoch) is told the epoch.
    """
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(seed * 100_003 + epoch)
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    val_loader: Iterable[Batch] | None = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    loss_fn: Loss = MSE,
    step: Step = pair_step,
    seed: int = 0,
    device: torch.device | str | None = None,
    steps_per_epoch: int | None = None,
    cosine: bool = True,
    weight_decay: float = 0.0,
    data_range: float | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    loss_step: LossStep | None = None,
) -> History:
    """Train ``model`` with Adam for ``epochs`` epochs and return its :class:`History`.

    ``cosine`` decays the learning rate to zero over the run; ``steps_per_epoch`` caps an
    epoch (a short run on a CPU); ``checkpoint`` is written after each epoch and, with
    ``resume``, read first. ``val_loader`` adds PSNR/SSIM after each epoch (``log`` prints it),
    with the peak ``data_range`` of :func:`evaluate` (default: each reference's maximum; give
    ``1.0`` for images in [0, 1], as the denoising benchmarks score them).
    Seeds Python, numpy and torch with ``seed``; give a shuffling ``DataLoader`` its own
    ``generator=torch.Generator()``: it is re-seeded from ``(seed, epoch)`` at each epoch,
    so that a run resumed from a checkpoint sees the same batches as an uninterrupted one.
    ``loss_step`` trains on the loss it returns (see :func:`train_one_epoch`); validation
    still scores ``step``'s predictions.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    seed_everything(seed)
    device = get_device() if device is None else torch.device(device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(train_loader) if hasattr(train_loader, "__len__") else steps_per_epoch
    if n is None:
        raise ValueError("give steps_per_epoch when the training loader has no length")
    per_epoch = min(n, steps_per_epoch) if steps_per_epoch else n
    scheduler = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / (epochs * per_epoch), 1)))
        )
        if cosine
        else None
    )
    history, start = History(), 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        start, history = load_checkpoint(checkpoint, model, optimizer, scheduler)
    t0 = time.perf_counter() - history.seconds
    for epoch in range(start, epochs):
        _set_epoch(train_loader, epoch, seed)
        loss = train_one_epoch(
            model, train_loader, optimizer, loss_fn, step, device, scheduler,
            max_steps=steps_per_epoch, progress=progress, desc=f"epoch {epoch + 1}/{epochs}",
            loss_step=loss_step,
        )
        history.train_loss.append(loss)
        line = f"epoch {epoch + 1}/{epochs}: train loss {loss:.4g}"
        if val_loader is not None:
            scores = evaluate(model, val_loader, step, device, data_range=data_range)
            history.val_psnr.append(scores["psnr"])
            history.val_ssim.append(scores["ssim"])
            line += f", val PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}"
        history.seconds = time.perf_counter() - t0
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch + 1, history, scheduler)
        if log is not None:
            log(line + f" ({history.seconds:.0f} s)")
    return history
