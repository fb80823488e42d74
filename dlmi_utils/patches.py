"""Patches cut from large images (mammograms) inside a mask: flipped, seeded.

A mammogram is ~1100 x 700 pixels at 0.2 mm, and most of it is background; a network learns
from small patches drawn where there is tissue. :class:`PatchDataset` draws ``patch_size``
squares uniformly among the positions where at least ``min_inside`` of the patch lies in the
mask (the breast), from all images at once (larger images give more patches), with random
horizontal / vertical flips; :func:`window_fraction` is the share of the mask in every window.

Every draw depends only on ``(seed, epoch, index)``: the same index gives the same patch in
every run, in any order, in any DataLoader worker; ``set_epoch`` (called by
``dlmi_utils.train.fit``) draws a new set for the next epoch. The denoisers pair the patches
with noise (``dlmi_utils.denoising.patches``), the GAN takes them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def window_fraction(mask: np.ndarray, size: int) -> np.ndarray:
    """Fraction of ``True`` in each ``size x size`` window of ``mask`` ``(H, W)`` bool.

    Returns ``(H - size + 1, W - size + 1)`` float64; entry ``[i, j]`` is for the window whose
    top-left pixel is ``(i, j)``. Computed with an integral image (summed-area table).
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"the mask must be 2-D (H, W), got shape {m.shape}")
    if size < 1 or size > min(m.shape):
        raise ValueError(f"size must be in [1, {min(m.shape)}] for a mask of shape {m.shape}")
    s = np.zeros((m.shape[0] + 1, m.shape[1] + 1), dtype=np.int64)
    s[1:, 1:] = np.cumsum(np.cumsum(m, axis=0), axis=1)
    total = s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]
    return total / float(size * size)


