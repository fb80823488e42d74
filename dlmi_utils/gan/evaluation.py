"""Judging generated images without a downloaded network.

- :func:`swd`: the sliced Wasserstein distance between two sets of images, level by level of
  their Laplacian pyramids (Karras et al. 2018). At each level, ``n_patches`` random
  ``7x7`` neighbourhoods are taken from every image; the two sets of descriptors are
  normalised together (same mean and std for both, so a brightness shift shows) and compared
  by the 1-D Wasserstein distance of their projections on random unit directions, averaged.
  Zero for identical sets; a finite sample of the *same* distribution does not give zero,
  so every value must be read against the *real-vs-real* reference: the SWD between two
  independent sets of real images of the same size.
- :class:`GaussianPCA`: the simplest generative baseline, a Gaussian on the top principal
  components of the training images; a GAN that does not beat it has learnt nothing useful.
- :func:`nearest_neighbours` and :func:`nn_ratio`: is the generator copying its training
  images? Compare how close samples come to the training set with how close held-out real
  images come to it.
- :func:`precision_recall`: k-NN manifold precision and recall (Kynkäänniemi et al. 2019) on
  simple features (:func:`pixel_features`: downsampled pixels): precision is the fraction of
  samples that fall inside the real images' manifold (fidelity), recall the fraction of real
  images inside the samples' manifold (diversity; mode collapse lowers it).

Images are ``(N, 1, H, W)`` or ``(N, H, W)`` float tensors or arrays, all in one range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

Images = torch.Tensor | np.ndarray


def _as_images(x: Images, name: str = "images") -> torch.Tensor:
    """``(N, 1, H, W)`` float32 CPU tensor from ``(N, H, W)`` / ``(N, 1, H, W)`` input."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().cpu().float()
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or t.shape[1] != 1:
        raise ValueError(f"{name}: expected (N, H, W) or (N, 1, H, W), got {tuple(t.shape)}")
    if t.shape[0] < 1:
        raise ValueError(f"{name}: the set is empty")
    return t


_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :])[None, None]
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k)


def laplacian_pyramid(images: Images, levels: int) -> list[torch.Tensor]:
    """Burt-Adelson Laplacian pyramid, finest band first, the low-pass image last.

    ``images (N, 1, H, W)`` -> ``levels`` tensors ``(N, 1, H / 2^l, W / 2^l)``; summing the
    upsampled bands gives the images back (up to float rounding).
    """
    x = _as_images(images)
    if levels < 1 or min(x.shape[-2:]) // 2 ** (levels - 1) < 8:
        raise ValueError(f"{levels} levels is too many for {tuple(x.shape[-2:])} images")
    bands = []
    for _ in range(levels - 1):
        low = _blur(x)[..., ::2, ::2]
        bands.append(x - _upsample(low, x.shape[-2:]))
        x = low
    bands.append(x)
    return bands


def _upsample(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    up = torch.zeros(*x.shape[:2], *size, dtype=x.dtype)
    up[..., ::2, ::2] = x
    return 4.0 * _blur(up)  # the zeros dilute the energy by 4


def _descriptors(band: torch.Tensor, n_patches: int, patch: int, seed: int) -> torch.Tensor:
    """``n_patches`` random ``patch x patch`` neighbourhoods per image -> ``(N * n, patch^2)``."""
    n, _, h, w = band.shape
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, h - patch + 1, (n, n_patches), generator=g)
    cols = torch.randint(0, w - patch + 1, (n, n_patches), generator=g)
    offsets = torch.arange(patch)
    r = rows[..., None, None] + offsets[:, None]  # (n, P, patch, 1)
    c = cols[..., None, None] + offsets[None, :]  # (n, P, 1, patch)
    img = torch.arange(n)[:, None, None, None]
    return band[:, 0][img, r, c].reshape(n * n_patches, patch * patch)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, n_projections: int = 512, seed: int = 0
) -> float:
    """Mean over random unit directions ``theta`` of ``W1(a . theta, b . theta)``.

    ``a (Na, D)``, ``b (Nb, D)``; the 1-D distances are the mean absolute differences of
    the sorted projections (their quantile functions when ``Na != Nb``).
    """
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (Na, D) and (Nb, D), got {tuple(a.shape)}, {tuple(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], n_projections, generator=g)
    dirs /= dirs.norm(dim=0, keepdim=True)
    total = 0.0
    for chunk in dirs.split(64, dim=1):  # bounds the memory of the sorted projections
        pa, pb = (a @ chunk).sort(dim=0).values, (b @ chunk).sort(dim=0).values
        if len(pa) != len(pb):
            q = torch.linspace(0, 1, max(len(pa), len(pb)))
            pa, pb = _quantiles(pa, q), _quantiles(pb, q)
        total += (pa - pb).abs().mean(dim=0).sum().item()
    return total / n_projections


