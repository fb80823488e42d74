"""Train the course's feature network: a small VGG that tells five kinds of images apart.

The perceptual loss of Lab 06 (:class:`dlmi_utils.losses.PerceptualLoss`) needs a network
trained on something else; there is no ImageNet offline, so :class:`dlmi_utils.features.
FeatureNet` learns to classify 64 x 64 patches of the course's own real images into
:data:`dlmi_utils.features.COURSE_CLASSES`, split by source (never by patch):

- ``brain_mr``: MNI152 template slices of the three orientations, their train / val slabs
  (:func:`dlmi_utils.data.load_brain_slices`);
- ``ct``: CT slices in the soft-tissue window ``CT_WINDOW_HU`` of
  :mod:`dlmi_utils.mri.datasets` (the window the perceptual loss looks through), head and
  spine for training, the skull base held out; the abdomen (the held-out slice of the CT lab,
  :data:`dlmi_utils.ct.denoising.HELDOUT_SLICE`) is never read;
- ``mammogram``: the benign case's four views for training, the malignant case's held out;
- ``radiograph``: chest and cat for training, the leg held out
  (:func:`dlmi_utils.data.load_radiographs`);
- ``photograph``: scikit-image's photographs of ``OTHER_IMAGES`` (:mod:`dlmi_utils.data.
  other_images`), camera and moon held out.

Each patch: a class drawn uniformly, an image of it, a square crop of 64 to 128 pixels
(redrawn while nearly flat: black background says nothing of the class) resized to 64 x 64
with anti-aliasing, random flips and 90-degree rotations. Adam, cross-entropy, cosine decay
of the learning rate. The held-out accuracy (per class, on a fixed set of patches) is the
``validation`` of the record ``dlmi_utils/weights/NAME.json``, and ``NAME.pt`` the weights
(:func:`dlmi_utils.pretrained.save_pretrained`). On one idle CPU thread a step of 32 patches
takes about 0.1 s, the default 3000 steps about 5 minutes:

    nice -n 10 python scripts/train_feature_net.py --threads 1
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray

from dlmi_utils.ct.denoising import HELDOUT_SLICE
from dlmi_utils.data import (
    CT_WINDOW_HU,
    OTHER_IMAGES,
    load_brain_slices,
    load_ct_slice,
    load_mammograms,
    load_radiographs,
    to_unit_range,
)
from dlmi_utils.data.brain import ORIENTATIONS
from dlmi_utils.device import seed_everything
from dlmi_utils.features import COURSE_CLASSES, FeatureNet
from dlmi_utils.pretrained import save_pretrained

CT_SOURCES = {"train": ("ct_head", "ct_small"), "val": ("ct_skull_base",)}
MAMMOGRAM_SPLITS = {"train": "train", "val": "test"}
RADIOGRAPH_SPLITS = {"train": "train", "val": "test"}
MIN_PATCH_SD = 0.02  # on the [0, 1] scale: flatter crops are redrawn
MAX_REDRAWS = 50


def _photographs(split: str) -> dict[str, np.ndarray]:
    names = [s.split(":", 1)[1] for s in OTHER_IMAGES[split] if s.startswith("photo:")]
    out = {}
    for name in names:
        image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
        if image.ndim == 3:
            image = rgb2gray(image[..., :3] / 255.0 if image.max() > 1 else image[..., :3])
        out[name] = to_unit_range(image)
    return out


def course_images(split: str) -> tuple[dict[str, list[np.ndarray]], dict[str, list[str]]]:
    """``({class: [grey (H, W) float32 in [0, 1]]}, {class: [source names]})`` of ``split``
    (``"train"`` or ``"val"``)."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if HELDOUT_SLICE in CT_SOURCES[split]:
        raise RuntimeError(f"{HELDOUT_SLICE} is the held-out slice of the CT lab")
    lo, hi = CT_WINDOW_HU
    brain = [s for o in ORIENTATIONS for s in load_brain_slices(split, o)]
    ct = {n: np.clip((load_ct_slice(n).hu - lo) / (hi - lo), 0, 1) for n in CT_SOURCES[split]}
    mammograms = load_mammograms(MAMMOGRAM_SPLITS[split])
    radiographs = load_radiographs(RADIOGRAPH_SPLITS[split])
    photographs = _photographs(split)
    images = {"brain_mr": brain, "ct": list(ct.values()),
              "mammogram": [m.image for m in mammograms],
              "radiograph": list(radiographs.values()), "photograph": list(photographs.values())}
    sources = {"brain_mr": [f"MNI152 {split} slabs, {len(brain)} slices of {len(ORIENTATIONS)} "
                            "orientations"],
               "ct": [f"{n} in {CT_WINDOW_HU} HU" for n in ct],
               "mammogram": [f"CBIS-DDSM {MAMMOGRAM_SPLITS[split]} case, {len(mammograms)} views"],
               "radiograph": list(radiographs), "photograph": list(photographs)}
    assert tuple(images) == COURSE_CLASSES
    return ({k: [np.ascontiguousarray(im, dtype=np.float32) for im in v]
             for k, v in images.items()}, sources)


