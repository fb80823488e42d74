"""Compressed sensing: the package's solvers against SigPy's on the same problems.

Every method reconstructs the same complex image from the same undersampled single-coil
k-space, ``y = M F x`` (``x`` a magnitude image times a smooth random phase,
:func:`dlmi_utils.mri.add_smooth_phase`, so that k-space is not Hermitian), and is scored on
magnitudes against ``|x|`` (PSNR and SSIM from :mod:`dlmi_utils.metrics`, ``data_range`` of the
reference). Methods:

- ``zero_filled``: ``x_u = F^H M y``;
- ``fista_wavelet``: :func:`dlmi_utils.mri.cs.fista_wavelet` with its defaults, orthonormal
  db4 (periodization, 4 levels) with random shifts (cycle spinning);
  ``fista_wavelet_plain``: the same with ``random_shift=False`` (the fixed basis);
- ``tv``: :func:`dlmi_utils.mri.cs.tv_reconstruction` (isotropic); ``tv_anisotropic``: its
  anisotropic form, SigPy's regulariser;
- ``dictionary``: :func:`dlmi_utils.mri.cs.dictionary_learning_recon` (its defaults);
- ``sigpy_l1wavelet``: ``sigpy.mri.app.L1WaveletRecon`` (FISTA: ``GradientMethod`` with
  ``accelerate=True``; db4, SigPy's zero-padded wavelet frame with all levels);
- ``sigpy_tv``: ``sigpy.mri.app.TotalVariationRecon`` (PDHG, anisotropic TV).

Matching the problems. SigPy's centred orthonormal FFT equals :func:`dlmi_utils.fourier.fft2c`
(checked at start-up). SigPy minimises ``1/2 ||P F S x - y||^2 + lamda R(x)``, the package
``1/2 ||M F x - y||^2 + lam R(x)``: the same ``lam`` is passed to both. SigPy gets coil maps
``mps = ones (1, H, W)`` and the mask as ``weights`` (it multiplies ``A`` and ``y`` by
``sqrt(weights)``, the mask itself for a 0/1 mask). Both sides get the same step sizes, so
SigPy runs no power iteration: ``alpha = 1`` for FISTA (``||A^H A|| = 1``), and for PDHG the
package's balanced ``(sigma, tau)`` (:func:`dlmi_utils.mri.cs.tv_step_sizes`; SigPy's default
``sigma = 1`` gains little over zero filling in 100 iterations on these images). Both start
from their own initial image (SigPy from zero, the package from ``x_u``) and run the same
number of iterations.

Usage (from the repository root)::

    python benchmarks/cs.py                        # 3 held-out brain slices, R = 4, cartesian
    python benchmarks/cs.py --accel 8 --mask poisson --json cs_r8_poisson.json
    python benchmarks/cs.py --image scan.dcm       # DICOM, NIfTI, PNG or .npy
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_image_arg, print_table, time_call, write_json  # noqa: E402

from dlmi_utils.fourier import fft2c  # noqa: E402
from dlmi_utils.metrics import psnr, ssim  # noqa: E402
from dlmi_utils.mri import (  # noqa: E402
    MRIForward,
    add_smooth_phase,
    cs,  # noqa: E402
)
from dlmi_utils.mri.sampling import make_mask  # noqa: E402

MASKS = {"cartesian": "random", "poisson": "poisson"}
METHODS = (
    "zero_filled",
    "fista_wavelet",
    "fista_wavelet_plain",
    "tv",
    "tv_anisotropic",
    "dictionary",
    "sigpy_l1wavelet",
    "sigpy_tv",
)


def _import_sigpy():
    try:
        import sigpy
        import sigpy.mri
    except ImportError:
        sys.exit("benchmarks/cs.py compares with SigPy: pip install sigpy (a test dependency)")
    x = np.random.default_rng(0).standard_normal((6, 5)) + 1j
    if not np.allclose(sigpy.fft(x, axes=(-2, -1)), fft2c(x)):
        sys.exit("SigPy's FFT no longer matches dlmi_utils.fourier.fft2c: the comparison is off")
    return sigpy


def _images(args) -> list[np.ndarray]:
    """Magnitude images ``(H, W)`` float32 in [0, 1], cropped to even sizes (wavelets)."""
    if args.image is not None:
        images = [load_image_arg(args.image)]
    else:
        from dlmi_utils.data import load_brain_slices

        stack = load_brain_slices("test")
        picks = np.linspace(0, len(stack) - 1, args.slices + 2).round().astype(int)[1:-1]
        images = [stack[i] for i in picks]
    return [
        np.ascontiguousarray(im[: im.shape[0] // 2 * 2, : im.shape[1] // 2 * 2]) for im in images
    ]


def _methods(args, sigpy) -> dict[str, Callable]:
    """Each method: ``(physics, y, mask) -> (image, iterations)``."""
    lam, n = args.lam, args.iters

    def package(solver, **kw):
        def run(physics, y, mask):
            result = solver(physics, y, lam=lam, n_iter=n, **kw)
            return result.image, result.n_iter

        return run

    def dictionary(physics, y, mask):
        result = cs.dictionary_learning_recon(physics, y, n_iter=args.dl_iters)
        return result.image, result.n_iter

    def sigpy_l1(physics, y, mask):
        mps = np.ones((1, *y.shape), dtype=np.complex64)
        app = sigpy.mri.app.L1WaveletRecon(
            y[None],
            mps,
            lam,
            weights=mask.astype(np.float32),
            wave_name="db4",
            max_iter=n,
            alpha=1.0,
            show_pbar=False,
        )
        return app.run(), n

    def sigpy_tv(physics, y, mask):
        mps = np.ones((1, *y.shape), dtype=np.complex64)
        sigma, tau = cs.tv_step_sizes(physics.zero_filled(y), lam, physics.lipschitz)
        app = sigpy.mri.app.TotalVariationRecon(
            y[None],
            mps,
            lam,
            weights=mask.astype(np.float32),
            max_iter=n,
            sigma=sigma,
            tau=tau,
            show_pbar=False,
        )
        return app.run(), n

    return {
        "zero_filled": lambda physics, y, mask: (physics.zero_filled(y), 0),
        "fista_wavelet": package(cs.fista_wavelet),
        "fista_wavelet_plain": package(cs.fista_wavelet, random_shift=False),
        "tv": package(cs.tv_reconstruction),
        "tv_anisotropic": package(cs.tv_reconstruction, isotropic=False),
        "dictionary": dictionary,
        "sigpy_l1wavelet": sigpy_l1,
        "sigpy_tv": sigpy_tv,
    }


def run(args) -> dict[str, dict[str, float]]:
    sigpy = _import_sigpy()
    methods = _methods(args, sigpy)
    scores = {name: {"psnr": [], "ssim": [], "seconds": [], "iterations": []} for name in METHODS}
    for i, magnitude in enumerate(_images(args)):
        x = add_smooth_phase(magnitude, seed=args.seed + i)
        mask = make_mask(MASKS[args.mask], x.shape, args.accel, seed=args.seed + i)
        physics = MRIForward(mask)
        y = physics.A(x)
        data_range = float(magnitude.max() - magnitude.min())
        for name in METHODS:
            (image, iterations), seconds = time_call(
                methods[name], physics, y, mask, repeat=args.repeat
            )
            recon = np.abs(np.asarray(image)).astype(np.float64)
            scores[name]["psnr"].append(psnr(magnitude, recon, data_range=data_range))
            scores[name]["ssim"].append(ssim(magnitude, recon, data_range=data_range))
            scores[name]["seconds"].append(seconds)
            scores[name]["iterations"].append(iterations)
    return {
        name: {key: float(np.mean(values)) for key, values in s.items()}
        for name, s in scores.items()
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="one image (DICOM, NIfTI, PNG, .npy) instead of brains")
    parser.add_argument("--slices", type=int, default=3, help="held-out brain slices (3)")
    parser.add_argument("--accel", type=float, default=4.0, help="acceleration R (4)")
    parser.add_argument(
        "--mask",
        choices=sorted(MASKS),
        default="cartesian",
        help="cartesian: random columns, 8%% centre; poisson: 2D Poisson disc",
    )
    parser.add_argument("--lam", type=float, default=1e-3, help="lambda, both libraries (1e-3)")
    parser.add_argument("--iters", type=int, default=100, help="FISTA / PDHG iterations (100)")
    parser.add_argument("--dl-iters", type=int, default=10, help="dictionary iterations (10)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time each method this many times, keep the best (1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="phase and mask seed (0)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if min(args.slices, args.iters, args.dl_iters, args.repeat) < 1:
        parser.error("--slices, --iters, --dl-iters and --repeat must be >= 1")

    results = run(args)
    source = args.image or f"{args.slices} held-out brain slices (MNI152, 256 x 256)"
    print(
        f"# {source}, R = {args.accel:g}, {args.mask} mask, lambda = {args.lam:g}, "
        f"{args.iters} iterations; means over the images"
    )
    rows = [{"method": name, **values} for name, values in results.items()]
    for row in rows:
        row["iterations"] = int(round(row["iterations"]))
        row["ssim"] = f"{row['ssim']:.4f}"
    print_table(rows, ["method", "psnr", "ssim", "iterations", "seconds"])
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
