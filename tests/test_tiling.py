"""Tiled inference: the tiles cover the image, the result equals one pass, memory is bounded."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dlmi_utils.denoising import DilatedDenoiser, DnCNN, ResUNetDenoiser, receptive_field
from dlmi_utils.denoising.tiling import (
    default_overlap,
    pixel_grid,
    plan_tiles,
    predict_tiled,
    tile_starts,
)


class RecordingModel(nn.Module):
    """Wraps a model and records the shape of every input it sees."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.shapes = model, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.model(x)


def _random_net(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.3)
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("size, tile, overlap", [(100, 32, 8), (64, 64, 10), (50, 80, 10),
                                                 (97, 40, 39), (300, 256, 32)])
def test_tiles_cover_the_axis_with_the_requested_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    length = min(tile, size)
    assert starts[0] == 0 and starts[-1] + length == size
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s : s + length] = True
    assert covered.all()
    gaps = np.diff(starts)
    assert (gaps <= length - overlap).all() and (gaps > 0).all()


def test_bad_overlap_is_a_clear_error():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 32, 32)
    with pytest.raises(ValueError, match="blend"):
        predict_tiled(nn.Identity(), np.zeros((8, 8)), blend="max", overlap=0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        predict_tiled(nn.Identity(), np.zeros((1, 8, 8)), overlap=0)


@pytest.mark.parametrize("make", [
    lambda: DilatedDenoiser(features=8),
    lambda: DnCNN(depth=6, features=8),
    lambda: DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=2),
])
@pytest.mark.parametrize("tile", [48, 47])
def test_crop_blend_equals_one_pass_when_overlap_covers_receptive_field(make, tile):
    model = _random_net(make())
    image = np.random.default_rng(0).random((150, 113)).astype(np.float32)
    with torch.no_grad():
        full = model(torch.from_numpy(image)[None, None])[0, 0].numpy()
    assert default_overlap(model) == receptive_field(model) - 1
    tiled = predict_tiled(model, image, tile=tile, batch_size=3)
    assert tiled.shape == image.shape
    np.testing.assert_allclose(tiled, full, atol=1e-5)


class _LayersHidden(nn.Module):
    """Calls a model whose layers ``pixel_grid`` cannot see (not a registered submodule)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self._model = [model]

    def forward(self, x):
        return self._model[0](x)


def test_unshuffled_net_needs_tiles_on_its_pixel_grid():
    model = _random_net(DilatedDenoiser(features=8, dilations=(1, 2, 1), unshuffle=2))
    assert pixel_grid(model) == 2 and pixel_grid(DnCNN(depth=3, features=4)) == 1
    image = np.random.default_rng(1).random((150, 113)).astype(np.float32)
    with torch.no_grad():
        full = model(torch.from_numpy(image)[None, None])[0, 0].numpy()
    overlap = receptive_field(model)  # wide enough; only the grid differs below
    aligned = predict_tiled(model, image, tile=47, overlap=overlap)
    np.testing.assert_allclose(aligned, full, atol=1e-5)
    # tiles of 47 with a step of 47 - 18 = 29 pixels start off the 2 x 2 grid: seams
    off_grid = predict_tiled(_LayersHidden(model), image, tile=47, overlap=overlap)
    assert np.abs(off_grid - full).max() > 1e-3


@pytest.mark.parametrize("tile", [64, 61])
def test_unet_tiles_equal_one_pass_on_its_coarsest_grid(tile):
    """A U-Net (2 x 2 unshuffle, one stride-2 level) is equivariant only to shifts of 4 px:
    tiles start on that grid and overlap by its receptive field, and equal one pass."""
    model = ResUNetDenoiser(features=(4, 8), blocks=1, unshuffle=2).eval()
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # the init zeros some of them
            nn.init.normal_(m.weight, std=0.1)
    assert pixel_grid(model) == 4 and default_overlap(model) == receptive_field(model) - 1 == 43
    image = np.random.default_rng(2).random((150, 113)).astype(np.float32)
    with torch.no_grad():
        full = model(torch.from_numpy(image)[None, None])[0, 0].numpy()
    tiled = predict_tiled(model, image, tile=tile, batch_size=3)
    np.testing.assert_allclose(tiled, full, atol=1e-5 * np.abs(full).max())
    off_grid = predict_tiled(_LayersHidden(model), image, tile=tile, overlap=43)  # grid 1: seams
    assert np.abs(off_grid - full).max() > 1e-3 * np.abs(full).max()


def test_too_small_overlap_changes_the_result():
    """The check above is not vacuous: a margin below the receptive field shows seams."""
    model = _random_net(DilatedDenoiser(features=8))
    image = np.random.default_rng(0).random((150, 113)).astype(np.float32)
    with torch.no_grad():
        full = model(torch.from_numpy(image)[None, None])[0, 0].numpy()
    tiled = predict_tiled(model, image, tile=48, overlap=4)
    assert np.abs(tiled - full).max() > 1e-3


def test_linear_blend_weights_average_to_identity():
    image = np.random.default_rng(1).random((90, 70)).astype(np.float32)
    out = predict_tiled(nn.Identity(), image, tile=32, overlap=12, blend="linear")
    np.testing.assert_allclose(out, image, rtol=1e-6)
    out = predict_tiled(nn.Identity(), image, tile=32, overlap=12, blend="crop")
    np.testing.assert_allclose(out, image, rtol=1e-6)


def test_model_never_sees_more_than_batch_size_tiles():
    model = RecordingModel(_random_net(DilatedDenoiser(features=4)))
    image = np.random.default_rng(2).random((300, 200)).astype(np.float32)
    plan = plan_tiles(image.shape, tile=64, overlap=32)
    predict_tiled(model, image, tile=64, overlap=32, batch_size=2)
    assert sum(s[0] for s in model.shapes) == plan.n_tiles
    assert max(int(np.prod(s)) for s in model.shapes) <= 2 * 64 * 64


def test_full_size_mammogram_plan_is_bounded():
    """A 4500 x 2800 film (the native CBIS-DDSM scan) in 512-pixel tiles: the network input
    is 0.1 % of the image, whatever its size."""
    plan = plan_tiles((4500, 2800), tile=512, overlap=32)
    assert plan.tile == (512, 512)
    assert plan.n_tiles == len(tile_starts(4500, 512, 32)) * len(tile_starts(2800, 512, 32))
    assert plan.n_tiles == 10 * 6
    per_tile = 512 * 512
    assert per_tile / (4500 * 2800) < 0.021


def test_restores_training_mode_and_accepts_tensors():
    model = DilatedDenoiser(features=4).train()
    out = predict_tiled(model, torch.rand(50, 50), tile=40)
    assert model.training and out.shape == (50, 50) and out.dtype == np.float32


FULL_SIZE_SCRIPT = """
import os, sys, threading, time
import numpy as np, torch
from dlmi_utils.denoising import DilatedDenoiser
from dlmi_utils.denoising.tiling import predict_tiled

