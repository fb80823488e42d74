"""The shipped GAN generators load in one call and reproduce the scores recorded when made."""

import pytest
import torch

from dlmi_utils.gan.data import load_gan_dataset
from dlmi_utils.gan.evaluation import score_samples
from dlmi_utils.gan.models import PRETRAINED, Generator, pretrained_generator
from dlmi_utils.gan.training import generate
from dlmi_utils.pretrained import WEIGHTS_DIR, load_meta

SCORES = ("swd_model", "swd_real_vs_real", "swd_pca", "nn_ratio", "precision", "recall")


@pytest.mark.parametrize("name", PRETRAINED)
def test_generator_loads_in_one_call_in_eval_mode(name):
    generator, meta = pretrained_generator(name)
    assert isinstance(generator, Generator) and not generator.training
    assert meta["args"]["data"] == name and meta["script"] == "scripts/train_gan.py"
    images = generate(generator, 4, seed=0)
    assert images.shape == (4, 1, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, generate(generator, 4, seed=0))


def test_generators_are_small():
    sizes = [(WEIGHTS_DIR / f"gan_{name}.pt").stat().st_size for name in PRETRAINED]
    assert all(0 < s < 5e6 for s in sizes), [f"{s / 1e6:.1f} MB" for s in sizes]


def test_unknown_generator_is_refused():
    with pytest.raises(ValueError, match="brain"):
        pretrained_generator("chest")


@pytest.mark.parametrize("name", PRETRAINED)
def test_recorded_scores_are_reproduced(name):
    meta = load_meta(f"gan_{name}")
    generator, _ = pretrained_generator(name)
    train, heldout, _ = load_gan_dataset(name)
    scores = score_samples(lambda n, s: generate(generator, n, seed=s), train, heldout)
    recorded = meta["scores"]
    assert scores["n_heldout"] == recorded["n_heldout"] == len(heldout)
    for key in SCORES:
        tol = 0.02 if key in ("precision", "recall") else 1e-3  # counts vs continuous values
        assert scores[key] == pytest.approx(recorded[key], rel=tol, abs=tol), key
