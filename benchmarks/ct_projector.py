"""The CT projector against scikit-image: time and agreement of the projection and of FBP.

On one real slice (``--image``, a CT example of :mod:`dlmi_utils.data.ct`, its attenuation
``mu`` in 1/mm, resized to ``--size``), with ``--angles`` angles evenly spread over 180 degrees:

- projection: ``skimage.transform.radon(mu, theta, circle)`` against
  :meth:`dlmi_utils.ct.ParallelBeamProjector.A` (Joseph's method);
- FBP: ``skimage.transform.iradon(sinogram, theta, circle=circle)`` (ramp filter) against
  :meth:`~dlmi_utils.ct.ParallelBeamProjector.fbp`, both on scikit-image's sinogram.

``circle``: the object in the inscribed disc and ``size`` detectors (scikit-image's default;
the image is masked to the disc first), or with ``--whole`` the whole image and
``ceil(sqrt(2) size)`` detectors. Seconds are the best of ``--repeat`` runs of one image
(scikit-image runs on one core; the package at each ``--threads``); ``batch of 8`` is the time
of one image within a batch of 8. The sparse matrices are built once per geometry before the
timings (``build``: that first call). ``error``: ``||ours - skimage|| / ||skimage||``.

Usage (from the repository root)::

    python benchmarks/ct_projector.py
    python benchmarks/ct_projector.py --whole --json ct_projector.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.transform import iradon, radon, resize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, time_call, write_json  # noqa: E402

from dlmi_utils.ct import ParallelBeamProjector, hu_to_mu  # noqa: E402
from dlmi_utils.data.ct import CT_EXAMPLES, load_ct_slice  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", choices=sorted(CT_EXAMPLES), default="ct_head")
    p.add_argument("--size", type=int, default=512, help="image side in pixels")
    p.add_argument("--angles", type=int, default=720, help="angles over 180 degrees")
    p.add_argument("--whole", action="store_true", help="circle=False: the whole image")
    p.add_argument("--repeat", type=int, default=3, help="runs per method (the best time)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def _relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    circle = not args.whole
    hu, _ = load_ct_slice(args.image)
    mu = hu_to_mu(hu).astype(np.float64)
    if mu.shape != (args.size, args.size):
        mu = resize(mu, (args.size, args.size), anti_aliasing=True)
    if circle:
        i, j = np.mgrid[: args.size, : args.size] - args.size // 2
        mu[i**2 + j**2 > (args.size // 2) ** 2] = 0.0
    theta = np.arange(args.angles) * (180.0 / args.angles)
    print(f"{args.image}, {args.size} x {args.size}, {args.angles} angles, circle={circle}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

    sinogram, radon_s = time_call(radon, mu, theta, circle=circle, repeat=args.repeat)
    recon, iradon_s = time_call(iradon, sinogram, theta, circle=circle, repeat=args.repeat)
    rows = [
        {"method": "skimage radon", "seconds": radon_s, "speed-up": 1.0, "error": None},
        {"method": "skimage iradon (ramp)", "seconds": iradon_s, "speed-up": 1.0, "error": None},
    ]

    projector = ParallelBeamProjector(mu.shape, args.angles, circle=circle)
    x = torch.from_numpy(mu).float()
    y = torch.from_numpy(sinogram.T.copy()).float()
    start = time.perf_counter()
    projector.fbp(projector.A(x))  # builds and caches the matrices
    build_s = time.perf_counter() - start
    batch_x, batch_y = x.expand(8, -1, -1).contiguous(), y.expand(8, -1, -1).contiguous()
    for threads in args.threads:
        torch.set_num_threads(threads)
        ours = {
            "A": time_call(projector.A, x, repeat=args.repeat),
            "fbp": time_call(projector.fbp, y, repeat=args.repeat),
            "A, batch of 8": time_call(projector.A, batch_x, repeat=args.repeat),
            "fbp, batch of 8": time_call(projector.fbp, batch_y, repeat=args.repeat),
        }
        for name, (out, seconds) in ours.items():
            is_fbp = name.startswith("fbp")
            reference, skimage_s = (recon, iradon_s) if is_fbp else (sinogram.T, radon_s)
            seconds /= 8 if "batch" in name else 1
            rows.append({
                "method": f"{name} ({threads} thread{'s' if threads > 1 else ''})",
                "seconds": seconds,
                "speed-up": skimage_s / seconds,
                "error": _relative_error(out[0].numpy() if out.ndim == 3 else out.numpy(),
                                         reference),
            })
    print_table(
        [{"method": r["method"], "seconds": f"{r['seconds']:.3f}",
          "speed-up": f"{r['speed-up']:.1f}x",
          "error vs skimage": "-" if r["error"] is None else f"{r['error']:.1e}"} for r in rows],
        ["method", "seconds", "speed-up", "error vs skimage"],
    )
    print(f"\nbuild of the sparse matrices (the first call): {build_s:.1f} s")
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
               "build_seconds": build_s}
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
