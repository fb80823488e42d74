"""The shipped GAN generators load in one call and reproduce the scores recorded when made."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from dlmi_utils import pretrained
from dlmi_utils.gan.data import GAN_DATASETS, load_gan_dataset
from dlmi_utils.gan.evaluation import score_samples
from dlmi_utils.gan.models import Generator
from dlmi_utils.gan.training import generate
from dlmi_utils.pretrained import WEIGHTS_DIR, load_pretrained, load_record

ROOT = Path(__file__).resolve().parents[1]
SCORES = ("swd_model", "swd_real_vs_real", "swd_pca", "nn_ratio", "precision", "recall")


@pytest.mark.parametrize("data", GAN_DATASETS)
def test_generator_loads_in_one_call_in_eval_mode(data):
    generator = load_pretrained(f"gan_{data}")
    assert isinstance(generator, Generator) and not generator.training
    record = load_record(f"gan_{data}")
    assert record["data"]["dataset"] == data
    assert record["command"].startswith(f"python scripts/train_gan.py --data {data} ")
    images = generate(generator, 4, seed=0)
    assert images.shape == (4, 1, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, generate(generator, 4, seed=0))


def test_brain_generator_is_trained_in_two_stages_the_second_on_flips_only():
    record = load_record("gan_brain")
    first, second = record["command"].split(" && ")
    assert "--init" not in first and second.endswith("--augment flips --init gan_brain")
    assert [run["augment"] for run in record["training"]["runs"]] == ["default", "flips"]


def test_generators_are_small():
    sizes = [(WEIGHTS_DIR / f"gan_{data}.pt").stat().st_size for data in GAN_DATASETS]
    assert all(0 < s < 5e6 for s in sizes), [f"{s / 1e6:.1f} MB" for s in sizes]


@pytest.mark.slow
@pytest.mark.parametrize("data", GAN_DATASETS)
def test_recorded_scores_are_reproduced(data):
    recorded = load_record(f"gan_{data}")["validation"]
    generator = load_pretrained(f"gan_{data}")
    train, heldout, _ = load_gan_dataset(data)
    scores = score_samples(lambda n, s: generate(generator, n, seed=s), train, heldout)
    assert scores["n_heldout"] == recorded["n_heldout"] == len(heldout)
    for key in SCORES:
        tol = 0.02 if key in ("precision", "recall") else 1e-3  # counts vs continuous values
        assert scores[key] == pytest.approx(recorded[key], rel=tol, abs=tol), key


@pytest.mark.slow
def test_a_run_from_a_shipped_generator_records_its_command_and_runs_after_theirs(
        tmp_path, monkeypatch):
    """``--init gan_brain``: two steps, written to a scratch weights folder; the record's
    command is gan_brain's `` && `` this one, its runs gan_brain's then this one."""
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"gan_brain{suffix}", tmp_path)
    start = load_record("gan_brain")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    spec = importlib.util.spec_from_file_location("train_gan", ROOT / "scripts" / "train_gan.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--data", "brain", "--steps", "2", "--snapshots", "1", "--threads", "1",
            "--device", "cpu", "--ngf", "16", "--ndf", "16", "--augment", "flips",
            "--init", "gan_brain"]
    assert script.main(argv) == 0
    record = load_record("gan_brain")
    assert record["command"] == (start["command"] + " && python scripts/train_gan.py "
                                 + " ".join(argv))
    assert record["training"]["runs"][:-1] == start["training"]["runs"]
    assert record["training"]["runs"][-1]["steps"] == 2
    assert set(SCORES) <= set(record["validation"])
    with pytest.raises(SystemExit, match="Generator"):
        script.main(["--data", "brain", "--ngf", "8", "--init", "gan_brain", "--no-save"])
