"""pytest set-up shared by the unit tests (tests/) and nbval (solutions/)."""

import os

import matplotlib

# The executed solutions store their figures as inline display data (image/png + text/plain).
# A kernel started with MPLBACKEND=Agg shows no figure at all, and nbval would report every
# figure cell as changed: the kernels must get Jupyter's inline backend, so the variable goes
# before nbval starts them. This process itself draws off-screen.
os.environ.pop("MPLBACKEND", None)
matplotlib.use("Agg")
