"""Train the deep cascade (or the U-Net baseline) on undersampled brain slices; ship the weights.

Data: the brain slices of :func:`dlmi_utils.data.load_brain_slices` (training split, all
three orientations by default), with ``--other-images`` the CT slices, radiographs,
mammograms and photographs of :func:`dlmi_utils.data.load_other_images` too (never
the MR images of pydicom-data: they are the out-of-distribution test), made complex with a
smooth random phase and undersampled with a 1D random Cartesian mask (centre fraction 0.08);
masks, phases, flips and (``--gamma``) contrasts change every epoch. Validation on the ``val``
split with fixed masks (seed ``dlmi_utils.mri.datasets.VAL_SEED``): the brain's (recorded as
``validation``) and, with ``--other-images``, the held-out other images' (``validation_other``);
the ``test`` split is left for ``benchmarks/recon.py``.

The weights go to ``dlmi_utils/weights/NAME.pt`` with the record ``NAME.json``
(:mod:`dlmi_utils.pretrained`): the model, the command, the data and the validation PSNR/SSIM
measured on the CPU at the end (``tests/test_pretrained_cascade.py`` reproduces them)::

    python scripts/train_cascade.py --accel 4                 # -> cascade_r4
    python scripts/train_cascade.py --accel 8                 # -> cascade_r8
    python scripts/train_cascade.py --model unet --accel 4    # -> unet_r4 (no DC)

Weights made in stages (``--init NAME`` starts from shipped weights, e.g. R = 8 from R = 4)
record the whole chain of commands in their JSON's ``command``: one line that remakes them
from scratch. Runs on the GPU when there is one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dlmi_utils.data import CT_WINDOW_HU, OTHER_IMAGES, load_other_images
from dlmi_utils.device import get_device, seed_everything
from dlmi_utils.losses import L1Loss, L2Loss
from dlmi_utils.mri import DeepCascade, UNetRecon
from dlmi_utils.mri.datasets import (
    DEFAULT_CENTER_FRACTION,
    DEFAULT_MASK,
    VAL_SEED,
    UndersampledSlices,
    brain_slices_dataset,
    recon_step,
)
from dlmi_utils.mri.dc import DC_MODES
from dlmi_utils.pretrained import load_pretrained, load_record, save_pretrained
from dlmi_utils.train import evaluate, fit

LOSSES = {"l1": L1Loss, "mse": L2Loss}


class _ZeroFilled(torch.nn.Module):
    """``x_u = A^H y``: the reference the validation PSNR is compared with."""

    def forward(self, y, physics):
        return physics.A_adjoint(y)


def build_model(args: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
    if args.model == "cascade":
        kwargs = dict(
            n_cascades=args.n_cascades, n_convs=args.n_convs, features=args.features,
            shared_weights=args.shared_weights, dc=args.dc, lam=args.lam,
        )
        return DeepCascade(**kwargs), kwargs
    kwargs = dict(features=args.features, n_pools=args.n_pools)
    return UNetRecon(**kwargs), kwargs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("cascade", "unet"), default="cascade")
    p.add_argument("--accel", type=int, default=4, help="acceleration R")
    p.add_argument("--center-fraction", type=float, default=DEFAULT_CENTER_FRACTION)
    p.add_argument("--orientations", nargs="+", default=["axial", "coronal", "sagittal"])
    p.add_argument("--n-cascades", type=int, default=5)
    p.add_argument("--n-convs", type=int, default=5)
    p.add_argument("--features", type=int, default=16,
                   help="filters of each cascade's convolutions; U-Net: of its first level")
    p.add_argument("--shared-weights", action="store_true")
    p.add_argument("--dc", choices=DC_MODES, default="hard")
    p.add_argument("--lam", type=float, default=10.0, help="initial lambda of soft DC")
    p.add_argument("--n-pools", type=int, default=3, help="U-Net pooling levels")
    p.add_argument("--crop-rows", type=int, default=128,
                   help="train on random windows of this many rows (read-out direction)")
    p.add_argument("--other-images", action="store_true",
                   help="train on other anatomy, modalities and photographs too")
    p.add_argument("--gamma", type=float, default=1.0,
                   help="random contrast image ** g, 1/gamma <= g <= gamma (1: none)")
    p.add_argument("--noise-sigma", type=float, default=0.0, help="k-space noise (std)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", choices=sorted(LOSSES), default="l1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: automatic)")
    p.add_argument("--init", default=None,
                   help="start from these shipped weights (e.g. cascade_r4 for R = 8)")
    p.add_argument("--name", default=None, help="weights name (default: MODEL_rR)")
    p.add_argument("--checkpoint", type=Path, default=None, help="resume from / save to")
    p.add_argument("--no-save", action="store_true", help="do not write dlmi_utils/weights")
    args = p.parse_args(argv)
    if args.name is None:
        args.name = f"{args.model}_r{args.accel}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = get_device(args.device)
    data = dict(
        acceleration=args.accel, orientations=tuple(args.orientations),
        center_fraction=args.center_fraction, mask_kind=DEFAULT_MASK,
        noise_sigma=args.noise_sigma,
    )
    train_set = brain_slices_dataset("train", seed=args.seed, augment=True, gamma=args.gamma,
                                     crop_rows=args.crop_rows, other_images=args.other_images,
                                     **data)
    val_set = brain_slices_dataset("val", **data)
    val_other = (UndersampledSlices(load_other_images("val"), args.accel, seed=VAL_SEED,
                                    **{k: v for k, v in data.items()
                                       if k not in ("acceleration", "orientations")})
                 if args.other_images else None)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              generator=torch.Generator(), drop_last=True)
    val_loader = DataLoader(val_set, batch_size=8)
    model, model_kwargs = build_model(args)
    if args.init is not None:
        start_kwargs = load_record(args.init)["model_kwargs"]
        if any(start_kwargs.get(k) != v for k, v in model_kwargs.items()):
            raise SystemExit(f"--init {args.init} has other model arguments than {model_kwargs}")
        model.load_state_dict(load_pretrained(args.init).state_dict())
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.name}: {type(model).__name__}({model_kwargs}), {n_params} parameters; "
          f"{len(train_set)} training and {len(val_set)} validation slices; device {device}")

    t0 = time.perf_counter()
    history = fit(model, train_loader, val_loader, epochs=args.epochs, lr=args.lr,
                  loss_fn=LOSSES[args.loss](), step=recon_step, seed=args.seed, device=device,
                  checkpoint=args.checkpoint, resume=args.checkpoint is not None)
    train_seconds = time.perf_counter() - t0

    # The recorded figures are measured on the CPU, where the test reproduces them.
    model = model.cpu().eval()
    scores = evaluate(model, val_loader, recon_step, "cpu")
    print(f"validation on CPU: PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f} "
          f"({scores['n']} slices); training {train_seconds / 60:.1f} min")
    extra = {}
    if val_other is not None:
        other = evaluate(model, DataLoader(val_other, batch_size=8), recon_step, "cpu")
        zero = evaluate(_ZeroFilled(), DataLoader(val_other, batch_size=8), recon_step, "cpu")
        print(f"validation on the other images: PSNR {other['psnr']:.2f} dB, SSIM "
              f"{other['ssim']:.4f} ({other['n']} images; zero filling {zero['psnr']:.2f} dB)")
        extra["validation_other"] = {"psnr": round(other["psnr"], 4),
                                     "ssim": round(other["ssim"], 5), "images": other["n"]}
    if args.no_save:
        return 0
    command = " ".join(["python scripts/train_cascade.py", *(argv if argv is not None
                                                              else sys.argv[1:])])
    run = {"acceleration": args.accel, "epochs": args.epochs, "lr": args.lr, "loss": args.loss,
           "threads": torch.get_num_threads(), "seconds": round(train_seconds, 1),
           "gamma": args.gamma, "other_images": args.other_images,
           "psnr": round(scores["psnr"], 4), "ssim": round(scores["ssim"], 5),
           "val_psnr_per_epoch": [round(x, 5) for x in history.val_psnr]}
    runs = [run]
    if args.init is not None:  # the chain that remakes the starting weights, then this run
        start = load_record(args.init)
        command = f"{start['command']} && {command}"
        runs = start.get("training", {}).get("runs", []) + runs
    path = save_pretrained(
        args.name, model, command=command,
        data={"dataset": "brain slices (dlmi_utils.data.load_brain_slices)",
              "train_split": "train", "val_split": "val", "crop_rows": args.crop_rows,
              **data, "orientations": list(args.orientations), "gamma": args.gamma,
              "other_images": (dict(OTHER_IMAGES, ct_window_hu=list(CT_WINDOW_HU))
                               if args.other_images else None)},
        validation={"psnr": round(scores["psnr"], 4), "ssim": round(scores["ssim"], 5),
                    "slices": scores["n"]},
        training={"runs": runs},
        **extra,
    )
    print(f"saved {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
