"""Denoising: the shipped noise-aware net and its SURE-trained twin against NLM and BM3D.

Each clean image ``x`` in [0, 1] gets one noise draw (seed ``--seed + i`` for image ``i``)
per noise condition, and every method denoises that same ``y``; each is scored against ``x``
with :mod:`dlmi_utils.metrics` (PSNR and SSIM, ``data_range=1``, no clipping). Conditions:

- ``--sigma S`` (repeatable, 8-bit levels in (0, 100]): white Gaussian noise of std
  ``S / 255`` (:class:`dlmi_utils.noise.GaussianNoise`); JSON key ``"S"`` (``"25"``);
- ``--photons N0`` (repeatable): the X-ray transmission model
  (:class:`dlmi_utils.noise.TransmissionNoise`: ``p = 3 x``, ``k ~ Poisson(N0 exp(-p))``,
  ``y = -log(k / N0) / 3``); every method but ``noisy`` runs through its variance-stabilising
  transform (``noise.through``: back to the transmitted fraction, Anscombe, the method at
  ``sigma = noise.level``, exact unbiased inverse, log); JSON key ``"photonsN0"``.

Methods (``--methods``, default all):

- ``noisy``: ``y`` itself;
- ``nlm``: non-local means, ``skimage.restoration.denoise_nl_means(y, h=0.8 sigma,
  sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)``: scikit-image's advice
  for ``fast_mode`` (h a little below sigma when sigma is given);
- ``bm3d``: ``bm3d.bm3d(y, sigma_psd=sigma)`` (the ``bm3d`` package, Mäkitalo & Foi), told
  the true sigma;
- ``noise_aware``: ``load_pretrained("noise_aware").at(sigma)`` (supervised, one net for
  sigma in [5, 55] / 255);
- ``sure``: ``load_pretrained("noise_aware_sure").at(sigma)`` (the same net trained on the
  MC-SURE of noisy patches only).

The nets run with their batch norms folded into the convolutions (``fold_batch_norm``: the
same outputs to float rounding) through ``predict_tiled`` (one tile up to 1024 x 1024) with
``torch.set_num_threads(--threads)``; BM3D and NLM run on one core. Seconds are per image
(the best of ``--repeat`` runs, then the mean over the images), after one untimed warm-up
call of every method (on the first image; BM3D on its 64 x 64 corner).

Images: by default the held-out patient (``load_mammograms("test")``, never trained on) at
0.2 mm, the crops of Lab 04: ``breast_crops(mask, 128, 4, margin=FILM_BORDER_MARGIN)`` on each
of its 4 views (16 crops inside the breast, no pixel within 16 px of the film's border).
``--image FILE ...`` (DICOM, NIfTI, PNG or ``.npy``, scaled to [0, 1]) or ``--radiograph NAME``
(a held-out radiograph of :func:`dlmi_utils.data.load_radiographs`, ``cr_leg``) take those
images instead, whole, or their centre ``--crop N`` x ``N``.

Usage (from the repository root)::

    python benchmarks/denoise.py --sigma 15 --sigma 25 --sigma 50 --json denoise.json
    python benchmarks/denoise.py --photons 500
    python benchmarks/denoise.py --sigma 25 --radiograph cr_leg
    python benchmarks/denoise.py --sigma 25 --image scan.dcm --crop 256 --methods noisy bm3d
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from skimage.restoration import denoise_nl_means

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_image_arg, print_table, time_call, write_json  # noqa: E402

from dlmi_utils.data import load_mammograms, load_radiographs  # noqa: E402
from dlmi_utils.data.radiographs import RADIOGRAPHS  # noqa: E402
from dlmi_utils.denoising.models import fold_batch_norm  # noqa: E402
from dlmi_utils.denoising.patches import FILM_BORDER_MARGIN, breast_crops  # noqa: E402
from dlmi_utils.denoising.tiling import predict_tiled  # noqa: E402
from dlmi_utils.metrics import psnr, ssim  # noqa: E402
from dlmi_utils.noise import (  # noqa: E402
    GaussianNoise,
    NoiseModel,
    TransmissionNoise,
    sigma_8bit,
)
from dlmi_utils.pretrained import load_pretrained  # noqa: E402

METHODS = ("noisy", "nlm", "bm3d", "noise_aware", "sure")
WEIGHTS = {"noise_aware": "noise_aware", "sure": "noise_aware_sure"}
CROP, CROPS_PER_VIEW = 128, 4  # Lab 04's evaluation crops on the held-out patient
NLM_H = 0.8  # h / sigma of non-local means (scikit-image's advice with fast_mode)
SIGMA_MAX = 100.0  # 8-bit levels beyond this bury a [0, 1] image
MIN_SIDE = 32  # pixels: the bm3d library crashes (segfault) on an 8 x 8 image
TILE = 1024  # one tile for a crop or a whole radiograph (the leg: 586 x 586)
HELD_OUT_RADIOGRAPHS = RADIOGRAPHS["test"]


def check_image(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` as ``(H, W)`` float32 after checking it is 2-D, finite and >= MIN_SIDE."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{name}: the benchmark denoises 2-D images (H, W), got shape "
                         f"{image.shape}")
    if np.iscomplexobj(image) or not np.isfinite(image).all():
        raise ValueError(f"{name}: the image must be real and hold no NaN or infinite values")
    if min(image.shape) < MIN_SIDE:
        raise ValueError(f"{name}: {image.shape[0]} x {image.shape[1]} is too small; both sides "
                         f"must be >= {MIN_SIDE} pixels")
    return np.ascontiguousarray(image, dtype=np.float32)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` part of ``image`` (all of a side shorter than it;
    ``size=0``: the whole image)."""
    if size <= 0:
        return image
    h, w = image.shape
    r, c = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(image[r : r + size, c : c + size])