def rss_mb():  # resident memory now (ru_maxrss would keep the peak of the imports)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

torch.set_num_threads(1)
y = np.load(sys.argv[1])
model = DilatedDenoiser(features=8).eval()
shapes, samples, done = [], [], threading.Event()
model.register_forward_pre_hook(lambda m, inp: shapes.append(tuple(inp[0].shape)))
def sample():
    while not done.is_set():
        samples.append(rss_mb())
        time.sleep(0.005)
before = rss_mb()
watcher = threading.Thread(target=sample)
watcher.start()
out = predict_tiled(model, y, tile=256, batch_size=1)
done.set()
watcher.join()
print(y.shape[0], y.shape[1], max(int(np.prod(s)) for s in shapes), max(samples) - before,
      int(np.isfinite(out).all()), out.shape == y.shape)
"""


def test_full_size_mammogram_denoises_in_tiles_in_bounded_memory(tmp_path):
    """A whole native CBIS-DDSM film (~4500 x 2800) through a CNN, in a fresh process: the
    network sees one 256 x 256 tile at a time and the resident memory grows by the output and
    weight images and one tile's work (~150 MB), less than one 8-channel feature map of the
    whole film (8 x H x W float32, ~380 MB; a pass without tiles holds at least two)."""
    import subprocess
    import sys

    from dlmi_utils.data import load_mammogram

    if not Path("/proc/self/statm").exists():
        pytest.skip("reads the resident memory from /proc (Linux)")

    film = load_mammogram("sfm-malign-0", "lcc", pixel_size_mm=None)  # native 0.05 mm
    path = tmp_path / "film.npy"
    np.save(path, film.image)  # the child's memory before the call: the film, torch
    done = subprocess.run([sys.executable, "-c", FULL_SIZE_SCRIPT, str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    h, w, largest, grown_mb, finite, same_shape = done.stdout.split()[-6:]
    h, w = int(h), int(w)
    assert h * w > 10e6, "the native film, not a downsampled one"
    assert int(largest) == 256 * 256
    untiled_map_mb = 8 * h * w * 4 / 2**20
    assert float(grown_mb) < untiled_map_mb, (grown_mb, untiled_map_mb)
    assert finite == "1" and same_shape == "True"
