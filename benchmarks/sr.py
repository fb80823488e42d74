"""Through-plane super-resolution: thin slices from thick ones, classical methods and the CNN.

The thick slices are simulated from a thin-slice (1 mm) volume ``x`` with the boxcar slice
profile: ``y = A x``, thick slice ``k`` the mean of thin slices ``F k ... F k + F - 1``
(:class:`dlmi_utils.superres.ThickSliceForward`; ``--profile gaussian`` for the other one).
Each method rebuilds the ``(Z // F) F`` thin slices that the thick ones cover:

- ``linear``, ``cubic``: interpolation along ``z`` with each thick slice at its centre
  ``F k + (F - 1) / 2`` (:func:`dlmi_utils.superres.interpolate_z`);
- ``tv``: total variation along ``z`` with the operator (:func:`dlmi_utils.superres.tv_z`);
- ``cnn``: the shipped DeepResolve-style network for this factor (``deepresolve_x{F}``;
  skipped, with a note, when none is shipped), on the cubic interpolation;
- ``cnn_consistent``: the same, then the consistency projection onto ``{x : A x = y}``.

Scores (:func:`dlmi_utils.superres.score_volume`): PSNR (dB) and SSIM inside the brain mask
(voxels of the reference above 2 % of its maximum), ``data_range`` the reference's maximum;
``dice`` and ``hd95`` (mm) of the CSF / GM / WM maps of each volume against those of the
reference, averaged over the three tissues (per tissue under ``tissue``); ``seconds``, the
wall time of the method alone (the best of ``--repeat`` runs).

Data: the held-out coronal slab of the MNI152 template (``--region test``; ``val`` or the
``whole`` template, which includes the training region, for timings), or any 3-D NIfTI
volume (``--volume``: reoriented to RAS and resampled to 1 mm,
:func:`dlmi_utils.data.brain.load_nifti_volume`), whole. ``z`` is the volume's
inferior-superior axis: the thick slices are axial.

Usage (from the repository root)::

    python benchmarks/sr.py --factor 4
    python benchmarks/sr.py --factor 4 --json sr_x4.json
    python benchmarks/sr.py --factor 4 --volume other_brain.nii.gz
    python benchmarks/sr.py --factor 4 --region whole --methods cubic cnn_consistent
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, time_call, write_json  # noqa: E402

from dlmi_utils.data import (
    load_brain_volume,  # noqa: E402
    load_nifti_volume,  # noqa: E402
)
from dlmi_utils.pretrained import available, load_pretrained  # noqa: E402
from dlmi_utils.superres import (  # noqa: E402
    ThickSliceForward,
    crop_to_slabs,
    interpolate_z,
    score_volume,
    super_resolve,
    template_region,
    to_zyx,
    tv_z,
)
from dlmi_utils.superres.physics import PROFILES, check_factor  # noqa: E402

METHODS = ("linear", "cubic", "tv", "cnn", "cnn_consistent")
MASK = "brain mask: reference voxels above 2 % of its maximum"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--factor", type=int, required=True, help="thin slices per thick slice (2-6)")
    p.add_argument("--profile", choices=PROFILES, default="boxcar")
    p.add_argument("--volume", type=Path, default=None,
                   help="a 3-D NIfTI volume (thin slices) instead of the template's test region")
    p.add_argument("--region", choices=("test", "val", "whole"), default="test",
                   help="which part of the template (without --volume)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--repeat", type=int, default=1, help="runs per method (the best time)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        args.factor = check_factor(args.factor)
    except ValueError as err:
        p.error(str(err))
    return args


def reference_volume(args) -> tuple[np.ndarray, tuple[float, float, float], str]:
    """The thin-slice reference ``(K F, Y, X)``, its spacing (mm) and a description."""
    if args.volume is not None:
        volume, spacing = load_nifti_volume(args.volume)
        return crop_to_slabs(to_zyx(volume), args.factor), spacing[::-1], args.volume.name
    if args.region == "whole":
        volume = crop_to_slabs(to_zyx(load_brain_volume()[0]), args.factor)
        return volume, (1.0, 1.0, 1.0), "MNI152 template, whole (includes the training region)"
    volume = template_region(args.region, args.factor)
    return volume, (1.0, 1.0, 1.0), f"MNI152 template, held-out '{args.region}' region"


def methods_for(args, physics: ThickSliceForward) -> dict:
    f = args.factor
    methods = {
        "linear": lambda y: interpolate_z(y, f, "linear", axis=0),
        "cubic": lambda y: interpolate_z(y, f, "cubic", axis=0),
        "tv": lambda y: tv_z(y, f, profile=args.profile),
    }
    name = f"deepresolve_x{f}"
    if name in available():
        net = load_pretrained(name)
        methods["cnn"] = lambda y: super_resolve(net, y, physics=physics)
        methods["cnn_consistent"] = lambda y: super_resolve(net, y, consistent=True,
                                                            physics=physics)
    elif {"cnn", "cnn_consistent"} & set(args.methods):
        print(f"note: no shipped network for factor {f} ({name}): cnn methods skipped")
    return {k: v for k, v in methods.items() if k in args.methods}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        x, spacing, what = reference_volume(args)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"sr.py: error: {err}")
    physics = ThickSliceForward(args.factor, args.profile, axis=0)
    y = physics.A(x)
    brain = int((x > 0.02 * x.max()).sum())
    print(f"{what}: thin volume (Z, Y, X) = {x.shape}, {brain} voxels in the {MASK}; "
          f"factor {args.factor} ({args.profile}): {y.shape[0]} thick slices; "
          f"{torch.get_num_threads()} torch threads", flush=True)
    results: dict = {"factor": args.factor, "profile": args.profile, "data": what,
                     "shape": list(x.shape), "mask": MASK, "brain_voxels": brain}
    rows = []
    for name, method in methods_for(args, physics).items():
        estimate, seconds = time_call(method, y, repeat=args.repeat)
        scores = score_volume(x, estimate, spacing=spacing)
        results[name] = {**scores, "seconds": seconds}
        rows.append({"method": name, "PSNR (dB)": scores["psnr"], "SSIM": f"{scores['ssim']:.4f}",
                     "Dice": f"{scores['dice']:.4f}", "HD95 (mm)": scores["hd95"],
                     "seconds": seconds})
        print(f"  {name}: {scores['psnr']:.2f} dB", flush=True)
    print_table(rows, ["method", "PSNR (dB)", "SSIM", "Dice", "HD95 (mm)", "seconds"])
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
