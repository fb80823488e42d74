"""Denoising: the shipped dilated net and DnCNN against BM3D, on the same noisy images.

Each clean image ``x`` in [0, 1] gets white Gaussian noise of std ``sigma / 255`` (the 8-bit
levels 15, 25, 50) drawn with ``--seed + i`` for image ``i``; every method denoises that same
``y``, and is scored against ``x`` with :mod:`dlmi_utils.metrics` (``data_range=1``):

- ``noisy``: ``y`` itself;
- ``bm3d``: ``bm3d.bm3d(y, sigma_psd=sigma / 255)`` (the ``bm3d`` package, Mäkitalo & Foi);
- ``dncnn`` and ``dilated``: the shipped weights of the level (:func:`shipped_denoiser`:
  ``{kind}_sigma{S}``, else the blind net ``{kind}_blind`` when S lies in its range) with
  their batch norms folded into the convolutions (``fold_batch_norm``: the same outputs, to
  float rounding, in fewer passes), applied with ``predict_tiled`` (one tile for a crop, exact
  tiles otherwise), ``torch.set_num_threads(--threads)``.

Images: by default the held-out case (``load_mammograms("test")``, the malignant case, never
seen in training) at the pixel size of the weights (0.2 mm), one ``--crop`` x ``--crop`` crop
inside the breast of each view (:func:`dlmi_utils.denoising.patches.breast_crops`);
``--image FILE`` (DICOM, NIfTI, PNG or ``.npy``, scaled to [0, 1]) takes that image instead,
whole or centre-cropped to ``--crop`` (``--crop 0``: whole). Seconds are per image, the best
of ``--repeat`` runs after one warm-up run of the networks.

``--also NAME [NAME ...]`` adds a row per shipped denoiser ``NAME`` of any kind (e.g.
``resunet_sigma15``, the multi-scale residual U-Net), run as the dilated row is, keyed by its
name.

``--wiener`` adds the row ``dilated+wiener``: the dilated net's estimate taken as the pilot of
an empirical Wiener step on the same ``y`` (BM3D's second step, in 32 x 32 DCT windows every
8 pixels, without BM3D's grouping of similar windows:
:func:`dlmi_utils.denoising.wiener.wiener_refine`), averaged with the net's estimate
(``pilot_weight=0.5``, chosen on the validation crops of the training case). A hybrid of the
net and a classical filter, timed as a whole.

Besides the means, each method's JSON entry keeps ``psnr_per_image`` and ``psnr_interior``
(the mean PSNR of the pixels more than ``--margin`` from the image's edge; default half the
dilated net's receptive field, where it sees no padding), and a second table prints them
per image: where a method loses, and whether it loses at the edges. ``--bands`` also splits
each method's MSE by the spatial frequency of its error (:func:`dlmi_utils.metrics.error_bands`,
radial bands in cycles per pixel that sum to the MSE; JSON ``error_bands``, the edges under
``error_band_edges``): at which scales one method beats another. ``--edge-profile`` splits
it by distance from the image's first column instead, where every mammogram crop meets the
film's edge (:func:`dlmi_utils.metrics.error_by_distance`, the mean error of bands of columns
that double in width, up to the narrowest image's width; JSON ``error_by_distance``, the edges
under ``error_distance_edges``): how much of a method's error is the film's edge.

``--photons N0`` takes quantum noise instead, ``Poisson(N0 x) / N0`` drawn with the same
seeds, the noise of X-ray imaging (:class:`dlmi_utils.noise.PoissonNoise`): every method then
runs on the Anscombe transform ``z`` (noise std ``sigma_z = 1 / (2 sqrt(N0))``, given to BM3D),
followed by the exact unbiased inverse, with the nets trained on Anscombe-transformed counts
(``{kind}_photons{N0}``, ``train_denoisers.py --photons``) or else those of the level
``sigma_z``.

``--full-size`` also denoises one whole held-out film at the native 0.05 mm (~4500 x 2800
pixels) with the dilated net in ``--tile`` tiles, and reports the time, the number of tiles,
the largest tensor the network saw and the peak memory of the process (JSON key
``full_size``); the network was trained at 0.2 mm, so its PSNR there is not its best.

Usage (from the repository root)::

    python benchmarks/denoise.py --sigma 25
    python benchmarks/denoise.py --sigma 15 --json denoise_s15.json --full-size
    python benchmarks/denoise.py --sigma 25 --image scan.dcm --crop 256
    python benchmarks/denoise.py --photons 100
    python benchmarks/denoise.py --sigma 15 --bands
    python benchmarks/denoise.py --sigma 15 --edge-profile --also resunet_sigma15
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_image_arg, print_table, time_call, write_json  # noqa: E402

from dlmi_utils.data import load_mammogram, load_mammograms  # noqa: E402
from dlmi_utils.denoising.geometry import receptive_field  # noqa: E402
from dlmi_utils.denoising.models import fold_batch_norm  # noqa: E402
from dlmi_utils.denoising.patches import breast_crops  # noqa: E402
from dlmi_utils.denoising.tiling import model_plan, pixel_grid, predict_tiled  # noqa: E402
from dlmi_utils.denoising.wiener import wiener_refine  # noqa: E402
from dlmi_utils.metrics import (  # noqa: E402
    DEFAULT_BANDS,
    distance_edges,
    error_bands,
    error_by_distance,
    psnr,
    ssim,
)
from dlmi_utils.noise import GaussianNoise, NoiseModel, PoissonNoise, sigma_8bit  # noqa: E402
from dlmi_utils.pretrained import available, load_pretrained, load_record  # noqa: E402

METHODS = ("noisy", "bm3d", "dncnn", "dilated")
WIENER_ROW = "dilated+wiener"  # --wiener


def _import_bm3d():
    try:
        import bm3d
    except ImportError:
        sys.exit("benchmarks/denoise.py compares with BM3D: pip install bm3d (a test dependency)")
    return bm3d


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    if size <= 0:
        return image
    h, w = image.shape
    r, c = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(image[r : r + size, c : c + size])


def _images(args, pixel_size_mm: float) -> tuple[list[np.ndarray], list[str], str]:
    """Clean images ``(H, W)`` float32 in [0, 1], their names and a description of them."""
    if args.image:
        images = [_centre_crop(load_image_arg(f), args.crop) for f in args.image]
        return images, [Path(f).name for f in args.image], ", ".join(args.image)
    images, names = [], []
    for m in load_mammograms("test", pixel_size_mm):
        try:
            (r, c), = breast_crops(m.breast_mask, args.crop, 1)
        except ValueError as err:
            raise SystemExit(f"{m.case} {m.view}: no {args.crop} x {args.crop} crop lies inside "
                             f"the breast; give a smaller --crop ({err})") from err
        images.append(np.ascontiguousarray(m.image[r : r + args.crop, c : c + args.crop]))
        names.append(f"{m.view} ({r}, {c})")
    return images, names, (f"{len(images)} held-out crops {args.crop} x {args.crop} inside the "
                           f"breast (case sfm-malign-0, {pixel_size_mm} mm)")


def _interior(image: np.ndarray, margin: int) -> np.ndarray:
    """``image`` without its ``margin`` outer rows and columns (all of it if that is empty)."""
    h, w = image.shape
    if margin <= 0 or 2 * margin >= min(h, w):
        return image
    return image[margin : h - margin, margin : w - margin]


def _network(model: torch.nn.Module, tile: int):
    def run(y: np.ndarray) -> np.ndarray:
        return predict_tiled(model, y, tile=tile, batch_size=1)

    return run


def shipped_denoiser(kind: str, noise: NoiseModel, level_8bit: float) -> str:
    """The shipped weights of ``kind`` for ``noise``: ``{kind}_photons{N0}`` for quantum noise,
    else ``{kind}_sigma{S}`` for the 8-bit level ``level_8bit`` (that of the Gaussian noise the
    net sees), else the blind net ``{kind}_blind`` when the level lies in its range."""
    names = available()
    if isinstance(noise, PoissonNoise) and f"{kind}_photons{noise.photons:g}" in names:
        return f"{kind}_photons{noise.photons:g}"
    if f"{kind}_sigma{level_8bit:g}" in names:
        return f"{kind}_sigma{level_8bit:g}"
    lo, hi = load_record(f"{kind}_blind")["sigma_range_8bit"]
    if not lo <= level_8bit <= hi:
        raise SystemExit(f"no shipped {kind} denoiser for sigma = {level_8bit:g} / 255 (the blind "
                         f"net covers [{lo:g}, {hi:g}]); train one with scripts/train_denoisers.py "
                         f"--kind {kind} --sigma {level_8bit:g}")
    return f"{kind}_blind"


def shipped_denoisers() -> list[str]:
    """Names of the shipped weights whose model is a denoiser."""
    return [n for n in available() if load_record(n)["model"].startswith("dlmi_utils.denoising.")]


def _wiener_refined(run, level: float):
    """``run``'s estimate as the pilot of an empirical Wiener step on the same ``y``, averaged
    with it (:func:`dlmi_utils.denoising.wiener.wiener_refine`, ``pilot_weight=0.5``)."""
    return lambda y: wiener_refine(y, run(y), level, pilot_weight=0.5)


def _print_error_split(results: dict[str, dict], methods: tuple[str, ...], key: str,
                       title: str, first_column: str, labels: list[str],
                       total: str, combine) -> None:
    """One row per part of each method's ``results[name][key]`` (x 1e5), then the row
    ``total``: ``combine(parts)``, the MSE they make up."""
    print(f"\n{title}")
    rows = [{first_column: label, **{name: f"{1e5 * results[name][key][k]:.2f}"
                                     for name in methods}}
            for k, label in enumerate(labels)]
    rows.append({first_column: total, **{name: f"{1e5 * combine(results[name][key]):.2f}"
                                         for name in methods}})
    print_table(rows, [first_column, *methods])


def _print_bands(results: dict[str, dict], methods: tuple[str, ...]) -> None:
    """The mean MSE of each method split by the radial frequency of its error (x 1e5)."""
    edges = DEFAULT_BANDS
    _print_error_split(
        results, methods, "error_bands",
        "MSE x 1e5 by spatial frequency of the error (cycles / pixel; the bands sum to the MSE)",
        "band", [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)],
        "MSE", sum)


def _print_edge_profile(results: dict[str, dict], methods: tuple[str, ...],
                        edges: list[int]) -> None:
    """The mean MSE of each method by distance from the images' first column (x 1e5)."""
    widths = np.diff(edges)
    _print_error_split(
        results, methods, "error_by_distance",
        "MSE x 1e5 by distance from the first column (pixels; the film's edge for the "
        "mammogram crops)",
        "columns", [f"[{a}, {b})" for a, b in zip(edges[:-1], edges[1:], strict=True)],
        f"MSE of [0, {edges[-1]})", lambda parts: np.dot(parts, widths) / edges[-1])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def full_size_run(args, model: torch.nn.Module, noise: NoiseModel) -> dict[str, float]:
    """The dilated net on one whole native-resolution held-out film, in tiles."""
    m = load_mammogram("sfm-malign-0", "lcc", pixel_size_mm=None)
    x = m.image
    y = noise(x, args.seed)
    shapes: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(lambda _m, inp: shapes.append(tuple(inp[0].shape)))
    start = time.perf_counter()
    out = noise.through(_network(model, args.tile))(y)
    seconds = time.perf_counter() - start
    hook.remove()
    plan = model_plan(model, x.shape, args.tile)
    features = model.config["features"]
    return {
        "height": x.shape[0], "width": x.shape[1], "pixel_size_mm": m.pixel_size_mm,
        "seconds": seconds, "tiles": plan.n_tiles,
        "largest_input_pixels": max(int(np.prod(s)) for s in shapes),
        # a net on s x s unshuffled pixels has feature maps of a s^2 times smaller image
        "untiled_feature_map_mb": features * x.size / pixel_grid(model) ** 2 * 4 / 2**20,
        "peak_rss_mb": _peak_rss_mb(),
        "psnr_noisy": psnr(x, y, data_range=1.0),
        "psnr": psnr(x, out, data_range=1.0),
    }


