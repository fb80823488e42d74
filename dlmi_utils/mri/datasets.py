"""Undersampled MR acquisitions simulated from magnitude images, for training and testing.

One image gives one example (:func:`simulate_acquisition`), with the course's notation::

    x      = |image| exp(i phi)                  (mri.add_smooth_phase: a realistic phase)
    y      = M (F x + n)                         (MRIForward(M).measure: mask M, noise n)
    x_u    = F^H y = A^H y                       (the zero-filled image)

:class:`UndersampledSlices` is a ``torch`` dataset of such examples. For training
(``fixed=False``) every epoch draws new masks and phases (``set_epoch``; the trainer calls it),
so the network never sees the same aliasing twice; for validation and testing (``fixed=True``)
each image keeps the same mask and phase forever. Everything comes from ``(seed, index,
epoch)``: the same seed gives the same data on any machine.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from skimage.transform import resize
from torch import nn
from torch.utils.data import Dataset

from dlmi_utils.data import load_brain_slices
from dlmi_utils.data.dicom import list_dicom_examples, load_dicom_example
from dlmi_utils.data.other_images import load_other_images
from dlmi_utils.metrics import psnr, ssim
from dlmi_utils.mri import cs
from dlmi_utils.mri.physics import MRIForward, add_smooth_phase
from dlmi_utils.mri.sampling import make_mask

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
    phase. Returns ``{"target": x, "x_u": x_u, "y": y, "mask": M}`` as torch tensors:
    ``(H, W)`` complex64 for the first three, ``(H, W)`` float32 0/1 for the mask; the
    operator is ``MRIForward(mask)``.
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
    physics = MRIForward(mask)
    y = physics.measure(x, noise_sigma, seed=_seed(seed, 1))
    return {
        "target": torch.from_numpy(x),
        "x_u": torch.from_numpy(physics.A_adjoint(y)),
        "y": torch.from_numpy(y),
        "mask": torch.from_numpy(mask.astype(np.float32)),
    }


def _augment(image: np.ndarray, rng: np.random.Generator, gamma: float = 1.0) -> np.ndarray:
    """A random flip / transpose of a square image (the 8 symmetries of the square), then,
    for ``gamma > 1``, a random contrast ``image ** g`` with ``log g`` uniform in
    ``[-log gamma, log gamma]`` (on images in ``[0, 1]``: dark tissue brightened or darkened)."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1, :]
    if image.shape[0] == image.shape[1] and rng.random() < 0.5:
        image = image.T
    if gamma > 1:
        g = float(np.exp(rng.uniform(-np.log(gamma), np.log(gamma))))
        image = np.clip(image, 0, None) ** g
    return np.ascontiguousarray(image, dtype=np.float32)


class UndersampledSlices(Dataset):
    """A dataset of undersampled acquisitions of magnitude images ``(N, H, W)``.

    Items are the dicts of :func:`simulate_acquisition` (batches: ``(B, H, W)``), which
    :func:`recon_step` feeds to ``model(y, MRIForward(mask))``.

    - ``fixed=True`` (validation, test): image ``i`` always gets the same mask and phase.
    - ``fixed=False`` (training): new ones each epoch (``set_epoch``), and with ``augment`` a
      random flip or transpose of the image too, and a random contrast ``image ** g`` when
      ``gamma > 1`` (``1 / gamma <= g <= gamma``, log-uniform).
    - ``crop_rows``: simulate on a random window of that many rows (the read-out direction,
      fully sampled) instead of the whole image. The aliasing runs along the columns (the
      phase-encoding direction, ``W`` kept whole), so it looks the same, for half the
      compute with ``crop_rows = H / 2``: cheaper training.
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
        crop_rows: int | None = None,
        gamma: float = 1.0,
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
        if gamma < 1:
            raise ValueError(f"gamma must be >= 1 (1: no contrast change), got {gamma}")
        self.gamma = gamma
        height = self.images.shape[1]
        if crop_rows is not None and not 8 <= crop_rows <= height:
            raise ValueError(f"crop_rows must be between 8 and the image height {height}, "
                             f"got {crop_rows}")
        self.crop_rows = crop_rows
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
        rng = np.random.default_rng(_seed(*parts, 2))
        if self.augment and not self.fixed:
            image = _augment(image, rng, self.gamma)
        if self.crop_rows is not None:
            top = int(rng.integers(0, image.shape[0] - self.crop_rows + 1))
            image = image[top : top + self.crop_rows]
        return simulate_acquisition(
            image, self.acceleration, self.center_fraction, self.mask_kind,
            seed=_seed(*parts), noise_sigma=self.noise_sigma, phase_seed=_seed(*parts, 3),
        )


ORIENTATIONS = ("axial", "coronal", "sagittal")
VAL_SEED = 1
TEST_SEED = 2


def to_training_size(image: np.ndarray, size: int = 256) -> np.ndarray:
    """A magnitude image ``(H, W)`` at the networks' training size: the centred square crop
    of side ``min(H, W)``, resized (anti-aliased) to ``(size, size)`` float32."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected one image (H, W), got shape {image.shape}")
    h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(square)
    return resize(square, (size, size), anti_aliasing=side > size).astype(np.float32)


