"""Training patches cut from large images (mammograms): inside the breast, flipped, seeded.

A mammogram is ~1100 x 700 pixels at 0.2 mm, and most of it is background; a denoiser learns
from small patches (40-64 pixels, more than its receptive field) drawn where there is tissue:

- :class:`PatchDataset` draws ``patch_size`` squares uniformly among the positions where at
  least ``min_inside`` of the patch lies in the mask (the breast), from all images at once
  (larger images give more patches), with random horizontal / vertical flips;
- :class:`NoisyPatches` pairs each clean patch with a noisy copy, ``(noisy, clean)``, the
  batches that ``dlmi_utils.train.fit`` expects (``pair_step``); for a denoiser of the
  Anscombe domain, ``(anscombe(y), E[anscombe(y) | x])`` (:func:`anscombe_poisson_noise`,
  :func:`anscombe_target`).

Every draw depends only on ``(seed, epoch, index)``: the same index gives the same patch and
the same noise in every run, in any order, in any DataLoader worker; ``set_epoch`` (called by
``fit``) draws a new set for the next epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dlmi_utils.noise import add_gaussian_noise, add_poisson_noise, anscombe, anscombe_mean


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


def breast_crops(mask: np.ndarray, size: int, n: int, min_inside: float = 1.0
                 ) -> list[tuple[int, int]]:
    """Top-left corners ``(row, col)`` of ``n`` fixed, non-overlapping ``size x size`` crops
    with at least ``min_inside`` of their pixels in ``mask`` ``(H, W)``.

    No randomness (evaluation crops must not move): candidates on a grid of step
    ``size // 8``; the first is the one nearest the centroid of the mask, each next one the
    candidate farthest from those taken (farthest-point sampling) that overlaps none of them.
    """
    m = np.asarray(mask, dtype=bool)
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    frac = window_fraction(m, size)
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
            f"their pixels in the mask, {n} asked: lower size, n or min_inside"
        )
    return [(int(r), int(c)) for r, c in chosen]


NoiseFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def gaussian_noise(sigma: float | tuple[float, float]) -> NoiseFn:
    """Additive white Gaussian noise of std ``sigma`` (image scale: ``15 / 255`` for 8-bit 15),
    or, for a pair ``(lo, hi)``, a std drawn uniformly in it for each patch (blind training)."""
    lo, hi = (sigma, sigma) if np.isscalar(sigma) else (float(sigma[0]), float(sigma[1]))
    if not 0 <= lo <= hi:
        raise ValueError(f"sigma must be >= 0 (or a range lo <= hi), got {sigma}")

    def noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        s = lo + (hi - lo) * float(torch.rand((), generator=g)) if hi > lo else lo
        return add_gaussian_noise(x, s, seed=g)

    return noise


def poisson_noise(photons: float) -> NoiseFn:
    """Quantum noise at ``photons`` per pixel for ``x = 1`` (see ``add_poisson_noise``)."""
    if not photons > 0:
        raise ValueError(f"photons must be positive, got {photons}")

    def noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return add_poisson_noise(x, photons, seed=g)

    return noise


def anscombe_poisson_noise(photons: float) -> NoiseFn:
    """Quantum noise at ``photons`` (:func:`poisson_noise`), then the Anscombe transform: the
    input of a denoiser of the Anscombe domain, whose target is :func:`anscombe_target`."""
    quantum = poisson_noise(photons)

    def noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return torch.from_numpy(anscombe(quantum(x, g).numpy(), photons))

    return noise


def anscombe_target(photons: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> E[anscombe(y) | x]`` (``anscombe_mean``): the clean image of the Anscombe domain,
    the one that ``inverse_anscombe`` maps back to ``x`` (``anscombe(x)`` is biased)."""
    def target(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(anscombe_mean(x.numpy(), photons))

    return target


class NoisyPatches(Dataset):
    """``(noisy, target)`` pairs, each ``(1, P, P)`` float32, from a :class:`PatchDataset`.

    ``noise(clean, generator)`` (e.g. :func:`gaussian_noise`) draws with a generator seeded by
    ``(seed, epoch, index)``, so a patch keeps the same noise when read twice. ``target``
    maps the clean patch to what the network should output (default: the clean patch;
    :func:`anscombe_target` for the Anscombe domain).
    """

    def __init__(self, patches: PatchDataset, noise: NoiseFn,
                 target: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.patches, self.noise, self.target = patches, noise, target

    def __len__(self) -> int:
        return len(self.patches)

    def set_epoch(self, epoch: int) -> None:
        self.patches.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.patches[index]
        g = torch.Generator().manual_seed(int(self.patches.rng(index, 1).integers(2**62)))
        target = clean if self.target is None else self.target(clean).float()
        return self.noise(clean, g).float(), target


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
    from scipy import ndimage

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
    from scipy import ndimage

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
