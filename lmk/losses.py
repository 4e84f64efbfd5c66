"""Training losses for heatmaps, 1D marginal heatmaps and coordinates.

Every loss here is a plain function of tensors that first computes **one value per image**
and then reduces over the batch: ``reduction="mean"`` (default) averages the per-image values,
``"sum"`` adds them, ``"none"`` returns them as a ``(B,)`` tensor. The per-image value is
stated in each docstring, so the numbers can be checked by hand.

The small ``nn.Module`` wrappers at the end (:class:`HeatmapLoss`, :class:`ForegroundHeatmapLoss`,
:class:`MarginalLoss`, :class:`CoordinateLoss`) adapt these functions to the training loop's
contract ``loss_fn(outputs, batch) -> scalar``. Each takes the codec of its representation
(``lmk.codecs``) as its first argument and uses only the codec contract: the heatmap losses
compare the outputs with ``codec.encode(batch["landmarks"])`` (targets made on the fly, so
datasets never store heatmaps); :class:`CoordinateLoss` compares ``codec.decode(outputs)`` with
the landmarks, in input pixels as Yan et al.'s Eq. 1 is written.

Yan et al. (2020) train each refinement stage with its own loss (Sec. 4): :func:`align_loss`
(Eq. 2) compares feature-map patches cropped at the prediction and at the ground truth, and
:class:`StagedLoss` sums one named loss per stage over the estimates of a multi-stage model
(``["iod_l2", "l2", "l1", "align"]``: baseline, stages 1, 2, 3, Yan's assignment).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._backend import check_positive_int
from .geometry import resize_points
from .layouts import LAYOUT_68, Layout
from .ops import crop_patches

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_pair(pred: torch.Tensor, target: torch.Tensor, names: tuple[str, str],
                min_ndim: int, shape_doc: str) -> None:
    for name, t in zip(names, (pred, target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor {shape_doc}, got {type(t).__name__}")
        if t.ndim < min_ndim:
            raise ValueError(f"{name} must have shape {shape_doc}, got {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape {shape_doc}, "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")


def _check_points(pred: torch.Tensor, gt: torch.Tensor) -> None:
    _check_pair(pred, gt, ("pred", "gt"), 3, "(B, N, 2)")
    if pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must have shape (B, N, 2), got {tuple(pred.shape)}")


def _check_weights(weights, shape: tuple[int, int]) -> torch.Tensor | None:
    if weights is None:
        return None
    if tuple(weights.shape) != tuple(shape):
        raise ValueError(f"weights must have shape (B, N) = {tuple(shape)}, got {tuple(weights.shape)}")
    return weights


# ------------------------------------------------------------------------------ heatmaps
def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                reduction: str = "mean") -> torch.Tensor:
    """Mean squared error between 2D heatmaps (the usual heatmap-regression loss).

    Per image: ``mean over n, y, x of w_n * (H_n(x, y) - H*_n(x, y))^2``, so with the default
    ``reduction="mean"`` this equals ``torch.nn.functional.mse_loss`` when no weights are given.

    Args:
        pred: ``(B, N, H, W)`` predicted heatmaps.
        target: ``(B, N, H, W)`` target heatmaps (e.g. ``lmk.codecs.gaussian_heatmaps``).
        weights: optional ``(B, N)`` per-landmark weights (e.g. 0 for an invisible point).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_pair(pred, target, ("pred", "target"), 4, "(B, N, H, W)")
    w = _check_weights(weights, pred.shape[:2])
    per_landmark = (pred - target).pow(2).mean(dim=(-2, -1))          # (B, N)
    if w is not None:
        per_landmark = per_landmark * w
    return _reduce(per_landmark.mean(dim=1), reduction)


