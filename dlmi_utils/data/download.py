"""Downloads of the larger public data sets, cached once per machine (with ``pooch``).

Files go to the user cache (``pooch.os_cache("dlmi-labs")``, e.g. ``~/.cache/dlmi-labs`` on
Linux) or to the folder named by the environment variable ``DLMI_DATA_DIR``. A file put there
by hand, under the name of :data:`REGISTRY`, is used as it is: that is the way to work offline
or behind a proxy. Nothing is downloaded by the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pooch

ENV_DATA_DIR = "DLMI_DATA_DIR"


@dataclass(frozen=True)
class RemoteFile:
    """A downloadable file: its URL, its ``sha256:...`` hash (``None``: not pinned), and
    whether it is a ``.tar.gz`` archive to unpack into the folder ``extract_to``."""

    url: str
    fname: str
    known_hash: str | None
    description: str
    size: str
    extract_to: str | None = None


REGISTRY: dict[str, RemoteFile] = {
    # No checksum of all-mias.tar.gz is published by its host or pinned by any project we
    # could find, so none is pinned here: pooch then prints the SHA256 of the file it
    # downloaded, which can be added here to pin it.
    "mini-mias": RemoteFile(
        url="http://peipa.essex.ac.uk/pix/mias/all-mias.tar.gz",
        fname="all-mias.tar.gz",
        known_hash=None,
        description="mini-MIAS: 322 screening mammograms (PGM, 1024 x 1024, 200 um) + Info.txt",
        size="322 films of 1 MB once unpacked",
        extract_to="mini-mias",
    ),
}


class DownloadError(RuntimeError):
    """A data set could not be downloaded; the message says how to get it by hand."""


def data_dir() -> Path:
    """Where downloaded data live: ``$DLMI_DATA_DIR`` or the user cache of ``dlmi-labs``."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return Path(pooch.os_cache("dlmi-labs"))


def _entry(name: str) -> RemoteFile:
    if name not in REGISTRY:
        raise ValueError(f"no downloadable data set named {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def fetch(name: str, progressbar: bool = False) -> Path:
    """Download (once) the data set ``name`` of :data:`REGISTRY` and return its local path.

    For an archive, the folder it was unpacked into; otherwise the file. Raises
    :class:`DownloadError` with what to do by hand when the download fails.
    """
    entry = _entry(name)
    folder = data_dir()
    if entry.extract_to is not None and (folder / entry.extract_to).is_dir():
        if any((folder / entry.extract_to).iterdir()):
            return folder / entry.extract_to
    processor = None
    if entry.extract_to is not None:
        processor = pooch.Untar(extract_dir=entry.extract_to)
    try:
        result = pooch.retrieve(
            entry.url,
            known_hash=entry.known_hash,
            fname=entry.fname,
            path=folder,
            processor=processor,
            progressbar=progressbar,
        )
    except Exception as err:  # requests / urllib / hash errors all land here
        raise DownloadError(
            f"could not download {name} ({entry.size}) from {entry.url}: {err}. No network? "
            f"Download it by hand and put it into {folder} as {entry.fname} "
            f"(or unpack it into {folder / (entry.extract_to or '')}); set {ENV_DATA_DIR} "
            "to use another folder."
        ) from err
    if entry.extract_to is not None:
        return folder / entry.extract_to
    return Path(result)
