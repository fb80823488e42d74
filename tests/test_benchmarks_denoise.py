"""``benchmarks/denoise.py``: its JSON (method, then noise condition), scores that obey the
noise's theory on a smooth image, Lab 04's evaluation crops, and clear errors on bad input."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from dlmi_utils.data import load_mammograms
from dlmi_utils.denoising.patches import FILM_BORDER_MARGIN
from dlmi_utils.noise import TransmissionNoise
from dlmi_utils.patches import window_fraction

pytest.importorskip("bm3d")

ROOT = Path(__file__).resolve().parents[1]
SCORES = {"psnr", "ssim", "seconds"}
FAST = ["noisy", "nlm", "noise_aware"]


def _bench():
    spec = importlib.util.spec_from_file_location("denoise_bench", ROOT / "benchmarks/denoise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def smooth_image(tmp_path_factory) -> Path:
    """A smooth 96 x 96 image spanning [0, 1] (``read_image`` rescales to that range)."""
    yy, xx = np.mgrid[:96, :96]
    image = 0.5 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    path = tmp_path_factory.mktemp("images") / "smooth.npy"
    np.save(path, image.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def every_method_s25(bench, smooth_image, tmp_path_factory):
    """All five methods at sigma 25 on the smooth image: the results, the JSON, stdout."""
    out = tmp_path_factory.mktemp("json") / "denoise.json"
    results = bench.main(["--image", str(smooth_image), "--sigma", "25", "--threads", "1",
                          "--json", str(out)])
    return results, json.loads(out.read_text())


def test_json_is_keyed_by_method_then_sigma(every_method_s25):
    results, written = every_method_s25
    assert written == results
    assert list(written) == ["noisy", "nlm", "bm3d", "noise_aware", "sure"]
    for name, by_sigma in written.items():
        assert list(by_sigma) == ["25"], name
        scores = by_sigma["25"]
        assert set(scores) == SCORES and all(isinstance(v, float) for v in scores.values())
        assert -1 <= scores["ssim"] <= 1 and scores["seconds"] >= 0, name
    assert written["noisy"]["25"]["seconds"] == 0.0
    assert all(written[name]["25"]["seconds"] > 0 for name in ("nlm", "bm3d", "noise_aware"))


def test_noisy_psnr_is_that_of_the_noise_and_every_denoiser_is_above_it(every_method_s25):
    results, _ = every_method_s25
    noisy = results["noisy"]["25"]["psnr"]
    # unclipped white noise of std 25 / 255: PSNR = 20 log10(255 / 25) = 20.17 dB
    assert noisy == pytest.approx(20 * np.log10(255 / 25), abs=0.2)
    for name in ("nlm", "bm3d", "noise_aware", "sure"):
        assert results[name]["25"]["psnr"] > noisy + 5, name
        assert results[name]["25"]["ssim"] > results["noisy"]["25"]["ssim"], name


def test_the_table_and_the_header_are_printed(bench, smooth_image, capsys):
    bench.main(["--image", str(smooth_image), "--sigma", "25", "--methods", "noisy", "bm3d",
                "noise_aware", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.startswith("# ") and "commit " in out and "cores (load " in out
    assert "smooth.npy (whole image)" in out and "sigma = 25 / 255" in out
    assert "| noise_aware" in out and "| sigma 25: PSNR / SSIM / s" in out
    assert "x faster than BM3D" in out and "| nlm" not in out


def test_each_sigma_draws_the_same_noise_scaled(bench, smooth_image):
    """One seeded draw per image: sigma 15 and 25 are the same normals, so the noisy PSNRs
    differ by exactly 20 log10(25 / 15) dB."""
    results = bench.main(["--image", str(smooth_image), "--sigma", "15", "--sigma", "25",
                          "--methods", "noisy", "noise_aware", "--threads", "1"])
    assert list(results["noisy"]) == ["15", "25"]
    gap = results["noisy"]["15"]["psnr"] - results["noisy"]["25"]["psnr"]
    assert gap == pytest.approx(20 * np.log10(25 / 15), abs=1e-6)
    # the noise-aware net is told the level: less noise, a better estimate
    assert results["noise_aware"]["15"]["psnr"] > results["noise_aware"]["25"]["psnr"]


def test_transmission_noise_runs_every_method_through_the_vst(bench, smooth_image):
    results = bench.main(["--image", str(smooth_image), "--photons", "500", "--methods", *FAST,
                          "bm3d", "--threads", "1"])
    assert all(list(by_key) == ["photons500"] for by_key in results.values())
    # the noise std of the display image is about sqrt(exp(3 x) / N0) / 3 (delta method)
    from dlmi_utils.data import read_image

    x = read_image(smooth_image)
    expected = -10 * np.log10(np.mean(TransmissionNoise(500).std(x) ** 2))
    noisy = results["noisy"]["photons500"]["psnr"]
    assert noisy == pytest.approx(expected, abs=0.3)
    for name in ("nlm", "bm3d", "noise_aware"):
        assert results[name]["photons500"]["psnr"] > noisy + 3, name


def test_default_images_are_lab_04s_crops_inside_the_breast_away_from_the_film_edge(bench):
    crops, names = bench.held_out_crops()
    assert len(crops) == 16 and all(c.shape == (128, 128) for c in crops)
    by_view = {m.view: m for m in load_mammograms("test")}
    assert sorted({n.split()[0] for n in names}) == sorted(by_view)
    for crop, name in zip(crops, names, strict=True):
        view, corner = name.split(" ", 1)
        r, c = (int(v) for v in corner.strip("()").split(","))
        m = by_view[view]
        h, w = m.image.shape
        assert FILM_BORDER_MARGIN <= r and r + 128 <= h - FILM_BORDER_MARGIN, name
        assert FILM_BORDER_MARGIN <= c and c + 128 <= w - FILM_BORDER_MARGIN, name
        assert window_fraction(m.breast_mask, 128)[r, c] == pytest.approx(1.0), name
        np.testing.assert_array_equal(crop, m.image[r : r + 128, c : c + 128])


def test_radiograph_replaces_the_crops_by_the_whole_held_out_leg(bench, capsys):
    results = bench.main(["--radiograph", "cr_leg", "--sigma", "25", "--methods", "noisy"])
    assert "held-out radiograph cr_leg, 586 x 586 (whole image)" in capsys.readouterr().out
    assert results["noisy"]["25"]["psnr"] == pytest.approx(20 * np.log10(255 / 25), abs=0.05)


@pytest.mark.parametrize(("argv", "message"), [
    (["--sigma", "0"], "--sigma must be an 8-bit level in (0, 100], got 0"),
    (["--sigma", "25", "--sigma", "101"], "--sigma must be an 8-bit level in (0, 100], got 101"),
    (["--photons", "-3"], "--photons must be a positive number of photons, got -3"),
    (["--radiograph", "cr_chest"], "--radiograph cr_chest: not a held-out radiograph; those "
                                   "are cr_leg"),
    (["--crop", "64"], "--crop applies to --image / --radiograph"),
    (["--methods", "wiener"], "invalid choice: 'wiener'"),
])
def test_bad_options_are_clear_errors(bench, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros(64, np.float32), "is not a 2-D image"),
    (np.zeros((2, 2, 64, 64), np.float32), "is not a 2-D image"),
    (np.where(np.eye(64) > 0, np.nan, 0.5).astype(np.float32), "NaN"),
    (np.random.default_rng(0).random((16, 64)).astype(np.float32), "too small"),
])
def test_bad_images_are_clear_errors(bench, tmp_path, capsys, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--image", str(path), "--sigma", "25", "--methods", "noisy"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"--image {path}" in err and message in err


def test_check_image_names_what_is_wrong(bench):
    with pytest.raises(ValueError, match=r"2-D images \(H, W\), got shape \(3, 40, 40\)"):
        bench.check_image(np.zeros((3, 40, 40)), "x")
    with pytest.raises(ValueError, match="NaN or infinite"):
        bench.check_image(np.full((40, 40), np.inf), "x")
    assert bench.check_image(np.zeros((40, 40), np.float64), "x").dtype == np.float32
