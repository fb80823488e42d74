"""Low-dose CT on a held-out slice: FBP, BM3D and TV against the full-dose image (Lab 06).

The slice (``--image``): a CT example of :mod:`dlmi_utils.data.ct` or a file, a CT DICOM with
its rescale tags or a square ``.npy`` in HU (1 mm pixels assumed). The default, ``ct_abdomen``,
is held out from training: an abdomen like the low-dose CT data of Yang et al. (IEEE TMI 2018),
with the largest cross-section of the examples (the most photon-starved rays) and flat soft
tissue (liver) for the noise SD; the other examples are for training.

:func:`dlmi_utils.ct.simulate_dose_pair` makes the low-dose FBP at ``--dose`` photons per ray
and the full-dose reference at ``--dose-factor`` times more (720 angles, whole image seen). The
default dose, 1e5, gives the abdomen's flat soft tissue a noise SD near that of Yang et al.'s
table (74 HU at low dose, 36 HU at full dose). Methods, each from the low-dose measurement alone:

- ``ldct``: the low-dose FBP (ramp filter);
- ``bm3d``: BM3D told the FBP noise's PSD, simulated from the physics at that dose around the
  measured sinogram and scaled to the noise inside the body (found on the low-dose image):
  :func:`dlmi_utils.ct.fbp_noise_psd`, :func:`dlmi_utils.ct.bm3d_denoise`;
- ``bm3d_white``: BM3D told one white-noise SD read from the image (``estimate_sigma``);
- ``tv``: TV-regularised weighted least squares from the sinogram (PDHG, ``--tv-iter``
  iterations from FBP): :func:`dlmi_utils.ct.tv_reconstruct`;
- ``cnn_mse``, ``wgan_mse``, ``cnn_vgg``, ``wgan_vgg``: the shipped denoisers of Yang et al.'s
  four objectives (:data:`LEARNED`, ``scripts/train_ldct.py``), applied with
  :func:`dlmi_utils.ct.denoising.denoise_hu` (the network units of their training).

Scores (JSON keyed by method): ``psnr`` (dB) and ``ssim`` against the full-dose image, both
clipped to the soft-tissue window [-160, 240] HU (``data_range`` 400 HU), in the body (pixels
above -500 HU of the full-dose image, the largest connected part with its holes filled: the
table is left out; :func:`dlmi_utils.ct.body_mask`); ``psnr_slice``, the same PSNR against the
slice itself (the image the sinograms were simulated from, sharper than any FBP); ``roi_sd``
(HU), the SD in the flattest square of soft tissue (:func:`dlmi_utils.ct.flat_rois`): the odd
side nearest 20 mm (8 pixels at least), inside the body, with a mean in [0, 150] HU (organs and
muscle: not fat, gas or bone) and the least SD of the noiseless FBP; ``nps_fav``
(cycles/mm), the mean frequency of the NPS (:func:`dlmi_utils.ct.mean_frequency`) of what the
method leaves, its image minus the noiseless FBP, in up to :data:`NPS_REGIONS` flat squares of
:data:`NPS_SIDE` pixels (a quarter of the image at most) in the body: lower is blotchier, and
the full dose's is the texture to keep; ``seconds``, the wall time
of the method from the measured sinogram (``ldct``: its FBP) or from the low-dose FBP. The
``full_dose`` entry has ``roi_sd``, ``nps_fav`` and ``psnr_slice``.

Usage (from the repository root)::

    python benchmarks/ldct.py
    python benchmarks/ldct.py --image scan.dcm --dose 5e4 --json ldct.json
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from skimage.transform import resize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, time_call, write_json  # noqa: E402

from dlmi_utils.ct import (  # noqa: E402
    ParallelBeamProjector,
    blind_white_sigma,
    bm3d_denoise,
    body_mask,
    fbp_noise_psd,
    flat_rois,
    mean_frequency,
    noise_power_spectrum,
    reconstruct_hu,
    roi_sd,
    simulate_dose_pair,
    square_roi,
    tv_reconstruct,
)
from dlmi_utils.ct.denoising import HELDOUT_SLICE, denoise_hu  # noqa: E402
from dlmi_utils.ct.noise_texture import BODY_THRESHOLD_HU  # noqa: E402
from dlmi_utils.data.ct import AIR_HU, CT_EXAMPLES, load_ct_slice, read_ct_slice  # noqa: E402
from dlmi_utils.metrics import psnr, ssim  # noqa: E402
from dlmi_utils.pretrained import available, load_pretrained  # noqa: E402

DEFAULT_DOSE = 1e5
WINDOW_HU = (-160.0, 240.0)
LEARNED = {"cnn_mse": "ldct_cnn_mse", "wgan_mse": "ldct_wgan_mse", "cnn_vgg": "ldct_cnn_vgg",
           "wgan_vgg": "ldct_wgan_vgg"}
"""Learned method -> its weights in ``dlmi_utils/weights/``."""
NPS_SIDE = 64
NPS_REGIONS = 6
NPS_MEAN_HU = (-200.0, 300.0)  # soft tissue and fat: the residual's texture, not its bias


class Case(NamedTuple):
    """What a method sees: the measured sinogram ``y`` and its FBP ``low`` (HU), the geometry."""

    y: np.ndarray
    low: np.ndarray
    projector: ParallelBeamProjector
    pixel_size_mm: float
    I0: float
    tv_iter: int


def _bm3d_psd(case: Case) -> np.ndarray:
    psd = fbp_noise_psd(case.y, case.projector, case.pixel_size_mm, case.I0,
                        region=body_mask(case.low))
    return bm3d_denoise(case.low, psd)


def _learned(weights: str) -> Callable[[Case], np.ndarray]:
    net = load_pretrained(weights).eval()
    return lambda case: denoise_hu(net, case.low)


METHODS: dict[str, Callable[[Case], np.ndarray]] = {
    "ldct": lambda case: reconstruct_hu(case.y, case.projector, case.pixel_size_mm),
    "bm3d": _bm3d_psd,
    "bm3d_white": lambda case: bm3d_denoise(case.low, blind_white_sigma(case.low)),
    "tv": lambda case: tv_reconstruct(case.y, case.projector, case.pixel_size_mm, I0=case.I0,
                                      n_iter=case.tv_iter).hu,
}
"""The classical methods, ``case -> image (H, W) in HU``; the learned ones join from
:data:`LEARNED` (those whose weights are shipped)."""


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str):
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", default=HELDOUT_SLICE,
                   help=f"a CT example ({', '.join(sorted(CT_EXAMPLES))}), a CT DICOM file or "
                        "a .npy in HU (1 mm pixels)")
    p.add_argument("--dose", type=_positive(float), default=DEFAULT_DOSE,
                   help="I0, photons per ray of the low-dose scan")
    p.add_argument("--dose-factor", type=_positive(float), default=4.0,
                   help="the full-dose reference has this many times more photons")
    p.add_argument("--size", type=_positive(int), default=None,
                   help="resize the slice to this side (pixels grow alike); default: as is")
    p.add_argument("--angles", type=_positive(int), default=720, help="angles over 180 degrees")
    p.add_argument("--tv-iter", type=_positive(int), default=100, help="PDHG iterations of tv")
    p.add_argument("--methods", nargs="+", default=None,
                   help=f"default: all available of {', '.join([*METHODS, *LEARNED])}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive(int), default=2, help="torch threads")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods or ()) - set(METHODS) - set(LEARNED))
    if unknown:
        p.error(f"unknown methods {unknown}; known: {', '.join([*METHODS, *LEARNED])}")
    try:
        args.slice = load_slice(args.image, args.size)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        p.error(str(error))
    return args


def load_slice(image: str, size: int | None = None) -> tuple[np.ndarray, float]:
    """``(hu (N, N) float32, pixel size in mm)`` of an example name, a CT DICOM or a ``.npy``
    in HU (1 mm pixels), resized to ``size`` if given (the pixel size follows)."""
    path = Path(image)
    if image in CT_EXAMPLES:
        hu, spacing = load_ct_slice(image)
    elif not path.is_file():
        raise FileNotFoundError(f"{image} is neither a CT example ({', '.join(CT_EXAMPLES)}) "
                                "nor a file")
    elif path.suffix == ".npy":
        hu, spacing = _read_npy(path), (1.0, 1.0)
    else:
        try:
            hu, spacing = read_ct_slice(path)
        except (ValueError, RuntimeError):
            raise
        except Exception as error:  # pydicom's own: the file is not DICOM at all
            raise ValueError(f"{image} is neither a CT example, a .npy in HU nor a DICOM file "
                             f"({type(error).__name__}: {error})") from error
    if hu.shape[0] != hu.shape[1]:
        raise ValueError(f"{image}: the slice is {hu.shape[0]} x {hu.shape[1]}; crop it to a "
                         "square")
    if not math.isclose(spacing[0], spacing[1], rel_tol=1e-3):
        raise ValueError(f"{image}: pixels of {spacing} mm are not square")
    pixel = float(spacing[0])
    if size is not None and size != hu.shape[0]:
        pixel *= hu.shape[0] / size
        hu = resize(hu, (size, size), anti_aliasing=True, preserve_range=True)
    return hu.astype(np.float32), pixel


def _read_npy(path: Path) -> np.ndarray:
    hu = np.load(path)
    if hu.ndim != 2 or not np.issubdtype(hu.dtype, np.number) or np.iscomplexobj(hu):
        raise ValueError(f"{path.name}: expected one real slice (H, W) in HU, got {hu.dtype} "
                         f"{hu.shape}")
    hu = hu.astype(np.float32)
    if not np.isfinite(hu).all():
        raise ValueError(f"{path.name} contains NaN or inf")
    if not (hu.min() < BODY_THRESHOLD_HU and hu.max() > BODY_THRESHOLD_HU):
        raise ValueError(f"{path.name} is not a CT slice in HU: its values span "
                         f"[{hu.min():g}, {hu.max():g}], where a slice holds air (-1000 HU) "
                         "around a body (water 0 HU)")
    return np.maximum(hu, AIR_HU)


def nps_regions(noiseless_hu: np.ndarray, body: np.ndarray, pixel_size_mm: float
                ) -> tuple[list[tuple[int, int]], int]:
    """``(centres, side)`` of the flat squares whose residual NPS is measured: up to
    :data:`NPS_REGIONS` of :data:`NPS_SIDE` pixels (a quarter of the image at most)."""
    side = min(NPS_SIDE, noiseless_hu.shape[0] // 4)
    for count in range(NPS_REGIONS, 0, -1):
        try:
            rois = flat_rois(noiseless_hu, body, pixel_size_mm, size_mm=side * pixel_size_mm,
                             mean_hu=NPS_MEAN_HU, count=count)
        except ValueError:
            continue
        return [centre for centre, _ in rois], side
    raise ValueError(f"no square of {side} pixels in the body to measure the NPS in")


def scores(image: np.ndarray, full: np.ndarray, hu: np.ndarray, noiseless: np.ndarray,
           body: np.ndarray, roi: tuple[tuple[int, int], int],
           nps: tuple[list[tuple[int, int]], int], pixel_size_mm: float) -> dict[str, float]:
    """``psnr``, ``ssim``, ``psnr_slice`` (windowed, in the body), ``roi_sd`` and ``nps_fav``
    of one image."""
    low, high = WINDOW_HU
    window = lambda x: np.clip(x, low, high)  # noqa: E731
    centres, side = nps
    residual = np.stack([square_roi(image - noiseless, c, side) for c in centres])
    return {
        "psnr": psnr(window(full), window(image), data_range=high - low, mask=body),
        "ssim": ssim(window(full), window(image), data_range=high - low, mask=body),
        "psnr_slice": psnr(window(hu), window(image), data_range=high - low, mask=body),
        "roi_sd": roi_sd(image, *roi),
        "nps_fav": mean_frequency(noise_power_spectrum(residual, pixel_size_mm)),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    hu, pixel = args.slice
    shipped = {name: weights for name, weights in LEARNED.items() if weights in available()}
    missing = [name for name in LEARNED if name not in shipped]
    methods = {**METHODS, **{name: _learned(w) for name, w in shipped.items()}}
    names = [n for n in (args.methods or methods) if n in methods]
    if missing:
        print(f"# {', '.join(missing)}: not shipped yet (no weights "
              f"{', '.join(LEARNED[m] for m in missing)}), skipped", flush=True)

    projector = ParallelBeamProjector(hu.shape, args.angles)
    pair = simulate_dose_pair(hu, pixel, args.dose, args.dose_factor, projector, seed=args.seed)
    case = Case(np.asarray(pair.sinogram), pair.low, projector, pixel, args.dose, args.tv_iter)
    body = body_mask(pair.full)
    roi = flat_rois(pair.noiseless, body, pixel)[0]
    nps = nps_regions(pair.noiseless, body, pixel)
    print(f"# {args.image}: {hu.shape[0]} x {hu.shape[1]}, {pixel:.3f} mm pixels, "
          f"{args.angles} angles; I0 {args.dose:g} photons per ray, reference x "
          f"{args.dose_factor:g}; window {WINDOW_HU} HU in the body ({body.mean():.0%} of the "
          f"image); ROI {roi[1]} px at {roi[0]}; NPS in {len(nps[0])} squares of {nps[1]} px; "
          f"{args.threads} thread(s)", flush=True)

    results: dict[str, dict[str, float]] = {}
    for name in names:
        image, seconds = time_call(methods[name], case)
        results[name] = {**scores(np.asarray(image), pair.full, hu, pair.noiseless, body, roi,
                                  nps, pixel), "seconds": seconds}
    full = scores(pair.full, pair.full, hu, pair.noiseless, body, roi, nps, pixel)
    results["full_dose"] = {k: full[k] for k in ("roi_sd", "nps_fav", "psnr_slice")}
    print_table(
        [{"method": name, **{k: f"{v:.3f}" if k == "ssim" else v for k, v in r.items()}}
         for name, r in results.items()],
        ["method", "psnr", "ssim", "psnr_slice", "roi_sd", "nps_fav", "seconds"],
    )
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
