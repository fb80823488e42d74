"""Training data for low-dose CT denoisers: pairs of low- and full-dose patches over doses.

A denoiser learns ``low -> full`` on patches of simulated pairs (:func:`simulate_dose_pair`:
the low-dose FBP at ``I0`` photons per ray, the full-dose FBP at ``dose_factor * I0``, the
setting of Yang et al., IEEE TMI 2018). The networks see HU through a linear map, not clipped::

    x = (HU - lo) / (hi - lo)          HU = lo + (hi - lo) x          (lo, hi) = NETWORK_WINDOW_HU

``(-1000, 1000)``: air at 0, water at 0.5, dense bone above 1; a noise SD of 50 HU is 0.025
(about 6 / 255). Nothing is clipped, since clipping the noise around air or bone would bias
it. A perceptual loss looks at the same images through a soft-tissue window
(:func:`hu_to_unit` with another ``window``), not clipped either.

:class:`DosePairPatches` simulates each training slice at ``draws_per_slice`` doses, ``I0``
log-uniform in ``i0_range`` (photons per ray), once (the FBP of a 512 x 512 slice is the slow
part), then cuts seeded patches of the same place in both images
(:class:`dlmi_utils.patches.PatchDataset`: new patches each epoch, random flips). At a given
``I0`` the noise depends on the anatomy and the pixel size (:mod:`dlmi_utils.ct.dose`), so the
range is wide: on the 512 x 512 slices it spans a low-dose noise SD of about 10 to 150 HU.

The slices are the real ones of :func:`dlmi_utils.data.list_ct_examples`: training on
:data:`TRAINING_SLICES` (two heads and a crop of a body slice at the spine), and
:data:`HELDOUT_SLICE`, the abdomen, never trained on (Yang et al. test on abdominal CT).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from dlmi_utils.ct.dose import simulate_dose_pair
from dlmi_utils.ct.noise_texture import BODY_THRESHOLD_HU
from dlmi_utils.ct.physics import ParallelBeamProjector
from dlmi_utils.data.ct import CTSlice, load_ct_slice
from dlmi_utils.patches import PatchDataset

NETWORK_WINDOW_HU = (-1000.0, 1000.0)
"""HU mapped to 0 and 1 for the networks (not clipped)."""
TRAINING_SLICES = ("ct_head", "ct_skull_base", "ct_small")
HELDOUT_SLICE = "ct_abdomen"
DEFAULT_I0_RANGE = (1e4, 1e6)
"""Photons per ray of the low-dose scans, drawn log-uniformly."""


def _check_window(window: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in window)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"window must be (lo, hi) in HU with lo < hi, got {tuple(window)}")
    return lo, hi


def hu_to_unit(hu, window: Sequence[float] = NETWORK_WINDOW_HU):
    """``(HU - lo) / (hi - lo)`` of an array or tensor in HU (any shape), not clipped; the
    kind of ``hu``, float."""
    lo, hi = _check_window(window)
    return (hu - lo) / (hi - lo)


def unit_to_hu(x, window: Sequence[float] = NETWORK_WINDOW_HU):
    """``lo + (hi - lo) x``: back to HU from :func:`hu_to_unit` (not clipped)."""
    lo, hi = _check_window(window)
    return lo + (hi - lo) * x


def load_slices(names: Sequence[str] = TRAINING_SLICES) -> dict[str, CTSlice]:
    """The CT examples ``names`` (:func:`dlmi_utils.data.load_ct_slice`), in HU; a
    ``RuntimeError`` names the decoder to install when one cannot be decoded here."""
    if isinstance(names, str):
        names = (names,)
    return {name: load_ct_slice(name) for name in names}


class DosePairPatches(Dataset):
    """``(low, full)`` patches ``(1, P, P)`` float32 in network units (:func:`hu_to_unit`).

    ``slices``: ``{name: CTSlice}`` (HU and pixel spacing, :func:`load_slices`); every slice is
    simulated ``draws_per_slice`` times, draw ``d`` of slice ``s`` at
    ``I0 = exp(U(log i0_range))`` drawn from the seed ``(seed, s, d)`` and noise from
    ``(seed, s, d, 1)``: :attr:`doses` lists ``(name, I0)`` per simulated pair and
    :attr:`low`, :attr:`full` hold the images in HU. ``n_patches`` patches per epoch are cut
    at the same place in both images of a pair, among the positions where at least
    ``min_inside`` of the patch is in the body (above -500 HU in the slice), and anywhere
    for ``anywhere_fraction`` of them (air must stay air); random flips.
    ``set_epoch`` draws new patches (``dlmi_utils.train.fit`` calls it).
    """

    def __init__(
        self,
        slices: Mapping[str, CTSlice],
        i0_range: tuple[float, float] = DEFAULT_I0_RANGE,
        draws_per_slice: int = 8,
        dose_factor: float = 4.0,
        patch_size: int = 64,
        n_patches: int = 1024,
        n_angles: int = 720,
        min_inside: float = 0.5,
        anywhere_fraction: float = 0.05,
        window: Sequence[float] = NETWORK_WINDOW_HU,
        seed: int = 0,
    ):
        if not slices:
            raise ValueError("DosePairPatches needs at least one slice")
        lo_i0, hi_i0 = (float(v) for v in i0_range)
        if not (0 < lo_i0 <= hi_i0 and math.isfinite(hi_i0)):
            raise ValueError(f"i0_range must be (low, high) photons per ray with 0 < low <= high, "
                             f"got {tuple(i0_range)} (a dose of 0 measures nothing)")
        if int(draws_per_slice) != draws_per_slice or draws_per_slice < 1:
            raise ValueError(f"draws_per_slice must be a positive integer, got {draws_per_slice}")
        self.window = _check_window(window)
        self.i0_range, self.dose_factor = (lo_i0, hi_i0), float(dose_factor)
        self.doses: list[tuple[str, float]] = []
        self.low: list[np.ndarray] = []
        self.full: list[np.ndarray] = []
        masks = []
        for s, (name, ct) in enumerate(slices.items()):
            if not isinstance(ct, CTSlice):
                raise TypeError(f"slices[{name!r}] must be a CTSlice (load_slices gives them), "
                                f"got {type(ct).__name__}")
            hu = torch.from_numpy(np.ascontiguousarray(ct.hu, dtype=np.float32))
            projector = ParallelBeamProjector(tuple(hu.shape), n_angles)
            for d in range(int(draws_per_slice)):
                rng = np.random.default_rng([seed, s, d])
                i0 = float(np.exp(rng.uniform(np.log(lo_i0), np.log(hi_i0))))
                pair = simulate_dose_pair(hu, ct.pixel_spacing, i0, dose_factor, projector,
                                          seed=int(np.random.default_rng([seed, s, d, 1])
                                                   .integers(2**31)))
                self.doses.append((name, i0))
                self.low.append(pair.low.numpy())
                self.full.append(pair.full.numpy())
                masks.append(ct.hu > BODY_THRESHOLD_HU)
        self.patches = PatchDataset(self.full, masks, patch_size, n_patches, min_inside,
                                    flips=True, seed=seed, anywhere_fraction=anywhere_fraction)

    def __len__(self) -> int:
        return len(self.patches)

    def set_epoch(self, epoch: int) -> None:
        """Draw another set of patches."""
        self.patches.set_epoch(epoch)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` in HU: ``(low, full)``, each ``(P, P)`` float32."""
        i, row, col, fh, fv = self.patches.locate(index)
        p = self.patches.patch_size
        out = []
        for image in (self.low[i], self.full[i]):
            patch = image[row : row + p, col : col + p]
            patch = patch[:, ::-1] if fh else patch
            out.append(np.ascontiguousarray(patch[::-1] if fv else patch))
        return out[0], out[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        low, full = self.pair(index)
        return (torch.from_numpy(hu_to_unit(low, self.window))[None],
                torch.from_numpy(hu_to_unit(full, self.window))[None])


@torch.no_grad()
def denoise_hu(model: nn.Module, hu, window: Sequence[float] = NETWORK_WINDOW_HU,
               device: torch.device | str = "cpu"):
    """A denoiser trained in network units applied to images in HU: ``(H, W)`` or
    ``(B, H, W)``, numpy or torch, returned in HU of the same kind and shape (float32)."""
    as_numpy = not isinstance(hu, torch.Tensor)
    x = torch.as_tensor(np.asarray(hu, dtype=np.float32) if as_numpy else hu).float()
    if x.ndim not in (2, 3):
        raise ValueError(f"expected a slice (H, W) or a batch (B, H, W) in HU, got shape "
                         f"{tuple(x.shape)}")
    batch = x.reshape(-1, 1, *x.shape[-2:]).to(device)
    was_training = model.training
    model.eval()
    try:
        out = unit_to_hu(model(hu_to_unit(batch, window)), window)
    finally:
        model.train(was_training)
    out = out.reshape(x.shape).cpu()
    return out.numpy() if as_numpy else out
