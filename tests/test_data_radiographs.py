"""The radiographs of other anatomy: real DICOMs of two packages, split by image."""

import numpy as np
import pytest

from dlmi_utils.data import RADIOGRAPHS, load_radiographs
from dlmi_utils.data.dicom import list_dicom_examples, load_dicom_example


def test_the_held_out_radiograph_is_never_a_training_one():
    assert not set(RADIOGRAPHS["train"]) & set(RADIOGRAPHS["test"])
    modalities = {e.name: e.modality for e in list_dicom_examples()}
    assert {modalities[n] for n in RADIOGRAPHS["train"] + RADIOGRAPHS["test"]} <= {"CR", "DX"}


@pytest.mark.parametrize("split", ["train", "test"])
def test_radiographs_are_real_grey_images_at_a_third_of_their_detector_size(split):
    images = load_radiographs(split)
    assert set(images) == set(RADIOGRAPHS[split])
    for name, image in images.items():
        native = load_dicom_example(name)
        assert image.shape == (native.shape[0] // 3, native.shape[1] // 3)
        assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
        assert image.std() > 0.1  # anatomy, not a blank
        assert not image.flags.writeable
        assert image[0, 0] == pytest.approx(native[:3, :3].mean(), abs=1e-5)


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="split must be one of"):
        load_radiographs("val")
