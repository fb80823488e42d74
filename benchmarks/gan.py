"""Score the shipped GAN generators (brain slices, mammogram patches) against held-out images.

For each data set: the sliced Wasserstein distance (Laplacian pyramids, mean over the
64/32/16 levels) of the generator's samples to the held-out real images, next to the
real-vs-real reference (training images to the same held-out images: what a generator that
reproduced its training set exactly would score) and the PCA/Gaussian baseline; the
nearest-neighbour distance ratio (about 1: no copying; well below 1: memorisation) and k-NN
precision / recall on 16x16 downsampled pixels. All with
:func:`dlmi_utils.gan.evaluation.score_samples`, averaged over ``--repeats`` draws of equal size.

Target: the generator's SWD closer to the real-vs-real reference than the PCA baseline's::

    python benchmarks/gan.py [--json OUT] [--repeats 5] [--data brain mammo]

Held-out data: brain, the 40 held-out slices of the *same* MNI152 template, interleaved with
the training ones along each axis (other slices of the one brain the GAN learnt, 5 mm or more
from any training slice, not other subjects); mammo, 256 patches of the malignant case
(another patient than the benign training case).
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import print_table, write_json

from dlmi_utils.gan.data import GAN_DATASETS, load_gan_dataset
from dlmi_utils.gan.evaluation import score_samples
from dlmi_utils.gan.training import generate
from dlmi_utils.pretrained import load_pretrained


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None, help="write the results to this file")
    p.add_argument("--repeats", type=int, default=5, help="draws averaged per score")
    p.add_argument("--data", nargs="+", choices=GAN_DATASETS, default=list(GAN_DATASETS),
                   help="the data sets to score (default: all)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")

    results, rows = {}, []
    for name in args.data:
        start = time.perf_counter()
        train, heldout, _ = load_gan_dataset(name)
        generator = load_pretrained(f"gan_{name}")
        s = score_samples(lambda n, seed, g=generator: generate(g, n, seed=seed), train, heldout,
                          repeats=args.repeats)
        s["target_met"] = abs(s["swd_model"] - s["swd_real_vs_real"]) < abs(
            s["swd_pca"] - s["swd_real_vs_real"])
        s["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = s
        rows.append({
            "data": name, "held-out": s["n_heldout"],
            "SWD model (x1e3)": 1e3 * s["swd_model"],
            "SWD real-vs-real (x1e3)": 1e3 * s["swd_real_vs_real"],
            "SWD PCA (x1e3)": 1e3 * s["swd_pca"],
            "NN ratio": s["nn_ratio"], "precision": s["precision"], "recall": s["recall"],
            "target met": "yes" if s["target_met"] else "no",
        })
    print_table(rows, list(rows[0]))
    if args.json:
        write_json(args.json, results)
    return 0 if all(r["target_met"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
