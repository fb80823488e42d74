"""Fixed feature networks for perceptual losses: the course's small VGG, or ImageNet's VGG-19.

A perceptual loss (:class:`dlmi_utils.losses.PerceptualLoss`) compares images through the
feature maps of a network trained for something else. Yang et al. (IEEE TMI 2018) use VGG-19
trained on ImageNet; offline there is no ImageNet, so the default is :class:`FeatureNet`, a
small VGG of our own:

- ``feature_network("course")``: the shipped weights ``feature_net``, a :class:`FeatureNet`
  trained by ``scripts/train_feature_net.py`` to tell :data:`COURSE_CLASSES` apart on 64 x 64
  patches (brain MR slices, CT slices in a soft-tissue window, mammograms, radiographs,
  photographs), the held-out accuracy in its record (``load_record("feature_net")``);
- ``feature_network("imagenet")``: VGG-19's convolutional part with its ImageNet weights,
  loaded through torchvision when it is installed and the weights can be fetched (a Colab with
  internet); otherwise a ``RuntimeError`` says so. torchvision is never a dependency.

Both return an ``nn.Sequential`` whose children carry VGG's names: ``conv{s}_{i}`` (the
``i``-th 3x3 convolution of stage ``s``), ``relu{s}_{i}`` (after its ReLU), ``pool{s}`` (2x2
max pooling, half the resolution), so a layer is named the same way in both (Yang et al.:
``relu5_4`` of VGG-19). Input: grey images ``(B, 1, H, W)`` on the [0, 1] scale, e.g. CT with a
HU window mapped linearly to [0, 1]; the ImageNet network repeats the channel and
normalises it with ImageNet's mean and SD itself (its first child, ``"input"``). The networks
are frozen (no gradient into their weights) and in eval mode; ``.weights_name`` says which one
made a figure.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from dlmi_utils.pretrained import load_pretrained

COURSE_CLASSES = ("brain_mr", "ct", "mammogram", "radiograph", "photograph")
COURSE_WEIGHTS = "feature_net"
FEATURE_NETWORKS = ("course", "imagenet")
DEFAULT_LAYERS = {"course": ("relu4_2",), "imagenet": ("relu5_4",)}
"""The deepest convolution of each network, as Yang et al.'s ``conv5_4`` of VGG-19."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureNet(nn.Module):
    """A small VGG: per stage ``convs_per_stage`` 3x3 convolutions + ReLU of ``widths[s]``
    channels, then 2x2 max pooling; a linear classifier on the global average of the last map.

    ``(B, 1, H, W)`` in [0, 1] -> logits ``(B, n_classes)``; :attr:`features` is the
    ``nn.Sequential`` of named layers (``conv1_1``, ``relu1_1``, ..., ``pool4``) that a
    perceptual loss reads. ``H, W`` at least ``2 ** len(widths)``.
    """

    def __init__(self, n_classes: int = len(COURSE_CLASSES),
                 widths: Sequence[int] = (16, 32, 64, 128), convs_per_stage: int = 2):
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive channel counts, got {widths}")
        if int(convs_per_stage) != convs_per_stage or convs_per_stage < 1:
            raise ValueError(f"convs_per_stage must be a positive integer, got {convs_per_stage}")
        if int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes}")
        self.config = dict(n_classes=int(n_classes), widths=widths,
                           convs_per_stage=int(convs_per_stage))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 1
        for s, width in enumerate(widths, start=1):
            for i in range(1, int(convs_per_stage) + 1):
                layers[f"conv{s}_{i}"] = nn.Conv2d(c_in, width, 3, padding=1)
                layers[f"relu{s}_{i}"] = nn.ReLU()
                c_in = width
            layers[f"pool{s}"] = nn.MaxPool2d(2)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Linear(c_in, int(n_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = 2 ** len(self.config["widths"])
        if x.ndim != 4 or x.shape[1] != 1 or min(x.shape[-2:]) < side:
            raise ValueError(f"FeatureNet expects grey images (B, 1, H, W) with H, W >= {side}, "
                             f"got shape {tuple(x.shape)}")
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class ImageNetInput(nn.Module):
    """Grey ``(B, 1, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` normalised as ImageNet's images
    (``(x - mean) / std`` per RGB channel), the input of torchvision's VGG-19."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expects grey images (B, 1, H, W), got shape {tuple(x.shape)}")
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std


def name_vgg_layers(layers: Sequence[nn.Module]) -> nn.Sequential:
    """VGG's layers (convolutions, ReLUs, max poolings, in order) as an ``nn.Sequential``
    named ``conv{s}_{i}``, ``relu{s}_{i}``, ``pool{s}``; in-place ReLUs become plain ones, so
    that the output of a convolution stays readable."""
    named: OrderedDict[str, nn.Module] = OrderedDict()
    stage, conv = 1, 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            conv += 1
            named[f"conv{stage}_{conv}"] = layer
        elif isinstance(layer, nn.ReLU):
            if conv == 0:
                raise ValueError("a ReLU before any convolution: not a VGG feature stack")
            named[f"relu{stage}_{conv}"] = nn.ReLU()
        elif isinstance(layer, nn.MaxPool2d):
            named[f"pool{stage}"] = layer
            stage, conv = stage + 1, 0
        else:
            raise ValueError(f"a VGG feature stack holds Conv2d, ReLU and MaxPool2d layers, got "
                             f"{type(layer).__name__}")
    return nn.Sequential(named)


def _frozen(features: nn.Sequential, name: str, device: torch.device | str) -> nn.Sequential:
    features = features.to(device).eval().requires_grad_(False)
    features.weights_name = name
    return features


def imagenet_vgg19(device: torch.device | str = "cpu") -> nn.Sequential:
    """VGG-19's convolutional part with its ImageNet weights, named layers (see the module's
    doc), preceded by :class:`ImageNetInput`; frozen, eval mode. Needs torchvision and the
    weights (downloaded once: internet, e.g. on Colab); a ``RuntimeError`` says what is
    missing."""
    try:
        models = importlib.import_module("torchvision.models")
    except ImportError as err:
        raise RuntimeError(
            "feature_network('imagenet') needs torchvision, which is not installed here (it is "
            "not a dependency of the labs): pip install torchvision, with internet for the "
            "weights (e.g. on Colab); offline, use feature_network('course')") from err
    try:
        vgg = models.vgg19(weights=models.VGG19_Weights.IMAGENET1K_V1)
    except Exception as err:  # no internet and no cached copy: an URLError, an OSError...
        raise RuntimeError(
            f"could not load VGG-19's ImageNet weights ({type(err).__name__}: {err}); they are "
            "downloaded once, with internet (e.g. on Colab); offline, use "
            "feature_network('course')") from err
    layers = [("input", ImageNetInput()), *name_vgg_layers(list(vgg.features)).named_children()]
    return _frozen(nn.Sequential(OrderedDict(layers)), "imagenet_vgg19", device)


def feature_network(name: str = "course", device: torch.device | str = "cpu",
                    weights: str = COURSE_WEIGHTS) -> nn.Sequential:
    """The frozen feature network ``name`` (``"course"`` or ``"imagenet"``): an
    ``nn.Sequential`` of named VGG layers for :class:`dlmi_utils.losses.PerceptualLoss`
    (layers :data:`DEFAULT_LAYERS`), input ``(B, 1, H, W)`` in [0, 1]. ``weights``: the
    shipped :class:`FeatureNet` that ``"course"`` loads."""
    if name == "course":
        model = load_pretrained(weights)
        if not isinstance(model, FeatureNet):
            raise ValueError(f"{weights!r} holds a {type(model).__name__}, not a FeatureNet")
        return _frozen(model.features, weights, device)
    if name == "imagenet":
        return imagenet_vgg19(device)
    raise ValueError(f"feature network must be one of {FEATURE_NETWORKS}, got {name!r}")