def held_out_crops() -> tuple[list[np.ndarray], list[str]]:
    """Lab 04's evaluation crops: ``CROPS_PER_VIEW`` crops ``CROP`` x ``CROP`` inside the breast,
    none within ``FILM_BORDER_MARGIN`` px of the film's border, on each view of the held-out
    patient; and their names ``"view (row, col)"``."""
    images, names = [], []
    for m in load_mammograms("test"):
        for r, c in breast_crops(m.breast_mask, CROP, CROPS_PER_VIEW, margin=FILM_BORDER_MARGIN):
            images.append(np.ascontiguousarray(m.image[r : r + CROP, c : c + CROP]))
            names.append(f"{m.view} ({r}, {c})")
    return images, names


def benchmark_images(args: argparse.Namespace) -> tuple[list[np.ndarray], str]:
    """The clean images ``(H, W)`` float32 in [0, 1], checked, and a description of them."""
    what = f"centre {args.crop} x {args.crop} crop" if args.crop else "whole image"
    if args.image:
        images = []
        for f in args.image:
            try:
                image = load_image_arg(f)
            except ValueError as err:  # read_image's message need not name the file
                raise ValueError(f"--image {f}: {err}") from err
            images.append(check_image(centre_crop(image, args.crop), f"--image {f}"))
        return images, f"{', '.join(args.image)} ({what})"
    if args.radiograph:
        image = load_radiographs("test")[args.radiograph]
        image = check_image(centre_crop(image, args.crop), args.radiograph)
        return [image], (f"held-out radiograph {args.radiograph}, {image.shape[0]} x "
                         f"{image.shape[1]} ({what})")
    images, _ = held_out_crops()
    return ([check_image(x, "crop") for x in images],
            f"{len(images)} crops {CROP} x {CROP} of the held-out patient (sfm-malign-0, 0.2 mm; "
            f"{CROPS_PER_VIEW} per view inside the breast, >= {FILM_BORDER_MARGIN} px from the "
            "film's border)")


def noise_conditions(args: argparse.Namespace) -> dict[str, NoiseModel]:
    """``{JSON key: noise model}``: ``"S"`` for ``--sigma S``, ``"photonsN0"`` for
    ``--photons N0``, in the order given."""
    conditions: dict[str, NoiseModel] = {
        f"{s:g}": GaussianNoise(sigma_8bit(s)) for s in args.sigma or ()}
    conditions.update({f"photons{n:g}": TransmissionNoise(n) for n in args.photons or ()})
    return conditions


def _import_bm3d():
    try:
        import bm3d
    except ImportError:
        sys.exit("benchmarks/denoise.py compares with BM3D: pip install bm3d (a test dependency)")
    return bm3d


