"""The two image sets of the GAN lab, in ``[-1, 1]`` (the range of the generator's ``tanh``).

- :func:`brain_images`: ``64x64`` slices of the MNI152 T1 template in all three orientations
  (axial, coronal, sagittal) at 3 mm pixels, from :func:`dlmi_utils.data.load_brain_slices`;
  held-out slices interleaved with the training ones, 5 mm or more from any of them. It is
  *one* brain: about 190 training slices, and the held-out slices are other slices of the
  same template, not other subjects.
- :func:`mammo_patches`: ``64x64`` patches at 0.4 mm (25.6 mm of tissue) lying wholly inside
  the breast of the CBIS-DDSM films (:class:`dlmi_utils.patches.PatchDataset`); training
  patches from the benign case, held-out ones from the malignant case.
- :class:`ImageSampler`: random batches of a fixed image set with augmentation (flips, small
  rotations, scalings and shifts): what a GAN's training loop draws its real images from.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from dlmi_utils.data import load_brain_slices, load_mammograms
from dlmi_utils.patches import PatchDataset

BRAIN_ORIENTATIONS = ("axial", "coronal", "sagittal")
BRAIN_PIXEL_SIZE_MM_AT_64 = 3.0  # the brain (181 mm at most) spans 60 of 64 pixels
MAMMO_PIXEL_SIZE_MM = 0.4


def to_gan_range(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> ``[-1, 1]`` float32 tensor."""
    return torch.as_tensor(np.asarray(x), dtype=torch.float32) * 2.0 - 1.0