def marginal_loss(hx: torch.Tensor, hy: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor,
                  weights: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Yin et al. (2020), Eq. 11: squared L2 distance of the 1D heatmaps on both axes.

    Per image: ``sum_n w_n * (||h^x_n - h^x*_n||_2^2 + ||h^y_n - h^y*_n||_2^2)``, a *sum* over
    landmarks and positions exactly as in Eq. 11 (not a mean: its size grows with N and L, which
    Adam's per-parameter scaling largely absorbs). The targets are the marginals of the 2D
    Gaussian (Eq. 12, ``lmk.codecs.gaussian_marginals``).

    Args:
        hx, hy: ``(B, N, Lx)`` and ``(B, N, Ly)`` predicted 1D heatmaps on the x and y axes.
        tx, ty: targets of the same shapes.
        weights: optional ``(B, N)`` per-landmark weights.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_pair(hx, tx, ("hx", "tx"), 3, "(B, N, Lx)")
    _check_pair(hy, ty, ("hy", "ty"), 3, "(B, N, Ly)")
    if hx.shape[:-1] != hy.shape[:-1]:
        raise ValueError(f"hx and hy must share (B, N), got {tuple(hx.shape)} and {tuple(hy.shape)}")
    w = _check_weights(weights, hx.shape[:2])
    per_landmark = (hx - tx).pow(2).sum(dim=-1) + (hy - ty).pow(2).sum(dim=-1)   # (B, N)
    if w is not None:
        per_landmark = per_landmark * w
    return _reduce(per_landmark.sum(dim=1), reduction)


# --------------------------------------------------------------------------- coordinates
def inter_ocular_distance(landmarks: torch.Tensor, layout: Layout = LAYOUT_68) -> torch.Tensor:
    """Distance between the outer eye corners of ``layout`` (36 and 45 for 68 points).

    Args:
        landmarks: ``(B, N, 2)`` ground-truth landmarks.
    Returns:
        ``(B,)`` distances in the landmarks' pixel units.
    """
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2 or landmarks.shape[1] != layout.num_points:
        raise ValueError(f"landmarks must have shape (B, {layout.num_points}, 2) for layout "
                         f"{layout.name!r}, got {tuple(landmarks.shape)}")
    i, j = layout.outer_eye_corners
    return torch.linalg.vector_norm(landmarks[:, i] - landmarks[:, j], dim=-1)


def iod_l2_loss(pred: torch.Tensor, gt: torch.Tensor, iod: torch.Tensor | None = None,
                layout: Layout = LAYOUT_68, reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Eq. 1: squared error of the shape divided by the inter-ocular distance.

    Per image: ``||S_gt - S_pred||_2^2 / d = sum_n ((x_n - x*_n)^2 + (y_n - y*_n)^2) / d``.
    Note that Eq. 1 divides by ``d``, not ``d^2``: the loss is in pixels, and a face twice as
    large weighs twice as much (an image with ``d = 0`` raises, it cannot be normalised).

    Args:
        pred, gt: ``(B, N, 2)`` landmarks in pixels.
        iod: optional ``(B,)`` distances; by default computed from ``gt`` with ``layout``.
        layout: the layout that names the outer eye corners.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_points(pred, gt)
    d = inter_ocular_distance(gt, layout) if iod is None else iod
    if tuple(d.shape) != (pred.shape[0],):
        raise ValueError(f"iod must have shape (B,) = ({pred.shape[0]},), got {tuple(d.shape)}")
    if not torch.all(d > 0):
        raise ValueError(f"inter-ocular distance must be positive, got {d.detach().cpu().tolist()}")
    per_image = (pred - gt).pow(2).sum(dim=(-2, -1)) / d
    return _reduce(per_image, reduction)


def l2_loss(pred: torch.Tensor, gt: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Sec. 4.2, the "standard L2": squared Euclidean error of the shape.

    Per image: ``sum_n ((x_n - x*_n)^2 + (y_n - y*_n)^2)`` in pixels squared.

    Args:
        pred, gt: ``(B, N, 2)`` landmarks (any consistent unit).
    """
    _check_points(pred, gt)
    return _reduce((pred - gt).pow(2).sum(dim=(-2, -1)), reduction)


def l1_loss(pred: torch.Tensor, gt: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Sec. 4.2: L1 error of the shape, which weighs small errors more than L2.

    Per image: ``sum_n (|x_n - x*_n| + |y_n - y*_n|)``.

    Args:
        pred, gt: ``(B, N, 2)`` landmarks (any consistent unit).
    """
    _check_points(pred, gt)
    return _reduce((pred - gt).abs().sum(dim=(-2, -1)), reduction)


# ------------------------------------------------------------------- Yan's Align Loss
def gaussian_kernel(sigma: float, size: int = 3, dtype=None, device=None) -> torch.Tensor:
    """The ``(size, size)`` Gaussian ``G`` of Yan et al.'s Eq. 2, normalised to sum 1."""
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-r.square() / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _align_settings(patch_size, blur_sigma, blur_size) -> tuple[int, float, int]:
    patch_size = check_positive_int(patch_size, "patch_size")
    if isinstance(blur_sigma, bool) or not isinstance(blur_sigma, numbers.Real) or not blur_sigma >= 0:
        raise ValueError(f"blur_sigma must be a number >= 0 (0 switches the pre-filter off), "
                         f"got {blur_sigma!r}")
    blur_size = check_positive_int(blur_size, "blur_size")
    if blur_size % 2 == 0:
        raise ValueError(f"blur_size must be odd (a centred kernel), got {blur_size!r}")
    return patch_size, float(blur_sigma), blur_size


def align_loss(features: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor, *, patch_size: int = 8,
               blur_sigma: float = 1.0, blur_size: int = 3, feature_grad: bool = False,
               reduction: str = "mean") -> torch.Tensor:
    """Yan et al. (2020), Eq. 2, the Align Loss: squared difference of two feature-map patches.

    Per image: ``sum_{n, c, m} ((G * P_gt)_{ncm} - (G * P_pred)_{ncm})^2``, where ``P`` are the
    ``patch_size x patch_size`` bilinear crops of ``features`` (``lmk.ops.crop_patches``) centred
    at the ground truth and at the prediction, ``m`` runs over the patch pixels, ``c`` over the
    channels and ``n`` over the landmarks. The loss is zero when the patches agree, so it pulls a
    point onto the structure (an edge, a corner) it saw at the ground truth, and it is flat along
    an edge: a slip along a contour costs less than a slip across it (Yan Fig. 6 (e)).

    The pre-filter ``G`` acts on the two cropped *patches*, not on the feature map or on the
    points: a ``blur_size x blur_size`` Gaussian of std ``blur_sigma`` feature pixels (Yan Sec.
    6.6: 3 and 1), zero-padded to keep the patch size (Eq. 2 sums over the ``|P_GT|`` pixels of
    the patch). It is linear, so ``G * P_gt - G * P_pred = G * (P_gt - P_pred)``: it low-passes
    the *difference*, and fine texture counts less than coarse structure. The landscape of the
    loss over the predicted position becomes smoother with a wider basin: on a map of white
    noise the loss rises monotonically away from the ground truth for about 1 px without the
    filter and for over 2 px with it (tests/test_losses.py), which is Yan's "helps the gradient
    descent algorithm to converge". Yan remove it "once the loss stops going down", to regain
    pixel precision: ``blur_sigma=0`` switches it off (then ``blur_size`` is unused).

    Gradients reach the prediction through the crop centres (Yan Eqs. 11-15). With
    ``feature_grad=False`` (default) none reach ``features``: Yan do not say, and a loss that
    only compares two crops of the same map is also minimised by making the map flat, so here
    the features are learnt from the other stages' losses only.

    Args:
        features: ``(B, C, H, W)`` feature map the patches are cropped from.
        pred, gt: ``(B, N, 2)`` points in *feature-map* pixels (``lmk.geometry.resize_points``
            maps input pixels there).
        patch_size: patch side (Yan: 8).
        blur_sigma: std of ``G`` in feature pixels; ``0`` switches the pre-filter off.
        blur_size: side of ``G``, an odd int.
        feature_grad: let gradients reach ``features`` too.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
    """
    _check_points(pred, gt)
    if not isinstance(features, torch.Tensor) or features.ndim != 4 or features.shape[0] != pred.shape[0]:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must have shape (B, C, H, W) with B = {pred.shape[0]} like pred, "
                         f"got {shape}")
    patch_size, blur_sigma, blur_size = _align_settings(patch_size, blur_sigma, blur_size)
    maps = features if feature_grad else features.detach()
    diff = crop_patches(maps, pred, patch_size) - crop_patches(maps, gt.detach(), patch_size)
    if blur_sigma > 0:                                                   # G * (P_pred - P_gt)
        kernel = gaussian_kernel(blur_sigma, blur_size, diff.dtype, diff.device)
        flat = diff.reshape(-1, 1, patch_size, patch_size)
        diff = F.conv2d(flat, kernel[None, None], padding=blur_size // 2).view(diff.shape)
    return _reduce(diff.square().sum(dim=(1, 2, 3, 4)), reduction)


class AlignLoss(nn.Module):
    """:func:`align_loss` with its settings fixed: ``loss(features, pred, gt)``, points in
    feature-map pixels. Arguments as :func:`align_loss`."""

    def __init__(self, patch_size: int = 8, blur_sigma: float = 1.0, blur_size: int = 3,
                 feature_grad: bool = False):
        super().__init__()
        self.patch_size, self.blur_sigma, self.blur_size = _align_settings(patch_size, blur_sigma,
                                                                           blur_size)
        self.feature_grad = bool(feature_grad)

    def settings(self) -> dict:
        return {"patch_size": self.patch_size, "blur_sigma": self.blur_sigma,
                "blur_size": self.blur_size, "feature_grad": self.feature_grad}

    def forward(self, features: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return align_loss(features, pred, gt, **self.settings())


# ------------------------------------------------------- wrappers for lmk.train.fit
def _landmarks(batch: dict) -> torch.Tensor:
    if "landmarks" not in batch:
        raise KeyError(f"the batch has no 'landmarks' (B, N, 2) to make targets from; "
                       f"its keys are {sorted(batch)}")
    return batch["landmarks"]


def _encode(codec, batch: dict):
    """``codec.encode(batch["landmarks"])`` without gradients (targets are constants)."""
    with torch.no_grad():
        return codec.encode(_landmarks(batch))


class HeatmapLoss(nn.Module):
    """``loss_fn(heatmaps, batch)``: :func:`heatmap_mse` against ``codec.encode(batch["landmarks"])``.

    Args:
        codec: a 2D heatmap codec (``lmk.codecs.HeatmapCodec``): ``encode`` maps ``(B, N, 2)``
            input-pixel landmarks to ``(B, N, H, W)`` heatmaps.
        scale: constant factor on the loss (heatmap MSE values are small; Adam does not mind).
    """

    def __init__(self, codec, scale: float = 1.0):
        super().__init__()
        self.codec, self.scale = codec, float(scale)

    def forward(self, heatmaps: torch.Tensor, batch: dict) -> torch.Tensor:
        target = _encode(self.codec, batch).to(heatmaps)
        return self.scale * heatmap_mse(heatmaps, target)


class ForegroundHeatmapLoss(nn.Module):
    """``loss_fn(heatmaps, batch)``: heatmap MSE with each pixel weighted by ``1 + w * target``.

    Against small Gaussians, plain MSE starts on a plateau: all-zero heatmaps already reach
    ~95 % of the initial loss, and a small model trained for a few minutes often never leaves it.
    Up-weighting the pixels under the Gaussians (``w = 20``) keeps the minimiser (the target
    itself) but makes the peaks matter from the first step.

    Args:
        codec: a 2D heatmap codec; the targets are ``codec.encode(batch["landmarks"])``.
        foreground_weight: ``w >= 0`` (0 gives plain MSE).
    """

    def __init__(self, codec, foreground_weight: float = 20.0):
        super().__init__()
        if foreground_weight < 0:
            raise ValueError(f"foreground_weight must be >= 0, got {foreground_weight!r}")
        self.codec, self.foreground_weight = codec, float(foreground_weight)

    def forward(self, heatmaps: torch.Tensor, batch: dict) -> torch.Tensor:
        target = _encode(self.codec, batch).to(heatmaps)
        if heatmaps.shape != target.shape:
            raise ValueError(f"heatmaps {tuple(heatmaps.shape)} and targets {tuple(target.shape)} "
                             "must have the same shape (B, N, H, W)")
        weight = 1.0 + self.foreground_weight * target
        return ((heatmaps - target).square() * weight).mean()


class MarginalLoss(nn.Module):
    """``loss_fn((hx, hy), batch)``: Yin Eq. 11 against the encoded marginals (Eq. 12).

    Args:
        codec: a 1D marginal codec (``lmk.codecs.MarginalCodec``): ``encode`` maps ``(B, N, 2)``
            input-pixel landmarks to the pair ``(hx, hy)``, the same pair the model returns.
    """

    def __init__(self, codec):
        super().__init__()
        self.codec = codec

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise ValueError(f"MarginalLoss takes the pair (hx, hy) of a 1D model, "
                             f"got {type(outputs).__name__}")
        hx, hy = outputs
        tx, ty = _encode(self.codec, batch)
        return marginal_loss(hx, hy, tx.to(hx), ty.to(hy))


class CoordinateLoss(nn.Module):
    """``loss_fn(outputs, batch)``: a coordinate loss between ``codec.decode(outputs)`` and the
    landmarks, in input pixels.

    The comparison is in pixels because Yan et al.'s Eq. 1 is (it divides by the inter-ocular
    distance in pixels); for a ``CoordinateCodec`` this is the same as comparing the outputs with
    ``codec.encode(landmarks)`` with each axis scaled by half the image side. Any codec whose
    ``decode`` is differentiable fits, e.g. ``HeatmapCodec(..., method="soft_argmax")``
    (integral regression).

    Args:
        codec: the codec of the model's outputs (``lmk.codecs.CoordinateCodec`` for a
            regression head).
        kind: ``"iod_l2"`` (Yan Eq. 1), ``"l2"`` or ``"l1"``.
    """

    KINDS = {"iod_l2": iod_l2_loss, "l2": l2_loss, "l1": l1_loss}

    def __init__(self, codec, kind: str = "iod_l2"):
        super().__init__()
        if not callable(getattr(codec, "decode", None)):
            raise TypeError(f"codec must be a codec with a decode(outputs) method "
                            f"(e.g. lmk.codecs.CoordinateCodec), got {codec!r}")
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {tuple(self.KINDS)}, got {kind!r}")
        self.codec, self.kind = codec, kind

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        pred = self.codec.decode(outputs)
        return self.KINDS[self.kind](pred, _landmarks(batch).to(pred))


# ------------------------------------------------------------- Yan's multi-loss scheme
YAN_ASSIGNMENT = ("iod_l2", "l2", "l1", "align")
STAGE_LOSSES = ("iod_l2", "l2", "l1", "align", "none")


class StagedLoss(nn.Module):
    """``loss_fn(outputs, batch)``: one named loss per stage, summed (Yan et al. (2020), Sec. 4).

    Yan assign losses sensitive to large errors to the coarse stages and losses sensitive to
    small errors to the fine ones: IOD-normalised L2 (Eq. 1) for the baseline, L2 for stage 1,
    L1 for stage 2 and the Align Loss (Eq. 2) for stage 3 (:data:`YAN_ASSIGNMENT`); their
    Table 5 ablation is the same model with other lists, e.g. ``["iod_l2", "l2", "l2", "l2"]``.
    ``"none"`` gives a stage no loss (it is still computed, e.g. for evaluation).

    The total is ``sum_k weights[k] * loss_k(outputs[k], batch["landmarks"])`` with each term
    reduced by its mean over the batch; the terms have different units (pixels, pixels squared,
    squared feature values), and Yan add them unweighted.

    ``outputs`` is either the list ``[S_0, S_1, ..., S_K]`` of ``(B, N, 2)`` estimates in input
    pixels (baseline first), or, when a stage uses ``"align"``, a dict ``{"points": that list,
    "features": list of the same length}`` whose entry ``k`` is the ``(B, C, H, W)`` feature map
    stage ``k`` crops from (``None`` for other stages). Points are mapped to that map with
    ``lmk.geometry.resize_points`` from the input size ``batch["image"].shape[-2:]``.

    Args:
        losses: one name of :data:`STAGE_LOSSES` per stage.
        weights: optional one factor per stage (default 1).
        layout: the layout naming the outer eye corners for ``"iod_l2"``.
        align: the :class:`AlignLoss` used by ``"align"`` stages (default ``AlignLoss()``: 8 x 8
            patches, 3 x 3 Gaussian pre-filter of std 1, Yan Sec. 6.6). Yan drop the pre-filter
            "once the loss stops going down": continue with ``AlignLoss(blur_sigma=0)``.
    """

    FUNCTIONS = {"iod_l2": iod_l2_loss, "l2": l2_loss, "l1": l1_loss}

    def __init__(self, losses: Sequence[str] = YAN_ASSIGNMENT, weights: Sequence[float] | None = None,
                 *, layout: Layout = LAYOUT_68, align: AlignLoss | None = None):
        super().__init__()
        if isinstance(losses, str) or not isinstance(losses, Sequence) or len(losses) == 0:
            raise ValueError(f"losses must be a non-empty list of names from {STAGE_LOSSES}, one "
                             f"per stage, got {losses!r}")
        bad = [name for name in losses if name not in STAGE_LOSSES]
        if bad:
            raise ValueError(f"losses: unknown name(s) {bad}; each stage takes one of {STAGE_LOSSES}")
        weights = [1.0] * len(losses) if weights is None else [float(w) for w in weights]
        if len(weights) != len(losses):
            raise ValueError(f"weights must have one value per stage ({len(losses)}), got {len(weights)}")
        if align is not None and not isinstance(align, AlignLoss):
            raise TypeError(f"align must be an lmk.losses.AlignLoss, got {type(align).__name__}")
        self.losses, self.weights, self.layout = tuple(losses), weights, layout
        self.align = AlignLoss() if align is None else align

    def _split(self, outputs) -> tuple[list, list]:
        points, features = outputs, None
        if isinstance(outputs, Mapping):
            if "points" not in outputs:
                raise KeyError(f"outputs is a dict without 'points' (the list of per-stage "
                               f"(B, N, 2) estimates); its keys are {sorted(outputs)}")
            points, features = outputs["points"], outputs.get("features")
        if isinstance(points, torch.Tensor) or not isinstance(points, Sequence):
            raise TypeError(f"outputs must be a list of per-stage (B, N, 2) estimates (baseline "
                            f"first) or a dict with 'points' and 'features', got {type(points).__name__}")
        if len(points) != len(self.losses):
            raise ValueError(f"losses names {len(self.losses)} stages {list(self.losses)} but the "
                             f"model returned {len(points)} estimates")
        features = [None] * len(points) if features is None else list(features)
        if len(features) != len(points):
            raise ValueError(f"outputs['features'] must have one entry per stage ({len(points)}), "
                             f"got {len(features)}")
        return list(points), features

    def stage_losses(self, outputs, batch: dict) -> list[torch.Tensor]:
        """The unweighted loss of every stage, in stage order (``"none"`` stages give 0)."""
        points, features = self._split(outputs)
        gt = _landmarks(batch)
        terms = []
        for k, (name, pred, maps) in enumerate(zip(self.losses, points, features)):
            target = gt.to(pred)
            if name == "none":
                terms.append(pred.new_zeros(()))
            elif name == "iod_l2":
                terms.append(iod_l2_loss(pred, target, layout=self.layout))
            elif name != "align":
                terms.append(self.FUNCTIONS[name](pred, target))
            elif maps is None:
                raise ValueError(f"stage {k} uses 'align', which compares feature patches: pass "
                                 "outputs as {'points': [...], 'features': [...]} with features"
                                 f"[{k}] the (B, C, H, W) map stage {k} crops from")
            else:
                if "image" not in batch:
                    raise KeyError("stage 'align' maps points to the feature map from the input "
                                   f"size: the batch has no 'image'; its keys are {sorted(batch)}")
                size_in, size_map = tuple(batch["image"].shape[-2:]), tuple(maps.shape[-2:])
                terms.append(self.align(maps, resize_points(pred, size_in, size_map),
                                        resize_points(target, size_in, size_map)))
        return terms

    def forward(self, outputs, batch: dict) -> torch.Tensor:
        terms = self.stage_losses(outputs, batch)
        return sum(w * t for w, t in zip(self.weights, terms))
