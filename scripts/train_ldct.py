"""Train a low-dose CT denoiser with one of Yang et al.'s four objectives (IEEE TMI 2018).

The same generator, a residual CNN (:class:`dlmi_utils.denoising.DnCNN`, 8 layers of 32
channels and no batch norm: Yang et al.'s generator, with the residual learning of DnCNN),
learns ``low -> full`` on 64 x 64 patches of simulated dose pairs
(:class:`dlmi_utils.ct.denoising.DosePairPatches`: the training slices at doses ``I0``
log-uniform in ``--i0-range``, the full dose ``--dose-factor`` times higher), in network
units (HU through ``NETWORK_WINDOW_HU``, :func:`dlmi_utils.ct.denoising.hu_to_unit`):

- ``mse`` (CNN-MSE): ``L = mean (G(y) - x)^2``;
- ``vgg`` (CNN-VGG): ``L = perceptual(G(y), x)``, :class:`dlmi_utils.losses.PerceptualLoss`
  on the images with the soft-tissue window ``--feature-window`` (HU) mapped linearly to
  [0, 1], not clipped (with a clipped window the generator hides noise from the loss by
  pushing tissue into the clipped range: its HU drift), through ``--feature-net``
  (``course``: the shipped :class:`dlmi_utils.features.FeatureNet`; ``imagenet``: VGG-19,
  where torchvision and internet are available) at ``--feature-layers``;
- ``wgan_mse``, ``wgan_vgg`` (WGAN-MSE, WGAN-VGG): the critic ``D``
  (:class:`dlmi_utils.gan.models.Discriminator`, a per-sample layer norm, no batch norm) takes
  ``--n-critic`` steps of ``L_D = E[D(G(y))] - E[D(x)] + lambda GP``
  (:func:`dlmi_utils.gan.training.discriminator_step`), then the generator one step of
  ``L_G = -E[D(G(y))] + lambda_1 content``, content the MSE or the perceptual loss above.

Yang et al.'s settings: ``lambda_1 = 0.1``, ``lambda = 10``, ``n_critic = 4``, Adam with
``betas (0.5, 0.9)``, learning rate 1e-5 in the paper and 1e-4 in the authors' code. Their
content terms are sums over the ``N`` values of a patch (pixels, or features of the layer)
divided by 2; ours are means, ``N / 2`` times smaller, so the default ``--content-weight`` is
their ``0.1 N / 2`` (205 for the MSE of 64 x 64 patches). Defaults: those values with
``--lr 1e-4``; the two CNN objectives take 1e-3 with a cosine decay (no game to keep
balanced). ``--init NAME`` starts the generator from shipped weights (the record's
``command`` then chains both runs, ``&&``): the WGANs start from the CNN of the same content
loss. The default ``--steps`` (:data:`DEFAULT_STEPS`) take about 8 minutes on one idle CPU
thread: a step of 16 patches takes 0.2 s (``mse``), 0.25 s (``vgg``), 0.9 to 1 s (the WGANs,
4 critic steps each).

At the end, the held-out slice (:data:`dlmi_utils.ct.denoising.HELDOUT_SLICE`, never
trained on) at ``--val-dose`` photons per ray is denoised and scored against its full-dose
image (PSNR and SSIM in the body, HU mapped by ``NETWORK_WINDOW_HU``; watched, never used to
choose the weights), and the weights go to ``dlmi_utils/weights/NAME.pt`` with their record
(:func:`dlmi_utils.pretrained.save_pretrained`). On one CPU thread:

    nice -n 10 python scripts/train_ldct.py --objective mse --threads 1
    nice -n 10 python scripts/train_ldct.py --objective wgan_vgg --init ldct_cnn_vgg --threads 1
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch

from dlmi_utils import metrics
from dlmi_utils.ct import ParallelBeamProjector, simulate_dose_pair
from dlmi_utils.ct.denoising import (
    BODY_THRESHOLD_HU,
    DEFAULT_I0_RANGE,
    HELDOUT_SLICE,
    NETWORK_WINDOW_HU,
    TRAINING_SLICES,
    DosePairPatches,
    denoise_hu,
    hu_to_unit,
    load_slices,
    unit_to_hu,
)
from dlmi_utils.data import CT_WINDOW_HU
from dlmi_utils.denoising import DnCNN
from dlmi_utils.device import get_device, seed_everything
from dlmi_utils.features import COURSE_WEIGHTS, DEFAULT_LAYERS, FEATURE_NETWORKS, feature_network
from dlmi_utils.gan.losses import g_loss_wasserstein
from dlmi_utils.gan.models import Discriminator
from dlmi_utils.gan.training import discriminator_step, make_optimizers
from dlmi_utils.losses import L2Loss, PerceptualLoss
from dlmi_utils.pretrained import load_pretrained, load_record, save_pretrained

OBJECTIVES = ("mse", "vgg", "wgan_mse", "wgan_vgg")
DEFAULT_NAMES = {"mse": "ldct_cnn_mse", "vgg": "ldct_cnn_vgg", "wgan_mse": "ldct_wgan_mse",
                 "wgan_vgg": "ldct_wgan_vgg"}
YANG_LAMBDA_1 = 0.1  # on the content term summed over a patch, divided by 2
DEFAULT_STEPS = {"mse": 2500, "vgg": 2000, "wgan_mse": 500, "wgan_vgg": 500}
VAL_SEED = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objective", choices=OBJECTIVES, required=True)
    p.add_argument("--name", default=None,
                   help="weights name (default: DEFAULT_NAMES of the objective)")
    p.add_argument("--steps", type=int, default=None,
                   help="generator updates (default: DEFAULT_STEPS of the objective)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch-size", type=int, default=64, choices=(32, 64, 128))
    p.add_argument("--features", type=int, default=32, help="generator width")
    p.add_argument("--depth", type=int, default=8, help="generator convolutions")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam's learning rate (default 1e-3 for mse / vgg, 1e-4 for the WGANs)")
    p.add_argument("--slices", nargs="+", default=list(TRAINING_SLICES))
    p.add_argument("--i0-range", type=float, nargs=2, default=list(DEFAULT_I0_RANGE),
                   help="photons per ray of the low dose, log-uniform")
    p.add_argument("--dose-factor", type=float, default=4.0, help="full dose / low dose")
    p.add_argument("--draws-per-slice", type=int, default=8, help="dose draws simulated per slice")
    p.add_argument("--n-angles", type=int, default=720, help="views of the simulated scans")
    p.add_argument("--feature-net", choices=FEATURE_NETWORKS, default="course")
    p.add_argument("--feature-weights", default=COURSE_WEIGHTS,
                   help="the shipped FeatureNet of --feature-net course")
    p.add_argument("--feature-layers", nargs="+", default=None,
                   help="default: the network's deepest convolution (relu4_2, relu5_4)")
    p.add_argument("--feature-window", type=float, nargs=2, default=list(CT_WINDOW_HU),
                   help="HU window mapped to [0, 1] (not clipped) for the perceptual loss")
    p.add_argument("--content-weight", type=float, default=None,
                   help="lambda_1 of the WGANs (default: Yang et al.'s 0.1 N / 2)")
    p.add_argument("--gp-weight", type=float, default=10.0)
    p.add_argument("--n-critic", type=int, default=4)
    p.add_argument("--ndf", type=int, default=32, help="critic width (first layer)")
    p.add_argument("--init", default=None, help="start the generator from these weights")
    p.add_argument("--val-slice", default=HELDOUT_SLICE)
    p.add_argument("--val-dose", type=float, default=1e5, help="photons per ray")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: automatic)")
    p.add_argument("--no-save", action="store_true", help="do not write dlmi_utils/weights")
    args = p.parse_args(argv)
    args.steps = DEFAULT_STEPS[args.objective] if args.steps is None else args.steps
    if args.steps < 1 or args.batch_size < 1 or args.n_critic < 1:
        p.error("--steps, --batch-size and --n-critic must be positive")
    if not args.val_dose > 0:
        p.error(f"--val-dose must be a positive number of photons per ray, got {args.val_dose}")
    if args.lr is None:
        args.lr = 1e-4 if args.objective.startswith("wgan") else 1e-3
    return args


def batches(data: DosePairPatches, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """``(low, full)`` batches ``(B, 1, P, P)`` forever, new patches each epoch."""
    epoch = 0
    while True:
        data.set_epoch(epoch)
        for start in range(0, len(data) - batch_size + 1, batch_size):
            pairs = [data[i] for i in range(start, start + batch_size)]
            yield tuple(torch.stack(t) for t in zip(*pairs, strict=True))
        epoch += 1


class Content(torch.nn.Module):
    """The content loss of ``objective`` on network units: the MSE, or the perceptual loss
    of the images with ``window`` (HU) mapped to [0, 1], not clipped."""

    def __init__(self, objective: str, perceptual: PerceptualLoss | None,
                 window: tuple[float, float]):
        super().__init__()
        self.perceptual, self.window = perceptual, window
        self.mse = L2Loss() if objective.endswith("mse") else None

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.mse is not None:
            return self.mse(x, target)
        return self.perceptual(self.view(x), self.view(target))

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """Network units -> the perceptual loss's window mapped to [0, 1] (not clipped)."""
        return hu_to_unit(unit_to_hu(x), self.window)

    @torch.no_grad()
    def values_per_patch(self, patch_size: int, device: torch.device) -> int:
        """``N``, how many values the loss averages per patch: pixels for the MSE, values of
        the (first) feature map for the perceptual loss."""
        if self.mse is not None:
            return patch_size**2
        patch = torch.zeros(1, 1, patch_size, patch_size, device=device)
        return self.perceptual.feature_maps(patch)[0].numel()


