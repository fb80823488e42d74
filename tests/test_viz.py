"""Figures: what they hold (panels, titles, colour bars) and what they refuse."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dlmi_utils.viz import (  # noqa: E402
    plot_curves,
    show_error_maps,
    show_images,
    show_kspace,
    show_mask,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_show_images_grid_titles_and_colorbars():
    rng = np.random.default_rng(0)
    imgs = [rng.random((16, 16)) for _ in range(5)]
    fig = show_images(imgs, titles=list("abcde"), ncols=3, suptitle="five")
    assert len(fig.axes) == 5 + 5  # panels and their colour bars
    assert [ax.get_title() for ax in _image_axes(fig)] == list("abcde")
    assert all(ax.get_ylabel() == "intensity (a.u.)" for ax in fig.axes if not ax.images)
    assert fig.get_suptitle() == "five"
    fig = show_images(imgs, colorbar=False)
    assert len(fig.axes) == 5


def test_show_images_takes_torch_dicts_stacks_and_complex():
    fig = show_images({"t": torch.ones(8, 8), "c": np.ones((8, 8)) * (1 + 1j)}, colorbar=False)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["t", "c |.|"]
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), np.sqrt(2), rtol=1e-6)
    assert len(show_images(np.zeros((3, 8, 8)), colorbar=False).axes) == 3


def test_show_images_refuses_bad_input():
    with pytest.raises(ValueError, match="2 titles"):
        show_images([np.zeros((4, 4))] * 3, titles=["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        show_images([np.zeros((2, 4, 4, 4))])
    with pytest.raises(ValueError, match="at least one"):
        show_images([])
    with pytest.raises(TypeError):
        show_images([object()])


def test_show_kspace_is_log_magnitude_with_labelled_axes():
    k = np.zeros((8, 8), complex)
    k[4, 4] = 100.0
    fig = show_kspace(k, title="k", scale=1.0)
    ax = fig.axes[0]
    assert ax.get_title() == "k" and "k_x" in ax.get_xlabel() and "k_y" in ax.get_ylabel()
    assert ax.images[0].get_array().max() == pytest.approx(np.log1p(100.0))
    k[:] = 2.0
    k[4, 4] = 200.0
    default = show_kspace(k).axes[0].images[0].get_array()  # scaled by the median |k| = 2
    assert default.max() == pytest.approx(np.log1p(100.0)) and default.min() == pytest.approx(
        np.log1p(1.0))
    with pytest.raises(ValueError, match="positive"):
        show_kspace(k, scale=0.0)
    assert len(show_kspace(np.ones((3, 8, 8), complex)).axes) == 6  # 3 coils + colour bars


def test_error_maps_share_one_error_scale_and_put_metric_in_titles():
    ref = np.zeros((8, 8))
    est = {"small": ref + 0.1, "large": ref + 0.5}
    fig = show_error_maps(ref, est, metric=lambda r, e: float(np.abs(r - e).mean()),
                          metric_name="MAE", metric_unit="")
    titles = [ax.get_title() for ax in fig.axes]
    assert "small\nMAE 0.10" in titles and "large\nMAE 0.50" in titles
    errs = [ax.images[0] for ax in fig.axes if ax.get_title().startswith("error of")]
    assert len(errs) == 2
    assert {im.get_clim() for im in errs} == {(0.0, 0.5)}
    assert fig.get_suptitle()


def test_error_maps_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="must match"):
        show_error_maps(np.zeros((8, 8)), {"a": np.zeros((8, 9))})
    with pytest.raises(ValueError, match="non-empty"):
        show_error_maps(np.zeros((8, 8)), {})


def test_plot_curves_lists_and_dicts_with_labels():
    fig = plot_curves({"train": [3.0, 2.0, 1.0], "val": {1: 3.5, 3: 1.5}},
                      xlabel="epoch", ylabel="L1 loss", logy=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "L1 loss"
    assert ax.get_yscale() == "log" and ax.get_title()
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["train"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["val"].get_xdata(), [1, 3])
    with pytest.raises(ValueError, match="positive"):
        plot_curves({"a": [1.0, 0.0]}, logy=True)
    with pytest.raises(ValueError, match="empty"):
        plot_curves({"a": []})


def test_show_mask_alone_and_over_an_image():
    m = np.zeros((10, 10), bool)
    m[2:5, 2:5] = True
    fig = show_mask(m, title="lesion")
    assert fig.axes[0].get_title() == "lesion (9.0 % of pixels)"
    fig = show_mask(m.astype(np.uint8), image=np.ones((10, 10)))
    assert len(fig.axes[0].images) == 2
    with pytest.raises(ValueError, match="0 and 1"):
        show_mask(np.full((4, 4), 2))
    with pytest.raises(ValueError, match="same shape"):
        show_mask(m, image=np.ones((5, 5)))