def pydicom_data_mr_images(size: int = 256) -> dict[str, np.ndarray]:
    """Every MR scan of the ``pydicom-data`` package, one image each (the curated examples of
    :mod:`dlmi_utils.data.dicom` whose file comes from it; the package also holds other
    encodings of the same scans), at the training size (:func:`to_training_size`):
    ``{name: (size, size) float32 in [0, 1]}``. Never used for training: the networks'
    out-of-distribution test."""
    return {e.name: to_training_size(load_dicom_example(e.name), size)
            for e in list_dicom_examples(decodable_only=True)
            if e.modality == "MR" and "data_store" in e.path.parts}


def image_test_examples(images: dict[str, np.ndarray], acceleration: float,
                        size: int = 256) -> dict[str, dict[str, torch.Tensor]]:
    """One fixed test acquisition of each magnitude image (:func:`simulate_acquisition` at
    :func:`to_training_size`, seed ``TEST_SEED + i`` for the ``i``-th image): the examples of
    ``benchmarks/recon.py --image`` / ``--pydicom-mr`` and of Lab 03, ``{name: example}``."""
    return {name: simulate_acquisition(to_training_size(image, size), acceleration,
                                       seed=TEST_SEED + i)
            for i, (name, image) in enumerate(images.items())}


def recon_step(model: nn.Module, batch: dict, device: torch.device | str):
    """The trainer's step for these examples (:func:`dlmi_utils.train.fit`, ``step=``):
    dict batch ``{"y", "mask", "target"}`` -> ``(model(y, MRIForward(mask)), target)``."""
    missing = {"y", "mask", "target"} - set(batch)
    if missing:
        raise KeyError(
            f"recon_step: the batch lacks {sorted(missing)}; batches come from "
            "UndersampledSlices (dlmi_utils.mri.datasets)"
        )
    b = {k: batch[k].to(device) for k in ("y", "mask", "target")}
    return model(b["y"], MRIForward(b["mask"])), b["target"]


def brain_slices_dataset(
    split: str,
    acceleration: float,
    orientations: tuple[str, ...] | list[str] = ORIENTATIONS,
    seed: int | None = None,
    fixed: bool | None = None,
    size: int = 256,
    other_images: bool = False,
    **kwargs,
) -> UndersampledSlices:
    """Undersampled brain slices (:func:`dlmi_utils.data.load_brain_slices`) of one split.

    The slices of every orientation in ``orientations`` are stacked in that order. By
    default the validation and test sets are ``fixed`` with their own seeds
    (:data:`VAL_SEED`, :data:`TEST_SEED`) and the training set changes every epoch (seed 0).
    Other keyword arguments go to :class:`UndersampledSlices` (``center_fraction``,
    ``noise_sigma``, ``augment``...). ``other_images`` appends the images of the same split of
    :func:`load_other_images` (other anatomy, modalities and photographs) after the brain's.
    """
    if isinstance(orientations, str):
        orientations = (orientations,)
    images = [load_brain_slices(split, o, size=size) for o in orientations]
    if other_images:
        images.append(load_other_images(split, size))
    images = np.concatenate(images)
    if fixed is None:
        fixed = split != "train"
    if seed is None:
        seed = {"val": VAL_SEED, "test": TEST_SEED}.get(split, 0)
    return UndersampledSlices(images, acceleration, seed=seed, fixed=fixed, **kwargs)