class PatchDataset(Dataset):
    """``n_patches`` random ``(1, P, P)`` float32 patches of ``images`` (each ``(H, W)``).

    ``masks`` (bool, same shapes; ``None``: everywhere) restricts the patches to those with at
    least ``min_inside`` of their pixels in the mask. ``flips``: a random horizontal and a
    random vertical flip each (the anatomy of a breast patch has no preferred orientation).

    ``edge_fraction`` of the patches (on average) are drawn among the valid positions that
    touch the image's border instead of among all of them. The film ends at a mammogram's
    chest wall, often with a bright line along it, and a uniform draw puts that border in
    about one patch in 140 (64 px patches of the training films at 0.2 mm); a crop or tile
    there (every evaluation crop of ``breast_crops`` lies against it) needs the net to have
    seen it. ``0`` keeps the uniform draw, patch for patch.

    ``edge_lines`` of the patches that touch the border (on average) get a film-edge line
    painted along that border before the flips: its outer 1 to ``max_line_width`` pixels,
    each row or column of them set to its own constant drawn uniformly in ``line_range``.
    Digitized films often end in such a bright strip (the scanner's view of the film's
    edge), of a width and brightness that vary from film to film; a net that saw only its
    training films' own strips removes a strip of another width as if it were noise.
    Drawn from a stream of their own: ``0`` keeps every patch as it was.

    ``anywhere_fraction`` of the patches (on average) are drawn among *all* positions of the
    images, the masks ignored: mostly the black film around the breast, its labels and
    borders. A net that saw only the breast leaves noise there (it never learned that flat
    black film is flat), which is what a whole film, denoised in tiles, shows. Decided and
    placed from a stream of their own: ``0`` keeps every patch as it was.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray] | None = None,
        patch_size: int = 48,
        n_patches: int = 1024,
        min_inside: float = 0.9,
        flips: bool = True,
        seed: int = 0,
        edge_fraction: float = 0.0,
        edge_lines: float = 0.0,
        max_line_width: int = 3,
        line_range: tuple[float, float] = (0.5, 1.0),
        anywhere_fraction: float = 0.0,
    ):
        if len(images) == 0:
            raise ValueError("PatchDataset needs at least one image")
        if masks is not None and len(masks) != len(images):
            raise ValueError(f"got {len(images)} images but {len(masks)} masks")
        if not 0.0 <= min_inside <= 1.0:
            raise ValueError(f"min_inside is a fraction in [0, 1], got {min_inside}")
        if n_patches < 1:
            raise ValueError(f"n_patches must be positive, got {n_patches}")
        if not 0.0 <= edge_fraction <= 1.0:
            raise ValueError(f"edge_fraction is a fraction in [0, 1], got {edge_fraction}")
        if not 0.0 <= anywhere_fraction <= 1.0:
            raise ValueError(f"anywhere_fraction is a fraction in [0, 1], got {anywhere_fraction}")
        if not 0.0 <= edge_lines <= 1.0:
            raise ValueError(f"edge_lines is a fraction in [0, 1], got {edge_lines}")
        if not 1 <= max_line_width < patch_size:
            raise ValueError(f"max_line_width must be in [1, patch_size), got {max_line_width}")
        lo, hi = (float(v) for v in line_range)
        if not lo <= hi:
            raise ValueError(f"line_range must be (low, high) with low <= high, got {line_range}")
        self.edge_lines, self.max_line_width, self.line_range = (
            float(edge_lines), int(max_line_width), (lo, hi))
        self.images = [np.ascontiguousarray(im, dtype=np.float32) for im in images]
        self.patch_size, self.n_patches = int(patch_size), int(n_patches)
        self.flips, self.seed, self.epoch = flips, int(seed), 0
        self.edge_fraction = float(edge_fraction)
        self.anywhere_fraction = float(anywhere_fraction)
        self._corners: list[np.ndarray] = []  # flat indices of valid top-left corners
        self._edge_corners: list[np.ndarray] = []  # those whose patch touches the border
        self._valid_shapes: list[tuple[int, int]] = []  # (rows, cols) of valid corners
        for i, im in enumerate(self.images):
            if im.ndim != 2:
                raise ValueError(f"image {i} must be 2-D (H, W), got shape {im.shape}")
            if min(im.shape) < self.patch_size:
                raise ValueError(
                    f"image {i} ({im.shape}) is smaller than patch_size={self.patch_size}"
                )
            mask = np.ones(im.shape, bool) if masks is None else np.asarray(masks[i], bool)
            if mask.shape != im.shape:
                raise ValueError(f"mask {i} has shape {mask.shape}, its image {im.shape}")
            valid = window_fraction(mask, self.patch_size) >= min_inside - 1e-12
            self._corners.append(np.flatnonzero(valid).astype(np.int64))
            border = np.zeros(valid.shape, bool)
            border[[0, -1], :] = border[:, [0, -1]] = True
            self._edge_corners.append(np.flatnonzero(valid & border).astype(np.int64))
            self._valid_shapes.append(valid.shape)
        counts = np.array([len(c) for c in self._corners])
        if counts.sum() == 0:
            raise ValueError(
                f"no {self.patch_size}x{self.patch_size} patch has {min_inside:.0%} of its "
                "pixels inside the masks: lower min_inside or patch_size"
            )
        self._cumulative = np.cumsum(counts)
        edge_counts = np.array([len(c) for c in self._edge_corners])
        if self.edge_fraction > 0 and edge_counts.sum() == 0:
            raise ValueError(
                f"edge_fraction={edge_fraction} but no valid {self.patch_size}x{self.patch_size}"
                " patch touches an image border: the masks stay away from the borders"
            )
        self._edge_cumulative = np.cumsum(edge_counts)
        self._anywhere_cumulative = np.cumsum([r * c for r, c in self._valid_shapes])

    def __len__(self) -> int:
        return self.n_patches

    def set_epoch(self, epoch: int) -> None:
        """Draw another set of patches (``fit`` calls it before each epoch)."""
        self.epoch = int(epoch)

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch (``stream`` 0: the patch,
        1: its noise, 2: its film-edge line, 3: whether it is drawn anywhere, and where)."""
        return np.random.default_rng([self.seed, self.epoch, int(index), int(stream)])

    def locate(self, index: int) -> tuple[int, int, int, bool, bool]:
        """``(image, row, col, flip_h, flip_v)`` of item ``index`` (top-left corner)."""
        if not 0 <= index < self.n_patches:
            raise IndexError(f"index {index} out of range for {self.n_patches} patches")
        rng = self.rng(index)
        anywhere_rng = self.rng(index, 3) if self.anywhere_fraction > 0 else None
        if anywhere_rng is not None and anywhere_rng.random() < self.anywhere_fraction:
            i, k = self._pick(self._anywhere_cumulative, anywhere_rng)
            row, col = divmod(k, self._valid_shapes[i][1])
        else:
            edge = self.edge_fraction > 0 and rng.random() < self.edge_fraction
            corners, cumulative = ((self._edge_corners, self._edge_cumulative) if edge
                                   else (self._corners, self._cumulative))
            i, k = self._pick(cumulative, rng)
            row, col = divmod(int(corners[i][k]), self._valid_shapes[i][1])
        fh, fv = (bool(b) for b in rng.integers(2, size=2)) if self.flips else (False, False)
        return i, row, col, fh, fv

    @staticmethod
    def _pick(cumulative: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        """``(image, k)``: one of ``cumulative[-1]`` candidates, uniformly, as the image it
        falls in and its rank among that image's candidates."""
        k = int(rng.integers(cumulative[-1]))
        i = int(np.searchsorted(cumulative, k, side="right"))
        return i, k - (int(cumulative[i - 1]) if i > 0 else 0)

    def border_sides(self, image: int, row: int, col: int) -> list[str]:
        """The sides (``"top"``, ``"bottom"``, ``"left"``, ``"right"``) of the patch at
        ``(row, col)`` of image ``image`` that lie on the image's border."""
        rows, cols = self._valid_shapes[image]
        sides = [("top", row == 0), ("bottom", row == rows - 1),
                 ("left", col == 0), ("right", col == cols - 1)]
        return [side for side, on in sides if on]

    def paint_edge_line(self, p: np.ndarray, index: int, sides: list[str]) -> np.ndarray:
        """``p`` ``(P, P)`` with a film-edge line along one of ``sides`` (drawn from stream 2
        of item ``index``), or ``p`` itself when no line is drawn for it."""
        rng = self.rng(index, 2)
        if not sides or rng.random() >= self.edge_lines:
            return p
        side = sides[int(rng.integers(len(sides)))]
        width = int(rng.integers(1, self.max_line_width + 1))
        values = rng.uniform(*self.line_range, size=width).astype(np.float32)
        p = p.copy()
        # a view of p in which that side is the left one: column k = the k-th from the border
        view = {"left": p, "right": p[:, ::-1], "top": p.T, "bottom": p[::-1].T}[side]
        view[:, :width] = values
        return p

    def patch(self, index: int) -> np.ndarray:
        """Item ``index`` as a ``(P, P)`` float32 array."""
        i, row, col, fh, fv = self.locate(index)
        p = self.images[i][row : row + self.patch_size, col : col + self.patch_size]
        if self.edge_lines > 0:
            p = self.paint_edge_line(p, index, self.border_sides(i, row, col))
        if fh:
            p = p[:, ::-1]
        if fv:
            p = p[::-1, :]
        return np.ascontiguousarray(p)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.patch(index))[None]
