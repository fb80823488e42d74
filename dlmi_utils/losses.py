"""Training losses in torch: pixel losses, (MS-)SSIM losses and soft Dice losses.

Image losses take ``x`` (the network output) and ``target``, both ``(B, C, H, W)`` float on any
device, and return a scalar (``reduction="mean"``) or one value per image (``"none"``):

- ``L1Loss``: ``mean |x - target|``;  ``L2Loss``: ``mean |x - target|^2`` (the MSE); these two
  take any batch ``(B, ...)``, real or complex (complex reconstructions are compared as such)
- ``SSIMLoss``: ``1 - SSIM`` with the Gaussian window of Wang et al. 2004 (11 pixels,
  sigma 1.5, ``K1 = 0.01, K2 = 0.03``, population covariance): the same numbers as
  ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)`` and as ``dlmi_utils.metrics.ssim(..., gaussian_weights=True)``
- ``MSSSIMLoss``: ``1 - MS-SSIM`` (Wang et al. 2003), SSIM over 5 scales halved by 2x2 averaging
- ``MixL1MSSSIMLoss``: ``alpha (1 - MS-SSIM) + (1 - alpha) G * |x - target| / data_range``
  (Zhao et al. 2017, ``alpha = 0.84``)

Self-supervised loss, which needs no clean target:

- ``mc_sure_loss(denoise, y, sigma)``: Stein's unbiased risk estimate of the MSE of a denoiser
  on white Gaussian noise of known std, with the Monte-Carlo divergence of Ramani et al. 2008
  (the loss of Soltanayev & Chun 2018 for training on noisy images only)

A feature loss, for images a fixed network has learned to read:

- ``PerceptualLoss(features, layers)``: the MSE between feature maps of a frozen network
  (Johnson et al. 2016; the perceptual loss of Yang et al. 2018's WGAN-VGG)

Segmentation losses take class probabilities ``(B, C, H, W)`` (after softmax or sigmoid) and a
target of the same shape (one-hot) or integer labels ``(B, H, W)``:

- ``DiceLoss``: ``1 - mean_c (2 sum p t + eps) / (sum p + sum t + eps)`` (soft Dice)
- ``GeneralizedDiceLoss``: Sudre et al. 2017, classes weighted by ``1 / volume^2``

Each loss has a functional twin (``ssim``, ``ms_ssim``, ``dice_loss``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality assessment"
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2 = 0.01, 0.03

DataRange = float | torch.Tensor


# ----------------------------------------------------------------------------- checks
def _check_pair(x: torch.Tensor, target: torch.Tensor, name: str, pixelwise: bool = False) -> None:
    """Two tensors of one shape: real ``(B, C, H, W)`` images, or for a ``pixelwise`` loss any
    batch ``(B, ...)``, real or complex."""
    for t, what in ((x, "x"), (target, "target")):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: {what} must be a torch tensor, got {type(t).__name__}")
        if pixelwise and not (t.is_floating_point() or t.is_complex()):
            raise TypeError(f"{name}: {what} must be a float or complex tensor, got {t.dtype}")
        if not pixelwise and (t.is_complex() or not t.is_floating_point()):
            raise TypeError(
                f"{name}: {what} must be a real float tensor, got {t.dtype}; for a complex image "
                "use its magnitude (x.abs()) or its real/imaginary channels"
            )
    if pixelwise and x.ndim < 2:
        raise ValueError(f"{name}: expects a batch (B, ...) of images, got shape {tuple(x.shape)}")
    if not pixelwise and x.ndim != 4:
        raise ValueError(f"{name}: expects (B, C, H, W) tensors, got shape {tuple(x.shape)}")
    if x.shape != target.shape:
        raise ValueError(
            f"{name}: x and target must have the same shape, got {tuple(x.shape)} and "
            f"{tuple(target.shape)} (a missing channel axis? use x.unsqueeze(1))"
        )


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "none":
        return per_image
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _data_range(data_range: DataRange, x: torch.Tensor) -> torch.Tensor:
    """``data_range`` as a tensor broadcastable to ``(B, 1, 1, 1)``."""
    dr = torch.as_tensor(data_range, dtype=x.dtype, device=x.device)
    if dr.ndim == 1:
        if dr.numel() != x.shape[0]:
            raise ValueError(
                f"data_range has {dr.numel()} values for a batch of {x.shape[0]} images"
            )
        dr = dr.view(-1, 1, 1, 1)
    elif dr.ndim != 0:
        raise ValueError("data_range must be a number or a (B,) tensor")
    if bool((dr <= 0).any()):
        raise ValueError("data_range must be positive (1.0 for images in [0, 1])")
    return dr


# ----------------------------------------------------------------------------- pixel losses
def _pixel_loss(error: torch.Tensor, reduction: str) -> torch.Tensor:
    """``error`` ``(B, ...)`` per pixel -> its mean over everything, or one mean per image."""
    if reduction == "mean":
        return error.mean()
    return _reduce(error.flatten(1).mean(dim=1), reduction)


class L1Loss(nn.Module):
    """Mean absolute error ``mean |x - target|`` of a batch ``(B, ...)``, real or complex
    (the modulus of the complex difference: MR images are compared as complex images)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(x, target, "L1Loss", pixelwise=True)
        return _pixel_loss((x - target).abs(), self.reduction)


