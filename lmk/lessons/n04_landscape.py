"""Yan et al.'s (2020) Fig. 6 loss landscapes, and the three-way check of the crop's gradients.

Loss landscapes (Yan Sec. 4, Fig. 6). Fix a ground-truth point on a feature map and move the
prediction over a grid of offsets around it; every loss is then a function of the offset
``(dx, dy)`` alone, and its picture shows what the loss asks of a network::

    land = loss_landscape(edge_map(image), point, "align", radius=3.0, steps=41)
    land["values"]          # (41, 41): row i is dy = offsets[i], column j is dx = offsets[j]

The losses (:data:`LANDSCAPE_LOSSES`) are those of :mod:`lmk.losses`, called as a training
step calls them, one prediction per batch item: ``"l2"`` and ``"l1"`` (Sec. 4.2) grow without
bound and see only the distance; ``"heatmap_l2"`` (the squared difference of a Gaussian
heatmap at the prediction and one at the truth) saturates once the Gaussians stop
overlapping; ``"align"`` (Eq. 2, with the 3 x 3 Gaussian pre-filter) and ``"align_no_filter"``
compare feature patches, so they are flat where the map does not change: along a contour.

Gradient check (Yan Sec. 5). :func:`gradient_check` compares three gradients of the scalar
``L = sum(W * crop(I, centres))`` (a fixed random ``W`` plays ``dL/dV``): the analytic backward
of :func:`lmk.ops.crop_patches` (Eqs. 9 and 11-15), autograd through ``grid_sample``
(:func:`lmk.ops.crop_patches_grid_sample`), and central finite differences.
:func:`kink_derivatives` looks at the one place the three need not agree: a crop centre whose
samples sit exactly on pixel centres, where ``V`` has a kink (see :mod:`lmk.ops`).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from .._backend import check_positive_int
from ..codecs import gaussian_heatmaps
from ..layouts import LAYOUT_68, Layout
from ..losses import align_loss, heatmap_mse, l1_loss, l2_loss
from ..ops import crop_patches, crop_patches_grid_sample

__all__ = ["edge_map", "contour_tangent", "offset_grid", "loss_values", "loss_landscape", "loss_landscapes", "directional_profile", "finite_differences", "gradient_check", "kink_derivatives", "within", "LANDSCAPE_LOSSES"]

LANDSCAPE_LOSSES = ("l2", "l1", "heatmap_l2", "align", "align_no_filter")
"""The losses of Yan Fig. 6 (b)-(e); ``"align_no_filter"`` is Eq. 2 without ``G``."""

_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8


# ------------------------------------------------------------------------------ feature maps
def edge_map(image) -> Tensor:
    """Gradient magnitude of an image: a feature map whose every value a student can read.

    The grey image (mean over the colour channels) is filtered with the two 3 x 3 Sobel
    kernels, normalised so that a ramp of slope 1 per pixel gives 1 (edge rows replicated),
    and ``sqrt(gx^2 + gy^2)`` is returned. A boundary of the face becomes a ridge.

    Args:
        image: ``(3, H, W)`` or ``(H, W, 3)`` (numpy or torch, any scale), or ``(H, W)`` grey.
    Returns:
        ``(1, 1, H, W)`` float tensor (float64 if the image is float64, else float32).
    """
    x = torch.as_tensor(image)
    if x.ndim == 3 and x.shape[0] == 3:
        x = x.mean(0)
    elif x.ndim == 3 and x.shape[-1] == 3:
        x = x.mean(-1)
    elif x.ndim != 2:
        raise ValueError(f"image must be (3, H, W), (H, W, 3) or (H, W), got {tuple(x.shape)}")
    if min(x.shape) < 2:
        raise ValueError(f"image must be at least 2 x 2 pixels, got {tuple(x.shape)}")
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)[None, None]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    kx = _SOBEL.to(x.dtype)[None, None]
    gx, gy = F.conv2d(padded, kx), F.conv2d(padded, kx.transpose(-1, -2))
    return torch.sqrt(gx.square() + gy.square())


def contour_tangent(landmarks, index: int, layout: Layout = LAYOUT_68) -> Tensor:
    """Unit direction ``(x, y)`` of the contour through landmark ``index``.

    The direction from the previous to the next point of the landmark's group in ``layout``
    (the jaw, a brow, a lip ...); at the end of an open group, from the point to its neighbour.

    Args:
        landmarks: ``(N, 2)`` points of one face.
        index: the landmark, ``0 <= index < N``.
    Returns:
        ``(2,)`` float64 unit vector.
    """
    points = torch.as_tensor(landmarks, dtype=torch.float64)
    if points.ndim != 2 or points.shape != (layout.num_points, 2):
        raise ValueError(f"landmarks must be ({layout.num_points}, 2) for layout {layout.name!r}, "
                         f"got {tuple(points.shape)}")
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) \
            or not 0 <= index < layout.num_points:
        raise ValueError(f"index must be an int from 0 to {layout.num_points - 1}, got {index!r}")
    group = next(list(map(int, g)) for g in layout.groups.values() if index in g)
    if len(group) < 2:
        raise ValueError(f"landmark {index} is alone in its group: it has no contour")
    k = group.index(index)
    before, after = group[max(k - 1, 0)], group[min(k + 1, len(group) - 1)]
    direction = points[after] - points[before]
    length = torch.linalg.vector_norm(direction)
    if length == 0:
        raise ValueError(f"the neighbours of landmark {index} coincide: no contour direction")
    return direction / length


# ----------------------------------------------------------------------------- landscapes
def offset_grid(radius: float = 3.0, steps: int = 41) -> Tensor:
    """``steps`` offsets from ``-radius`` to ``+radius`` (float64), 0 included for odd ``steps``."""
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not radius > 0:
        raise ValueError(f"radius must be a number > 0 (feature-map pixels), got {radius!r}")
    steps = check_positive_int(steps, "steps")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    return torch.linspace(-float(radius), float(radius), steps, dtype=torch.float64)


def _check_map_and_point(features, point) -> tuple[Tensor, Tensor]:
    if not isinstance(features, Tensor) or features.ndim != 4 or features.shape[0] != 1:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features must be one (1, C, H, W) feature map, got {shape}")
    p = torch.as_tensor(point, dtype=torch.float64).reshape(-1)
    if p.numel() != 2 or not bool(torch.isfinite(p).all()):
        raise ValueError(f"point must be one finite (x, y) in feature-map pixels, got {point!r}")
    return features.double(), p


def loss_values(kind: str, features: Tensor, point, predictions: Tensor, *, patch_size: int = 8,
                blur_sigma: float = 1.0, heatmap_sigma: float = 1.5, chunk: int = 1024) -> Tensor:
    """The loss ``kind`` of each prediction against the ground truth ``point``.

    Each prediction is one batch item, scored by the library's loss with ``reduction="none"``:
    :func:`lmk.losses.l2_loss`, :func:`~lmk.losses.l1_loss`, :func:`~lmk.losses.heatmap_mse`
    of :func:`lmk.codecs.gaussian_heatmaps` (std ``heatmap_sigma``, on the map's ``H x W``
    grid) or :func:`~lmk.losses.align_loss` (``patch_size``, pre-filter std ``blur_sigma``;
    ``"align_no_filter"`` sets it to 0).

    Args:
        kind: one of :data:`LANDSCAPE_LOSSES`.
        features: ``(1, C, H, W)`` feature map (only the Align Loss reads its values, the
            heatmap loss its size).
        point: ground truth ``(x, y)`` in feature-map pixels.
        predictions: ``(M, 2)`` predicted points in feature-map pixels.
        chunk: predictions scored at once (bounds memory: each one copies the map).
    Returns:
        ``(M,)`` float64 loss values.
    """
    if kind not in LANDSCAPE_LOSSES:
        raise ValueError(f"kind must be one of {LANDSCAPE_LOSSES}, got {kind!r}")
    maps, gt = _check_map_and_point(features, point)
    pred = torch.as_tensor(predictions, dtype=torch.float64)
    if pred.ndim != 2 or pred.shape[-1] != 2:
        raise ValueError(f"predictions must be (M, 2) points, got {tuple(pred.shape)}")
    chunk = check_positive_int(chunk, "chunk")
    out = []
    for part in pred.split(chunk):
        p, g = part[:, None, :], gt.expand(len(part), 1, 2)
        if kind == "l2":
            out.append(l2_loss(p, g, reduction="none"))
        elif kind == "l1":
            out.append(l1_loss(p, g, reduction="none"))
        elif kind == "heatmap_l2":
            size = tuple(maps.shape[-2:])
            out.append(heatmap_mse(gaussian_heatmaps(p, size, heatmap_sigma),
                                   gaussian_heatmaps(g, size, heatmap_sigma), reduction="none"))
        else:
            blur = blur_sigma if kind == "align" else 0.0
            out.append(align_loss(maps.expand(len(part), -1, -1, -1), p, g, patch_size=patch_size,
                                  blur_sigma=blur, reduction="none"))
    return torch.cat(out)


def loss_landscape(features: Tensor, point, kind: str, *, radius: float = 3.0, steps: int = 41,
                   **loss_args) -> dict:
    """One panel of Yan Fig. 6: the loss of a prediction at ``point + (dx, dy)``.

    Args:
        features: ``(1, C, H, W)`` feature map.
        point: ground truth ``(x, y)`` in feature-map pixels.
        kind: one of :data:`LANDSCAPE_LOSSES`.
        radius, steps: the offsets, :func:`offset_grid`.
        loss_args: ``patch_size``, ``blur_sigma``, ``heatmap_sigma`` of :func:`loss_values`.
    Returns:
        ``{"offsets": (steps,), "values": (steps, steps), "point": (2,), "kind": kind}``;
        ``values[i, j]`` is the loss at ``dx = offsets[j]``, ``dy = offsets[i]`` (image rows).
    """
    offsets = offset_grid(radius, steps)
    _, gt = _check_map_and_point(features, point)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    predictions = gt + torch.stack([dx, dy], -1).reshape(-1, 2)
    values = loss_values(kind, features, gt, predictions, **loss_args).reshape(steps, steps)
    return {"offsets": offsets, "values": values, "point": gt, "kind": kind}


def loss_landscapes(features: Tensor, point, kinds=LANDSCAPE_LOSSES, **kwargs) -> dict:
    """``{kind: loss_landscape(features, point, kind, **kwargs)}`` for each of ``kinds``."""
    return {kind: loss_landscape(features, point, kind, **kwargs) for kind in kinds}


def directional_profile(features: Tensor, point, kind: str, direction, distances,
                        **loss_args) -> Tensor:
    """The loss along a line through ``point``: predictions at ``point + t * direction``.

    With ``direction`` the contour tangent (:func:`contour_tangent`) and its normal this is
    the "flat along, steep across" of Yan Sec. 4.3 as two curves.

    Args:
        direction: ``(2,)`` direction ``(x, y)``; normalised here.
        distances: ``(T,)`` signed distances ``t`` in feature-map pixels.
    Returns:
        ``(T,)`` float64 loss values.
    """
    d = torch.as_tensor(direction, dtype=torch.float64).reshape(-1)
    if d.numel() != 2 or not float(torch.linalg.vector_norm(d)) > 0:
        raise ValueError(f"direction must be a non-zero (x, y), got {direction!r}")
    t = torch.as_tensor(distances, dtype=torch.float64).reshape(-1, 1)
    _, gt = _check_map_and_point(features, point)
    return loss_values(kind, features, gt, gt + t * (d / torch.linalg.vector_norm(d)), **loss_args)


# ---------------------------------------------------------------------------- gradient check
def finite_differences(fn, x: Tensor, eps: float = 1e-6) -> Tensor:
    """Central differences ``(fn(x + eps e_i) - fn(x - eps e_i)) / (2 eps)`` for every element.

    ``fn`` maps a tensor shaped like ``x`` to a scalar tensor; ``x`` is not changed. One pair of
    calls per element: for the small maps of a check, not for training.
    """
    base = x.detach().clone()
    grad = torch.empty_like(base)
    flat, out = base.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            keep = flat[i].item()
            flat[i] = keep + eps
            up = float(fn(base))
            flat[i] = keep - eps
            down = float(fn(base))
            flat[i] = keep
            out[i] = (up - down) / (2 * eps)
    return grad


def _crop_gradients(crop, features: Tensor, centers: Tensor, size: int, weights: Tensor):
    f = features.detach().clone().requires_grad_(True)
    c = centers.detach().clone().requires_grad_(True)
    (crop(f, c, size) * weights).sum().backward()
    return f.grad, c.grad


def _away_from_kinks(centers: Tensor, size: int, margin: float) -> bool:
    start = centers - (size - 1) / 2
    frac = start - start.floor()
    return bool(((frac > margin) & (frac < 1 - margin)).all())


def gradient_check(features: Tensor, centers: Tensor, size: int, *, seed: int = 0,
                   eps: float = 1e-6, crop=crop_patches) -> dict:
    """Three gradients of ``L = sum(W * crop(features, centers, size))``, and their differences.

    ``W`` (shaped like the patches, standard normal from ``seed``) stands for ``dL/dV`` of
    Yan Eq. 3. Gradients w.r.t. the feature map (Eq. 9) and the crop centres (Eqs. 11-15) come
    from ``crop``'s backward (default :func:`lmk.ops.crop_patches`, the analytic one), from
    autograd through :func:`lmk.ops.crop_patches_grid_sample`, and from
    :func:`finite_differences` of the forward of ``crop``. Work in float64: the differences
    are then rounding (about 1e-10), while a wrong term in a derivation shows at order 1.

    Centres must stay ``10 eps`` away from the kinks (samples on pixel centres), where a
    central difference averages the two one-sided slopes: see :func:`kink_derivatives`.

    Args:
        features: ``(B, C, H, W)`` maps, float64 recommended.
        centers: ``(B, N, 2)`` crop centres in feature-map pixels.
        size: patch side.
        crop: the crop whose backward is checked (a function like ``crop_patches``).
    Returns:
        ``{"features": {...}, "centers": {...}}``, each with the gradients ``analytic``,
        ``autograd``, ``finite`` and the largest absolute differences ``analytic_vs_autograd``,
        ``analytic_vs_finite``, ``autograd_vs_finite`` and ``scale`` (largest |gradient|).
    """
    size = check_positive_int(size, "size")
    if not isinstance(centers, Tensor) or not _away_from_kinks(centers.double(), size, 10 * eps):
        raise ValueError("centers must be a tensor with every crop away from the kinks (crop "
                         "samples exactly on pixel centres), where the derivative has no single "
                         "value; use kink_derivatives there")
    g = torch.Generator().manual_seed(seed)
    b, n = centers.shape[:2]
    weights = torch.randn((b, n, features.shape[1], size, size), generator=g,
                          dtype=torch.float64).to(features.dtype)
    analytic = _crop_gradients(crop, features, centers, size, weights)
    autograd = _crop_gradients(crop_patches_grid_sample, features, centers, size, weights)
    c = centers.detach().to(features.dtype)
    f = features.detach()
    finite = (finite_differences(lambda m: (crop(m, c, size) * weights).sum(), f, eps),
              finite_differences(lambda p: (crop(f, p, size) * weights).sum(), c, eps))
    report = {}
    for name, a, t, d in zip(("features", "centers"), analytic, autograd, finite):
        report[name] = {"analytic": a, "autograd": t, "finite": d,
                        "analytic_vs_autograd": float((a - t).abs().max()),
                        "analytic_vs_finite": float((a - d).abs().max()),
                        "autograd_vs_finite": float((t - d).abs().max()),
                        "scale": float(a.abs().max())}
    return report


def kink_derivatives(features: Tensor, center, size: int, *, axis: int = 0, seed: int = 0,
                     eps: float = 1e-6) -> dict:
    """``dL/dx`` (``axis=0``) or ``dL/dy`` of one crop at ``center``, every way there is.

    At a kink (``center - (size - 1) / 2`` an integer along ``axis``) the left and right
    derivatives differ. Returns ``{"left", "right", "central"}`` (one-sided and central finite
    differences) and ``{"analytic", "autograd"}`` (:func:`lmk.ops.crop_patches` and
    ``grid_sample``), for ``L = sum(W * V)`` with ``W`` drawn as in :func:`gradient_check`.

    Args:
        features: ``(1, C, H, W)`` map.
        center: ``(x, y)`` in feature-map pixels.
    """
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (x) or 1 (y), got {axis!r}")
    size = check_positive_int(size, "size")
    maps, c = _check_map_and_point(features, center)
    g = torch.Generator().manual_seed(seed)
    weights = torch.randn((1, 1, maps.shape[1], size, size), generator=g, dtype=torch.float64)
    c = c.view(1, 1, 2)
    step = torch.zeros_like(c)
    step[..., axis] = eps

    def loss(at):
        return float((crop_patches(maps, at, size) * weights).sum())

    with torch.no_grad():
        here, up, down = loss(c), loss(c + step), loss(c - step)
    analytic, autograd = (_crop_gradients(fn, maps, c, size, weights)[1][0, 0, axis].item()
                          for fn in (crop_patches, crop_patches_grid_sample))
    return {"left": (here - down) / eps, "right": (up - here) / eps,
            "central": (up - down) / (2 * eps), "analytic": analytic, "autograd": autograd}


def within(residual: float, scale: float, tolerance: float = 1e-8) -> bool:
    """``residual <= tolerance * max(1, scale)``: a relative test that never divides by ~0."""
    return math.isfinite(residual) and residual <= tolerance * max(1.0, scale)
