"""fastMRI reader on small .h5 files written in the layout of the public release."""

import h5py
import numpy as np
import pytest

from dlmi_utils.data import fastmri_files, fastmri_volume_info, read_fastmri_slice
from dlmi_utils.fourier import fft2c, ifft2c

HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <encoding>
    <encodedSpace><matrixSize><x>32</x><y>24</y><z>1</z></matrixSize></encodedSpace>
    <reconSpace><matrixSize><x>16</x><y>16</y><z>1</z></matrixSize></reconSpace>
  </encoding>
</ismrmrdHeader>"""


def _images(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _write(path, images, recon_kind, test_set=False):
    """images: (slices, coils, H, W) or (slices, H, W) complex -> a fastMRI-style file."""
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=fft2c(images))
        if not test_set:
            rec = np.sqrt((np.abs(images) ** 2).sum(axis=1)) if images.ndim == 4 else np.abs(images)
            f.create_dataset(f"reconstruction_{recon_kind}", data=rec[..., :16, :16])
        else:
            f.create_dataset("mask", data=np.array([0, 1] * (images.shape[-1] // 2), bool))
            f.attrs["acceleration"] = 4
        f.create_dataset("ismrmrd_header", data=HEADER.encode())
        f.attrs["acquisition"] = "CORPD_FBK"
        f.attrs["max"] = np.float64(0.0004)
        f.attrs["norm"] = np.float64(0.12)
        f.attrs["patient_id"] = "1a2b3c"


def test_multicoil_slice_round_trips_through_ifft2c(tmp_path):
    images = _images((3, 4, 32, 24), seed=0)
    _write(tmp_path / "file_multi.h5", images, "rss")
    s = read_fastmri_slice(tmp_path / "file_multi.h5", 1)
    assert s.multicoil and s.kspace.shape == (4, 32, 24) and s.kspace.dtype == np.complex64
    np.testing.assert_allclose(ifft2c(s.kspace), images[1], atol=1e-5)
    assert s.reconstruction_kind == "rss" and s.reconstruction.shape == (16, 16)
    expected = np.sqrt((np.abs(images[1]) ** 2).sum(axis=0))[:16, :16]
    np.testing.assert_allclose(s.reconstruction, expected, rtol=1e-5)
    assert s.attrs["acquisition"] == "CORPD_FBK" and s.attrs["patient_id"] == "1a2b3c"
    assert s.attrs["max"] == pytest.approx(0.0004)
    assert "ismrmrdHeader" in s.header
    assert s.matrix == {"encoded": (32, 24, 1), "recon": (16, 16, 1)}


def test_singlecoil_slice_with_esc_reference(tmp_path):
    images = _images((2, 32, 24), seed=1)
    _write(tmp_path / "file_single.h5", images, "esc")
    s = read_fastmri_slice(tmp_path / "file_single.h5", -1)
    assert not s.multicoil and s.kspace.shape == (32, 24) and s.slice_index == 1
    np.testing.assert_allclose(ifft2c(s.kspace), images[1], atol=1e-5)
    assert s.reconstruction_kind == "esc"


def test_test_set_file_has_mask_and_no_reference(tmp_path):
    _write(tmp_path / "file_test.h5", _images((2, 2, 32, 24), seed=2), "rss", test_set=True)
    s = read_fastmri_slice(tmp_path / "file_test.h5", 0)
    assert s.reconstruction is None and s.reconstruction_kind is None
    assert s.mask.shape == (24,) and s.attrs["acceleration"] == 4
    info = fastmri_volume_info(tmp_path / "file_test.h5")
    assert info["num_slices"] == 2 and info["kspace_shape"] == (2, 2, 32, 24)
    assert info["multicoil"] and info["has_mask"] and info["reconstructions"] == []
    assert fastmri_files(tmp_path) == [tmp_path / "file_test.h5"]


def test_bad_files_and_indices_are_reported(tmp_path):
    _write(tmp_path / "a.h5", _images((2, 32, 24), seed=3), "esc")
    with pytest.raises(IndexError, match="out of range"):
        read_fastmri_slice(tmp_path / "a.h5", 2)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f.create_dataset("image", data=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no 'kspace'"):
        read_fastmri_slice(tmp_path / "b.h5", 0)
    with pytest.raises(FileNotFoundError, match="data-use agreement"):
        read_fastmri_slice(tmp_path / "missing.h5", 0)
    with pytest.raises(FileNotFoundError, match="data-use agreement"):
        fastmri_files(tmp_path / "nowhere")