# The best compressed-sensing baseline for these acquisitions (brain slices, 1D random
# Cartesian masks, centre fraction 0.08): TV beat FISTA-wavelet at every lambda of the grid of
# ``python benchmarks/recon.py --tune`` (validation slices, 100 iterations), R -> (method, lam).
CS_BASELINE: dict[int, tuple[str, float]] = {4: ("tv", 5e-3), 8: ("tv", 1e-2)}


def cs_baseline(physics, y, acceleration: int, n_iter: int = 100) -> np.ndarray:
    """The tuned CS reconstruction (:data:`CS_BASELINE`) of k-space ``y`` ``(H, W)``.

    ``physics`` an :class:`~dlmi_utils.mri.MRIForward`; returns the image ``(H, W)`` complex.
    """
    if acceleration not in CS_BASELINE:
        raise ValueError(
            f"the CS baseline is tuned for accelerations {sorted(CS_BASELINE)}, got "
            f"{acceleration}; call dlmi_utils.mri.cs.tv_reconstruction with your own lam"
        )
    method, lam = CS_BASELINE[acceleration]
    solver = {"tv": cs.tv_reconstruction, "fista_wavelet": cs.fista_wavelet}[method]
    return solver(physics, y, lam=lam, n_iter=n_iter).image


# ----------------------------------------------------------------------------- comparisons
Example = dict[str, torch.Tensor]


def zero_filled_recon(example: Example) -> torch.Tensor:
    """``x_u = A^H y``, already in the example: ``(H, W)`` complex."""
    return example["x_u"]


def cs_recon(acceleration: int, n_iter: int = 100):
    """``example -> image``: the tuned CS baseline (:func:`cs_baseline`)."""
    def run(example: Example) -> np.ndarray:
        physics = MRIForward(example["mask"].numpy())
        return cs_baseline(physics, example["y"].numpy(), acceleration, n_iter)

    return run


def network_recon(model: torch.nn.Module, **options):
    """``example -> image``: ``model(y, MRIForward(mask), **options)`` on one example (a
    batch of one), no gradients; ``(H, W)`` complex on the CPU."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def run(example: Example) -> torch.Tensor:
        physics = MRIForward(example["mask"].to(device))
        return model(example["y"][None].to(device), physics, **options)[0].cpu()

    return run


def score_methods(methods: dict, examples, repeat: int = 1) -> dict[str, dict[str, float]]:
    """Mean PSNR (dB) and SSIM of each method over ``examples``, and its seconds per slice.

    ``methods``: ``{name: example -> image}`` (such as :func:`zero_filled_recon`,
    :func:`cs_recon`, :func:`network_recon`); scores on magnitudes with ``data_range`` the
    reference's maximum. ``seconds`` is the median over the examples of the best of
    ``repeat`` runs. Returns ``{name: {"psnr", "ssim", "seconds", "per_slice_psnr"}}``.
    """
    out = {}
    for name, method in methods.items():
        rows = []
        for ex in examples:
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                image = method(ex)
                best = min(best, time.perf_counter() - t0)
            ref = ex["target"].abs().numpy()
            est = np.abs(image.numpy() if isinstance(image, torch.Tensor) else image)
            dr = float(ref.max())
            rows.append((psnr(ref, est, data_range=dr), ssim(ref, est, data_range=dr), best))
        a = np.array(rows)
        out[name] = {"psnr": float(a[:, 0].mean()), "ssim": float(a[:, 1].mean()),
                     "seconds": float(np.median(a[:, 2])), "per_slice_psnr": a[:, 0].tolist()}
    return out
