"""Reading fastMRI ``.h5`` files (Zbontar et al., arXiv:1811.08839; Knoll et al., 2020).

One HDF5 file is one volume, with the layout of the public release:

- ``kspace``: ``(slices, coils, H, W)`` complex64 for multi-coil data, ``(slices, H, W)`` for
  single-coil (emulated) data, with the DC term at the centre: ``ifft2c(kspace)`` (centered,
  orthonormal) is the image of each coil, oversampled along the readout ``H``;
- ``reconstruction_rss`` (multi-coil) / ``reconstruction_esc`` (single-coil): the reference
  magnitude images ``(slices, 320, 320)`` float32, absent from the test and challenge sets;
- ``mask`` (test and challenge sets only): the sampled columns, ``(W,)``;
- ``ismrmrd_header``: the ISMRMRD XML header (matrix sizes, field of view, sequence);
- root attributes: ``acquisition`` (e.g. ``CORPD_FBK``), ``max``, ``norm``, ``patient_id``,
  and for undersampled sets ``acceleration`` and ``num_low_frequency``.

fastMRI is shared under a data-use agreement (https://fastmri.med.nyu.edu): nothing downloads
it here. Put the files you received in ``$DLMI_DATA_DIR/fastmri/`` (see data/README.md).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dlmi_utils.data.download import data_dir

ISMRMRD_NS = "{http://www.ismrm.org/ISMRMRD}"


@dataclass
class FastMRISlice:
    """One slice: ``kspace`` ``(coils, H, W)`` or ``(H, W)`` complex64, the reference
    ``reconstruction`` ``(h, w)`` float32 (``None`` if absent) and which one it is
    (``"rss"``/``"esc"``), the ``mask`` ``(W,)`` if stored, root ``attrs`` and the XML header.
    """

    kspace: np.ndarray
    reconstruction: np.ndarray | None
    reconstruction_kind: str | None
    attrs: dict[str, Any]
    header: str
    path: Path
    slice_index: int
    mask: np.ndarray | None = None
    matrix: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def multicoil(self) -> bool:
        return self.kspace.ndim == 3


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _header_text(f) -> str:
    if "ismrmrd_header" not in f:
        return ""
    raw = f["ismrmrd_header"][()]
    if isinstance(raw, np.ndarray):
        raw = raw.tobytes() if raw.dtype.kind in "SUV" or raw.dtype == np.uint8 else raw.item()
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def header_matrix_sizes(header: str) -> dict[str, tuple[int, int, int]]:
    """``{"encoded": (x, y, z), "recon": (x, y, z)}`` matrix sizes from an ISMRMRD header
    (fastMRI crops images to ``recon``, 320 x 320 for the knee); ``{}`` if absent."""
    if not header.strip():
        return {}
    root = ET.fromstring(header)
    out = {}
    for key, tag in (("encoded", "encodedSpace"), ("recon", "reconSpace")):
        node = root.find(f"{ISMRMRD_NS}encoding/{ISMRMRD_NS}{tag}/{ISMRMRD_NS}matrixSize")
        if node is not None:
            out[key] = tuple(int(node.find(f"{ISMRMRD_NS}{a}").text) for a in "xyz")
    return out


def _open(path: str | Path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no fastMRI file at {path}; fastMRI needs a data-use agreement: see data/README.md"
        )
    f = h5py.File(path, "r")
    if "kspace" not in f:
        f.close()
        raise ValueError(f"{path.name} is not a fastMRI file: it has no 'kspace' dataset")
    return f


def fastmri_volume_info(path: str | Path) -> dict[str, Any]:
    """What a fastMRI file holds, without reading k-space: ``num_slices``, ``kspace_shape``,
    ``multicoil``, ``reconstructions`` (names), ``has_mask``, ``attrs``, ``matrix``."""
    with _open(path) as f:
        kspace = f["kspace"]
        header = _header_text(f)
        return {
            "num_slices": int(kspace.shape[0]),
            "kspace_shape": tuple(int(s) for s in kspace.shape),
            "multicoil": kspace.ndim == 4,
            "reconstructions": sorted(k for k in f if k.startswith("reconstruction_")),
            "has_mask": "mask" in f,
            "attrs": {k: _attr(v) for k, v in f.attrs.items()},
            "matrix": header_matrix_sizes(header),
        }


def read_fastmri_slice(path: str | Path, slice_index: int) -> FastMRISlice:
    """Read slice ``slice_index`` of a fastMRI file (negative indices count from the end).

    The reference image is ``reconstruction_rss`` for multi-coil files and
    ``reconstruction_esc`` (else ``_rss``) for single-coil ones, when the file has it.
    """
    with _open(path) as f:
        kspace = f["kspace"]
        n = kspace.shape[0]
        if not -n <= slice_index < n:
            raise IndexError(f"slice {slice_index} out of range: {Path(path).name} has {n}")
        index = slice_index % n
        multicoil = kspace.ndim == 4
        order = ("rss", "esc") if multicoil else ("esc", "rss")
        kind = next((k for k in order if f"reconstruction_{k}" in f), None)
        recon = None
        if kind is not None:
            recon = np.asarray(f[f"reconstruction_{kind}"][index], dtype=np.float32)
        header = _header_text(f)
        return FastMRISlice(
            kspace=np.asarray(kspace[index]).astype(np.complex64, copy=False),
            reconstruction=recon,
            reconstruction_kind=kind,
            attrs={k: _attr(v) for k, v in f.attrs.items()},
            header=header,
            path=Path(path),
            slice_index=index,
            mask=np.asarray(f["mask"][()]) if "mask" in f else None,
            matrix=header_matrix_sizes(header),
        )


def fastmri_files(folder: str | Path | None = None) -> list[Path]:
    """The ``.h5`` files under ``folder`` (default ``$DLMI_DATA_DIR/fastmri``), sorted."""
    folder = Path(folder) if folder is not None else data_dir() / "fastmri"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no fastMRI folder at {folder}. fastMRI needs a data-use agreement: request it at "
            "https://fastmri.med.nyu.edu, then put the .h5 files there (see data/README.md)"
        )
    return sorted(folder.rglob("*.h5"))
