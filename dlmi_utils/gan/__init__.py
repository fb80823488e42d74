"""GAN synthesis: DCGAN models, the losses of the GAN game, training, data and evaluation.

- ``models``: the DCGAN generator and discriminator, latent vectors, EMA;
- ``losses``: minimax, non-saturating and Wasserstein losses, the gradient penalty;
- ``training``: one step of each player and the training loop;
- ``data``: brain slices and mammogram patches scaled to ``[-1, 1]``;
- ``evaluation``: SWD, nearest neighbours (memorisation), precision and recall.
"""

from dlmi_utils.gan import data, evaluation, losses, models, training
from dlmi_utils.gan.models import Discriminator, Generator

__all__ = [
    "Discriminator",
    "Generator",
    "data",
    "evaluation",
    "losses",
    "models",
    "training",
]
