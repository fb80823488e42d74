"""Figures of the labs, with one look: image grids, k-space, error maps, curves, masks.

Every function takes numpy arrays or torch tensors (on any device), returns the matplotlib
``Figure`` (a notebook shows it; ``fig.savefig`` writes it) and titles and labels it.
Complex images are shown as their magnitude, and the panel's title says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

STYLE = {
    "figure.dpi": 100,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "image.interpolation": "nearest",
}
ERROR_CMAP = "inferno"


def _to_numpy(x: Any, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.resolve_conj().numpy() if x.is_complex() else x.numpy()
    if not isinstance(x, np.ndarray | list | tuple | np.generic):
        raise TypeError(f"{what} must be a numpy array or a torch tensor, got {type(x).__name__}")
    return np.asarray(x)


def _image(x: Any, what: str) -> tuple[np.ndarray, bool]:
    """-> (real image (H, W) or (H, W, 3|4), whether it was complex)."""
    a = _to_numpy(x, what)
    a = np.squeeze(a) if a.ndim > 2 and a.shape[0] == 1 else a
    is_rgb = a.ndim == 3 and a.shape[-1] in (3, 4) and not np.iscomplexobj(a)
    if a.ndim != 2 and not is_rgb:
        raise ValueError(f"{what} must be a 2-D image (H, W), got shape {a.shape}")
    was_complex = np.iscomplexobj(a)
    if was_complex:
        a = np.abs(a)
    if a.dtype == bool:
        a = a.astype(np.float32)
    return a.astype(np.float32, copy=False), was_complex


def _as_list(images: Any, titles: Sequence[str] | None) -> tuple[list, list[str]]:
    if isinstance(images, Mapping):
        if titles is not None:
            raise ValueError("give titles either as the keys of a dict or as titles=, not both")
        return list(images.values()), [str(k) for k in images]
    if not isinstance(images, list | tuple):
        arr = _to_numpy(images, "images")
        images = [images] if arr.ndim == 2 else [arr[i] for i in range(arr.shape[0])]
    images = list(images)
    if not images:
        raise ValueError("nothing to show: give at least one image")
    if titles is None:
        titles = [f"image {i}" for i in range(len(images))] if len(images) > 1 else [""]
    titles = list(titles)
    if len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    return images, titles


def _grid(n: int, ncols: int | None, figsize, panel: float = 3.0):
    if n < 1:
        raise ValueError("nothing to show: give at least one image")
    ncols = min(n, 4) if ncols is None else int(ncols)
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nrows = -(-n // ncols)
    figsize = figsize or (panel * ncols + 0.6, panel * nrows + 0.6)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.remove()
    return fig, list(axes.flat[:n])


def _decorate(ax, axis_labels: tuple[str, str] | None) -> None:
    if axis_labels is None:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])


def show_images(
    images: Any,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    colorbar: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    suptitle: str | None = None,
    figsize: tuple[float, float] | None = None,
    clabel: str = "intensity (a.u.)",
    axis_labels: tuple[str, str] | None = None,
) -> Figure:
    """A grid of images: a list, a dict ``{title: image}``, one ``(H, W)`` image or a stack
    ``(N, H, W)``. Complex images are shown as ``|x|`` ("|.|" added to the title).

    ``vmin``/``vmax`` shared by all panels when given (each panel's own range otherwise);
    ``axis_labels=("x (mm)", "y (mm)")`` keeps the ticks and labels the axes.
    """
    images, titles = _as_list(images, titles)
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(images), ncols, figsize)
        for i, (ax, img, title) in enumerate(zip(axes, images, titles, strict=True)):
            a, was_complex = _image(img, f"image {i}")
            im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(f"{title} |.|" if was_complex else title)
            _decorate(ax, axis_labels)
            if colorbar and a.ndim == 2:
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label(clabel)
        if suptitle:
            fig.suptitle(suptitle)
    return fig


def show_kspace(
    kspace: Any,
    title: str = "k-space",
    ncols: int | None = None,
    scale: float | None = None,
) -> Figure:
    """Log-magnitude ``log(1 + |k| / s)`` of k-space ``(H, W)``, or of each coil ``(C, H, W)``.

    ``s = scale``; by default the median of ``|k|``, so that the weak outer k-space shows for
    images of any intensity range (``scale=1`` gives the plain ``log(1 + |k|)``). Axes in
    samples from the centre (the DC term at 0, fft2c convention).
    """
    k = _to_numpy(kspace, "kspace")
    if k.ndim not in (2, 3):
        raise ValueError(f"kspace must be (H, W) or (C, H, W), got shape {k.shape}")
    mag = np.abs(k[None] if k.ndim == 2 else k)
    if scale is None:
        scale = float(np.median(mag))
        scale = scale if scale > 0 else (float(mag.max()) or 1.0)
        clabel = r"$\log(1 + |k| / \mathrm{median}|k|)$"
    elif scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    else:
        clabel = r"$\log(1 + |k|)$" if scale == 1 else rf"$\log(1 + |k| / {scale:g})$"
    h, w = mag.shape[-2:]
    extent = (-w // 2 - 0.5, w - w // 2 - 0.5, h - h // 2 - 0.5, -h // 2 - 0.5)
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(mag), ncols, None)
        for c, ax in enumerate(axes):
            im = ax.imshow(np.log1p(mag[c] / scale), cmap="gray", extent=extent)
            ax.set_title(title if len(mag) == 1 else f"coil {c}")
            ax.set_xlabel("$k_x$ (samples from the centre)")
            ax.set_ylabel("$k_y$ (samples from the centre)")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label(clabel)
        if len(mag) > 1:
            fig.suptitle(title)
    return fig


def show_error_maps(
    reference: Any,
    estimates: Mapping[str, Any],
    metric: Callable[[np.ndarray, np.ndarray], float] | None = None,
    metric_name: str = "PSNR",
    metric_unit: str = "dB",
    error_vmax: float | None = None,
    suptitle: str | None = "Reconstructions and their errors",
    reference_title: str = "reference",
    panel: float = 3.0,
) -> Figure:
    """Top row: the reference and each estimate (on the reference's grey scale); bottom
    row: ``|estimate - reference|`` with one colour scale shared by all (``error_vmax``, or
    the largest error) and one colour bar. ``metric(reference, estimate)`` goes in the titles.
    """
    if not isinstance(estimates, Mapping) or not estimates:
        raise ValueError("estimates must be a non-empty dict {name: image}")
    ref, _ = _image(reference, "reference")
    if ref.ndim != 2:
        raise ValueError(f"reference must be a 2-D image (H, W), got shape {ref.shape}")
    ests = {}
    for name, est in estimates.items():
        e, _ = _image(est, f"estimate {name!r}")
        if e.shape != ref.shape:
            raise ValueError(
                f"estimate {name!r} has shape {e.shape}, the reference {ref.shape}: they must match"
            )
        ests[name] = e
    errors = {name: np.abs(e - ref) for name, e in ests.items()}
    emax = error_vmax if error_vmax is not None else max(float(e.max()) for e in errors.values())
    emax = emax if emax > 0 else 1.0
    vmin, vmax = float(ref.min()), float(ref.max())
    n = len(ests) + 1
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, n, figsize=(panel * n + 1.0, 2 * panel + 0.8),
                                 squeeze=False, layout="constrained")
        im = axes[0, 0].imshow(ref, cmap="gray", vmin=vmin, vmax=vmax)
        axes[0, 0].set_title(reference_title)
        axes[1, 0].axis("off")
        axes[1, 0].text(0.5, 0.5, "|estimate - reference|\n(shared scale)", ha="center",
                        va="center", transform=axes[1, 0].transAxes)
        for j, (name, e) in enumerate(ests.items(), start=1):
            axes[0, j].imshow(e, cmap="gray", vmin=vmin, vmax=vmax)
            title = name
            if metric is not None:
                title = f"{name}\n{metric_name} {metric(ref, e):.2f} {metric_unit}".rstrip()
            axes[0, j].set_title(title)
            err = axes[1, j].imshow(errors[name], cmap=ERROR_CMAP, vmin=0.0, vmax=emax)
            axes[1, j].set_title(f"error of {name}")
        for ax in axes[:, :].flat:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=axes[0, :].tolist(), fraction=0.02, pad=0.01).set_label(
            "intensity (a.u.)")
        fig.colorbar(err, ax=axes[1, 1:].tolist(), fraction=0.02, pad=0.01).set_label(
            "absolute error (a.u.)")
        if suptitle:
            fig.suptitle(suptitle)
    return fig


def _curve(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(values, Mapping):
        if not values:
            raise ValueError(f"history {name!r} is empty")
        xs = sorted(values)
        return np.asarray(xs, dtype=float), np.asarray([float(values[x]) for x in xs])
    y = _to_numpy(values, f"history {name!r}").astype(float).ravel()
    if y.size == 0:
        raise ValueError(f"history {name!r} is empty")
    return np.arange(1, y.size + 1, dtype=float), y


def plot_curves(
    histories: Mapping[str, Any],
    xlabel: str = "epoch",
    ylabel: str = "loss",
    logy: bool = False,
    title: str | None = "Training curves",
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Figure:
    """Curves ``{name: values}``; values a list (x = 1, 2, ...) or a dict ``{x: y}``."""
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty dict {name: list or {x: y}}")
    curves = {name: _curve(v, name) for name, v in histories.items()}
    if logy:
        bad = [n for n, (_, y) in curves.items() if np.any(y <= 0)]
        if bad:
            raise ValueError(f"logy=True needs positive values; {bad} have values <= 0")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        for name, (x, y) in curves.items():
            ax.plot(x, y, marker="o" if len(x) <= 30 else None, markersize=3, label=str(name))
        if logy:
            ax.set_yscale("log")
        if all(np.all(x == np.round(x)) for x, _ in curves.values()):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        if title:
            ax.set_title(title)
    return fig


def show_mask(
    mask: Any,
    image: Any | None = None,
    title: str = "mask",
    color: str = "tab:red",
    alpha: float = 0.35,
    figsize: tuple[float, float] = (4.5, 4.5),
) -> Figure:
    """A binary mask ``(H, W)``: alone (white = True), or over ``image`` (tinted, outlined)."""
    m = _to_numpy(mask, "mask")
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    if m.dtype != bool:
        if not np.isin(np.unique(m), (0, 1)).all():
            raise ValueError("mask must be boolean or hold only 0 and 1")
        m = m.astype(bool)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        if image is None:
            ax.imshow(m, cmap="gray", vmin=0, vmax=1)
        else:
            img, _ = _image(image, "image")
            if img.shape[:2] != m.shape:
                raise ValueError(f"image {img.shape} and mask {m.shape} must have the same shape")
            ax.imshow(img, cmap="gray")
            tint = ListedColormap([(0, 0, 0, 0), to_rgba(color, alpha)])
            ax.imshow(m, cmap=tint, vmin=0, vmax=1)
            if m.any() and not m.all():
                ax.contour(m, levels=[0.5], colors=[color], linewidths=1.0)
        ax.set_title(f"{title} ({100 * m.mean():.1f} % of pixels)")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
