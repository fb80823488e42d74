"""Whole-image inference in overlapping tiles: a full mammogram in bounded memory.

A 4500 x 2800 film through a 64-channel CNN holds 64 x 12.6 M float32 = 3.2 GB per feature
map; in tiles of ``tile x tile`` pixels the network only ever sees ``batch_size`` tiles, so the
memory is that of a ``(batch_size, 1, tile, tile)`` input whatever the size of the image
(plus the image-sized output and weight arrays, two float32 images).

Tiles overlap by ``overlap`` pixels and their outputs are blended:

- ``blend="crop"``: each tile keeps its interior only (``overlap // 2`` pixels are dropped on
  the sides that face another tile). A CNN's output at a pixel depends on the inputs within
  half its receptive field, ``(r - 1) / 2``; with ``overlap >= r - 1`` every kept pixel saw
  the same inputs as in one pass over the whole image, so the result is **the same** as the
  untiled one (to float rounding): the default ``overlap=None`` takes ``r - 1``.
- ``blend="linear"``: weights ramp linearly across the overlap (a feathered blend) for
  networks whose receptive field is wider than the margin (a U-Net): no hard seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dlmi_utils.denoising.geometry import layer_geometry, receptive_field

BLENDS = ("crop", "linear")


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of length ``min(tile, size)`` covering ``[0, size)``, consecutive tiles
    overlapping by ``overlap`` (the last one is moved back to end at ``size``, overlapping more).
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    tile = min(tile, size)
    if tile == size:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of an ``(H, W)`` image go: ``rows`` x ``cols`` top-left corners."""

    shape: tuple[int, int]
    tile: tuple[int, int]
    overlap: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @property
    def n_tiles(self) -> int:
        return len(self.rows) * len(self.cols)

    def boxes(self) -> list[tuple[int, int]]:
        """Top-left corners ``(row, col)``, row-major."""
        return [(r, c) for r in self.rows for c in self.cols]


def plan_tiles(shape: tuple[int, int], tile: int = 256, overlap: int = 32) -> TilePlan:
    """The tiles of an image of ``shape`` ``(H, W)`` (tiles shrink to the image if larger)."""
    if len(shape) != 2:
        raise ValueError(f"plan_tiles expects an image shape (H, W), got {shape}")
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    h, w = (int(s) for s in shape)
    th, tw = min(tile, h), min(tile, w)
    rows, cols = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    return TilePlan((h, w), (th, tw), overlap, tuple(rows), tuple(cols))


def _axis_weights(start: int, length: int, size: int, overlap: int, blend: str) -> np.ndarray:
    """1-D blending weights of one tile along one axis (the two sides treated alike)."""
    w = np.ones(length, dtype=np.float32)
    lo_inner, hi_inner = start > 0, start + length < size  # sides facing another tile
    if blend == "crop":
        if lo_inner:
            w[: overlap // 2] = 0.0
        if hi_inner:
            w[length - (overlap - overlap // 2):] = 0.0
    else:
        ramp = np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1)
        if lo_inner and overlap:
            w[:overlap] = np.minimum(w[:overlap], ramp)
        if hi_inner and overlap:
            w[length - overlap:] = np.minimum(w[length - overlap:], ramp[::-1])
    return w


def pixel_grid(model: nn.Module) -> int:
    """The shift (pixels) under which ``model`` is equivariant: the product of its
    ``PixelUnshuffle`` factors and of the strides of its convolutions and poolings (1 for a
    plain CNN). A net on the 2 x 2 unshuffled image gives the same output for a tile only if
    the tile starts on its 2 x 2 grid; a U-Net with two stride-2 levels on it, on an 8 x 8 one."""
    downsampling = (nn.PixelUnshuffle, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    return math.prod(layer_geometry(m)[2] for m in model.modules()
                     if isinstance(m, downsampling))


def default_overlap(model: nn.Module) -> int:
    """``r - 1`` for a network of receptive field ``r``: tiles then give the untiled result."""
    return receptive_field(model) - 1


def model_plan(model: nn.Module, shape: tuple[int, int], tile: int = 256,
               overlap: int | None = None) -> TilePlan:
    """The tiles :func:`predict_tiled` uses for ``model`` on an ``(H, W)`` image: those of
    :func:`plan_tiles` with ``overlap=None`` the :func:`default_overlap`, and for a net on
    unshuffled pixels (:func:`pixel_grid` ``g > 1``) the image padded to a multiple of ``g``
    and ``tile`` / ``overlap`` rounded to multiples of ``g`` (the tiles start on its grid)."""
    if overlap is None:
        overlap = default_overlap(model)
    grid = pixel_grid(model)
    if grid > 1:
        shape = tuple(-(-int(n) // grid) * grid for n in shape)
        tile, overlap = max(grid, tile // grid * grid), -(-overlap // grid) * grid
    return plan_tiles(shape, tile, overlap)


@torch.no_grad()
def predict_tiled(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    tile: int = 256,
    overlap: int | None = None,
    blend: str = "crop",
    batch_size: int = 4,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """``model`` applied to ``image`` ``(H, W)`` tile by tile; returns ``(H, W)`` float32.

    ``model`` maps ``(B, 1, h, w) -> (B, 1, h, w)`` and runs in eval mode (batch norm with
    its running statistics, so a tile is processed as it would be in the whole image; the
    previous mode is restored after). ``overlap=None``: :func:`default_overlap`.
    The tiles are :func:`model_plan`'s: for a net on unshuffled pixels they start on its
    grid, and the image is padded by edge replication as the net pads it in one pass.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if x.ndim != 2:
        raise ValueError(f"predict_tiled expects one image (H, W), got shape {x.shape}")
    if np.iscomplexobj(x):
        raise TypeError("predict_tiled expects a real image; take np.abs(x) first")
    x = x.astype(np.float32, copy=False)
    shape = x.shape
    plan = model_plan(model, shape, tile, overlap)
    overlap = plan.overlap
    if plan.shape != shape:
        x = np.pad(x, ((0, plan.shape[0] - shape[0]), (0, plan.shape[1] - shape[1])), mode="edge")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    out = np.zeros(x.shape, dtype=np.float32)
    weight = np.zeros(x.shape, dtype=np.float32)
    (h, w), (th, tw) = plan.shape, plan.tile
    wy = {r: _axis_weights(r, th, h, overlap, blend) for r in plan.rows}
    wx = {c: _axis_weights(c, tw, w, overlap, blend) for c in plan.cols}
    boxes = plan.boxes()
    was_training = model.training
    model.eval()
    try:
        for i in tqdm(range(0, len(boxes), batch_size), desc="tiles", disable=not progress,
                      leave=False):
            chunk = boxes[i : i + batch_size]
            batch = np.stack([x[r : r + th, c : c + tw] for r, c in chunk])[:, None]
            pred = model(torch.from_numpy(batch).to(device)).float().cpu().numpy()[:, 0]
            for (r, c), p in zip(chunk, pred, strict=True):
                wt = wy[r][:, None] * wx[c][None, :]
                out[r : r + th, c : c + tw] += wt * p
                weight[r : r + th, c : c + tw] += wt
    finally:
        model.train(was_training)
    np.divide(out, weight, out=out)  # in place: one image-sized array less
    return out[: shape[0], : shape[1]]
