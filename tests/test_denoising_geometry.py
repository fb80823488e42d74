"""The receptive field of a CNN: known values, strides and pooling, and the impulse response."""

import pytest
import torch
from torch import nn

from dlmi_utils.denoising.geometry import receptive_field
from dlmi_utils.denoising.models import IRCNN_DILATIONS, DilatedDenoiser, DnCNN


def _impulse_response_width(model: nn.Module, size: int = 81) -> int:
    """Side of the region of the output that changes when one input pixel changes."""
    torch.manual_seed(0)
    nn.init.normal_(model.body[-1].weight)  # the last layer starts at zero: no response yet
    model.eval()
    x = torch.rand(1, 1, size, size, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 0, size // 2, size // 2] += 1.0
    model = model.double()
    with torch.no_grad():
        diff = (model(x2) - model(x)).abs()[0, 0] > 0
    rows = torch.nonzero(diff.any(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    "model, expected",
    [
        (DnCNN(depth=17), 35),
        (DnCNN(depth=5, features=8), 11),
        (DilatedDenoiser(dilations=IRCNN_DILATIONS), 33),
        (DilatedDenoiser(dilations=(1,) * 7), 15),
        (DilatedDenoiser(dilations=(1, 2, 1)), 9),
    ],
)
def test_receptive_field_known_values(model, expected):
    assert receptive_field(model) == expected


def test_receptive_field_with_stride_and_pooling():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3),
                        nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3))
    # 1 + 2 (conv) + 1 (pool 2x2) + 2*2 + 2*2 + 2*2*2 = 20
    assert receptive_field(net) == 20


def test_receptive_field_without_convolution_is_an_error():
    with pytest.raises(ValueError, match="no Conv2d"):
        receptive_field(nn.Sequential(nn.ReLU()))


@pytest.mark.parametrize("model", [DnCNN(depth=6, features=8),
                                   DilatedDenoiser(features=8, dilations=(1, 2, 3, 2, 1)),
                                   DilatedDenoiser(features=8, dilations=(1, 1, 1, 1, 1)),
                                   DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=2),
                                   DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=3)])
def test_receptive_field_matches_impulse_response(model):
    assert _impulse_response_width(model) == receptive_field(model)
