"""A random image with a disc-shaped mask: the shared input of the patch-sampling tests."""

import numpy as np


def image_and_disc(shape=(120, 90), radius=35):
    """``(image, mask)``: uniform noise ``(H, W)`` float32 and a bool disc off-centre."""
    rng = np.random.default_rng(0)
    image = rng.random(shape).astype(np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2 < radius**2
    return image, mask
