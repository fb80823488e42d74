"""Evaluation metrics: image quality (reference vs estimate) and segmentation overlap.

Every function takes the **reference first**, then the estimate (the order of
``skimage.metrics``), accepts numpy arrays or torch tensors (converted to numpy) and returns a
Python ``float`` (in dB where the name says so).

Image metrics, for real images of any shape ``(..., H, W)`` (take ``np.abs(x)`` of a complex
MR image first); the ones with ``mask=`` average over a boolean region only (e.g. the breast):

- ``mse(ref, x) = mean((x - ref)^2)``;  ``nmse(ref, x) = ||x - ref||^2 / ||ref||^2``
- ``psnr(ref, x) = 10 log10(data_range^2 / mse)`` in dB
- ``snr(ref, x) = 10 log10(sum ref^2 / sum (x - ref)^2)`` in dB
- ``ssim(ref, x)``: structural similarity (Wang et al. 2004), computed by scikit-image
- ``epi(ref, x)``: edge preservation index (Sattar et al. 1997), the correlation of the
  Laplacian-filtered images
- ``coc(ref, x)``: coefficient of correlation (Pearson)
- ``error_bands(ref, x, edges)``: the MSE split by the spatial frequency of the error (radial
  bands of cycles per pixel; Parseval): which scales a method gets wrong
- ``error_by_distance(ref, x, edges)``: the MSE in bands of columns by distance from the
  first column (a crop that starts at the film's edge): where in space a method errs

``data_range`` (the span of possible intensities, 1 for images in [0, 1]) defaults to
``ref.max() - ref.min()``; **pass it explicitly**, so that every method of a comparison is
scored on the same scale whatever the content of the reference.

Segmentation metrics, for boolean masks ``(H, W)`` or ``(D, H, W)``:

- ``dice(A, B) = 2 |A & B| / (|A| + |B|)`` (1.0 when both masks are empty: they agree)
- ``generalized_dice``: Dice over several labels weighted by ``1 / volume^2`` (Sudre et al. 2017)
- ``volume_similarity(A, B) = 1 - |(|A| - |B|)| / (|A| + |B|)`` (1.0 when both are empty)
- ``hausdorff_distance`` and ``average_surface_distance``: symmetric distances between the
  surfaces of the masks, in the unit of ``spacing`` (e.g. mm; pixels if not given)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

ArrayLike = np.ndarray | torch.Tensor


# ----------------------------------------------------------------------------- input checks
def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _image_pair(ref: ArrayLike, x: ArrayLike, fname: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 copies of a (reference, estimate) pair of real images."""
    out = []
    for arr, name in ((ref, "ref"), (x, "x")):
        arr = _to_numpy(arr, f"{fname}: {name}")
        if np.iscomplexobj(arr):
            raise TypeError(
                f"{fname}: {name} is complex ({arr.dtype}); image metrics compare magnitudes: "
                f"take np.abs({name}) first"
            )
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{fname}: {name} must be a real-valued image, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{fname}: {name} contains {int(bad.sum())} NaN or infinite value(s); "
                "fix the computation that produced it"
            )
        out.append(arr)
    if out[0].shape != out[1].shape:
        raise ValueError(
            f"{fname}: ref and x must have the same shape, got {out[0].shape} and {out[1].shape}"
        )
    return out[0], out[1]


