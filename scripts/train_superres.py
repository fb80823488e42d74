"""Train the DeepResolve-style network of Lab 07 (thin slices from thick ones); ship the weights.

Data: the MNI152 T1 template as ``(Z, Y, X)``, its training region only (the coronal slabs
of :func:`dlmi_utils.superres.template_regions`; the validation slab picks the best
checkpoint, the test slab is left for ``benchmarks/sr.py``). Each step draws ``--batch``
thin-slice patches (``--patch-slabs`` thick slices deep, ``--patch`` voxels wide, at least
30 % brain) at random positions, flips them along each axis and swaps ``Y`` and ``X`` at
random, scales their intensity by a factor in [0.8, 1.2], makes the thick slices
``y = A x`` (:class:`~dlmi_utils.superres.ThickSliceForward`, boxcar by default) and their
cubic interpolation, and fits ``x`` with the mean squared error (Adam, cosine learning rate;
:mod:`dlmi_utils.superres.training`).
Every ``--val-every`` steps the whole validation slab is super-resolved and scored (PSNR in
the brain mask); the best state is kept.

The weights go to ``dlmi_utils/weights/deepresolve_x{F}.pt`` with their record (this
command, the data, the validation scores before and after the consistency projection)::

    python scripts/train_superres.py --factor 4 --steps 2000 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import torch

from dlmi_utils.data import load_brain_volume
from dlmi_utils.device import get_device, seed_everything
from dlmi_utils.pretrained import save_pretrained
from dlmi_utils.superres import (
    DeepResolve,
    ThickSliceForward,
    interpolate_z,
    score_volume,
    super_resolve,
    template_region,
    template_regions,
    to_zyx,
)
from dlmi_utils.superres.physics import PROFILES
from dlmi_utils.superres.training import PatchSampler, train_steps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--factor", type=int, default=4, help="thin slices per thick slice (2-6)")
    p.add_argument("--profile", choices=PROFILES, default="boxcar")
    p.add_argument("--n-layers", type=int, default=8)
    p.add_argument("--n-filters", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=32, help="in-plane patch size (voxels)")
    p.add_argument("--patch-slabs", type=int, default=12, help="thick slices per patch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="weights name (default deepresolve_x{factor})")
    return p.parse_args(argv)


def validate(model: DeepResolve, x_val: np.ndarray, physics: ThickSliceForward) -> dict:
    y = physics.A(x_val)
    out = {}
    for name, consistent in (("cnn", False), ("cnn_consistent", True)):
        est = super_resolve(model, y, consistent=consistent, physics=physics)
        out[name] = {k: round(v, 4) for k, v in
                     score_volume(x_val, est, tissues=False).items()}
    cubic = interpolate_z(y, physics.factor, "cubic", axis=0)
    out["cubic"] = {k: round(v, 4) for k, v in score_volume(x_val, cubic, tissues=False).items()}
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = seed_everything(args.seed)
    device = get_device()
    name = args.name or f"deepresolve_x{args.factor}"
    volume = to_zyx(load_brain_volume()[0])
    x_val = template_region("val", args.factor)
    physics = ThickSliceForward(args.factor, args.profile, axis=-3)
    val_physics = ThickSliceForward(args.factor, args.profile, axis=0)
    sampler = PatchSampler(volume, template_regions()["train"], args.factor, rng,
                           batch=args.batch, patch=args.patch, slabs=args.patch_slabs)
    model = DeepResolve(args.factor, args.n_layers, args.n_filters)
    best = {"psnr": -np.inf, "state": None}
    history: list[dict] = []
    start = time.perf_counter()

    def validate_now(step: int, loss: float) -> None:
        if step % args.val_every and step != args.steps:
            return
        model.cpu()
        scores = validate(model, x_val, val_physics)
        model.to(device).train()
        psnr = scores["cnn"]["psnr"]
        history.append({"step": step, "loss": round(loss, 7), "val_psnr": psnr})
        print(f"step {step}: loss {loss:.2e}, val PSNR {psnr:.2f} dB (+ consistency "
              f"{scores['cnn_consistent']['psnr']:.2f} dB, cubic {scores['cubic']['psnr']:.2f} "
              f"dB), {time.perf_counter() - start:.0f} s", flush=True)
        if psnr > best["psnr"]:
            best.update(psnr=psnr, state=copy.deepcopy(model.state_dict()))

    train_steps(model, sampler, physics, args.steps, lr=args.lr, device=device,
                callback=validate_now)
    seconds = time.perf_counter() - start
    model.load_state_dict(best["state"])
    model.cpu().eval()
    scores = validate(model, x_val, val_physics)
    command = "python scripts/train_superres.py " + " ".join(sys.argv[1:] if argv is None
                                                            else argv)
    path = save_pretrained(
        name, model, command=command.strip(),
        data={"dataset": "MNI152 T1 template (dlmi_utils.data.load_brain_volume), (Z, Y, X)",
              "train": "coronal slabs of template_regions()['train']",
              "val": "template_region('val')", "factor": args.factor,
              "profile": args.profile, "patch": [sampler.depth, args.patch, args.patch]},
        validation={"region": "val", "mask": "reference > 2 % of its maximum", **scores},
        training={"steps": args.steps, "batch": args.batch, "lr": args.lr,
                  "threads": args.threads, "device": str(device), "seconds": round(seconds, 1),
                  "history": history},
    )
    print(f"saved {path} ({path.stat().st_size / 1e3:.0f} kB); val {scores}")


if __name__ == "__main__":
    main()