def _quantiles(sorted_x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of the columns of ``sorted_x (n, P)`` at levels ``q`` in [0, 1]."""
    pos = q * (len(sorted_x) - 1)
    lo = pos.floor().long().clamp(max=len(sorted_x) - 1)
    hi = (lo + 1).clamp(max=len(sorted_x) - 1)
    frac = (pos - lo)[:, None]
    return sorted_x[lo] * (1 - frac) + sorted_x[hi] * frac


def swd(
    images_a: Images,
    images_b: Images,
    levels: int | None = None,
    n_patches: int = 128,
    patch: int = 7,
    n_projections: int = 512,
    seed: int = 0,
) -> dict[str, object]:
    """Sliced Wasserstein distance between two image sets on each Laplacian-pyramid level.

    ``levels`` defaults to bands down to ``16x16`` (3 for ``64x64`` images, as Karras et al.).
    Returns ``{"per_level": {resolution: swd}, "mean": mean over levels}`` (plain floats;
    Karras et al. print them times 1e3). Symmetric in its two arguments, exactly zero when
    they are equal, and random only through ``seed`` (patch positions, directions).
    """
    a, b = _as_images(images_a, "images_a"), _as_images(images_b, "images_b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"the two sets differ in image size: {a.shape[1:]} vs {b.shape[1:]}")
    if levels is None:
        levels = max(1, int(np.log2(min(a.shape[-2:]) / 16)) + 1)
    per_level = {}
    for level, (band_a, band_b) in enumerate(
        zip(laplacian_pyramid(a, levels), laplacian_pyramid(b, levels), strict=True)
    ):
        da = _descriptors(band_a, n_patches, patch, seed + level)
        db = _descriptors(band_b, n_patches, patch, seed + level)
        both = torch.cat([da, db])
        mean, std = both.mean(), both.std().clamp_min(1e-8)
        per_level[int(band_a.shape[-1])] = sliced_wasserstein(
            (da - mean) / std, (db - mean) / std, n_projections, seed + 1000 + level
        )
    return {"per_level": per_level, "mean": float(np.mean(list(per_level.values())))}


class GaussianPCA:
    """A Gaussian on the top ``n_components`` principal components of a set of images.

    ``fit(images)`` computes the mean ``mu`` and the principal directions ``v_i`` with their
    variances ``lambda_i``; ``sample`` draws ``mu + sum_i sqrt(lambda_i) z_i v_i``,
    ``z ~ N(0, I)``: right mean and right covariance in that subspace, nothing more.
    """

    def __init__(self, n_components: int = 64):
        if n_components < 1:
            raise ValueError(f"n_components must be positive, got {n_components}")
        self.n_components = n_components

    def fit(self, images: Images) -> GaussianPCA:
        x = _as_images(images).double()
        self.shape = tuple(x.shape[1:])
        flat = x.flatten(1)
        if len(flat) < 2:
            raise ValueError("GaussianPCA needs at least 2 images to fit")
        self.mean = flat.mean(0)
        _, s, vt = torch.linalg.svd(flat - self.mean, full_matrices=False)
        k = min(self.n_components, len(s))
        self.components = vt[:k]  # (k, D), orthonormal rows
        self.std = s[:k] / np.sqrt(len(flat) - 1)
        return self

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``(n, 1, H, W)`` float32 samples."""
        if not hasattr(self, "mean"):
            raise RuntimeError("call fit(images) before sample()")
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, len(self.std), generator=g, dtype=torch.float64)
        return (self.mean + (z * self.std) @ self.components).float().reshape(n, *self.shape)


