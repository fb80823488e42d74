"""Train a DCGAN on brain slices or mammogram patches; ship the moving-average generator.

Data: :func:`dlmi_utils.gan.data.load_gan_dataset` -- ``brain``: the 198 training slices of
the MNI152 template (three orientations, 64x64 at 3 mm) with flips, small rotations,
scalings and shifts; ``mammo``: 4096 patches of 64x64 at 0.4 mm from the benign case, with
flips. The held-out images (40 slices interleaved with the training ones; 256 patches of
the malignant case) are only scored: the SWD curve during training and the scores recorded
at the end.

The generator's exponential moving average goes to ``dlmi_utils/weights/gan_NAME.pt``, and
``gan_NAME.json`` (:func:`dlmi_utils.pretrained.save_pretrained`) records the command, the
data, a summary of each training run and, as its validation, the scores of
:func:`dlmi_utils.gan.evaluation.score_samples` (SWD to held-out images next to the real-vs-real
reference and the PCA baseline, nearest-neighbour ratio, precision / recall), which
``tests/test_gan_pretrained.py`` reproduces. The SWD to the held-out images is printed at each
snapshot (watched, never used to choose the weights).

``--init gan_NAME`` starts the generator (and its average) from shipped weights and restarts
the discriminator; the record's ``command`` is then the command of those weights, `` && ``
this one. Each record's ``command`` remakes the shipped generators: ``gan_brain`` in two
stages, the second with ``--augment flips`` (rotations and scalings resample the slices
bilinearly, and a GAN learns that blur too). Runs on the GPU when there is one; on one idle CPU
thread a step of 32 images takes about 0.3 s.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from dlmi_utils.device import get_device
from dlmi_utils.gan.data import GAN_DATASETS, ImageSampler, load_gan_dataset
from dlmi_utils.gan.evaluation import score_samples, swd
from dlmi_utils.gan.models import Discriminator, Generator
from dlmi_utils.gan.training import LOSSES, generate, train_gan
from dlmi_utils.pretrained import load_pretrained, load_record, save_pretrained

DATA = {"brain": {"images": "MNI152 template slices, 64 x 64 at 3 mm"},
        "mammo": {"images": "CBIS-DDSM patches inside the breast, 64 x 64 at 0.4 mm"}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=GAN_DATASETS, default="brain")
    p.add_argument("--loss", choices=LOSSES, default="ns")
    p.add_argument("--nz", type=int, default=64, help="latent size")
    p.add_argument("--ngf", type=int, default=16, help="generator width (last layer)")
    p.add_argument("--ndf", type=int, default=16, help="discriminator width (first layer)")
    p.add_argument("--d-norm", choices=("batch", "layer", "none"), default="none")
    p.add_argument("--no-spectral-norm", action="store_true")
    p.add_argument("--steps", type=int, default=10000, help="generator updates")
    p.add_argument("--n-critic", type=int, default=1, help="discriminator updates per step")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--gp-weight", type=float, default=10.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", choices=("default", "flips"), default="default",
                   help="the data set's augmentation (brain: flips, rotations, scalings, "
                        "shifts), or horizontal flips only: no resampling, no interpolation blur")
    p.add_argument("--init", default=None,
                   help="start the generator (and its average) from these shipped weights, "
                        "e.g. gan_brain, to train on; the discriminator starts afresh")
    p.add_argument("--snapshots", type=int, default=20,
                   help="sample grids kept, and the points where the SWD is printed")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: automatic)")
    p.add_argument("--no-save", action="store_true", help="do not write dlmi_utils/weights")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    train, heldout, sampler = load_gan_dataset(args.data)
    if args.augment == "flips":
        sampler = ImageSampler(train, flip=True)
    config = dict(nz=args.nz, ngf=args.ngf, size=train.shape[-1])
    # read before training: the record must not depend on files that change during the run
    init = load_record(args.init) if args.init else None
    if init is None:
        generator = Generator(**config)
    elif init["model_kwargs"] != config:
        raise SystemExit(f"--init {args.init} is a Generator({init['model_kwargs']}), not the "
                         f"Generator({config}) asked for")
    else:  # built once either way: the discriminator's initialisation draws the same numbers
        generator = load_pretrained(args.init).train()
        print(f"generator initialised from {args.init}")
    discriminator = Discriminator(args.ndf, train.shape[-1], args.d_norm,
                                  spectral_norm=not args.no_spectral_norm)
    print(f"{args.data}: {len(train)} training images, {len(heldout)} held out; "
          f"generator {sum(p.numel() for p in generator.parameters()) / 1e6:.2f} M "
          f"parameters; on {device}", flush=True)
    swd_curve: list[tuple[int, float]] = []

    def score_snapshot(step: int, g: torch.nn.Module) -> None:
        # the SWD of the moving-average generator to the held-out images, one draw: how the
        # score evolved (watched, never used to pick the weights that are shipped)
        swd_curve.append((step, swd(generate(g, len(heldout), seed=0), heldout, seed=0)["mean"]))
        print(f"step {step}: SWD to held-out {1e3 * swd_curve[-1][1]:.1f} x1e-3", flush=True)

    ema, history = train_gan(
        generator, discriminator, sampler, steps=args.steps, batch_size=args.batch_size,
        loss=args.loss, n_critic=args.n_critic, gp_weight=args.gp_weight, lr_g=args.lr_g,
        lr_d=args.lr_d, betas=(args.beta1, 0.999 if args.loss != "wgan-gp" else 0.9),
        ema_decay=args.ema_decay, sample_every=max(1, args.steps // args.snapshots), seed=args.seed,
        device=device, on_snapshot=score_snapshot,
    )
    g = ema.model.cpu().eval()
    scores = score_samples(lambda n, s: generate(g, n, seed=s), train, heldout)
    print(f"trained in {history.seconds / 60:.1f} min; " + ", ".join(
        f"{k} {v:.4g}" for k, v in scores.items()), flush=True)
    if args.no_save:
        return 0
    command = "python scripts/train_gan.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    run = {"steps": args.steps, "batch_size": args.batch_size, "augment": args.augment,
           "loss": args.loss, "device": str(device)}
    path = save_pretrained(
        f"gan_{args.data}", g,
        command=command if init is None else f"{init['command']} && {command}",
        data={**DATA[args.data], "dataset": args.data, "train_images": len(train),
              "heldout_images": len(heldout)},
        validation=scores,
        training={"runs": (init["training"]["runs"] if init else []) + [run]},
    )
    print(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
