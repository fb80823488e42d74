"""Train the shipped mammogram denoisers (DnCNN, the dilated IRCNN-style net, a ResUNet) on a CPU.

Data: the *training* case of the CBIS-DDSM mammograms (``load_mammograms("train")``, the
benign case; the malignant case is never read here) at ``--pixel-size`` mm. Views rcc, lcc,
rmlo give the training patches (inside the breast, random flips); the fourth view, lmlo,
gives fixed validation crops with a fixed noise draw, whose PSNR is recorded in the weights'
``.json`` (``tests/test_pretrained_denoisers.py`` reproduces it).

    nice -n 10 python scripts/train_denoisers.py --kind dilated --sigma 25
    nice -n 10 python scripts/train_denoisers.py --kind dncnn --sigma 15
    nice -n 10 python scripts/train_denoisers.py --kind dilated --sigma 25 --ablation

``--init NAME`` starts from shipped weights of the same kind and layout (a dilated net may
be wider, ``--features``: ``widen``, or deeper, ``--dilations``: ``deepen``; both keep the
function NAME computes, then train on): the shipped
``dilated_s15`` / ``dilated_s25`` (the benchmark's levels) and ``dilated_s12.75`` (Lab 04's
quantum noise at N0 = 100 after the Anscombe transform, std 255 / (2 sqrt(N0)) = 12.75) are
``dilated_blind`` trained on for one noise level, with the command below (``--sigma`` changed).

    nice -n 10 python scripts/train_denoisers.py --kind dilated --sigma 25 --features 32 \
        --patch-size 64 --batch-size 16 --threads 1 --lr 5e-4 --steps 200 --epochs 20 \
        --init dilated_blind

then trained on with a quarter of the patches against the film's border (``--edge-fraction``:
the chest wall, where a film ends and where the evaluation crops lie), ``--init`` the weights
of the first command (each run's ``.json`` keeps the chain, ``lineage``):

    nice -n 10 python scripts/train_denoisers.py --kind dilated --sigma 25 --features 32 \
        --patch-size 64 --batch-size 16 --threads 1 --lr 2e-4 --steps 200 --epochs 16 \
        --edge-fraction 0.25 --init dilated_s25

(``dilated_s15`` twice, the second time at ``--lr 1e-4``).

``--photons N0`` trains for quantum noise instead, in the Anscombe domain, on real Poisson
draws: input ``anscombe(y)`` with ``y = Poisson(N0 x) / N0``, target ``E[anscombe(y) | x]``
(``anscombe_mean``, what ``inverse_anscombe`` maps back to ``x``); the validation crops get
the same noise and the PSNR of the record is measured in that domain. Weights
``{kind}_p{N0}``; ``dilated_p100`` (Lab 04's dose) started from ``dilated_s12.75``:

    nice -n 10 python scripts/train_denoisers.py --kind dilated --photons 100 --features 32 \
        --patch-size 64 --batch-size 16 --threads 1 --lr 2e-4 --steps 200 --epochs 40 \
        --edge-fraction 0.25 --init dilated_s12.75

The blind DnCNN the lab uses, ``dncnn_blindB``, is ``dncnn_blind`` (400 blind steps)
trained on with the border, strip and anywhere patches of the dilated nets
(``benchmarks/README.md`` has the dilated nets' commands of the same kind):

    nice -n 10 python scripts/train_denoisers.py --kind dncnn --depth 17 --sigma-range 10 55 \
        --val-sigma 25 --features 32 --patch-size 64 --batch-size 16 --threads 1 --lr 1e-3 \
        --steps 200 --epochs 30 --edge-fraction 0.25 --edge-lines 0.5 \
        --anywhere-fraction 0.1 --init dncnn_blind --name dncnn_blindB

and the DnCNN of each benchmark level (``dncnn_s15``, ``dncnn_s25``, which
``pretrained_name("dncnn", S)`` picks) is ``dncnn_blindB`` trained on at that level
(4400 steps, 55 min on one thread):

    nice -n 10 python scripts/train_denoisers.py --kind dncnn --depth 17 --sigma S \
        --features 32 --patch-size 64 --batch-size 16 --threads 1 --lr 3e-4 --steps 200 \
        --epochs 22 --edge-fraction 0.25 --edge-lines 0.5 --anywhere-fraction 0.1 \
        --init dncnn_blindB --name dncnn_sS

``--kind resunet`` trains the multi-scale residual U-Net (``ResUNetDenoiser``, DRUNet-style;
``--widths`` per level, ``--blocks`` per level, ``--unshuffle``) from scratch; the
benchmark's ``resunet_sS`` (20000 steps, ~80 min on one thread):

    nice -n 10 python scripts/train_denoisers.py --kind resunet --widths 32 64 128 --blocks 2 \
        --unshuffle 2 --sigma S --patch-size 96 --batch-size 8 --threads 1 --lr 5e-4 \
        --steps 1000 --epochs 20 --edge-fraction 0.25 --edge-lines 0.5 \
        --anywhere-fraction 0.1 --loss l2 --name resunet_sS

``--ablation`` trains short runs of the dilated net with the L2, L1 and L1+MS-SSIM losses
(Zhao et al. 2017), same data, steps and seed, and records their validation PSNR / SSIM /
MS-SSIM under ``loss_ablation`` in the json of the weights named by ``--name`` (train those
first). Weights go to ``dlmi_utils/weights/{kind}_s{sigma}.pt`` (or ``--name``).

Training runs on the GPU when there is one (``--device cpu`` / ``cuda`` to choose); the
validation PSNR of the record, and the curve ``training.history.val_psnr``, are scored on
[0, 1] images with the peak 1 (``history_data_range``), the final scores on the CPU.
"""

