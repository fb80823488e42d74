"""dlmi_utils.pretrained: every shipped record has one schema and loads in one call, every
shipped set is used by a notebook or a benchmark, and mistakes give clear errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dlmi_utils import pretrained
from dlmi_utils.denoising.models import DnCNN
from dlmi_utils.pretrained import (
    RECORD_KEYS,
    WEIGHTS_DIR,
    available,
    load_pretrained,
    load_record,
    model_class,
    save_pretrained,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = available()


def _code_of_notebooks_and_benchmarks() -> str:
    """The code cells of ``solutions/*.ipynb`` and the scripts of ``benchmarks/``."""
    parts = [p.read_text() for p in sorted((ROOT / "benchmarks").glob("*.py"))]
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        parts += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(parts)


def test_weights_and_records_come_in_pairs():
    assert SHIPPED, "no shipped weights"
    assert sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_record_has_the_schema_and_loads_in_one_call(name):
    record = load_record(name)
    assert set(RECORD_KEYS) <= set(record)
    assert isinstance(record["data"], dict) and isinstance(record["validation"], dict)
    assert record["validation"], "a record states its validation figures"
    model = load_pretrained(name)
    assert isinstance(model, model_class(record["model"])) and not model.training
    assert model.weights_name == name
    assert model.config == {**model.config, **record["model_kwargs"]}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_command_is_a_chain_of_training_scripts(name):
    """One command, runs joined with ' && ', each a script of scripts/ that exists."""
    for step in load_record(name)["command"].split(" && "):
        program, script, *_ = step.split()
        assert program == "python" and script.startswith("scripts/"), step
        assert (ROOT / script).is_file(), script


def test_every_shipped_set_is_loaded_by_a_notebook_or_a_benchmark():
    """By name in quotes, by an f-string of its prefix (``f"cascade_r{R}"``) or through a
    domain helper ``pretrained_<prefix>(...)``."""
    code = _code_of_notebooks_and_benchmarks()
    helpers = set(re.findall(r"\bpretrained_(\w+)\(", code))
    unused = []
    for name in SHIPPED:
        prefix = name.rstrip("0123456789.")
        quoted = f'"{name}"' in code or f"'{name}'" in code
        formatted = f'f"{prefix}{{' in code
        if not (quoted or formatted or name.split("_")[0] in helpers):
            unused.append(name)
    assert not unused, f"shipped but loaded by no notebook or benchmark: {unused}"


def test_unknown_name_lists_what_is_shipped_and_how_weights_are_made():
    with pytest.raises(FileNotFoundError) as err:
        load_pretrained("denoiser_sigma7")
    message = str(err.value)
    assert "'denoiser_sigma7'" in message and "noise_aware" in message and "scripts/" in message


def test_the_base_module_imports_no_domain():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, dlmi_utils.pretrained; print(sorted(m for m in "
         "sys.modules if m.startswith(('dlmi_utils.mri', 'dlmi_utils.denoising', "
         "'dlmi_utils.gan'))))"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_saved_weights_load_back_into_the_same_network(weights_dir):
    model = DnCNN(features=4, depth=3)
    path = save_pretrained("tiny", model, command="python scripts/train_denoisers.py --sigma 25",
                           data={"case": "none"}, validation={"psnr": 1.0}, sigma_8bit=25)
    assert path == weights_dir / "tiny.pt"
    record = load_record("tiny")
    assert record["model"] == "dlmi_utils.denoising.models.DnCNN"
    assert record["model_kwargs"] == json.loads(json.dumps(model.config))
    assert record["sigma_8bit"] == 25 and available() == ["tiny"]
    loaded = load_pretrained("tiny")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_saving_needs_a_config_and_keeps_the_schema_keys(weights_dir):
    common = dict(command="python scripts/x.py", data={}, validation={"psnr": 1.0})
    with pytest.raises(TypeError, match="config"):
        save_pretrained("plain", nn.Conv2d(1, 1, 3), **common)
    with pytest.raises(TypeError):
        save_pretrained("tiny", DnCNN(features=4, depth=3))  # command, data, validation
    with pytest.raises(ValueError, match="overwrite"):
        save_pretrained("tiny", DnCNN(features=4, depth=3), model_kwargs={}, **common)


def test_a_record_of_the_wrong_shape_is_a_clear_error(weights_dir):
    (weights_dir / "old.json").write_text(json.dumps({"kind": "dncnn", "model_kwargs": {}}))
    with pytest.raises(ValueError, match="lacks model, command, data, validation"):
        load_record("old")
    record = {"model": "DnCNN", "model_kwargs": {}, "command": "", "data": {}, "validation": {}}
    (weights_dir / "short.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="import path"):
        load_record("short")
    record["model"] = "dlmi_utils.denoising.models.NoSuchNet"
    (weights_dir / "gone.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="cannot import"):
        load_pretrained("gone")


def test_a_record_without_its_weights_is_a_clear_error(weights_dir):
    record = {"model": "dlmi_utils.denoising.models.DnCNN",
              "model_kwargs": {"features": 4, "depth": 3},
              "command": "python scripts/train_denoisers.py --kind dncnn --sigma 25",
              "data": {}, "validation": {"psnr": 1.0}}
    (weights_dir / "lost.json").write_text(json.dumps(record))
    with pytest.raises(FileNotFoundError, match=r"lost\.pt .*--kind dncnn --sigma 25"):
        load_pretrained("lost")
