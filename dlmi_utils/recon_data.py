"""Undersampled MR acquisitions simulated from magnitude images, for training and testing.

One image gives one example (:func:`simulate_acquisition`), with the course's notation::

    x      = |image| exp(i phi)                  (mri.add_smooth_phase: a realistic phase)
    s      = F x                                 (fully sampled k-space)
    s0     = M (s + n)                           (mri.undersample: mask M, noise n)
    x_u    = F^H s0                              (the zero-filled image)

:class:`UndersampledSlices` is a ``torch`` dataset of such examples. For training
(``fixed=False``) every epoch draws new masks and phases (``set_epoch``; the trainer calls it),
so the network never sees the same aliasing twice; for validation and testing (``fixed=True``)
each image keeps the same mask and phase forever. Everything comes from ``(seed, index,
epoch)``: the same seed gives the same data on any machine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from dlmi_utils.fourier import fft2c, ifft2c
from dlmi_utils.mri import add_smooth_phase, undersample
from dlmi_utils.sampling import make_mask

DEFAULT_MASK = "random"
DEFAULT_CENTER_FRACTION = 0.08


def _seed(*parts: int) -> int:
    """One 32-bit seed from several integers (independent streams for each tuple)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def simulate_acquisition(
    image: np.ndarray | torch.Tensor,
    acceleration: float,
    center_fraction: float = DEFAULT_CENTER_FRACTION,
    mask_kind: str = DEFAULT_MASK,
    seed: int = 0,
    noise_sigma: float = 0.0,
    phase_seed: int | None = None,
) -> dict[str, torch.Tensor]:
    """One undersampled acquisition of a magnitude ``image`` ``(H, W)``.

    ``seed`` draws the mask (and the noise); ``phase_seed`` (default: ``seed``) the smooth
    phase. Returns ``{"target": x, "x_u": x_u, "k0": s0, "mask": M}`` as torch tensors:
    ``(H, W)`` complex64 for the first three, ``(H, W)`` float32 0/1 for the mask.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 2 or np.iscomplexobj(image):
        raise ValueError(
            f"simulate_acquisition expects a real magnitude image (H, W), got shape "
            f"{image.shape} {image.dtype}"
        )
    x = add_smooth_phase(image.astype(np.float32), seed=seed if phase_seed is None else phase_seed)
    mask = make_mask(mask_kind, image.shape, acceleration, center_fraction, seed=seed)
    s0 = undersample(fft2c(x), mask, noise_sigma=noise_sigma, seed=_seed(seed, 1))
    return {
        "target": torch.from_numpy(x),
        "x_u": torch.from_numpy(ifft2c(s0)),
        "k0": torch.from_numpy(s0),
        "mask": torch.from_numpy(mask.astype(np.float32)),
    }


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random flip / transpose of a square image (the 8 symmetries of the square)."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1, :]
    if image.shape[0] == image.shape[1] and rng.random() < 0.5:
        image = image.T
    return np.ascontiguousarray(image)


class UndersampledSlices(Dataset):
    """A dataset of undersampled acquisitions of magnitude images ``(N, H, W)``.

    Items are the dicts of :func:`simulate_acquisition` (batches: ``(B, H, W)``), which
    :func:`dlmi_utils.train.recon_step` feeds to ``model(x_u, k0, mask)``.

    - ``fixed=True`` (validation, test): image ``i`` always gets the same mask and phase.
    - ``fixed=False`` (training): new ones each epoch (``set_epoch``), and with ``augment`` a
      random flip or transpose of the image too.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        acceleration: float,
        center_fraction: float = DEFAULT_CENTER_FRACTION,
        mask_kind: str = DEFAULT_MASK,
        seed: int = 0,
        fixed: bool = True,
        noise_sigma: float = 0.0,
        augment: bool = False,
    ):
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
        images = np.asarray(images)
        if images.ndim != 3 or np.iscomplexobj(images):
            raise ValueError(
                f"images must be real magnitude images (N, H, W), got shape {images.shape} "
                f"{images.dtype}; use dlmi_utils.data.load_brain_slices"
            )
        self.images = images.astype(np.float32, copy=False)
        self.acceleration = acceleration
        self.center_fraction = center_fraction
        self.mask_kind = mask_kind
        self.seed = seed
        self.fixed = fixed
        self.noise_sigma = noise_sigma
        self.augment = augment
        self.epoch = 0
        make_mask(mask_kind, self.images.shape[1:], acceleration, center_fraction, seed=0)

    def set_epoch(self, epoch: int) -> None:
        """Training data of epoch ``epoch`` (new masks and phases when not ``fixed``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        parts = (self.seed, index) if self.fixed else (self.seed, index, self.epoch + 1)
        image = self.images[index]
        if self.augment and not self.fixed:
            image = _augment(image, np.random.default_rng(_seed(*parts, 2)))
        return simulate_acquisition(
            image, self.acceleration, self.center_fraction, self.mask_kind,
            seed=_seed(*parts), noise_sigma=self.noise_sigma, phase_seed=_seed(*parts, 3),
        )
