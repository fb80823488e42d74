"""Mammogram patches and crops for the denoisers: noisy training pairs, fixed evaluation crops.

- :class:`NoisyPatches` pairs each clean patch of a :class:`~dlmi_utils.patches.PatchDataset`
  with a noisy copy, ``(noisy, target)``, the batches that ``dlmi_utils.train.fit`` expects
  (``pair_step``); the noise is a noise model of :mod:`dlmi_utils.noise`, so a denoiser of
  the Anscombe domain gets ``(anscombe(y), E[anscombe(y) | x])``;
- :func:`breast_crops`: fixed, non-overlapping crops inside the breast, to validate and
  benchmark on;
- :func:`salience_map` and :func:`salient_crop`: where the small details are (specks,
  margins), to look at what a denoiser erases.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from dlmi_utils.noise import NoiseModel
from dlmi_utils.patches import PatchDataset, window_fraction


class NoisyPatches(Dataset):
    """``(noisy, target)`` pairs, each ``(1, P, P)`` float32, from a :class:`PatchDataset`.

    ``noisy = noise.stabilise(noise(clean, generator))`` and
    ``target = noise.stable_target(clean)`` for a noise model ``noise``
    (:class:`~dlmi_utils.noise.GaussianNoise`: ``(y, x)``;
    :class:`~dlmi_utils.noise.PoissonNoise`: ``(anscombe(y), E[anscombe(y) | x])``). The
    generator is seeded by ``(seed, epoch, index)``, so a patch keeps the same noise when read
    twice. ``with_level=True`` gives ``((noisy, sigma), target)`` instead, ``sigma`` the std of
    the noise the network sees (drawn from the range of a blind model), for a
    :class:`~dlmi_utils.denoising.models.NoiseAwareDenoiser`.
    """

    def __init__(self, patches: PatchDataset, noise: NoiseModel, with_level: bool = False):
        self.patches, self.noise, self.with_level = patches, noise, with_level

    def __len__(self) -> int:
        return len(self.patches)

    def set_epoch(self, epoch: int) -> None:
        self.patches.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.patches[index]
        g = torch.Generator().manual_seed(int(self.patches.rng(index, 1).integers(2**62)))
        noisy, level = self.noise.noisy_and_level(clean, g)
        noisy = self.noise.stabilise(noisy).float()
        target = self.noise.stable_target(clean).float()
        if self.with_level:
            return (noisy, torch.tensor(level, dtype=torch.float32)), target
        return noisy, target


FILM_BORDER_MARGIN = 16  # pixels: the scanned film's edge (bright strips, chest wall) stays out


def breast_crops(mask: np.ndarray, size: int, n: int, min_inside: float = 1.0,
                 margin: int = 0) -> list[tuple[int, int]]:
    """Top-left corners ``(row, col)`` of ``n`` fixed, non-overlapping ``size x size`` crops
    with at least ``min_inside`` of their pixels in ``mask`` ``(H, W)`` and none within
    ``margin`` pixels of the image's border (:data:`FILM_BORDER_MARGIN` for evaluation: the
    breast meets the film's edge at the chest wall, where scanners leave bright strips).

    No randomness (evaluation crops must not move): candidates on a grid of step
    ``size // 8``; the first is the one nearest the centroid of the mask, each next one the
    candidate farthest from those taken (farthest-point sampling) that overlaps none of them.
    """
    m = np.asarray(mask, dtype=bool)
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin}")
    frac = window_fraction(m, size)
    if margin:
        keep = np.zeros(frac.shape, bool)
        keep[margin : frac.shape[0] - margin, margin : frac.shape[1] - margin] = True
        frac = np.where(keep, frac, -1.0)
    step = max(1, size // 8)
    rows, cols = np.nonzero(frac[::step, ::step] >= min_inside - 1e-12)
    cand = np.stack([rows * step, cols * step], axis=1)
    chosen: list[np.ndarray] = []
    if len(cand):
        centre = np.argwhere(m).mean(axis=0) - size / 2
        chosen.append(cand[np.argmin(np.abs(cand - centre).sum(axis=1))])
    while 0 < len(chosen) < n:
        gap = np.min([np.abs(cand - c).max(axis=1) for c in chosen], axis=0)  # Chebyshev
        best = int(np.argmax(gap))
        if gap[best] < size:  # every candidate left overlaps a crop already taken
            break
        chosen.append(cand[best])
    if len(chosen) < n:
        raise ValueError(
            f"only {len(chosen)} non-overlapping {size}x{size} crops have {min_inside:.0%} of "
            f"their pixels in the mask and {margin} px from the border, {n} asked: lower size, "
            "n or min_inside"
        )
    return [(int(r), int(c)) for r, c in chosen]


SALIENT_KINDS = ("spots", "edges")


def salience_map(image: np.ndarray, kind: str = "spots", radius: float = 3.0) -> np.ndarray:
    """Where small details of ``image`` ``(H, W)`` lie, ``(H, W)`` float64 >= 0.

    - ``"spots"``: the white top-hat ``x - opening(x)`` with a ``(2 radius + 1)``-pixel
      square: what is brighter than its surroundings and smaller than the square
      (microcalcification-like specks; at 0.2 mm, ``radius=3`` keeps specks under ~1.4 mm);
    - ``"edges"``: the gradient magnitude after a Gaussian blur of std ``radius`` pixels
      (tissue margins, the outline of a mass).

    A search aid, not a detector: the films carry no annotation of where the lesions are.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"salience_map expects an image (H, W), got shape {x.shape}")
    if kind not in SALIENT_KINDS:
        raise ValueError(f"kind must be one of {SALIENT_KINDS}, got {kind!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive (pixels), got {radius}")
    if kind == "spots":
        return ndimage.white_tophat(x, size=2 * int(round(radius)) + 1)
    return ndimage.gaussian_gradient_magnitude(x, sigma=float(radius))