class L2Loss(nn.Module):
    """Mean squared error ``mean |x - target|^2`` (the MSE) of a batch ``(B, ...)``, real or
    complex."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(x, target, "L2Loss", pixelwise=True)
        return _pixel_loss((x - target).abs() ** 2, self.reduction)


def gaussian_window(
    size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None
) -> torch.Tensor:
    """The normalised 1D Gaussian ``(size,)``; the 2D window is its outer product."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the window size must be odd and positive, got {size}")
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _gaussian_filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of ``(B, C, H, W)``, 'valid' (windows inside the image only)."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def _ssim_and_cs(
    x: torch.Tensor, y: torch.Tensor, dr: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image and channel, each ``(B, C)``."""
    c1, c2 = (K1 * dr) ** 2, (K2 * dr) ** 2
    mu_x, mu_y = _gaussian_filter(x, g), _gaussian_filter(y, g)
    var_x = _gaussian_filter(x * x, g) - mu_x**2
    var_y = _gaussian_filter(y * y, g) - mu_y**2
    cov = _gaussian_filter(x * y, g) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def _check_size(x: torch.Tensor, win_size: int, name: str) -> None:
    if min(x.shape[-2:]) < win_size:
        raise ValueError(
            f"{name}: images of {tuple(x.shape[-2:])} pixels are smaller than the "
            f"{win_size}-pixel window; use a smaller win_size or larger images"
        )


def ssim(
    x: torch.Tensor,
    target: torch.Tensor,
    data_range: DataRange = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Differentiable SSIM of ``(B, C, H, W)`` images (mean over pixels and channels).

    ``data_range`` is the span of intensities (1.0 for images in [0, 1]), a number or a
    ``(B,)`` tensor.
    """
    _check_pair(x, target, "ssim")
    _check_size(x, win_size, "ssim")
    g = gaussian_window(win_size, sigma, x.dtype, x.device)
    value, _ = _ssim_and_cs(x, target, _data_range(data_range, x), g)
    return _reduce(value.mean(dim=1), reduction)


def ms_ssim_scales(size: int, win_size: int = 11, max_scales: int = 5) -> int:
    """How many scales an image of side ``size`` allows: the coarsest must hold the window."""
    scales = 0
    while scales < max_scales and size // 2**scales >= win_size:
        scales += 1
    return scales


