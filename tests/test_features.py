"""dlmi_utils.features: the course's small VGG and its named layers, the ImageNet VGG-19 path
(wired through a stand-in for torchvision, which is not installed), the frozen networks that
``feature_network`` returns; and scripts/train_feature_net.py's patches and record."""

import importlib
import importlib.util
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dlmi_utils import features as feats
from dlmi_utils import pretrained
from dlmi_utils.ct.denoising import HELDOUT_SLICE
from dlmi_utils.denoising import DnCNN
from dlmi_utils.features import (
    COURSE_CLASSES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    FeatureNet,
    ImageNetInput,
    feature_network,
    name_vgg_layers,
)
from dlmi_utils.pretrained import load_record, save_pretrained

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("train_feature_net",
                                                  ROOT / "scripts" / "train_feature_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _vgg_stack() -> list[nn.Module]:
    """Two stages of a VGG as torchvision lays them out (in-place ReLUs)."""
    return [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1),
            nn.ReLU(inplace=True), nn.MaxPool2d(2)]


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_feature_net_layers_carry_vgg_names_and_halve_the_resolution_per_stage():
    net = FeatureNet(widths=(4, 8, 8), convs_per_stage=2)
    names = [n for n, _ in net.features.named_children()]
    assert names == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
                     "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
                     "conv3_1", "relu3_1", "conv3_2", "relu3_2", "pool3"]
    x = torch.rand(2, 1, 32, 32)
    assert net(x).shape == (2, len(COURSE_CLASSES))
    assert net.features(x).shape == (2, 8, 4, 4)
    assert net.config == {"n_classes": 5, "widths": [4, 8, 8], "convs_per_stage": 2}


def test_feature_net_refuses_colour_or_too_small_images_and_bad_layouts():
    net = FeatureNet(widths=(4, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="H, W >= 4"):
        net(torch.rand(2, 1, 3, 3))
    with pytest.raises(ValueError, match="widths"):
        FeatureNet(widths=())
    with pytest.raises(ValueError, match="n_classes"):
        FeatureNet(n_classes=1)


def test_name_vgg_layers_names_stages_and_replaces_in_place_relus():
    stack = _vgg_stack()
    named = name_vgg_layers(stack)
    assert [n for n, _ in named.named_children()] == [
        "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "pool2"]
    assert named.conv2_1 is stack[5]
    assert not any(m.inplace for m in named if isinstance(m, nn.ReLU))
    with pytest.raises(ValueError, match="BatchNorm2d"):
        name_vgg_layers([nn.Conv2d(1, 1, 3), nn.BatchNorm2d(1)])


def test_imagenet_input_repeats_grey_and_normalises_each_channel():
    out = ImageNetInput()(torch.full((1, 1, 2, 2), 0.5))
    expected = (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert out.shape == (1, 3, 2, 2)
    torch.testing.assert_close(out[0, :, 0, 0], expected)


def test_imagenet_network_without_torchvision_is_a_clear_error(monkeypatch):
    real = importlib.import_module

    def no_torchvision(name, *args):
        if name.startswith("torchvision"):
            raise ImportError("No module named 'torchvision'")
        return real(name, *args)

    monkeypatch.setattr(feats.importlib, "import_module", no_torchvision)
    with pytest.raises(RuntimeError, match="needs torchvision.*feature_network\\('course'\\)"):
        feature_network("imagenet")


def _fake_torchvision(vgg19) -> types.ModuleType:
    models = types.ModuleType("torchvision.models")
    models.vgg19 = vgg19
    models.VGG19_Weights = types.SimpleNamespace(IMAGENET1K_V1="IMAGENET1K_V1")
    return models


def test_imagenet_network_reports_weights_that_cannot_be_fetched(monkeypatch):
    def offline(weights):
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(feats.importlib, "import_module", lambda name: _fake_torchvision(offline))
    with pytest.raises(RuntimeError, match="ImageNet weights.*internet"):
        feature_network("imagenet")


def test_imagenet_network_is_vgg_features_behind_the_grey_input_and_frozen(monkeypatch):
    asked = []

    def vgg19(weights):
        asked.append(weights)
        return types.SimpleNamespace(features=nn.Sequential(*_vgg_stack()))

    monkeypatch.setattr(feats.importlib, "import_module", lambda name: _fake_torchvision(vgg19))
    net = feature_network("imagenet")
    assert asked == ["IMAGENET1K_V1"]
    assert [n for n, _ in net.named_children()][:3] == ["input", "conv1_1", "relu1_1"]
    assert net.weights_name == "imagenet_vgg19" and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert net(torch.rand(2, 1, 16, 16)).shape == (2, 8, 4, 4)


def test_course_network_is_the_shipped_feature_net_frozen(weights_dir):
    model = FeatureNet(widths=(4, 8))
    save_pretrained("tiny_features", model, command="python scripts/train_feature_net.py",
                    data={}, validation={"accuracy": 0.5})
    net = feature_network("course", weights="tiny_features")
    assert net.weights_name == "tiny_features" and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(net(x), model.features(x))
    save_pretrained("tiny_dncnn", DnCNN(features=4, depth=3), command="python scripts/x.py",
                    data={}, validation={})
    with pytest.raises(ValueError, match="not a FeatureNet"):
        feature_network("course", weights="tiny_dncnn")
    with pytest.raises(ValueError, match="course.*imagenet"):
        feature_network("vgg16")


def test_training_patches_are_seeded_labelled_and_never_flat():
    script = _script()
    flat, textured = np.zeros((200, 200), np.float32), np.zeros((200, 200), np.float32)
    textured[100:] = np.random.default_rng(0).random((100, 200))
    images = {c: [flat, textured] for c in COURSE_CLASSES}
    x, y = script.draw_patches(images, 40, 16, np.random.default_rng(3))
    again, labels = script.draw_patches(images, 40, 16, np.random.default_rng(3))
    assert x.shape == (40, 1, 16, 16) and x.dtype == torch.float32
    assert torch.equal(x, again) and torch.equal(y, labels)
    assert set(y.tolist()) <= set(range(len(COURSE_CLASSES))) and len(set(y.tolist())) > 1
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert (x.flatten(1).std(dim=1) > 0.01).all(), "a flat crop was kept"


def test_the_sources_split_by_image_and_keep_the_ct_lab_held_out_slice_out():
    script = _script()
    train, val = script.CT_SOURCES["train"], script.CT_SOURCES["val"]
    assert not set(train) & set(val)
    assert HELDOUT_SLICE not in train + val


@pytest.mark.slow
def test_a_short_run_writes_a_feature_net_with_its_command_and_accuracy(weights_dir):
    argv = ["--steps", "2", "--batch-size", "4", "--val-patches", "2", "--threads", "1",
            "--widths", "4", "8", "--name", "tiny"]
    assert _script().main(argv) == 0
    record = load_record("tiny")
    assert record["command"] == "python scripts/train_feature_net.py " + " ".join(argv)
    assert record["model"] == "dlmi_utils.features.FeatureNet"
    assert record["data"]["classes"] == list(COURSE_CLASSES)
    assert 0 <= record["validation"]["accuracy"] <= 1
    assert feature_network("course", weights="tiny").weights_name == "tiny"
