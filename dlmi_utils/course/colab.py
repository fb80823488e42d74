"""Colab and Binder: the one place that knows where the student repository lives.

Students get the labs from the student release (``dlmi-labs release``, pushed to
:data:`REPOSITORY`), never from the instructor repository that holds the solutions and the
grader. Every notebook starts with the cell :func:`setup_cell_source` writes (tests check they
are identical): it does nothing locally and, on Colab only, installs this package from the
student release and reports whether a GPU is present. The badges link to the same place;
:func:`relink` rewrites older Colab and Binder links to it.
"""

from __future__ import annotations

import re
import sys

import torch

REPOSITORY = "dlmi-labs/dlmi-labs-student"  # GitHub owner/name of the student release
BRANCH = "main"
REPOSITORY_URL = f"https://github.com/{REPOSITORY}"
PIP_SPEC = f"dlmi-labs @ git+{REPOSITORY_URL}@{BRANCH}"

# a GitHub owner, name or branch (no slash); the rest of a link (the notebook path) is kept
_PART = r"[A-Za-z0-9_.-]+"
_COLAB_PREFIX = re.compile(rf"https://colab\.research\.google\.com/github/{_PART}/{_PART}/blob/{_PART}/")
_BINDER_PREFIX = re.compile(rf"https://mybinder\.org/v2/gh/{_PART}/{_PART}/{_PART}(?![A-Za-z0-9_.-])")


def colab_url(notebook_path: str) -> str:
    """The Colab link of a notebook given by its path in the repository (``labs/01_x.ipynb``)."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{notebook_path}"


def binder_url(notebook_path: str | None = None) -> str:
    """The Binder link of the repository, opening ``notebook_path`` in JupyterLab if given."""
    url = f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}"
    return url + (f"?urlpath=lab/tree/{notebook_path}" if notebook_path else "")


def colab_badge(notebook_path: str) -> str:
    """Markdown for the "Open in Colab" badge of one notebook."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(notebook_path)})"
    )


def binder_badge(notebook_path: str | None = None) -> str:
    """Markdown for the Binder badge."""
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(notebook_path)})"


def relink(text: str) -> str:
    """``text`` with every Colab and Binder link pointing at :data:`REPOSITORY` and
    :data:`BRANCH`; the notebook path of each link is kept.

    Idempotent: ``relink(relink(t)) == relink(t)``.
    """
    text = _COLAB_PREFIX.sub(
        f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/", text)
    return _BINDER_PREFIX.sub(f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}", text)


def student_install_command() -> str:
    """The one shell line that clones the student release, installs it and opens the labs."""
    folder = REPOSITORY.split("/")[1]
    return (f"git clone {REPOSITORY_URL}.git && cd {folder} && python3.11 -m venv .venv && "
            ".venv/bin/pip install -e . && .venv/bin/jupyter lab labs/")


def setup_cell_source() -> str:
    """The first code cell of every lab; self-contained since on Colab nothing is installed yet."""
    return f'''# Setup: nothing to do on your own machine; on Colab it installs the lab package.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "{PIP_SPEC}"], check=True
    )
from dlmi_utils.course.colab import report_environment

report_environment()'''


def in_colab() -> bool:
    return "google.colab" in sys.modules


def report_environment() -> str:
    """Print (and return) where the notebook runs and whether a GPU is there."""
    where = "Google Colab" if in_colab() else "a local Jupyter kernel"
    if torch.cuda.is_available():
        gpu = f"GPU: {torch.cuda.get_device_name(0)}"
    else:
        gpu = "no GPU: everything runs on the CPU (fine for these labs)"
    line = f"Running on {where}; {gpu}."
    print(line)
    return line