def run(args) -> dict[str, dict[str, float]]:
    bm3d = _import_bm3d()
    torch.set_num_threads(args.threads)
    noise = PoissonNoise(args.photons) if args.photons else GaussianNoise(sigma_8bit(args.sigma))
    level_8bit = 255 * noise.level if args.photons else args.sigma
    nets = {kind: fold_batch_norm(load_pretrained(shipped_denoiser(kind, noise, level_8bit)))
            for kind in ("dncnn", "dilated")}
    dilated = nets["dilated"].weights_name
    pixel_size = load_record(dilated)["data"]["pixel_size_mm"]
    images, names, source = _images(args, pixel_size)
    margin = args.margin if args.margin is not None else receptive_field(nets["dilated"]) // 2
    dilated_run = _network(nets["dilated"], args.tile)
    methods = {
        "noisy": lambda y: y,
        "bm3d": noise.through(lambda y: bm3d.bm3d(y.astype(np.float64), sigma_psd=noise.level)),
        "dncnn": noise.through(_network(nets["dncnn"], args.tile)),
        "dilated": noise.through(dilated_run),
    }
    if args.wiener:
        methods[WIENER_ROW] = noise.through(_wiener_refined(dilated_run, noise.level))
    for name in args.also or ():
        extra = fold_batch_norm(load_pretrained(name))
        if (trained_at := load_record(name)["data"]["pixel_size_mm"]) != pixel_size:
            raise SystemExit(f"--also {name}: trained at {trained_at} mm, the images are at "
                             f"the {pixel_size} mm of {dilated}")
        methods[name] = noise.through(_network(extra, args.tile))
    names_ = tuple(methods)
    for name in names_[2:]:  # warm-up: first calls allocate and pick kernels
        methods[name](np.zeros((64, 64), np.float32))
    keys = ("psnr", "ssim", "seconds", "psnr_interior")
    scores = {name: {k: [] for k in keys} for name in names_}
    bands: dict[str, list[list[float]]] = {name: [] for name in names_}
    profile: dict[str, list[list[float]]] = {name: [] for name in names_}
    columns = distance_edges(min(x.shape[-1] for x in images))
    for i, x in enumerate(images):
        y = noise(x, args.seed + i)
        for name in names_:
            out, seconds = time_call(methods[name], y, repeat=args.repeat)
            out = np.asarray(out, dtype=np.float64)
            scores[name]["psnr"].append(psnr(x, out, data_range=1.0))
            scores[name]["psnr_interior"].append(
                psnr(_interior(x, margin), _interior(out, margin), data_range=1.0))
            scores[name]["ssim"].append(ssim(x, out, data_range=1.0))
            scores[name]["seconds"].append(0.0 if name == "noisy" else seconds)
            if args.bands:
                bands[name].append(error_bands(x, out, DEFAULT_BANDS))
            if args.edge_profile:
                profile[name].append(error_by_distance(x, out, columns))
    results = {name: {k: float(np.mean(v)) for k, v in s.items()} for name, s in scores.items()}
    for name in names_:
        results[name]["psnr_per_image"] = [float(v) for v in scores[name]["psnr"]]
        if args.bands:
            results[name]["error_bands"] = np.mean(bands[name], axis=0).tolist()
        if args.edge_profile:
            results[name]["error_by_distance"] = np.mean(profile[name], axis=0).tolist()
    print(f"{noise} on {source}; torch threads {args.threads}; weights "
          f"{nets['dncnn'].weights_name}, {nets['dilated'].weights_name}")
    rows = []
    for name in names_:
        r = results[name]
        speedup = results["bm3d"]["seconds"] / r["seconds"] if r["seconds"] > 0 else float("nan")
        rows.append({"method": name, "PSNR (dB)": r["psnr"], "SSIM": f"{r['ssim']:.4f}",
                     "s / image": f"{r['seconds']:.3f}",
                     "x faster than BM3D": "" if name == "noisy" else f"{speedup:.1f}"})
    print_table(rows, ["method", "PSNR (dB)", "SSIM", "s / image", "x faster than BM3D"])
    print(f"\nPSNR (dB) per image, whole / interior (more than {margin} px from the edge)")
    per_image = [{"image": n, **{name: f"{scores[name]['psnr'][i]:.2f} / "
                                       f"{scores[name]['psnr_interior'][i]:.2f}"
                                 for name in names_}}
                 for i, n in enumerate(names)]
    per_image.append({"image": "mean", **{name: f"{results[name]['psnr']:.2f} / "
                                                f"{results[name]['psnr_interior']:.2f}"
                                          for name in names_}})
    print_table(per_image, ["image", *names_])
    if args.bands:
        _print_bands(results, names_)
        results["error_band_edges"] = list(DEFAULT_BANDS)
    if args.edge_profile:
        _print_edge_profile(results, names_, columns)
        results["error_distance_edges"] = columns
    if args.full_size:
        full = full_size_run(args, nets["dilated"], noise)
        print(f"full size: {full['height']} x {full['width']} at {full['pixel_size_mm']} mm, "
              f"{full['tiles']} tiles of {args.tile}: {full['seconds']:.1f} s, largest network "
              f"input {full['largest_input_pixels']} pixels (one untiled feature map would be "
              f"{full['untiled_feature_map_mb']:.0f} MB), peak RSS {full['peak_rss_mb']:.0f} MB, "
              f"PSNR {full['psnr_noisy']:.2f} -> {full['psnr']:.2f} dB")
        results["full_size"] = full
    return results


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma", type=float, default=25, help="8-bit noise level (25)")
    parser.add_argument("--photons", type=float, metavar="N0",
                        help="quantum noise at N0 photons per pixel instead, on the Anscombe "
                             "transform (the nets trained for it: {kind}_photonsN0)")
    parser.add_argument("--image", nargs="+", help="images (DICOM, NIfTI, PNG, .npy) instead")
    parser.add_argument("--crop", type=int, default=256, help="crop side, 0: whole (256)")
    parser.add_argument("--tile", type=int, default=512, help="tile side of the networks (512)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--repeat", type=int, default=1, help="timing runs, best kept (1)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of image 0 (0)")
    parser.add_argument("--margin", type=int, default=None,
                        help="edge excluded from psnr_interior (half the receptive field)")
    parser.add_argument("--full-size", action="store_true",
                        help="also denoise a native 4500 x 2800 film in tiles")
    parser.add_argument("--bands", action="store_true",
                        help="also split each method's MSE by the spatial frequency of its error")
    parser.add_argument("--edge-profile", action="store_true",
                        help="also give each method's MSE by distance from the first column "
                             "(the film's edge for the mammogram crops)")
    parser.add_argument("--wiener", action="store_true",
                        help=f"add the row {WIENER_ROW!r}: the dilated net's estimate as the pilot "
                             "of an empirical Wiener step (BM3D's second), averaged with it")
    parser.add_argument("--also", nargs="+", metavar="NAME",
                        help="a row for each of these shipped denoisers (any kind), by name")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    denoisers = shipped_denoisers()
    unknown = [n for n in args.also or () if n not in denoisers]
    if unknown:
        parser.error(f"--also {' '.join(unknown)}: not shipped denoiser weights; those are "
                     + ", ".join(denoisers))
    if args.photons is not None and not args.photons > 0:
        parser.error(f"--photons must be positive, got {args.photons:g}")
    if args.repeat < 1 or args.threads < 1 or args.tile < 64:
        parser.error("--repeat and --threads must be >= 1, --tile >= 64")
    if not args.image and args.crop < 64:
        parser.error("--crop must be >= 64 for the mammogram crops")
    results = run(args)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