def nearest_neighbours(
    queries: Images, database: Images, k: int = 1, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean pixel distances from each query to its ``k`` nearest database images.

    Returns ``(distances (Q, k) float32, indices (Q, k) int64)``, nearest first.
    """
    q, db = _as_images(queries, "queries").flatten(1), _as_images(database, "database").flatten(1)
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"queries and database differ in image size: {q.shape}, {db.shape}")
    if not 1 <= k <= len(db):
        raise ValueError(f"k must be between 1 and the database size {len(db)}, got {k}")
    dists, idx = [], []
    for block in q.split(chunk):
        d = torch.cdist(block.double(), db.double())
        top = d.topk(k, dim=1, largest=False)
        dists.append(top.values.float())
        idx.append(top.indices)
    return torch.cat(dists), torch.cat(idx)


def nn_ratio(samples: Images, train: Images, heldout: Images) -> float:
    """``median NN distance(samples -> train) / median NN distance(held-out real -> train)``.

    About 1: samples are as close to the training set as new real images are; well below 1:
    the generator reproduces training images (memorisation); above 1: samples lie off the
    data, farther from it than real images do.
    """
    d_fake = nearest_neighbours(samples, train)[0][:, 0].median()
    d_real = nearest_neighbours(heldout, train)[0][:, 0].median()
    if d_real <= 0:
        raise ValueError("held-out images are copies of training images: the ratio is undefined")
    return float(d_fake / d_real)


def pixel_features(images: Images, size: int = 16) -> torch.Tensor:
    """Area-downsampled pixels as simple features: ``(N, 1, H, W) -> (N, size * size)``."""
    x = _as_images(images)
    return F.adaptive_avg_pool2d(x, size).flatten(1)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """k-NN manifold precision and recall (Kynkäänniemi et al. 2019) of feature sets.

    ``real (N, D)``, ``fake (M, D)``. The real manifold is the union of balls around each
    real feature of radius its distance to its ``k``-th nearest real neighbour; precision is
    the fraction of fakes inside it. Recall swaps the roles. Both in ``[0, 1]``.
    """
    real, fake = torch.as_tensor(real).double(), torch.as_tensor(fake).double()
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"expected (N, D) and (M, D), got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"each set needs more than k={k} points")

    def coverage(support: torch.Tensor, points: torch.Tensor) -> float:
        # column k of the sorted self-distances: column 0 is the point itself
        radii = torch.cdist(support, support).sort(dim=1).values[:, k]
        inside = (torch.cdist(points, support) <= radii[None, :]).any(dim=1)
        return float(inside.double().mean())

    return {"precision": coverage(real, fake), "recall": coverage(fake, real)}


def score_samples(
    sample: Callable[[int, int], Images],
    train: Images,
    heldout: Images,
    repeats: int = 3,
    pca_components: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """A generator's scores against held-out real images, next to the references.

    ``sample(n, seed)`` returns ``n`` generated images. Each repeat ``r`` draws
    ``n = len(heldout)`` images from the generator, ``n`` training images (the real-vs-real
    reference: what a generator that reproduces its training set exactly would score) and
    ``n`` samples of a :class:`GaussianPCA` fitted on ``train`` (the baseline), and takes the
    SWD of each to ``heldout``; values are averaged over the repeats. Also ``nn_ratio`` and
    k-NN ``precision`` / ``recall`` on :func:`pixel_features` of the generator's samples.
    """
    train, heldout = _as_images(train, "train"), _as_images(heldout, "heldout")
    n = len(heldout)
    if len(train) < n:
        raise ValueError(f"the training set ({len(train)}) must be at least as large as the "
                         f"held-out set ({n}) for the real-vs-real reference")
    pca = GaussianPCA(pca_components).fit(train)
    runs: dict[str, list[float]] = {k: [] for k in (
        "swd_model", "swd_real_vs_real", "swd_pca", "nn_ratio", "precision", "recall")}
    for r in range(repeats):
        s = seed + r
        fake = _as_images(sample(n, s), "samples")
        subset = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(s))[:n]]
        runs["swd_model"].append(swd(fake, heldout, seed=s)["mean"])
        runs["swd_real_vs_real"].append(swd(subset, heldout, seed=s)["mean"])
        runs["swd_pca"].append(swd(pca.sample(n, seed=s), heldout, seed=s)["mean"])
        runs["nn_ratio"].append(nn_ratio(fake, train, heldout))
        pr = precision_recall(pixel_features(heldout), pixel_features(fake))
        runs["precision"].append(pr["precision"])
        runs["recall"].append(pr["recall"])
    out = {k: float(np.mean(v)) for k, v in runs.items()}
    out["n_heldout"] = n
    return out
