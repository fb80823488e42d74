"""mini-MIAS: 322 digitised screening mammograms with their table of abnormalities.

Suckling et al., "The Mammographic Image Analysis Society Digital Mammogram Database",
Excerpta Medica 1069 (1994). The films were digitised at 50 um and reduced to 200 um pixels,
padded or clipped to 1024 x 1024, stored as 8-bit binary PGM (``P5``) files ``mdbNNN.pgm``.
Films come in pairs, left and right breast of one patient (``mdb001`` and ``mdb002`` ...).

``Info.txt`` has one row per abnormality (a normal film has one row ``mdbNNN T NORM``)::

    mdb001 G CIRC B 535 425 197

reference, background tissue (``F`` fatty, ``G`` fatty-glandular, ``D`` dense-glandular),
class (``CALC``, ``CIRC``, ``SPIC``, ``MISC``, ``ARCH``, ``ASYM``, ``NORM``), severity
(``B``/``M``), the centre ``x, y`` in pixels with the origin at the BOTTOM-left corner, and
the radius in pixels of a circle around it. Widely spread calcifications have no centre.

Split by patient, never by film: patient ``k`` owns films ``2k+1`` and ``2k+2``; every fifth
patient (``k % 5 == 4``) is the test set, the others train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from dlmi_utils.data.download import data_dir, fetch

MIAS_SIZE = 1024
MIAS_PIXEL_SIZE_MM = 0.2
TISSUE_TYPES = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}
ABNORMALITY_CLASSES = {
    "CALC": "calcification",
    "CIRC": "well-defined/circumscribed mass",
    "SPIC": "spiculated mass",
    "MISC": "other, ill-defined mass",
    "ARCH": "architectural distortion",
    "ASYM": "asymmetry",
    "NORM": "normal",
}


@dataclass(frozen=True)
class MiasAbnormality:
    """One row of ``Info.txt``; ``x, y`` (origin bottom-left) and ``radius`` in pixels, or
    ``None`` when the table gives none. ``row``/``col`` are the array indices of the centre."""

    kind: str
    severity: str | None = None
    x: int | None = None
    y: int | None = None
    radius: int | None = None

    @property
    def row(self) -> int | None:
        return None if self.y is None else MIAS_SIZE - 1 - self.y

    @property
    def col(self) -> int | None:
        return self.x


@dataclass
class MiasRecord:
    """A film: reference, tissue code, and its abnormalities (empty for a normal film)."""

    ref: str
    tissue: str
    abnormalities: list[MiasAbnormality] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``"normal"``, ``"benign"`` or ``"malignant"`` (malignant wins on mixed films)."""
        severities = {a.severity for a in self.abnormalities}
        if "M" in severities:
            return "malignant"
        return "benign" if self.abnormalities else "normal"

    @property
    def patient(self) -> int:
        return (int(self.ref[3:]) - 1) // 2


@dataclass
class MiasImage:
    """A loaded film: ``image`` ``(1024, 1024)`` float32 in [0, 1], its record and path."""

    image: np.ndarray
    record: MiasRecord
    path: Path


def _int_or_none(token: str | None) -> int | None:
    try:
        return int(token) if token is not None else None
    except ValueError:
        return None


def parse_mias_info(path: str | Path) -> dict[str, MiasRecord]:
    """Parse ``Info.txt`` -> ``{"mdb001": MiasRecord, ...}`` in file order.

    Lines that do not start with ``mdb`` (the header, blank lines) are skipped; a row with a
    class or tissue code outside the documented ones raises ``ValueError`` with its line.
    """
    records: dict[str, MiasRecord] = {}
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        tokens = line.split()
        if not tokens or not tokens[0].lower().startswith("mdb"):
            continue
        if len(tokens) < 3 or tokens[1] not in TISSUE_TYPES or tokens[2] not in ABNORMALITY_CLASSES:
            raise ValueError(f"{path}, line {number}: not a mini-MIAS row: {line!r}")
        ref = tokens[0].lower()
        record = records.setdefault(ref, MiasRecord(ref, tokens[1]))
        if tokens[2] == "NORM":
            continue
        severity = tokens[3] if len(tokens) > 3 and tokens[3] in ("B", "M") else None
        x, y, radius = (_int_or_none(t) for t in (tokens[4:7] + [None] * 3)[:3])
        record.abnormalities.append(MiasAbnormality(tokens[2], severity, x, y, radius))
    if not records:
        raise ValueError(
            f"{path} holds no mini-MIAS row (lines like 'mdb001 G CIRC B 535 425 197')"
        )
    return records


def read_pgm(path: str | Path) -> np.ndarray:
    """A binary (``P5``) or ASCII (``P2``) PGM file -> ``(H, W)`` uint8/uint16 array."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic not in (b"P5", b"P2"):
        raise ValueError(f"{path.name} is not a PGM file (magic {magic!r}, expected b'P5')")
    with Image.open(path) as img:
        return np.asarray(img)


def _find_root(root: Path) -> Path:
    infos = sorted(root.rglob("Info.txt"))
    if not infos:
        raise FileNotFoundError(
            f"no mini-MIAS Info.txt under {root}: unpack all-mias.tar.gz there "
            "(or call load_mini_mias(download=True))"
        )
    return infos[0].parent


def mini_mias_dir(root: str | Path | None = None, download: bool = True) -> Path:
    """The folder holding ``Info.txt`` and ``mdbNNN.pgm``: ``root``, else the data folder
    (``$DLMI_DATA_DIR/mini-mias``), downloading the archive there when allowed."""
    if root is not None:
        return _find_root(Path(root))
    local = data_dir() / "mini-mias"
    if local.is_dir() and any(local.rglob("Info.txt")):
        return _find_root(local)
    if not download:
        raise FileNotFoundError(
            f"mini-MIAS is not in {local}; call with download=True or unpack "
            "all-mias.tar.gz there by hand (see data/README.md)"
        )
    return _find_root(fetch("mini-mias"))


def load_mini_mias(
    split: str = "all",
    root: str | Path | None = None,
    refs: list[str] | None = None,
    download: bool = True,
) -> list[MiasImage]:
    """Films of mini-MIAS as :class:`MiasImage` (``(1024, 1024)`` float32 in [0, 1], 0.2 mm).

    ``split``: ``"train"``, ``"test"`` (by patient, see the module doc) or ``"all"``;
    ``refs`` picks films by reference (``["mdb001", ...]``). ``root``: a folder with
    ``Info.txt`` and the PGMs; default: the data folder, downloaded on first use.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    folder = mini_mias_dir(root, download)
    records = parse_mias_info(folder / "Info.txt")
    if refs is not None:
        missing = [r for r in refs if r.lower() not in records]
        if missing:
            raise ValueError(f"unknown mini-MIAS references {missing}")
        chosen = [records[r.lower()] for r in refs]
    else:
        chosen = list(records.values())
    if split != "all":
        chosen = [r for r in chosen if (r.patient % 5 == 4) == (split == "test")]
    out = []
    for record in chosen:
        path = folder / f"{record.ref}.pgm"
        if not path.exists():
            raise FileNotFoundError(f"{path.name} is listed in Info.txt but missing in {folder}")
        pixels = read_pgm(path)
        scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
        out.append(MiasImage(pixels.astype(np.float32) / scale, record, path))
    return out
