"""Clinical DICOM examples and read_image on every supported format."""

import numpy as np
import pytest

from dlmi_utils.data import list_dicom_examples, load_dicom_example, read_dicom, read_image


def test_examples_cover_mr_ct_and_radiographs():
    examples = list_dicom_examples()
    modalities = {e.modality for e in examples if e.decodable}
    assert {"MR", "CT", "CR"} <= modalities
    assert all(len(e.shape) == 2 for e in examples)


@pytest.mark.parametrize("name", ["mr_small", "ct_small", "mr_multiframe", "ct_head_jpeg2000"])
def test_examples_load_as_unit_range_images(name):
    shape = {e.name: e.shape for e in list_dicom_examples()}[name]
    img = load_dicom_example(name)
    assert img.shape == shape and img.dtype == np.float32
    assert img.min() == 0.0 and img.max() == 1.0


def test_monochrome1_radiograph_is_inverted():
    import pydicom

    path = next(e.path for e in list_dicom_examples() if e.name == "cr_chest")
    raw = pydicom.dcmread(path).pixel_array.astype(np.float32)
    img = read_dicom(path)
    assert np.corrcoef(img.ravel()[::97], raw.ravel()[::97])[0, 1] < -0.99


def test_ct_rescale_slope_and_intercept_are_applied(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope = -1  # flips the contrast if, and only if, the slope is applied
    path = tmp_path / "ct.dcm"
    ds.save_as(path)
    np.testing.assert_allclose(read_dicom(path), 1.0 - load_dicom_example("ct_small"), atol=1e-6)


def test_undecodable_example_raises_a_clear_message():
    missing = [e for e in list_dicom_examples() if not e.decodable]
    if not missing:
        pytest.skip("every example is decodable here (pylibjpeg installed)")
    with pytest.raises(RuntimeError, match="no decoder"):
        load_dicom_example(missing[0].name)
    assert missing[0] not in list_dicom_examples(decodable_only=True)


def test_unknown_example_lists_the_available_ones():
    with pytest.raises(ValueError, match="mr_small"):
        load_dicom_example("nope")


def test_read_image_reads_png_npy_nifti_and_dicom(tmp_path):
    import nibabel as nib
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 32)).astype(np.uint8)
    expected = (img - img.min()) / float(img.max() - img.min())
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img).save(tmp_path / "a.pgm")
    np.save(tmp_path / "a.npy", img.astype(np.float64) * 3 + 1)
    vol = np.stack([img * 0, img, img * 0], axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "a.nii.gz")
    for name in ("a.png", "a.pgm", "a.npy", "a.nii.gz"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1e-6, err_msg=name)
    path = next(e.path for e in list_dicom_examples() if e.name == "mr_small")
    assert read_image(path).shape == (64, 64)


def test_read_image_refuses_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "a.xyz").write_text("x")
    with pytest.raises(ValueError, match="unknown suffix"):
        read_image(tmp_path / "a.xyz")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")
