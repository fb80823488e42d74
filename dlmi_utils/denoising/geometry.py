"""The geometry of a CNN's layers and its receptive field: how many input pixels one output
pixel depends on.

For a chain of convolutions (kernel ``k_l``, dilation ``d_l``, stride ``s_l``)

    r = 1 + sum_l (k_l - 1) d_l prod_{m < l} s_m

so every 3x3 layer adds ``2 d`` pixels: ``1 + 2 * 17 = 35`` for DnCNN-17 and
``1 + 2 * (1+2+3+4+3+2+1) = 33`` for the dilated net. :func:`receptive_field` follows the
layers of a model (convolutions, pooling, pixel (un)shuffles, transposed convolutions) and
:func:`layer_geometry` gives one layer's ``(kernel, dilation, stride, padding)``; the tiling
of :mod:`dlmi_utils.denoising.tiling` sizes its overlaps with them.
"""

from __future__ import annotations

import numpy as np
from torch import nn


def _pair(v: int | tuple[int, ...]) -> int:
    """The vertical entry of a kernel size / dilation / stride (square kernels assumed)."""
    return int(v[0]) if isinstance(v, tuple) else int(v)


_WINDOW_LAYERS = (nn.PixelUnshuffle, nn.PixelShuffle, nn.Conv2d, nn.ConvTranspose2d,
                  nn.MaxPool2d, nn.AvgPool2d)


def layer_geometry(m: nn.Module) -> tuple[int, int, int, int]:
    """``(kernel, dilation, stride, padding)`` of a layer along the rows (square assumed); a
    pixel (un)shuffle by ``s`` is a kernel ``s`` of stride ``s``."""
    if isinstance(m, nn.PixelUnshuffle):
        return int(m.downscale_factor), 1, int(m.downscale_factor), 0
    if isinstance(m, nn.PixelShuffle):
        return int(m.upscale_factor), 1, int(m.upscale_factor), 0
    k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
    d = _pair(getattr(m, "dilation", 1))
    pad = m.padding
    if isinstance(pad, str):  # "same" / "valid"
        pad = (k - 1) * d // 2 if pad == "same" else 0
    return k, d, s, _pair(pad)


def _widest_window(layers: list[nn.Module], n: int) -> int:
    """The widest span of the ``n`` input rows that one output row depends on, following
    each row's interval ``[lo, hi]`` of input rows through ``layers`` (zero padding depends on
    nothing)."""
    empty = np.iinfo(np.int64).max
    lo, hi = np.arange(n), np.arange(n)
    for m in layers:
        k, d, s, pad = layer_geometry(m)
        length = lo.size
        if isinstance(m, (nn.ConvTranspose2d, nn.PixelShuffle)):
            out = (length - 1) * s - 2 * pad + d * (k - 1) + 1
            if isinstance(m, nn.ConvTranspose2d):
                out += _pair(m.output_padding)
            # output u takes input i through tap t where u + pad = i s + t d
            num = np.arange(out)[:, None] + pad - np.arange(k)[None, :] * d
            idx = num // s
            valid = (num % s == 0) & (idx >= 0) & (idx < length)
        else:
            out = (length + 2 * pad - d * (k - 1) - 1) // s + 1
            idx = np.arange(out)[:, None] * s - pad + np.arange(k)[None, :] * d
            valid = (idx >= 0) & (idx < length)
        idx = np.clip(idx, 0, length - 1)
        lo = np.where(valid, lo[idx], empty).min(axis=1)
        hi = np.where(valid, hi[idx], -empty).max(axis=1)
    seen = lo != empty
    return int((hi[seen] - lo[seen]).max()) + 1


def receptive_field(model: nn.Module) -> int:
    """Side (pixels) of the receptive field of a chain of conv / pooling / pixel-shuffle
    layers: the most input pixels, along a row, that one output pixel depends on.

    Walks ``model.modules()`` in definition order, which is the order of the computation for
    the sequential networks of this module, and for :class:`ResUNetDenoiser` the order along
    its deepest path (its skips and residual branches see less; not so for a U-Net in
    general). For stride-1 layers this is ``r = 1 + sum_l (k_l - 1) d_l``, and with strides
    ``r = 1 + sum_l (k_l - 1) d_l j_l`` (``j_l`` the product of the strides before layer
    ``l``). After an upsampling (a transposed convolution) neighbouring pixels no longer see
    evenly shifted windows, so the span is found exactly, by following the interval of input
    rows of every output row of a long enough image through the layers.
    """
    layers = [m for m in model.modules() if isinstance(m, _WINDOW_LAYERS)]
    if not any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d))
               for m in layers):
        raise ValueError(f"{type(model).__name__} has no Conv2d or pooling layer")
    n = 256
    while True:  # an image 4 x the field: rows untouched by the borders set the maximum
        r = _widest_window(layers, n)
        if 4 * r <= n:
            return r
        n *= 4
