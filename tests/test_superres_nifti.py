"""load_nifti_volume: RAS order by the affine, 1 mm resampling, [0, 1] scaling, clear errors."""

import nibabel as nib
import numpy as np
import pytest

from dlmi_utils.data import load_nifti_volume


def _save(tmp_path, data, affine, name="v.nii.gz"):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), tmp_path / name)
    return tmp_path / name


def test_axes_are_put_in_ras_order(tmp_path):
    data = np.random.default_rng(0).uniform(1, 2, size=(5, 6, 7))
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])  # stored left-to-right and anterior-to-posterior flipped
    volume, spacing = load_nifti_volume(_save(tmp_path, data, lps), spacing_mm=None)
    expected = data[::-1, ::-1] / np.percentile(data, 99.9)
    np.testing.assert_allclose(volume, np.clip(expected, 0, 1), rtol=1e-5)
    assert spacing == (1.0, 1.0, 1.0) and volume.dtype == np.float32


def test_anisotropic_voxels_are_resampled_to_1mm(tmp_path):
    data = np.ones((10, 12, 8))
    volume, spacing = load_nifti_volume(_save(tmp_path, data, np.diag([1.0, 1.0, 2.5, 1.0])))
    assert volume.shape == (10, 12, 20) and spacing == (1.0, 1.0, 1.0)
    assert 0 <= volume.min() and volume.max() == 1.0


def test_a_single_volume_4d_file_is_accepted(tmp_path):
    volume, _ = load_nifti_volume(_save(tmp_path, np.ones((4, 4, 4, 1)), np.eye(4)))
    assert volume.shape == (4, 4, 4)


def test_a_volume_without_an_affine_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no affine"):
        load_nifti_volume(_save(tmp_path, np.ones((4, 4, 4)), None))


@pytest.mark.parametrize("shape", [(16, 16), (4, 4, 4, 3)])
def test_not_one_3d_volume_is_refused(tmp_path, shape):
    with pytest.raises(ValueError, match="3-D volume"):
        load_nifti_volume(_save(tmp_path, np.ones(shape), np.eye(4)))