from __future__ import annotations

import argparse
import inspect
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dlmi_utils import losses
from dlmi_utils.data import load_mammograms
from dlmi_utils.denoising.models import (
    DENOISER_KINDS,
    IRCNN_DILATIONS,
    build_denoiser,
    count_parameters,
    deepen,
    matched_layers,
    receptive_field,
    widen,
)
from dlmi_utils.device import get_device
from dlmi_utils.noise import add_gaussian_noise, add_poisson_noise, anscombe, anscombe_mean
from dlmi_utils.patches import (
    NoisyPatches,
    PatchDataset,
    anscombe_poisson_noise,
    anscombe_target,
    breast_crops,
    gaussian_noise,
)
from dlmi_utils.pretrained import load_meta, load_pretrained, save_pretrained
from dlmi_utils.train import evaluate, fit

TRAIN_VIEWS = ("rcc", "lcc", "rmlo")
VAL_VIEW = "lmlo"
VAL_CROP, VAL_CROPS, VAL_SEED = 128, 4, 1234
LOSSES = {
    "l2": lambda: losses.L2Loss(),
    "l1": lambda: losses.L1Loss(),
    "l1_msssim": lambda: losses.MixL1MSSSIMLoss(scales=None),
}


def validation_pairs(sigma: float | None, pixel_size_mm: float, crop: int = VAL_CROP,
                     n: int = VAL_CROPS, seed: int = VAL_SEED, photons: float | None = None
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` fixed ``(noisy, clean)`` crops ``(1, 1, crop, crop)`` float32 of the validation
    view, noise of std ``sigma`` / 255 drawn with ``seed + i`` for crop ``i``; with ``photons``
    instead, quantum noise in the Anscombe domain: ``(anscombe(y), anscombe_mean(x))``."""
    if (sigma is None) == (photons is None):
        raise ValueError(f"give one of sigma and photons, got sigma={sigma}, photons={photons}")
    m = next(m for m in load_mammograms("train", pixel_size_mm) if m.view == VAL_VIEW)
    pairs = []
    for i, (r, c) in enumerate(breast_crops(m.breast_mask, crop, n)):
        clean = np.ascontiguousarray(m.image[r : r + crop, c : c + crop])
        if photons is None:
            noisy = add_gaussian_noise(clean, sigma / 255.0, seed=seed + i)
        else:
            noisy = anscombe(add_poisson_noise(clean, photons, seed=seed + i), photons)
            clean = anscombe_mean(clean, photons)
        pairs.append((torch.from_numpy(noisy).float()[None, None],
                      torch.from_numpy(clean).float()[None, None]))
    return pairs


def validation_scores(model: torch.nn.Module, sigma: float | None, pixel_size_mm: float,
                      photons: float | None = None) -> dict[str, float]:
    """Mean PSNR (dB, data range 1) / SSIM / MS-SSIM on :func:`validation_pairs`."""
    pairs = validation_pairs(sigma, pixel_size_mm, photons=photons)
    scores = evaluate(model, pairs, device="cpu", data_range=1.0)
    model.eval()
    with torch.no_grad():
        ms = [losses.ms_ssim(model(y).clamp(0, 1), x, 1.0, scales=None).item() for y, x in pairs]
    return {"psnr": round(scores["psnr"], 4), "ssim": round(scores["ssim"], 5),
            "ms_ssim": round(float(np.mean(ms)), 5)}


def train(args: argparse.Namespace, loss: str, steps: int) -> tuple[torch.nn.Module, dict]:
    """One training run; returns the model and its record."""
    torch.set_num_threads(args.threads)
    views = [m for m in load_mammograms("train", args.pixel_size) if m.view in TRAIN_VIEWS]
    patches = PatchDataset([m.image for m in views], [m.breast_mask for m in views],
                           patch_size=args.patch_size, n_patches=steps * args.batch_size,
                           min_inside=args.min_inside, seed=args.seed,
                           edge_fraction=args.edge_fraction, edge_lines=args.edge_lines,
                           anywhere_fraction=args.anywhere_fraction)
    photons = args.photons
    if photons is not None:
        pairs = NoisyPatches(patches, anscombe_poisson_noise(photons), anscombe_target(photons))
    else:
        sigma = (args.sigma_range[0] / 255, args.sigma_range[1] / 255) if args.sigma_range \
            else args.sigma / 255
        pairs = NoisyPatches(patches, gaussian_noise(sigma))
    loader = DataLoader(pairs, batch_size=args.batch_size, shuffle=False)
    model = build_denoiser(args.kind, **model_kwargs(args))
    if args.init:
        model = init_model(args.init, model, calibration=lambda: next(iter(loader))[0],
                           seed=args.seed)
    val_sigma = validation_sigma(args)
    device = get_device(args.device)
    history = fit(model, loader, validation_pairs(val_sigma, args.pixel_size, photons=photons),
                  epochs=args.epochs, lr=args.lr, loss_fn=LOSSES[loss](), seed=args.seed,
                  device=device, data_range=1.0, progress=sys.stderr.isatty())
    model = model.cpu()  # the recorded scores are measured on the CPU, where the tests run
    record = {"loss": loss, "steps": steps * args.epochs, "seconds": round(history.seconds, 1),
              "val": validation_scores(model, val_sigma, args.pixel_size, photons),
              "device": str(device),
              "history_data_range": 1.0,  # the PSNR peak of history.val_psnr (older runs: none)
              "history": {"train_loss": [round(v, 6) for v in history.train_loss],
                          "val_psnr": [round(v, 3) for v in history.val_psnr]}}
    return model, record


def validation_sigma(args: argparse.Namespace) -> float | None:
    """The 8-bit Gaussian level of the validation crops: ``--sigma``, ``--val-sigma`` for blind
    training, none for ``--photons`` (quantum noise)."""
    if args.photons is not None:
        return None
    return args.sigma if args.sigma is not None else args.val_sigma


def check_init(args: argparse.Namespace) -> None:
    """Refuse ``--init`` weights of another kind or layout, a dilated net narrower than them,
    or dilations that ``deepen`` cannot grow them to, before any data is loaded."""
    meta = load_meta(args.init)
    init_config = build_denoiser(meta["kind"], **meta["model_kwargs"]).config
    config = build_denoiser(args.kind, **model_kwargs(args)).config
    grown = {"dilations": None, "features": None} if args.kind == "dilated" else {}
    if meta["kind"] != args.kind or {**init_config, **grown} != {**config, **grown}:
        raise SystemExit(f"--init {args.init} is a {meta['kind']} {meta['model_kwargs']}, not "
                         f"the {args.kind} {config} asked for; give the same --kind and --features "
                         "(and --unshuffle)")
    if config["features"] < init_config["features"]:
        raise SystemExit(f"--init {args.init} has {init_config['features']} features; a dilated "
                         f"net can be widened from it (--features >= {init_config['features']}), "
                         f"not narrowed to {config['features']}")
    if init_config.get("dilations") != config.get("dilations"):
        try:
            matched_layers(init_config["dilations"], config["dilations"])
        except ValueError as err:
            raise SystemExit(f"--init {args.init} --dilations: {err}") from None


def init_model(name: str, model: torch.nn.Module,
               calibration: Callable[[], torch.Tensor], seed: int = 0) -> torch.nn.Module:
    """``model`` (training mode) with the shipped weights ``name``; a dilated net with more
    features than ``name`` is ``name`` widened (``widen``: new channels drawn with ``seed``,
    unseen by the old ones), one with more dilations is ``name`` deepened (``deepen``: new
    layers start as identities, calibrated on the noisy batch ``calibration()``, drawn only
    then); the function is kept either way."""
    meta = load_meta(name)
    if meta["model_kwargs"] == {k: model.config[k] for k in meta["model_kwargs"]}:
        return load_pretrained(name, model)[0].train()
    init = load_pretrained(name, build_denoiser(meta["kind"], **meta["model_kwargs"]))[0]
    if init.config["features"] != model.config["features"]:
        init = widen(init, model.config["features"], seed=seed)
    if init.config["dilations"] != model.config["dilations"]:
        init = deepen(init, model.config["dilations"], calibration())
    return init.train()


def init_record(name: str | None) -> dict[str, Any] | None:
    """What ``--init NAME`` started from: its command, training and validation scores, and
    what it started from in turn (``dlmi_utils.pretrained.lineage`` follows the chain)."""
    if name is None:
        return None
    meta = load_meta(name)
    return {"name": name, "command": meta["command"], "training": meta["training"],
            "val_psnr": meta["val_psnr"], "val_ssim": meta["val_ssim"],
            "val_sigma_8bit": meta["data"]["val_sigma_8bit"], "init": meta.get("init")}


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "dncnn":
        return {"features": args.features, "depth": args.depth}
    if args.kind == "resunet":
        return {"features": tuple(args.widths), "blocks": args.blocks, "unshuffle": args.unshuffle}
    return {"features": args.features, "unshuffle": args.unshuffle,
            "dilations": tuple(args.dilations)}


def weights_name(args: argparse.Namespace) -> str:
    if args.name:
        return args.name
    if args.photons is not None:
        return f"{args.kind}_p{args.photons:g}"
    return f"{args.kind}_blind" if args.sigma_range else f"{args.kind}_s{args.sigma:g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=tuple(DENOISER_KINDS), default="dilated")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sigma", type=float, help="8-bit Gaussian noise level (15, 25, 50)")
    g.add_argument("--sigma-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="blind training: a level drawn uniformly in [LO, HI] per patch")
    g.add_argument("--photons", type=float, metavar="N0",
                   help="quantum noise at N0 photons per pixel, learned after the Anscombe "
                        "transform (input anscombe(y), target E[anscombe(y) | x])")
    p.add_argument("--val-sigma", type=float, default=25, help="validation level (blind)")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--depth", type=int, default=17, help="DnCNN depth")
    p.add_argument("--dilations", type=int, nargs="+", default=list(IRCNN_DILATIONS),
                   help="dilated net: one per 3x3 layer; with --init of a shallower net, that "
                        "net deepened (its dilations kept in order, new layers as identities)")
    p.add_argument("--unshuffle", type=int, default=1,
                   help="dilated net or ResUNet on the s x s pixel-unshuffled image (FFDNet); "
                        "1: none")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128],
                   help="ResUNet: channels of each level, finest first (--features: the others)")
    p.add_argument("--blocks", type=int, default=2, help="ResUNet: residual blocks per level")
    p.add_argument("--loss", choices=tuple(LOSSES), default="l2")
    p.add_argument("--pixel-size", type=float, default=0.2, help="mm")
    p.add_argument("--patch-size", type=int, default=48)
    p.add_argument("--min-inside", type=float, default=0.9)
    p.add_argument("--edge-fraction", type=float, default=0.0,
                   help="share of patches drawn against the film's border (the chest wall)")
    line = {k: v.default for k, v in inspect.signature(PatchDataset).parameters.items()}
    p.add_argument("--edge-lines", type=float, default=0.0,
                   help="share of those border patches given a synthetic film-edge line "
                        f"(1-{line['max_line_width']} px, intensities in "
                        f"{list(line['line_range'])}; PatchDataset(edge_lines=))")
    p.add_argument("--anywhere-fraction", type=float, default=0.0,
                   help="share of patches drawn anywhere on the film, --min-inside ignored "
                        "(the black film, labels and borders around the breast)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=500, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default=None, help="cpu or cuda (default: the GPU if there is one)")
    p.add_argument("--init", default=None,
                   help="start from these shipped weights (same kind and layout; a dilated "
                        "net may be wider, --features, or deeper, --dilations)")
    p.add_argument("--name", help="weights name (default {kind}_s{sigma} or {kind}_blind)")
    p.add_argument("--ablation", action="store_true",
                   help="loss ablation (short runs) recorded in the json of --name")
    p.add_argument("--ablation-steps", type=int, default=150, help="steps per epoch")
    args = p.parse_args(argv)
    name = weights_name(args)
    if args.photons is not None and not args.photons > 0:
        p.error(f"--photons must be positive, got {args.photons:g}")
    if args.init:
        check_init(args)
    started = time.strftime("%Y-%m-%d")

    if args.ablation:
        meta = load_meta(name)
        results = {}
        for loss in LOSSES:
            _, record = train(args, loss, args.ablation_steps)
            results[loss] = record
            print(f"ablation {loss}: val PSNR {record['val']['psnr']:.2f} dB, "
                  f"SSIM {record['val']['ssim']:.4f} ({record['seconds']:.0f} s)")
        meta["loss_ablation"] = {"command": " ".join(sys.argv), "kind": args.kind,
                                 "features": args.features, "date": started,
                                 "results": results}
        model = build_denoiser(meta["kind"], **meta["model_kwargs"])
        model, _ = load_pretrained(name, model)
        save_pretrained(name, model, meta)
        return 0

    # read before training: the record must not depend on files that change during the run
    # (a run --init X --name X overwrites X; a run whose X was moved away lost its weights)
    init = init_record(args.init)
    model, record = train(args, args.loss, args.steps)
    meta = {
        "kind": args.kind,
        "model_kwargs": model.config,
        "parameters": count_parameters(model),
        "receptive_field": receptive_field(model),
        "sigma_8bit": args.sigma,
        "sigma_range_8bit": args.sigma_range,
        "photons": args.photons,
        "pixel_size_mm": args.pixel_size,
        "data": {"split": "train", "case": "sfm-benign-0", "train_views": list(TRAIN_VIEWS),
                 "val_view": VAL_VIEW, "val_crop": VAL_CROP, "val_crops": VAL_CROPS,
                 "val_seed": VAL_SEED, "val_sigma_8bit": validation_sigma(args),
                 "val_photons": args.photons},
        "training": {**record, "patch_size": args.patch_size, "batch_size": args.batch_size,
                     "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
                     "threads": args.threads, "min_inside": args.min_inside,
                     "edge_fraction": args.edge_fraction, "edge_lines": args.edge_lines,
                     "anywhere_fraction": args.anywhere_fraction},
        "val_psnr": record["val"]["psnr"],
        "val_ssim": record["val"]["ssim"],
        "command": "python scripts/train_denoisers.py " + " ".join(sys.argv[1:]),
        "made_on": f"{platform.machine()} CPU, torch {torch.__version__}, {started}",
        "init": init,
    }
    save_pretrained(name, model.eval(), meta)
    print(f"saved {name}: val PSNR {meta['val_psnr']:.2f} dB, SSIM {meta['val_ssim']:.4f}, "
          f"{record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
