"""Real CT slices in Hounsfield units: the examples, the rescale, the refusals."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dlmi_utils.data.ct import (
    AIR_HU,
    CT_EXAMPLES,
    list_ct_examples,
    load_ct_slice,
    read_ct_slice,
)


def _decodable():
    return [e.name for e in list_ct_examples(decodable_only=True)]


def test_examples_include_a_small_slice_and_a_full_head():
    examples = {e.name: e for e in list_ct_examples()}
    assert {"ct_small", "ct_head"} <= set(_decodable())
    assert examples["ct_small"].shape == (128, 128)
    assert examples["ct_head"].shape == (512, 512)
    assert examples["ct_head"].pixel_spacing == pytest.approx((0.478516, 0.478516))
    assert set(examples) <= set(CT_EXAMPLES)


@pytest.mark.parametrize("name", _decodable())
def test_examples_load_in_hounsfield_units(name):
    example = next(e for e in list_ct_examples() if e.name == name)
    hu, spacing = load_ct_slice(name)
    assert hu.shape == example.shape and hu.dtype == np.float32
    assert spacing == example.pixel_spacing and 0.2 < spacing[0] < 1.0
    assert hu.min() >= AIR_HU and 300 < hu.max() < 4000  # bone
    soft_tissue = np.median(hu[(hu > -200) & (hu < 200)])
    assert -100 < soft_tissue < 100  # water-like tissue sits near 0 HU


def test_head_has_air_outside_and_brain_inside():
    hu, _ = load_ct_slice("ct_head")
    assert hu[5, 5] == AIR_HU  # the padding outside the field of view is read as air
    brain = hu[236:276, 236:276]
    assert 15 < np.median(brain) < 50


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = 2, -2048
    ds.save_as(tmp_path / "ct.dcm")
    stored = ds.pixel_array.astype(np.float64)
    expected = np.maximum(2 * stored - 2048, AIR_HU)
    np.testing.assert_allclose(read_ct_slice(tmp_path / "ct.dcm").hu, expected)


def test_a_slice_that_is_not_ct_is_refused():
    with pytest.raises(ValueError, match=r"not a CT image \(Modality 'MR'\)"):
        read_ct_slice(get_testdata_file("MR_small.dcm"))


@pytest.mark.parametrize("tag", ["RescaleSlope", "RescaleIntercept", "PixelSpacing"])
def test_a_slice_without_rescale_or_spacing_is_refused(tmp_path, tag):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    delattr(ds, tag)
    ds.save_as(tmp_path / "ct.dcm")
    with pytest.raises(ValueError, match=f"lacks {tag}"):
        read_ct_slice(tmp_path / "ct.dcm")


def test_unknown_example_and_missing_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown CT example 'ct_lung'"):
        load_ct_slice("ct_lung")
    with pytest.raises(FileNotFoundError, match="no DICOM file"):
        read_ct_slice(tmp_path / "missing.dcm")


def test_undecodable_example_names_the_decoder_to_install():
    missing = [e for e in list_ct_examples() if not e.decodable]
    if not missing:
        pytest.skip("every CT example is decodable here (pylibjpeg installed)")
    with pytest.raises(RuntimeError, match="no decoder.*pylibjpeg"):
        load_ct_slice(missing[0].name)