def ms_ssim(
    x: torch.Tensor,
    target: torch.Tensor,
    data_range: DataRange = 1.0,
    scales: int | None = 5,
    weights: Sequence[float] | None = None,
    win_size: int = 11,
    sigma: float = 1.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003) of ``(B, C, H, W)`` images, in [0, 1].

    ``MS-SSIM = prod_{j<M} cs_j^{w_j} * ssim_M^{w_M}``: the contrast-structure term at the
    ``M - 1`` finer scales, the full SSIM at the coarsest, each image halved by 2x2 averaging.
    ``scales=None`` takes as many (up to 5) as the image allows, the weights renormalised to
    sum to 1. Negative terms are clamped to a small positive number (as in pytorch-msssim), so
    that the fractional powers stay real.
    """
    _check_pair(x, target, "ms_ssim")
    _check_size(x, win_size, "ms_ssim")
    side = min(x.shape[-2:])
    if scales is None:
        scales = ms_ssim_scales(side, win_size)
    if weights is None:
        if not 1 <= scales <= len(MS_SSIM_WEIGHTS):
            raise ValueError(
                f"ms_ssim: scales must be in 1..5 with the default weights, got {scales}"
            )
        weights = MS_SSIM_WEIGHTS[:scales]
    if len(weights) != scales:
        raise ValueError(f"ms_ssim: {len(weights)} weights for {scales} scales")
    needed = win_size * 2 ** (scales - 1)
    if side < needed:
        fit = ms_ssim_scales(side, win_size)
        raise ValueError(
            f"ms_ssim: {scales} scales with a {win_size}-pixel window need images of at least "
            f"{needed} pixels, got {tuple(x.shape[-2:])}; pass scales={fit} "
            "or scales=None (as many as fit)"
        )
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    w = w / w.sum()
    dr = _data_range(data_range, x)
    g = gaussian_window(win_size, sigma, x.dtype, x.device)
    terms = []
    for j in range(scales):
        value, cs = _ssim_and_cs(x, target, dr, g)
        terms.append(value if j == scales - 1 else cs)
        if j < scales - 1:
            x, target = F.avg_pool2d(x, 2), F.avg_pool2d(target, 2)
    stacked = torch.stack(terms, dim=-1).clamp_min(1e-6)  # (B, C, scales)
    per_channel = torch.prod(stacked**w, dim=-1)
    return _reduce(per_channel.mean(dim=1), reduction)


class SSIMLoss(nn.Module):
    """``1 - SSIM`` (Gaussian window ``win_size`` 11, ``sigma`` 1.5) of ``(B, C, H, W)`` images.

    ``data_range`` is the span of intensities of the images (1.0 for [0, 1]).
    """

    def __init__(
        self,
        data_range: float = 1.0,
        win_size: int = 11,
        sigma: float = 1.5,
        reduction: str = "mean",
    ):
        super().__init__()
        self.data_range, self.win_size, self.sigma = data_range, win_size, sigma
        self.reduction = reduction

    def forward(
        self, x: torch.Tensor, target: torch.Tensor, data_range: DataRange | None = None
    ) -> torch.Tensor:
        dr = self.data_range if data_range is None else data_range
        value = ssim(x, target, dr, self.win_size, self.sigma, reduction="none")
        return _reduce(1 - value, self.reduction)


class MSSSIMLoss(nn.Module):
    """``1 - MS-SSIM`` over ``scales`` scales (5 by default: images of 176 pixels or more;
    ``scales=None`` adapts to the image size)."""

    def __init__(
        self,
        data_range: float = 1.0,
        scales: int | None = 5,
        win_size: int = 11,
        sigma: float = 1.5,
        reduction: str = "mean",
    ):
        super().__init__()
        self.data_range, self.scales = data_range, scales
        self.win_size, self.sigma = win_size, sigma
        self.reduction = reduction

    def forward(
        self, x: torch.Tensor, target: torch.Tensor, data_range: DataRange | None = None
    ) -> torch.Tensor:
        dr = self.data_range if data_range is None else data_range
        value = ms_ssim(
            x, target, dr, self.scales, win_size=self.win_size, sigma=self.sigma, reduction="none"
        )
        return _reduce(1 - value, self.reduction)


class MixL1MSSSIMLoss(nn.Module):
    """Zhao et al. 2017: ``alpha (1 - MS-SSIM) + (1 - alpha) mean(G * |x - target|) / data_range``.

    ``G *`` is the Gaussian window of the SSIM (``win_size``, ``sigma``) over the pixels where
    it fits, so that the L1 term weighs errors as the SSIM term does; the division by
    ``data_range`` puts it on the [0, 1] scale of ``1 - MS-SSIM``. MS-SSIM keeps colours and
    structure at low contrast, L1 keeps the mean intensity: ``alpha = 0.84`` in the paper.
    """

    def __init__(
        self,
        alpha: float = 0.84,
        data_range: float = 1.0,
        scales: int | None = 5,
        win_size: int = 11,
        sigma: float = 1.5,
        reduction: str = "mean",
    ):
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.ms_ssim = MSSSIMLoss(data_range, scales, win_size, sigma, reduction="none")
        self.reduction = reduction

    def forward(
        self, x: torch.Tensor, target: torch.Tensor, data_range: DataRange | None = None
    ) -> torch.Tensor:
        dr = self.ms_ssim.data_range if data_range is None else data_range
        structural = self.ms_ssim(x, target, dr)
        g = gaussian_window(self.ms_ssim.win_size, self.ms_ssim.sigma, x.dtype, x.device)
        l1 = _gaussian_filter((x - target).abs(), g) / _data_range(dr, x)
        value = self.alpha * structural + (1 - self.alpha) * l1.mean(dim=(1, 2, 3))
        return _reduce(value, self.reduction)


# ----------------------------------------------------------------------------- Dice
def _probs_and_onehot(
    probs: torch.Tensor, target: torch.Tensor, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError(f"{name}: probs must be a float tensor (B, C, H, W) of probabilities")
    if probs.ndim < 3:
        raise ValueError(f"{name}: probs must be (B, C, H, W), got shape {tuple(probs.shape)}")
    if bool((probs.min() < 0) | (probs.max() > 1)):
        raise ValueError(
            f"{name}: probs must be probabilities in [0, 1]: apply torch.softmax(logits, dim=1) "
            "(or torch.sigmoid) to the network output first"
        )
    if target.dtype == torch.bool and target.shape == probs.shape:
        target = target.to(probs.dtype)
    if not target.is_floating_point():
        if target.shape != probs.shape[:1] + probs.shape[2:]:
            raise ValueError(
                f"{name}: integer labels must be (B, H, W) for probs {tuple(probs.shape)}, "
                f"got {tuple(target.shape)}"
            )
        if bool((target < 0).any() | (target >= probs.shape[1]).any()):
            raise ValueError(f"{name}: labels must lie in 0..{probs.shape[1] - 1}")
        target = F.one_hot(target.long(), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    elif target.shape != probs.shape:
        raise ValueError(
            f"{name}: a one-hot target must have the shape of probs {tuple(probs.shape)}, "
            f"got {tuple(target.shape)}"
        )
    return probs, target


def dice_loss(
    probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, reduction: str = "mean"
) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c (2 sum p t + eps) / (sum p + sum t + eps)`` per image.

    ``probs`` ``(B, C, H, W)`` in [0, 1]; ``target`` one-hot of the same shape or labels
    ``(B, H, W)``. ``eps`` makes a class absent from both prediction and target score 1.
    """
    probs, target = _probs_and_onehot(probs, target, "dice_loss")
    dims = tuple(range(2, probs.ndim))
    inter = (probs * target).sum(dims)
    total = probs.sum(dims) + target.sum(dims)
    dice = (2 * inter + eps) / (total + eps)  # (B, C)
    return _reduce(1 - dice.mean(dim=1), reduction)