def from_gan_range(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` -> ``[0, 1]`` (clipped), for display and for ``[0, 1]`` metrics."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


BRAIN_PERIOD = 30  # slices (1 mm apart): 18 training, 4 gap, 4 held out, 4 gap
BRAIN_SPLIT = {"train": (0, 18), "heldout": (22, 26)}


def brain_images(split: str = "train", size: int = 64,
                 orientations: tuple[str, ...] = BRAIN_ORIENTATIONS) -> torch.Tensor:
    """Brain slices ``(N, 1, size, size)`` float32 in ``[-1, 1]``, orientations concatenated.

    ``split``: ``"train"``, ``"heldout"`` or ``"all"``. A GAN learns the distribution of the
    slices of the whole brain, so its held-out slices must come from the whole brain too
    (the slab splits of ``load_brain_slices`` hold out the middle of the brain, and train on
    the rest): along each slicing axis, in every period of 30 slices (30 mm), slices 0-17
    are for training and 22-25 are held out, so a held-out slice is 5 mm or more from any
    training slice. Pixel size ``3 mm * 64 / size``; each slice is centred in a larger
    square and cropped to ``size`` (the template's empty margin goes, the brain stays whole).
    """
    if size not in (32, 64, 128):
        raise ValueError(f"size must be 32, 64 or 128, got {size}")
    if split not in (*BRAIN_SPLIT, "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    pixel = BRAIN_PIXEL_SIZE_MM_AT_64 * 64 / size
    padded = 2 * math.ceil(233 / pixel / 2) + 2  # the longest slice side is 233 mm
    lo = (padded - size) // 2
    stacks = []
    for o in orientations:
        stack = load_brain_slices("all", o, size=padded, pixel_size_mm=pixel)
        phase = np.arange(len(stack)) % BRAIN_PERIOD
        if split != "all":
            start, stop = BRAIN_SPLIT[split]
            stack = stack[(phase >= start) & (phase < stop)]
        stacks.append(stack[:, lo:lo + size, lo:lo + size])
    return to_gan_range(np.concatenate(stacks))[:, None]


def mammo_patches(split: str = "train", n: int = 2048, size: int = 64, seed: int = 0,
                  pixel_size_mm: float = MAMMO_PIXEL_SIZE_MM) -> torch.Tensor:
    """``n`` random patches ``(n, 1, size, size)`` float32 in ``[-1, 1]``, wholly in the breast.

    From all views of the cases of ``split`` (``"train"``: benign case, ``"test"``: malignant
    case), with random horizontal and vertical flips; the same ``seed`` gives the same patches.
    """
    films = load_mammograms(split, pixel_size_mm)
    patches = PatchDataset([m.image for m in films], [m.breast_mask for m in films],
                           patch_size=size, n_patches=n, min_inside=1.0, flips=True, seed=seed)
    return to_gan_range(np.stack([patches.patch(i) for i in range(n)]))[:, None]


class ImageSampler:
    """``sampler(n, generator)`` -> ``(n, 1, H, W)`` random images of a set, augmented.

    Each draw picks images uniformly (with replacement) and applies, per image: a horizontal
    flip with probability 1/2 (``flip``), a rotation uniform in ``+-max_rotation_deg``, a
    scaling uniform in ``1 +- max_scale`` and a shift uniform in ``+-max_shift_px`` pixels
    (bilinear; the uncovered border is ``background``). Augmentation multiplies a small data
    set, but also teaches the GAN the augmented images: keep it to plausible changes.
    """

    def __init__(self, images: torch.Tensor, flip: bool = True, max_rotation_deg: float = 0.0,
                 max_scale: float = 0.0, max_shift_px: float = 0.0, background: float = -1.0):
        images = torch.as_tensor(images, dtype=torch.float32)
        if images.ndim != 4 or images.shape[1] != 1 or len(images) == 0:
            raise ValueError(f"expected a non-empty (N, 1, H, W) set, got {tuple(images.shape)}")
        if max_rotation_deg < 0 or not 0 <= max_scale < 1 or max_shift_px < 0:
            raise ValueError("rotation, scale (< 1) and shift bounds must be non-negative")
        self.images, self.flip, self.background = images, flip, background
        self.rotation = math.radians(max_rotation_deg)
        self.scale, self.shift = max_scale, max_shift_px

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        def uniform(bound: float) -> torch.Tensor:  # n draws in [-bound, bound]
            return (2 * torch.rand(n, generator=generator) - 1) * bound

        batch = self.images[torch.randint(0, len(self.images), (n,), generator=generator)]
        if self.flip:
            flip = torch.rand(n, generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        if self.rotation == 0 and self.scale == 0 and self.shift == 0:
            return batch
        angle, scale = uniform(self.rotation), 1 + uniform(self.scale)
        shift = torch.stack([uniform(self.shift), uniform(self.shift)], 1) * 2 / batch.shape[-1]
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        # sample (x - background) so that the zeros padded in are the background
        out = F.grid_sample(batch - self.background, grid, align_corners=False)
        return out + self.background


def brain_sampler(images: torch.Tensor) -> ImageSampler:
    """The brain slices' augmentation: flips, +-10 degrees, +-8 % scale, +-3 pixel shifts."""
    return ImageSampler(images, flip=True, max_rotation_deg=10.0, max_scale=0.08,
                        max_shift_px=3.0)


def mammo_sampler(images: torch.Tensor) -> ImageSampler:
    """The mammogram patches' augmentation: flips only (patches already drawn anywhere)."""
    return ImageSampler(images, flip=True)


GAN_DATASETS = ("brain", "mammo")


def load_gan_dataset(name: str) -> tuple[torch.Tensor, torch.Tensor, ImageSampler]:
    """``(train, heldout, sampler)`` of a GAN data set: ``"brain"`` or ``"mammo"``.

    brain: the training slices and the interleaved held-out slices (same template); mammo:
    4096 patches of the benign case, 256 of the malignant one. ``sampler`` augments ``train``.
    """
    if name == "brain":
        train, heldout = brain_images("train"), brain_images("heldout")
        return train, heldout, brain_sampler(train)
    if name == "mammo":
        train, heldout = mammo_patches("train", 4096, seed=0), mammo_patches("test", 256, seed=1)
        return train, heldout, mammo_sampler(train)
    raise ValueError(f"unknown GAN data set {name!r}; choose one of {GAN_DATASETS}")