def draw_patches(images: dict[str, list[np.ndarray]], n: int, patch_size: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` patches ``(n, 1, P, P)`` float32 and their class indices ``(n,)`` (see the doc)."""
    patches, labels = [], rng.integers(len(COURSE_CLASSES), size=n)
    for label in labels:
        pool = images[COURSE_CLASSES[label]]
        for _ in range(MAX_REDRAWS):
            image = pool[rng.integers(len(pool))]
            side = int(rng.integers(patch_size, min(2 * patch_size, *image.shape) + 1))
            top = int(rng.integers(image.shape[0] - side + 1))
            left = int(rng.integers(image.shape[1] - side + 1))
            crop = image[top : top + side, left : left + side]
            if crop.std() >= MIN_PATCH_SD:
                break
        patch = torch.from_numpy(np.ascontiguousarray(crop))[None, None]
        if side != patch_size:
            patch = F.interpolate(patch, size=(patch_size, patch_size), mode="bilinear",
                                  antialias=True, align_corners=False)
        patch = torch.rot90(patch, int(rng.integers(4)), dims=(2, 3))
        patches.append(torch.flip(patch, dims=(3,)) if rng.random() < 0.5 else patch)
    return torch.cat(patches).clamp(0, 1), torch.from_numpy(labels).long()


@torch.no_grad()
def accuracy(model: FeatureNet, x: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Overall and per-class accuracy of ``model`` on ``x`` ``(N, 1, P, P)``."""
    model.eval()
    predicted = torch.cat([model(x[s : s + 256]).argmax(1) for s in range(0, len(x), 256)])
    model.train()
    right = predicted == labels
    out = {"accuracy": round(float(right.float().mean()), 4)}
    for k, name in enumerate(COURSE_CLASSES):
        out[f"accuracy_{name}"] = round(float(right[labels == k].float().mean()), 4)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=64)
    p.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--val-patches", type=int, default=200, help="per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--name", default="feature_net", help="weights dlmi_utils/weights/NAME.pt")
    p.add_argument("--no-save", action="store_true", help="do not write dlmi_utils/weights")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        raise SystemExit("--steps and --batch-size must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    train, train_sources = course_images("train")
    val, val_sources = course_images("val")
    n_val = args.val_patches * len(COURSE_CLASSES)
    val_x, val_y = draw_patches(val, n_val, args.patch_size, np.random.default_rng([args.seed, 1]))
    rng = np.random.default_rng([args.seed, 0])
    model = FeatureNet(len(COURSE_CLASSES), args.widths)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    print(f"{sum(len(v) for v in train.values())} training images, "
          f"{sum(len(v) for v in val.values())} held out; FeatureNet "
          f"{sum(p.numel() for p in model.parameters()) / 1e3:.0f} k parameters", flush=True)
    seconds, running = 0.0, []  # the training steps' time, the held-out checks left out
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        x, y = draw_patches(train, args.batch_size, args.patch_size, rng)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        running.append(loss.item())
        seconds += time.perf_counter() - start
        if step % max(1, args.steps // 10) == 0 or step == args.steps:
            print(f"step {step}: loss {np.mean(running):.3f}, held-out accuracy "
                  f"{accuracy(model, val_x, val_y)['accuracy']:.3f}, "
                  f"{step / seconds:.2f} steps/s", flush=True)
            running = []
    scores = accuracy(model, val_x, val_y)
    print(f"trained in {seconds / 60:.1f} min; " + ", ".join(f"{k} {v:.3f}"
                                                             for k, v in scores.items()))
    if args.no_save:
        return 0
    command = "python scripts/train_feature_net.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    path = save_pretrained(
        args.name, model.eval(), command=command,
        data={"classes": list(COURSE_CLASSES), "train": train_sources, "val": val_sources,
              "patch_size": args.patch_size, "crops": "squares of P to 2P pixels resized to P, "
              "flips and 90-degree rotations", "ct_window_hu": list(CT_WINDOW_HU),
              "input": "grey (B, 1, H, W) in [0, 1]"},
        validation={**scores, "val_patches_per_class": args.val_patches},
        training={"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                  "seconds": round(seconds, 1), "threads": torch.get_num_threads()},
    )
    print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
