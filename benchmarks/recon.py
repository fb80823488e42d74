"""Reconstruction of held-out slices: zero-filled, the tuned CS solver and the pretrained cascade.

Every method reconstructs the same single-coil acquisition, ``y = M F x`` with ``x`` a
magnitude image times a fixed smooth phase (:func:`dlmi_utils.mri.add_smooth_phase`) and
``M`` a 1D random Cartesian mask (centre fraction 0.08, fixed seeds,
:func:`dlmi_utils.mri.datasets.simulate_acquisition`), and is scored on magnitudes against
``|x|`` (PSNR in dB and SSIM, ``data_range`` the reference's maximum). Methods:

- ``zero_filled``: ``x_u = F^H y``;
- ``cs``: the best CS solver with its tuned lambda (:data:`dlmi_utils.mri.datasets.CS_BASELINE`,
  TV; ``--tune`` redoes the search on the validation slices), 100 iterations;
- ``cascade``: ``load_pretrained("cascade_rR")`` (CPU, one slice at a time);
- ``unet``: ``load_pretrained("unet_rR")``, the same data without DC (for the
  comparison; not part of the targets).

``seconds`` is the median wall time per slice (the best of 3 runs for the networks;
:func:`dlmi_utils.mri.datasets.score_methods`). Data: the ``test`` split of the brain slices
(all three orientations, never seen in training or validation), or the images given with
``--image`` (DICOM, NIfTI, PNG or ``.npy``; repeatable) and, with ``--pydicom-mr``, every MR
scan of ``pydicom-data`` (:func:`dlmi_utils.mri.datasets.pydicom_data_mr_images`), each one
brought to the training size (centred square crop, resized to 256 x 256) and acquired once
(:func:`dlmi_utils.mri.datasets.image_test_examples`); ``--brain`` adds the brain test split
to them. With several data sets a second table gives each method's PSNR on each (the
out-of-distribution table: the networks were trained on the brain template only, or with
other images, never on these MR scans).

Usage (from the repository root)::

    python benchmarks/recon.py --accel 4
    python benchmarks/recon.py --accel 8 --json recon_r8.json
    python benchmarks/recon.py --accel 4 --image scan.dcm --image other.png
    python benchmarks/recon.py --accel 4 --brain --pydicom-mr   # out-of-distribution table
    python benchmarks/recon.py --accel 4 --tune        # search the CS lambda on val slices
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_image_arg, print_table, write_json  # noqa: E402

from dlmi_utils.metrics import psnr, ssim  # noqa: E402
from dlmi_utils.mri import (  # noqa: E402
    MRIForward,  # noqa: E402
    cs,  # noqa: E402
)
from dlmi_utils.mri.datasets import (  # noqa: E402
    CS_BASELINE,
    brain_slices_dataset,
    cs_recon,
    image_test_examples,
    network_recon,
    pydicom_data_mr_images,
    score_methods,
    zero_filled_recon,
)
from dlmi_utils.pretrained import load_pretrained  # noqa: E402

METHODS = ("zero_filled", "cs", "cascade", "unet")
TUNE_GRID = {"tv": (1e-3, 2e-3, 5e-3, 1e-2, 2e-2), "fista_wavelet": (5e-4, 1e-3, 2e-3, 5e-3)}


def _data_sets(args) -> dict[str, list[dict[str, torch.Tensor]]]:
    """``{label: examples}``: the brain test split and/or each image given."""
    images = {Path(path).stem: load_image_arg(path) for path in args.image or []}
    if args.pydicom_mr:
        images.update(pydicom_data_mr_images())
    sets = {}
    if args.brain or not images:
        test = brain_slices_dataset("test", args.accel)
        n = len(test) if args.slices is None else min(args.slices, len(test))
        picks = np.linspace(0, len(test) - 1, n).round().astype(int)
        sets[f"brain test ({n} slices)"] = [test[int(i)] for i in picks]
    sets.update({name: [ex] for name, ex in image_test_examples(images, args.accel).items()})
    return sets


def _score(ref: np.ndarray, image) -> tuple[float, float]:
    est = np.abs(image)
    dr = float(ref.max())
    return psnr(ref, est, data_range=dr), ssim(ref, est, data_range=dr)


def run_benchmark(args) -> dict:
    sets = _data_sets(args)
    examples = [ex for exs in sets.values() for ex in exs]
    methods = {
        "zero_filled": zero_filled_recon,
        "cs": cs_recon(args.accel),
        "cascade": network_recon(load_pretrained(f"cascade_r{args.accel}")),
        "unet": network_recon(load_pretrained(f"unet_r{args.accel}")),
    }
    for name in ("cascade", "unet"):  # warm-up: the first call pays for allocations
        methods[name](examples[0])
    scores = score_methods({k: v for k, v in methods.items() if k not in ("cascade", "unet")},
                           examples)
    scores.update(score_methods({k: methods[k] for k in ("cascade", "unet")}, examples,
                                repeat=3))
    results = {"accel": args.accel, "n_slices": len(examples), "data": list(sets),
               "threads": torch.get_num_threads()}
    for name in METHODS:
        results[name] = scores[name]
    method, lam = CS_BASELINE[args.accel]
    results["cs"].update(method=method, lam=lam)
    # the same per-slice scores, averaged over each data set
    results["sets"], start = {}, 0
    for label, exs in sets.items():
        part = slice(start, start + len(exs))
        results["sets"][label] = {m: float(np.mean(scores[m]["per_slice_psnr"][part]))
                                  for m in METHODS}
        start += len(exs)
    return results


def tune(args) -> None:
    """Grid search of lambda for TV and FISTA-wavelet on 6 validation slices."""
    val = brain_slices_dataset("val", args.accel)
    picks = np.linspace(0, len(val) - 1, 6).round().astype(int)
    examples = [val[int(i)] for i in picks]
    rows = []
    for method, grid in TUNE_GRID.items():
        solver = {"tv": cs.tv_reconstruction, "fista_wavelet": cs.fista_wavelet}[method]
        for lam in grid:
            scores = [
                _score(ex["target"].abs().numpy(),
                       solver(MRIForward(ex["mask"].numpy()), ex["y"].numpy(), lam=lam).image)
                for ex in examples
            ]
            p, s = np.mean(scores, axis=0)
            rows.append({"method": method, "lam": f"{lam:g}", "PSNR (dB)": p, "SSIM": s})
    print_table(rows, ["method", "lam", "PSNR (dB)", "SSIM"])
    best = max(rows, key=lambda r: r["PSNR (dB)"])
    print(f"best at R = {args.accel}: {best['method']} with lam = {best['lam']} "
          f"(datasets.CS_BASELINE has {CS_BASELINE.get(args.accel)})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accel", type=int, default=4, choices=sorted(CS_BASELINE))
    p.add_argument("--image", nargs="+", action="extend", default=None,
                   help="image files instead of the brain (repeatable)")
    p.add_argument("--pydicom-mr", action="store_true",
                   help="every MR scan of pydicom-data (the out-of-distribution test)")
    p.add_argument("--brain", action="store_true",
                   help="the brain test split too, with --image / --pydicom-mr")
    p.add_argument("--slices", type=int, default=None, help="evenly spaced test slices (all)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--tune", action="store_true", help="search the CS lambda on val slices")
    args = p.parse_args(argv)
    if args.tune:
        tune(args)
        return 0
    results = run_benchmark(args)
    rows = [{"method": m, "PSNR (dB)": results[m]["psnr"], "SSIM": f"{results[m]['ssim']:.3f}",
             "s / slice": f"{results[m]['seconds']:.3f}"} for m in METHODS]
    print(f"R = {args.accel}, {results['n_slices']} slices of {', '.join(results['data'])}, "
          f"{results['threads']} CPU threads")
    print_table(rows, ["method", "PSNR (dB)", "SSIM", "s / slice"])
    if len(results["sets"]) > 1:
        print(f"\nPSNR (dB) on each data set, R = {args.accel}")
        print_table([{"method": m, **{label: results["sets"][label][m]
                                      for label in results["sets"]}} for m in METHODS],
                    ["method", *results["sets"]])
    if args.json is not None:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