def _mask(mask: ArrayLike | None, shape: tuple[int, ...], fname: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = _to_numpy(mask, f"{fname}: mask")
    if mask.dtype != bool:
        raise TypeError(
            f"{fname}: mask must be boolean, got dtype {mask.dtype}; use e.g. mask > 0.5"
        )
    if mask.shape != shape:
        raise ValueError(f"{fname}: mask has shape {mask.shape}, the images {shape}")
    if not mask.any():
        raise ValueError(f"{fname}: mask is empty (no True pixel): nothing to measure")
    return mask


def _data_range(ref: np.ndarray, data_range: float | None, fname: str) -> float:
    if data_range is None:
        data_range = float(ref.max() - ref.min())
        if data_range == 0:
            raise ValueError(
                f"{fname}: the reference is constant, so data_range = ref.max() - ref.min() is 0; "
                "pass data_range explicitly (e.g. 1.0 for images in [0, 1])"
            )
    if not data_range > 0:
        raise ValueError(f"{fname}: data_range must be positive, got {data_range}")
    return float(data_range)


def _select(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return a[mask] if mask is not None else a.ravel()


# ----------------------------------------------------------------------------- image metrics
def mse(ref: ArrayLike, x: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean squared error ``mean((x - ref)^2)`` (over ``mask`` if given)."""
    ref, x = _image_pair(ref, x, "mse")
    m = _mask(mask, ref.shape, "mse")
    return float(np.mean(_select((x - ref) ** 2, m)))


def nmse(ref: ArrayLike, x: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Normalised MSE ``||x - ref||^2 / ||ref||^2`` (fastMRI); 0 is perfect."""
    ref, x = _image_pair(ref, x, "nmse")
    m = _mask(mask, ref.shape, "nmse")
    energy = np.sum(_select(ref, m) ** 2)
    if energy == 0:
        raise ValueError("nmse: the reference is zero everywhere, its norm cannot normalise")
    return float(np.sum(_select((x - ref) ** 2, m)) / energy)


def psnr(
    ref: ArrayLike, x: ArrayLike, data_range: float | None = None, mask: ArrayLike | None = None
) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB (``inf`` if equal).

    Matches ``skimage.metrics.peak_signal_noise_ratio`` for the same ``data_range``; the
    default here is ``ref.max() - ref.min()`` (pass it explicitly to compare methods).
    """
    ref, x = _image_pair(ref, x, "psnr")
    m = _mask(mask, ref.shape, "psnr")
    dr = _data_range(ref, data_range, "psnr")
    err = float(np.mean(_select((x - ref) ** 2, m)))
    if err == 0:
        return float("inf")
    return float(10 * np.log10(dr**2 / err))


def snr(ref: ArrayLike, x: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Signal-to-noise ratio ``10 log10(sum ref^2 / sum (x - ref)^2)`` in dB (``inf`` if equal)."""
    ref, x = _image_pair(ref, x, "snr")
    m = _mask(mask, ref.shape, "snr")
    noise = np.sum(_select((x - ref) ** 2, m))
    signal = np.sum(_select(ref, m) ** 2)
    if noise == 0:
        return float("inf")
    if signal == 0:
        raise ValueError("snr: the reference is zero everywhere: there is no signal")
    return float(10 * np.log10(signal / noise))


def ssim(
    ref: ArrayLike,
    x: ArrayLike,
    data_range: float | None = None,
    mask: ArrayLike | None = None,
    gaussian_weights: bool = False,
) -> float:
    """Structural similarity of a 2D image ``(H, W)`` or a volume ``(D, H, W)``, in [-1, 1].

    Computed by ``skimage.metrics.structural_similarity``: by default its 7x7 uniform window
    (the fastMRI evaluation); with ``gaussian_weights=True`` the setting of Wang et al. 2004
    (Gaussian window sigma 1.5, 11 pixels, population covariance), which
    ``dlmi_utils.losses.SSIMLoss`` reproduces in torch. Constants ``K1 = 0.01, K2 = 0.03``.
    The mean runs over the pixels whose window lies inside the image (scikit-image's crop),
    intersected with ``mask`` if given.
    """
    ref, x = _image_pair(ref, x, "ssim")
    if ref.ndim not in (2, 3):
        raise ValueError(
            f"ssim: expects an image (H, W) or a volume (D, H, W), got shape {ref.shape}; "
            "loop over a batch"
        )
    m = _mask(mask, ref.shape, "ssim")
    dr = _data_range(ref, data_range, "ssim")
    options = (
        {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
        if gaussian_weights
        else {}
    )
    win = 11 if gaussian_weights else 7
    if min(ref.shape) < win:
        raise ValueError(f"ssim: each side must be at least {win} pixels, got shape {ref.shape}")
    value, smap = structural_similarity(ref, x, data_range=dr, full=True, **options)
    if m is None:
        return float(value)
    pad = (win - 1) // 2
    inner = np.zeros(ref.shape, dtype=bool)
    inner[tuple(slice(pad, n - pad) for n in ref.shape)] = True
    region = m & inner
    if not region.any():
        raise ValueError(f"ssim: the mask lies within {pad} pixels of the border: nothing to score")
    return float(smap[region].mean())


def _correlation(a: np.ndarray, b: np.ndarray, fname: str, what: str) -> float:
    a = a - a.mean()
    b = b - b.mean()
    na, nb = np.sqrt(np.sum(a * a)), np.sqrt(np.sum(b * b))
    if na == 0 or nb == 0:
        which = "ref" if na == 0 else "x"
        raise ValueError(f"{fname}: {what} of {which} is constant: the correlation is undefined")
    return float(np.sum(a * b) / (na * nb))


def coc(ref: ArrayLike, x: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Coefficient of correlation (Pearson) between the pixel values, in [-1, 1]."""
    ref, x = _image_pair(ref, x, "coc")
    m = _mask(mask, ref.shape, "coc")
    return _correlation(_select(ref, m), _select(x, m), "coc", "the image")


def epi(ref: ArrayLike, x: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Edge preservation index (Sattar et al. 1997), in [-1, 1]; 1 means edges kept as they are.

    ``EPI = <dr - mean(dr), dx - mean(dx)> / (||dr - mean(dr)|| ||dx - mean(dx)||)`` with
    ``dr, dx`` the Laplacians (a high-pass filter, ``scipy.ndimage.laplace``) of ``ref`` and ``x``.
    """
    ref, x = _image_pair(ref, x, "epi")
    m = _mask(mask, ref.shape, "epi")
    return _correlation(
        _select(ndimage.laplace(ref), m), _select(ndimage.laplace(x), m), "epi", "the Laplacian"
    )


DEFAULT_BANDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75)


def error_bands(ref: ArrayLike, x: ArrayLike, edges: Sequence[float] = DEFAULT_BANDS
                ) -> list[float]:
    """The MSE of ``x`` split by the spatial frequency of its error ``x - ref`` ``(..., H, W)``.

    Entry ``k`` is the part of ``mse(ref, x)`` at radial frequencies ``|f|`` in
    ``[edges[k], edges[k + 1])`` cycles per pixel (the last band closed), from the
    orthonormal FFT over the last two axes: by Parseval the entries sum to ``mse(ref, x)`` when
    the bands cover ``[0, sqrt(0.5)]`` (``|f|`` reaches 0.707 at the corner of the spectrum), as
    the default edges do. White noise of variance ``v`` gives each band ``v`` times its share of
    the spectrum's area; a denoiser's entries show which scales it gets wrong.
    """
    ref, x = _image_pair(ref, x, "error_bands")
    if ref.ndim < 2:
        raise ValueError(f"error_bands: needs images (..., H, W), got shape {ref.shape}")
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0) or edges[0] < 0:
        raise ValueError(
            f"error_bands: edges must be at least two increasing frequencies >= 0 (cycles per "
            f"pixel), got {edges.tolist()}"
        )
    h, w = ref.shape[-2:]
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    power = np.abs(np.fft.fft2(x - ref, norm="ortho")) ** 2  # sums to sum((x - ref)^2)
    power = power.reshape(-1, h, w).sum(axis=0) / x.size
    bands = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = k == len(edges) - 2
        inside = (radius >= lo) & ((radius <= hi) if last else (radius < hi))
        bands.append(float(power[inside].sum()))
    return bands


def distance_edges(width: int) -> list[int]:
    """``[0, 1, 2, 4, ..., 2^k, width]`` with ``2^k < width``: bins of columns that double
    in width away from the first one (``width`` 256 -> ``0, 1, 2, 4, ..., 128, 256``)."""
    if int(width) != width or width < 1:
        raise ValueError(f"distance_edges: width must be a positive integer, got {width}")
    edges, step = [0], 1
    while step < width:
        edges.append(step)
        step *= 2
    return [*edges, int(width)]


def error_by_distance(ref: ArrayLike, x: ArrayLike, edges: Sequence[int] | None = None
                      ) -> list[float]:
    """The mean squared error of ``x`` in bands of columns, by distance from the first column
    of images ``(..., H, W)``.

    Entry ``k`` is ``mean((x - ref)^2)`` over the columns ``[edges[k], edges[k + 1])``, all
    rows and leading axes; ``edges`` default to :func:`distance_edges` ``(W)``. Mean over a
    band, not its share: the entries weighted by their band's width average to
    ``mse(ref, x)`` when the bands cover ``[0, W)``. For a crop that starts at the film's
    edge (the chest wall, as the crops of ``benchmarks/denoise.py``) it says how far from the
    edge a denoiser errs; flip the images (``[..., ::-1]``) to measure from the last column.
    """
    ref, x = _image_pair(ref, x, "error_by_distance")
    if ref.ndim < 2:
        raise ValueError(f"error_by_distance: needs images (..., H, W), got shape {ref.shape}")
    width = ref.shape[-1]
    edges = distance_edges(width) if edges is None else list(edges)
    bands = list(zip(edges[:-1], edges[1:], strict=True))
    if (not bands or any(int(e) != e for e in edges) or edges[0] < 0
            or any(b <= a for a, b in bands) or edges[-1] > width):
        raise ValueError(
            f"error_by_distance: edges must be at least two increasing integer columns in "
            f"[0, {width}] (the width), got {edges}"
        )
    per_column = ((x - ref) ** 2).reshape(-1, width).mean(axis=0)
    return [float(per_column[int(a):int(b)].mean()) for a, b in bands]


# ----------------------------------------------------------------------------- segmentation
def _mask_pair(ref: ArrayLike, est: ArrayLike, fname: str) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for arr, name in ((ref, "ref"), (est, "est")):
        arr = _to_numpy(arr, f"{fname}: {name}")
        if arr.dtype != bool:
            raise TypeError(
                f"{fname}: {name} must be a boolean mask, got dtype {arr.dtype}; "
                f"threshold it first, e.g. {name} > 0.5 (probabilities) or {name} == label"
            )
        out.append(arr)
    if out[0].shape != out[1].shape:
        raise ValueError(
            f"{fname}: ref and est must have the same shape, got {out[0].shape} and {out[1].shape}"
        )
    return out[0], out[1]


def dice(ref: ArrayLike, est: ArrayLike) -> float:
    """Dice coefficient ``2 |ref & est| / (|ref| + |est|)`` in [0, 1] of two boolean masks.

    Two empty masks agree perfectly: their Dice is defined as 1.0.
    """
    ref, est = _mask_pair(ref, est, "dice")
    total = int(ref.sum()) + int(est.sum())
    if total == 0:
        return 1.0
    return float(2 * np.logical_and(ref, est).sum() / total)


def generalized_dice(
    ref_labels: ArrayLike, est_labels: ArrayLike, labels: Sequence[int] | None = None
) -> float:
    """Generalized Dice (Sudre et al. 2017) of two integer label maps, in [0, 1].

    ``GD = 2 sum_l w_l |R_l & E_l| / sum_l w_l (|R_l| + |E_l|)`` with ``w_l = 1 / |R_l|^2``,
    so that a small structure weighs as much as a large one. ``labels`` defaults to the labels
    present in the reference except 0 (the background); each must be present in the reference
    (an absent label would get an infinite weight).
    """
    ref = _to_numpy(ref_labels, "generalized_dice: ref_labels")
    est = _to_numpy(est_labels, "generalized_dice: est_labels")
    for arr, name in ((ref, "ref_labels"), (est, "est_labels")):
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise TypeError(
                f"generalized_dice: {name} must be an integer label map, got dtype {arr.dtype}; "
                "for probabilities (C, H, W) take argmax over the classes first"
            )
    if ref.shape != est.shape:
        raise ValueError(
            "generalized_dice: label maps must have the same shape, "
            f"got {ref.shape} and {est.shape}"
        )
    if labels is None:
        labels = [int(v) for v in np.unique(ref) if v != 0]
        if not labels:
            raise ValueError("generalized_dice: the reference has no label other than 0")
    num = den = 0.0
    for label in labels:
        r, e = ref == label, est == label
        volume = int(r.sum())
        if volume == 0:
            raise ValueError(
                f"generalized_dice: label {label} is absent from the reference, its weight "
                "1 / volume^2 is infinite; leave it out of `labels`"
            )
        w = 1.0 / volume**2
        num += w * np.logical_and(r, e).sum()
        den += w * (volume + e.sum())
    return float(2 * num / den)


def volume_similarity(ref: ArrayLike, est: ArrayLike) -> float:
    """Volume similarity ``1 - | |ref| - |est| | / (|ref| + |est|)`` in [0, 1] (1.0 if both empty).

    It compares sizes only: two disjoint masks of equal size score 1.
    """
    ref, est = _mask_pair(ref, est, "volume_similarity")
    a, b = int(ref.sum()), int(est.sum())
    if a + b == 0:
        return 1.0
    return float(1 - abs(a - b) / (a + b))


def _surface_distances(
    ref: np.ndarray, est: np.ndarray, spacing: Sequence[float] | None, fname: str
) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each surface voxel of ``est`` to the surface of ``ref``, and back."""
    for arr, name in ((ref, "ref"), (est, "est")):
        if not arr.any():
            raise ValueError(f"{fname}: the {name} mask is empty: a distance to it is undefined")
    if spacing is None:
        spacing = (1.0,) * ref.ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ref.ndim or min(spacing) <= 0:
        raise ValueError(
            f"{fname}: spacing must give one positive voxel size per axis ({ref.ndim}), "
            f"got {spacing}"
        )
    # The surface: voxels of the mask with a face-neighbour outside it (or on the array border).
    structure = ndimage.generate_binary_structure(ref.ndim, 1)
    surf_ref = ref ^ ndimage.binary_erosion(ref, structure)
    surf_est = est ^ ndimage.binary_erosion(est, structure)
    dist_to_ref = ndimage.distance_transform_edt(~surf_ref, sampling=spacing)
    dist_to_est = ndimage.distance_transform_edt(~surf_est, sampling=spacing)
    return dist_to_ref[surf_est], dist_to_est[surf_ref]


def hausdorff_distance(
    ref: ArrayLike,
    est: ArrayLike,
    spacing: Sequence[float] | None = None,
    percentile: float = 100,
) -> float:
    """Symmetric Hausdorff distance between the surfaces of two boolean masks.

    ``HD = max(P(d(est -> ref)), P(d(ref -> est)))`` where ``d(A -> B)`` are the distances
    from each surface voxel of A to the nearest surface voxel of B and ``P`` is the
    ``percentile`` (100: the maximum; 95: the robust HD95 as in MONAI and DeepMind's
    surface-distance). ``spacing`` is the voxel size per axis (e.g. mm); the result is in its
    unit. Raises ``ValueError`` when a mask is empty.
    """
    ref, est = _mask_pair(ref, est, "hausdorff_distance")
    if not 0 <= percentile <= 100:
        raise ValueError(f"hausdorff_distance: percentile must be in [0, 100], got {percentile}")
    d_est, d_ref = _surface_distances(ref, est, spacing, "hausdorff_distance")
    return float(max(np.percentile(d_est, percentile), np.percentile(d_ref, percentile)))


def average_surface_distance(
    ref: ArrayLike, est: ArrayLike, spacing: Sequence[float] | None = None
) -> float:
    """Symmetric average surface distance: the mean over the surface voxels of both masks
    of the distance to the other mask's surface, in the unit of ``spacing``.
    """
    ref, est = _mask_pair(ref, est, "average_surface_distance")
    d_est, d_ref = _surface_distances(ref, est, spacing, "average_surface_distance")
    return float(np.concatenate([d_est, d_ref]).mean())
