"""Super-resolution through the plane: thin MR slices from thick ones (Lab 07).

- ``physics``: :class:`ThickSliceForward` (``A``: a slice profile integrated along ``z`` and
  sampled every ``factor`` slices; ``A_adjoint``; ``project``, the consistency projection),
  :func:`slice_profile`, :func:`slice_centres`;
- ``interpolation``: :func:`interpolate_z` (nearest, linear, cubic B-spline, each thick slice
  at its centre), :func:`tv_z` (TV along ``z`` with the operator);
- ``models``: :class:`DeepResolve` (residual CNN on the cubic interpolation),
  :class:`ConsistencyLayer`, :func:`super_resolve` (a whole volume, chunked);
- ``tissue``: CSF / GM / WM maps by a documented rule (:func:`tissue_labels`), their Dice
  and HD95 (:func:`tissue_scores`), :func:`brain_mask`;
- ``evaluation``: volumes as ``(Z, Y, X)`` (:func:`to_zyx`, :func:`orthogonal_views`), the
  template's training and held-out regions (:func:`template_regions`,
  :func:`template_region`), :func:`score_volume`;
- ``training``: :class:`PatchSampler` (augmented patches of the training region),
  :func:`train_steps` (the recipe of ``scripts/train_superres.py``).
"""

from dlmi_utils.superres.evaluation import (
    crop_to_slabs,
    orthogonal_views,
    score_volume,
    template_region,
    template_regions,
    to_zyx,
)
from dlmi_utils.superres.interpolation import (
    interpolate_z,
    interpolation_matrix,
    thin_coordinates,
    tv_z,
)
from dlmi_utils.superres.models import ConsistencyLayer, DeepResolve, super_resolve
from dlmi_utils.superres.physics import ThickSliceForward, slice_centres, slice_profile
from dlmi_utils.superres.tissue import brain_mask, tissue_labels, tissue_scores, tissue_thresholds
from dlmi_utils.superres.training import PatchSampler, train_steps

__all__ = [
    "ConsistencyLayer",
    "DeepResolve",
    "PatchSampler",
    "ThickSliceForward",
    "brain_mask",
    "crop_to_slabs",
    "interpolate_z",
    "interpolation_matrix",
    "orthogonal_views",
    "score_volume",
    "slice_centres",
    "slice_profile",
    "super_resolve",
    "template_region",
    "template_regions",
    "thin_coordinates",
    "tissue_labels",
    "tissue_scores",
    "tissue_thresholds",
    "to_zyx",
    "train_steps",
    "tv_z",
]