def generalized_dice_loss(
    probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, reduction: str = "mean"
) -> torch.Tensor:
    """Generalized Dice loss (Sudre et al. 2017) per image.

    ``1 - 2 sum_c w_c sum p t / sum_c w_c sum (p + t)`` with ``w_c = 1 / (sum t_c)^2``; a class
    absent from the target gets the largest weight of the present ones (as in MONAI) instead
    of an infinite one.
    """
    probs, target = _probs_and_onehot(probs, target, "generalized_dice_loss")
    dims = tuple(range(2, probs.ndim))
    volume = target.sum(dims)  # (B, C)
    w = 1.0 / volume**2
    finite = torch.isfinite(w)
    largest = torch.where(finite, w, torch.zeros_like(w)).amax(dim=1, keepdim=True)
    w = torch.where(finite, w, torch.where(largest > 0, largest, torch.ones_like(w)))
    inter = (w * (probs * target).sum(dims)).sum(dim=1)
    total = (w * (probs.sum(dims) + volume)).sum(dim=1)
    return _reduce(1 - (2 * inter + eps) / (total + eps), reduction)


class DiceLoss(nn.Module):
    """Soft Dice loss on probabilities ``(B, C, H, W)``; see :func:`dice_loss`."""

    def __init__(self, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__()
        self.eps, self.reduction = eps, reduction

    def forward(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_loss(probs, target, self.eps, self.reduction)


class GeneralizedDiceLoss(nn.Module):
    """Generalized Dice loss on probabilities ``(B, C, H, W)``; see
    :func:`generalized_dice_loss`."""

    def __init__(self, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__()
        self.eps, self.reduction = eps, reduction

    def forward(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return generalized_dice_loss(probs, target, self.eps, self.reduction)


# ------------------------------------------------------------------------------ SURE
SURE_EPS_FRACTION = 0.01  # eps = sigma / 100


def mc_sure_loss(
    denoise: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    sigma: float | torch.Tensor,
    eps: float | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Monte-Carlo SURE of ``denoise`` at the noisy images ``y`` ``(B, C, H, W)``, noise std
    ``sigma`` (a number or ``(B,)``): an unbiased estimate of ``mean |denoise(y) - x|^2``
    that never sees the clean ``x``.

    ``SURE = |y - f(y)|^2 / N - sigma^2 + 2 sigma^2 div f(y) / N`` (Stein 1981), ``N`` pixels
    per image, with the divergence ``div f(y) = sum_i d f_i / d y_i`` estimated by one random
    probe ``b ~ N(0, I)``: ``div f(y) ~ b . (f(y + eps b) - f(y)) / eps`` (Ramani, Blu & Unser
    2008). ``eps`` defaults to ``sigma / 100``: small against the noise, the scale on which a
    denoiser bends, large against float32 rounding. Valid for white Gaussian noise of the
    given std only. ``generator`` draws ``b`` (on the CPU, as the noise functions do).
    """
    if y.ndim != 4:
        raise ValueError(
            f"mc_sure_loss expects noisy images (B, C, H, W), got shape {tuple(y.shape)}")
    sigma_t = torch.as_tensor(sigma, dtype=y.dtype, device=y.device).reshape(-1)
    if sigma_t.numel() not in (1, y.shape[0]):
        raise ValueError(f"sigma must be a number or one value per image ({y.shape[0]}), "
                         f"got {sigma_t.numel()} values")
    if not torch.isfinite(sigma_t).all() or (sigma_t <= 0).any():
        raise ValueError("SURE needs the noise std: sigma must be finite and > 0")
    sigma_t = sigma_t.expand(y.shape[0])
    if eps is None:
        eps_t = SURE_EPS_FRACTION * sigma_t
    else:
        eps_t = torch.as_tensor(eps, dtype=y.dtype, device=y.device).reshape(-1)
        eps_t = eps_t.expand(y.shape[0])
    if not (eps_t > 0).all():
        raise ValueError(f"eps must be > 0, got {eps}")
    b = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    fy = denoise(y)
    if fy.shape != y.shape:
        raise ValueError(f"the denoiser must keep the shape: got {tuple(fy.shape)} for "
                         f"{tuple(y.shape)}")
    shift = eps_t.reshape(-1, 1, 1, 1)
    divergence = (b * (denoise(y + shift * b) - fy)).flatten(1).sum(1) / eps_t
    n = y[0].numel()
    s2 = sigma_t**2
    per_image = (y - fy).flatten(1).pow(2).mean(1) - s2 + 2 * s2 * divergence / n
    return _reduce(per_image, reduction)


# ------------------------------------------------------------------------ perceptual
class PerceptualLoss(nn.Module):
    """Perceptual loss (Johnson et al. 2016): the MSE between feature maps of a fixed network.

    ``L(x, t) = sum_l w_l mean_{c,i,j} (phi_l(x) - phi_l(t))^2`` over the ``layers`` ``l``,
    ``phi_l`` the output of the child named ``l`` of ``features``: an ``nn.Sequential`` of
    named layers, e.g. :func:`dlmi_utils.features.feature_network` (``"relu4_2"`` of the
    course's network; Yang et al. 2018 use ``"relu5_4"`` of ImageNet's VGG-19). Only the
    children up to the deepest of ``layers`` run. ``weights``: one per layer, default 1.

    ``x``, ``target``: ``(B, C, H, W)`` as the network expects: for the networks of
    :mod:`dlmi_utils.features`, grey images on the [0, 1] scale (a CT image with a HU window
    mapped linearly to [0, 1]). ``features`` is frozen here (``requires_grad_(False)``, eval
    mode, kept in eval mode by ``train()``): the gradient flows into ``x`` only, and the
    target's features are computed without gradient (a reference).
    """

    def __init__(self, features: nn.Sequential, layers: Sequence[str],
                 weights: Sequence[float] | None = None, reduction: str = "mean"):
        super().__init__()
        if not isinstance(features, nn.Sequential):
            raise TypeError(f"PerceptualLoss: features must be an nn.Sequential of named layers "
                            f"(dlmi_utils.features.feature_network), got "
                            f"{type(features).__name__}")
        if isinstance(layers, str):
            layers = (layers,)
        names = [name for name, _ in features.named_children()]
        unknown = [layer for layer in layers if layer not in names]
        if not layers or unknown:
            raise ValueError(f"PerceptualLoss: layers must be names of children of features, "
                             f"got {list(layers)}; available: {names}")
        weights = [1.0] * len(layers) if weights is None else [float(w) for w in weights]
        if len(weights) != len(layers) or min(weights) < 0:
            raise ValueError(f"PerceptualLoss: one non-negative weight per layer, got {weights} "
                             f"for {list(layers)}")
        _reduce(torch.zeros(1), reduction)  # checks the reduction's name
        self.features = features.requires_grad_(False).eval()
        self.layers, self.weights, self.reduction = tuple(layers), weights, reduction
        self._depth = max(names.index(layer) for layer in self.layers) + 1

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()
        return self

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The maps ``phi_l(x)`` of :attr:`layers`, in their order."""
        maps = {}
        for name, layer in list(self.features.named_children())[: self._depth]:
            x = layer(x)
            if name in self.layers:
                maps[name] = x
        return [maps[layer] for layer in self.layers]

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(x, target, "PerceptualLoss")
        with torch.no_grad():
            reference = self.feature_maps(target)
        per_image = sum(w * (f - r).pow(2).flatten(1).mean(dim=1) for w, f, r
                        in zip(self.weights, self.feature_maps(x), reference, strict=True))
        return _reduce(per_image, self.reduction)
