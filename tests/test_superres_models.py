"""The residual network on slabs, the consistency layer and the chunked whole-volume inference."""

import numpy as np
import pytest
import torch

from dlmi_utils.pretrained import load_pretrained, load_record
from dlmi_utils.superres import (
    ConsistencyLayer,
    DeepResolve,
    ThickSliceForward,
    interpolate_z,
    score_volume,
    super_resolve,
    template_region,
)


def _random_net(factor=3, seed=0):
    torch.manual_seed(seed)
    net = DeepResolve(factor, n_layers=3, n_filters=4)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return net.eval()


def test_untrained_network_returns_the_interpolation():
    x_int = torch.rand(2, 1, 12, 5, 6)
    assert torch.equal(DeepResolve(4, n_layers=3, n_filters=8)(x_int), x_int)


def test_slabs_are_channels_and_the_layout_round_trips():
    net = _random_net(factor=3)
    x = torch.rand(1, 1, 9, 6, 6)
    out = net(x)
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="multiple of the factor"):
        net(torch.rand(1, 1, 10, 6, 6))
    with pytest.raises(ValueError, match=r"\(B, 1, Z, Y, X\)"):
        net(torch.rand(10, 6, 6))


def test_consistency_layer_makes_the_output_agree_with_the_data():
    physics = ThickSliceForward(4, "gaussian")
    y = torch.rand(2, 1, 5, 4, 4)
    x_sr = torch.rand(2, 1, 20, 4, 4)
    x_dc = ConsistencyLayer(physics)(x_sr, y)
    torch.testing.assert_close(physics.A(x_dc), y)


def test_chunked_inference_matches_one_pass_and_is_consistent_on_demand():
    net = _random_net(factor=3, seed=1)
    rng = np.random.default_rng(0)
    y = np.zeros((6, 30, 20), np.float32)
    y[:, 5:25, 3:17] = rng.uniform(size=(6, 20, 14))
    with torch.no_grad():
        whole = net(torch.from_numpy(interpolate_z(y, 3, "cubic", axis=0))[None, None])[0, 0]
    box = (slice(5, 25), slice(3, 17))  # where the data are: exact there, whatever the chunks
    chunked = super_resolve(net, y, chunk=7)
    np.testing.assert_allclose(chunked[:, box[0], box[1]], whole.numpy()[:, box[0], box[1]],
                               atol=1e-5)
    physics = ThickSliceForward(3, axis=0)
    np.testing.assert_allclose(physics.A(super_resolve(net, y, consistent=True)), y, atol=1e-5)
    with pytest.raises(ValueError, match="factor"):
        super_resolve(net, y, physics=ThickSliceForward(4, axis=0))


@pytest.mark.slow
def test_shipped_network_beats_cubic_on_the_validation_region():
    net = load_pretrained("deepresolve_x4")
    record = load_record("deepresolve_x4")
    x = template_region("val", 4)
    physics = ThickSliceForward(4, axis=0)
    y = physics.A(x)
    cubic = score_volume(x, interpolate_z(y, 4, "cubic", axis=0), tissues=False)["psnr"]
    cnn = score_volume(x, super_resolve(net, y), tissues=False)["psnr"]
    dc = score_volume(x, super_resolve(net, y, consistent=True), tissues=False)["psnr"]
    assert cnn > cubic + 1.0 and dc >= cnn
    assert cnn == pytest.approx(record["validation"]["cnn"]["psnr"], abs=0.01)