def denoisers(names: tuple[str, ...]) -> dict[str, Callable[[np.ndarray, float], np.ndarray]]:
    """Each method as ``(y, sigma) -> x_hat`` for Gaussian noise of std ``sigma``; ``noisy``
    as ``y -> y``."""
    out: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {}
    for name in names:
        if name == "noisy":
            out[name] = lambda y: y
        elif name == "nlm":
            out[name] = lambda y, sigma: denoise_nl_means(
                y, h=NLM_H * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
        elif name == "bm3d":
            bm3d = _import_bm3d()
            out[name] = lambda y, sigma, bm3d=bm3d: bm3d.bm3d(y.astype(np.float64),
                                                              sigma_psd=sigma)
        else:
            net = fold_batch_norm(load_pretrained(WEIGHTS[name]))
            out[name] = lambda y, sigma, net=net: predict_tiled(
                net.at(sigma), y, tile=TILE, batch_size=1)
    return out


def run(args: argparse.Namespace, images: list[np.ndarray], source: str
        ) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {condition: {"psnr", "ssim", "seconds"}}}`` on ``images``, means over them."""
    torch.set_num_threads(args.threads)
    conditions = noise_conditions(args)
    methods = denoisers(tuple(args.methods))
    print(f"# {source}; {', '.join(str(n) for n in conditions.values())}", flush=True)
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    for key, noise in conditions.items():
        # "noisy" is y itself, not its round trip through the VST
        runs = {name: f if name == "noisy" else
                noise.through(lambda y, f=f, level=noise.level: f(y, level))
                for name, f in methods.items()}
        # first calls load libraries, allocate and pick the kernels of the image's shape;
        # BM3D has no shape-dependent set-up, and a small image keeps its warm-up short
        warm = noise(images[0], args.seed)
        for name in methods:
            runs[name](warm[:64, :64] if name == "bm3d" else warm)
        scores = {name: {"psnr": [], "ssim": [], "seconds": []} for name in methods}
        for i, x in enumerate(images):
            y = noise(x, args.seed + i)
            for name in methods:
                out, seconds = time_call(runs[name], y, repeat=args.repeat)
                out = np.asarray(out, dtype=np.float64)
                scores[name]["psnr"].append(psnr(x, out, data_range=1.0))
                scores[name]["ssim"].append(ssim(x, out, data_range=1.0))
                scores[name]["seconds"].append(0.0 if name == "noisy" else seconds)
        for name, s in scores.items():
            results[name][key] = {k: float(np.mean(v)) for k, v in s.items()}
    return results


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty.strip() else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(threads: int) -> str:
    """One line: date, commit, machine, load and the versions behind the figures."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"# {datetime.date.today()}, commit {_git_commit()}, {_cpu_name()}, "
            f"{os.cpu_count()} cores (load {load}), Python {platform.python_version()}, "
            f"torch {torch.__version__}, torch threads: {threads}")


def print_results(results: dict[str, dict[str, dict[str, float]]]) -> None:
    """One row per method: PSNR (dB) / SSIM / seconds per image under each condition, then how
    many times faster than BM3D each method is."""
    keys = list(next(iter(results.values())))
    label = {k: (f"sigma {k}" if not k.startswith("photons") else f"N0 = {k[7:]}") for k in keys}
    rows = [{"method": name, **{f"{label[k]}: PSNR / SSIM / s":
                                f"{r[k]['psnr']:.2f} / {r[k]['ssim']:.4f} / {r[k]['seconds']:.3f}"
                                for k in keys}}
            for name, r in results.items()]
    print_table(rows, list(rows[0]))
    if "bm3d" in results:
        bm3d = results["bm3d"]
        rows = [{"method": name, **{label[k]: f"{bm3d[k]['seconds'] / r[k]['seconds']:.1f}"
                                    for k in keys}}
                for name, r in results.items() if name not in ("noisy", "bm3d")]
        if rows:
            print("\nx faster than BM3D (seconds per image)")
            print_table(rows, ["method", *(label[k] for k in keys)])


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma", type=float, action="append", metavar="S",
                        help="8-bit Gaussian noise level in (0, 100]; repeatable (25 if neither "
                             "--sigma nor --photons)")
    parser.add_argument("--photons", type=float, action="append", metavar="N0",
                        help="X-ray transmission noise at N0 photons per pixel; repeatable")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", nargs="+", metavar="FILE",
                        help="images (DICOM, NIfTI, PNG, .npy) instead of the held-out crops")
    source.add_argument("--radiograph", metavar="NAME",
                        help=f"a held-out radiograph instead ({', '.join(HELD_OUT_RADIOGRAPHS)})")
    parser.add_argument("--crop", type=int, default=0,
                        help="centre crop side of --image / --radiograph, 0: whole (0)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="the methods to run (all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--repeat", type=int, default=1, help="timing runs, best kept (1)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of image 0 (0)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if not args.sigma and not args.photons:
        args.sigma = [25.0]
    for s in args.sigma or ():
        if not 0 < s <= SIGMA_MAX:
            parser.error(f"--sigma must be an 8-bit level in (0, {SIGMA_MAX:g}], got {s:g}")
    for n in args.photons or ():
        if not (n > 0 and math.isfinite(n)):
            parser.error(f"--photons must be a positive number of photons, got {n:g}")
    if args.radiograph is not None and args.radiograph not in HELD_OUT_RADIOGRAPHS:
        parser.error(f"--radiograph {args.radiograph}: not a held-out radiograph; those are "
                     f"{', '.join(HELD_OUT_RADIOGRAPHS)} (the others are training data)")
    if args.crop < 0 or (args.crop and args.crop < MIN_SIDE):
        parser.error(f"--crop must be 0 (whole image) or >= {MIN_SIDE}, got {args.crop}")
    if args.crop and not (args.image or args.radiograph):
        parser.error(f"--crop applies to --image / --radiograph; the held-out crops are "
                     f"{CROP} x {CROP}")
    if args.repeat < 1 or args.threads < 1:
        parser.error("--repeat and --threads must be >= 1")
    args.methods = [m for m in METHODS if m in args.methods]  # the table's order, once each
    try:
        images, source = benchmark_images(args)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    print(provenance(args.threads), flush=True)
    results = run(args, images, source)
    print_results(results)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