def salient_crop(image: np.ndarray, mask: np.ndarray, size: int, kind: str = "spots",
                 radius: float = 3.0, min_inside: float = 1.0, margin: int | None = None
                 ) -> tuple[int, int]:
    """Top-left corner ``(row, col)`` of a ``size x size`` crop (at least ``min_inside`` of it
    in ``mask``) centred, as far as the image allows, on the pixel of highest
    :func:`salience_map` inside the breast and away from its border: the strongest speck
    (``"spots"``) or margin (``"edges"``). Candidates lie at least ``margin`` pixels (default
    ``4 radius``) inside the mask and from the film's edges, where the skin line, the chest
    wall and scanner borders would win. Deterministic."""
    m = np.asarray(mask, dtype=bool)
    if m.shape != np.shape(image):
        raise ValueError(f"mask has shape {m.shape}, the image {np.shape(image)}")
    score = salience_map(image, kind, radius)
    margin = max(1, int(4 * radius)) if margin is None else int(margin)
    if margin < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin}")
    # binary_erosion treats the outside of the array as background: away from the film edge too
    inner = ndimage.binary_erosion(m, iterations=margin) if margin else m.copy()
    frac = window_fraction(m, size)
    if not (frac >= min_inside - 1e-12).any():
        raise ValueError(f"no {size}x{size} crop has {min_inside:.0%} of its pixels in the mask")
    half = size // 2
    order = np.argsort(np.where(inner, score, -np.inf), axis=None)[::-1]
    for flat in order:
        r, c = divmod(int(flat), m.shape[1])
        if not inner[r, c]:
            break
        top = min(max(r - half, 0), m.shape[0] - size)
        left = min(max(c - half, 0), m.shape[1] - size)
        if frac[top, left] >= min_inside - 1e-12:
            return int(top), int(left)
    raise ValueError(f"no {size}x{size} crop inside the mask contains a {kind} candidate: "
                     "lower size or min_inside")