@torch.no_grad()
def validate(model: torch.nn.Module, val_slice: str, dose: float, dose_factor: float,
             n_angles: int, device: torch.device) -> dict[str, float]:
    """The held-out slice at ``dose``: PSNR / SSIM of the low-dose FBP and of the denoised
    image against the full-dose FBP, in the body, HU through ``NETWORK_WINDOW_HU``."""
    ct = load_slices([val_slice])[val_slice]
    pair = simulate_dose_pair(torch.from_numpy(ct.hu), ct.pixel_spacing, dose, dose_factor,
                              ParallelBeamProjector(ct.hu.shape, n_angles), seed=VAL_SEED)
    start = time.perf_counter()
    denoised = denoise_hu(model, pair.low.numpy(), device=device)
    seconds = time.perf_counter() - start
    body = ct.hu > BODY_THRESHOLD_HU
    full = hu_to_unit(pair.full.numpy())
    out = {"slice": val_slice, "dose_i0": dose, "dose_factor": dose_factor,
           "seconds_per_slice": round(seconds, 3)}
    for key, image in (("low_dose", pair.low.numpy()), ("denoised", denoised)):
        x = hu_to_unit(image)
        out[f"psnr_{key}"] = round(metrics.psnr(full, x, data_range=1.0, mask=body), 3)
        out[f"ssim_{key}"] = round(metrics.ssim(full, x, data_range=1.0, mask=body), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = get_device(args.device)
    name = args.name or DEFAULT_NAMES[args.objective]
    adversarial, vgg = args.objective.startswith("wgan"), args.objective.endswith("vgg")
    config = dict(channels=1, features=args.features, depth=args.depth, batch_norm=False,
                  residual=True)
    init = load_record(args.init) if args.init else None  # read before any file changes
    if init is not None and (init["model"] != "dlmi_utils.denoising.models.DnCNN"
                             or init["model_kwargs"] != config):
        raise SystemExit(f"--init {args.init} is a {init['model']}({init['model_kwargs']}), not "
                         f"the DnCNN({config}) asked for")
    generator = (load_pretrained(args.init) if init else DnCNN(**config)).to(device).train()
    start = time.perf_counter()
    data = DosePairPatches(load_slices(args.slices), tuple(args.i0_range), args.draws_per_slice,
                           args.dose_factor, args.patch_size, 64 * args.batch_size,
                           args.n_angles, seed=args.seed)
    print(f"{len(data.low)} dose pairs of {', '.join(args.slices)} simulated in "
          f"{time.perf_counter() - start:.1f} s; I0 from {min(i for _, i in data.doses):.3g} to "
          f"{max(i for _, i in data.doses):.3g} photons per ray; on {device}", flush=True)
    perceptual, feature_name = None, None
    if vgg:
        features = feature_network(args.feature_net, device, args.feature_weights)
        layers = args.feature_layers or list(DEFAULT_LAYERS[args.feature_net])
        perceptual = PerceptualLoss(features, layers).to(device)
        feature_name = features.weights_name
    content = Content(args.objective, perceptual, tuple(args.feature_window))
    if adversarial and args.content_weight is None:
        args.content_weight = YANG_LAMBDA_1 * content.values_per_patch(args.patch_size, device) / 2
    critic, schedule = None, None
    if adversarial:
        critic = Discriminator(args.ndf, args.patch_size, norm="layer").to(device)
        opt_g, opt_d = make_optimizers(generator, critic, args.lr, args.lr, betas=(0.5, 0.9))
    else:
        opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, args.steps)
    rng = torch.Generator().manual_seed(args.seed)
    stream = batches(data, args.batch_size)
    log: dict[str, list[float]] = {"content": [], "g_adv": [], "d_loss": [], "gp": []}
    curve, seconds = [], 0.0
    for step in range(1, args.steps + 1):
        tic = time.perf_counter()
        if adversarial:
            for _ in range(args.n_critic):
                low, full = (t.to(device) for t in next(stream))
                d = discriminator_step(generator, critic, opt_d, full, low, "wgan-gp",
                                       args.gp_weight, rng)
                log["d_loss"].append(d["d_loss"])
                log["gp"].append(d["gp"])
        low, full = (t.to(device) for t in next(stream))
        out = generator(low)
        loss = content(out, full)
        log["content"].append(loss.item())
        if adversarial:
            g_adv = g_loss_wasserstein(critic(out))
            log["g_adv"].append(g_adv.item())
            loss = g_adv + args.content_weight * loss
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        if schedule is not None:
            schedule.step()
        seconds += time.perf_counter() - tic
        if step % max(1, args.steps // 10) == 0 or step == args.steps:
            recent = {k: float(np.mean(v[-50:])) for k, v in log.items() if v}
            curve.append({"step": step, **{k: round(v, 6) for k, v in recent.items()}})
            print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in recent.items())
                  + f"; {step / seconds:.2f} steps/s", flush=True)
    scores = validate(generator, args.val_slice, args.val_dose, args.dose_factor,
                      args.n_angles, device)
    print(f"trained in {seconds / 60:.1f} min; " + ", ".join(f"{k} {v}" for k, v in scores.items()))
    if args.no_save:
        return 0
    command = "python scripts/train_ldct.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    run = {"objective": args.objective, "steps": args.steps, "batch_size": args.batch_size,
           "lr": args.lr, "seconds": round(seconds, 1), "threads": torch.get_num_threads(),
           "device": str(device), "curve": curve}
    if adversarial:
        run.update(content_weight=args.content_weight, gp_weight=args.gp_weight,
                   n_critic=args.n_critic, critic=critic.__class__.__name__, ndf=args.ndf)
    if vgg:
        run.update(feature_network=feature_name, feature_layers=list(perceptual.layers),
                   feature_window_hu=list(args.feature_window))
    path = save_pretrained(
        name, generator.cpu().eval(),
        command=command if init is None else f"{init['command']} && {command}",
        data={"slices": list(args.slices), "heldout": args.val_slice,
              "i0_range": list(args.i0_range), "draws_per_slice": args.draws_per_slice,
              "dose_factor": args.dose_factor, "n_angles": args.n_angles,
              "patch_size": args.patch_size, "network_window_hu": list(NETWORK_WINDOW_HU)},
        validation=scores, objective=args.objective,
        training={"runs": (init["training"]["runs"] if init else []) + [run]},
    )
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
