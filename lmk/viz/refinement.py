"""Plots of CropNet refinement (Yan et al. 2020, notebook 04): crops on feature maps, loss
landscapes, per-stage estimates and corrections.

Every image here is drawn in the project's pixel convention (``imshow`` puts pixel ``i`` on
coordinate ``i``), so points and crop samples need no shift.
"""

from __future__ import annotations

import numpy as np

from .basics import _numpy
from .style import SMALL, SMALLEST, legend_below, legend_outside

LANDSCAPE_TITLES = {"l2": "L2 (Yan Fig. 6 b)", "l1": "L1 (c)", "heatmap_l2": "heatmap L2 (d)",
                    "align": "Align Loss, with G (e)", "align_no_filter": "Align Loss, no G"}
STAGE_COLORS = ("tab:red", "tab:orange", "gold", "tab:green", "tab:blue")


def crop_samples(center, size: int) -> np.ndarray:
    """``(size, size, 2)`` positions ``(x_p, y_q)`` of a crop's samples (Yan Eqs. 6-7).

    ``x_p = x - (size - 1) / 2 + p`` and ``y_q = y - (size - 1) / 2 + q``; entry ``[q, p]``.
    """
    c = _numpy(center).astype(np.float64).reshape(2)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    k = np.arange(size) - (size - 1) / 2
    xs, ys = np.meshgrid(c[0] + k, c[1] + k)
    return np.stack([xs, ys], -1)


def bilinear_weights(x: float, y: float) -> dict:
    """The four map pixels a sample at ``(x, y)`` reads and their weights (Yan Eq. 5).

    Returns ``{(row, col): weight}`` for the pixels ``(floor(y) + i, floor(x) + j)``, where
    ``max(0, 1 - |y - row|) max(0, 1 - |x - col|)`` can be non-zero; a pixel off the map is
    listed with its weight but reads zero.
    """
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    return {(y0 + i, x0 + j): (fy if i else 1 - fy) * (fx if j else 1 - fx)
            for i in (0, 1) for j in (0, 1)}


def draw_crop(ax, feature_map, center, size: int, *, sample=None, title=None, cmap="gray",
              legend: bool = True):
    """A ``size x size`` bilinear crop drawn on one channel of a feature map (Yan Eqs. 5-7).

    Shows the map, the crop centre (cyan cross), every sample position (dots: inside the map,
    hollow red: all four neighbours off the map, so the sample reads 0), the patch outline
    and, for one ``sample = (q, p)`` (default the sample right-below the centre), lines to the
    four pixels it blends, labelled with their weights.

    Args:
        feature_map: ``(H, W)`` values.
        center: ``(x, y)`` in map pixels.
        size: patch side.
        sample: ``(q, p)`` of the sample whose four neighbours are drawn.
        legend: draw the legend (right of the axes).
    Returns:
        ``{"samples": (size, size, 2), "weights": {(row, col): w} of the highlighted sample,
        "off_map": (size, size) bool}``.
    """
    fmap = _numpy(feature_map).astype(np.float64)
    if fmap.ndim != 2:
        raise ValueError(f"feature_map must be one (H, W) channel, got shape {fmap.shape}")
    h, w = fmap.shape
    samples = crop_samples(center, size)
    q, p = (size // 2, size // 2) if sample is None else sample
    if not (0 <= q < size and 0 <= p < size):
        raise ValueError(f"sample must be (q, p) with 0 <= q, p < {size}, got {sample!r}")
    lo, hi = samples[0, 0] - 0.5, samples[-1, -1] + 0.5
    margin = max(2.0, size / 2)
    rows = slice(max(int(np.floor(lo[1] - margin)), 0), max(int(np.ceil(hi[1] + margin)) + 1, 0))
    cols = slice(max(int(np.floor(lo[0] - margin)), 0), max(int(np.ceil(hi[0] + margin)) + 1, 0))
    shown = fmap[rows, cols]               # grey levels stretched over the part that is shown
    vmin, vmax = (shown.min(), shown.max()) if shown.size else (fmap.min(), fmap.max())
    ax.imshow(fmap, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
    xs, ys = samples[..., 0], samples[..., 1]
    off = (xs <= -1) | (xs >= w) | (ys <= -1) | (ys >= h)       # all four neighbours outside
    ax.scatter(xs[~off], ys[~off], s=14, c="tab:orange", zorder=3, label="samples (Eqs. 6-7)")
    if off.any():
        ax.scatter(xs[off], ys[off], s=22, facecolors="none", edgecolors="red", zorder=3,
                   label="off the map: 0")
    ax.add_patch(_rectangle(lo, hi - lo, edgecolor="tab:orange"))
    cx, cy = _numpy(center).astype(np.float64).reshape(2)
    ax.plot(cx, cy, "+", color="cyan", ms=14, mew=2, label="crop centre", zorder=4)
    sx, sy = samples[q, p]
    weights = bilinear_weights(sx, sy)
    for (row, col), weight in weights.items():
        ax.plot([sx, col], [sy, row], "-", color="lime", lw=1)
        inside = 0 <= row < h and 0 <= col < w
        ax.plot(col, row, "s", ms=6, mfc="lime" if inside else "none", mec="lime")
        ax.annotate(f"{weight:.2f}", (col, row), textcoords="offset points", color="lime",
                    fontsize=SMALLEST, xytext=(5 if col > sx else -5, 5 if row < sy else -5),
                    ha="left" if col > sx else "right", va="bottom" if row < sy else "top")
    ax.plot(sx, sy, "o", color="magenta", ms=6, zorder=5, label=f"sample (q={q}, p={p})")
    ax.set(xlim=(lo[0] - margin, hi[0] + margin), ylim=(hi[1] + margin, lo[1] - margin),
           xlabel="x (map px)", ylabel="y (map px)")
    if legend:
        legend_outside(ax)
    if title:
        ax.set_title(title, fontsize=SMALL)
    return {"samples": samples, "weights": weights, "off_map": off}


def _rectangle(corner, extent, **kwargs):
    from matplotlib.patches import Rectangle

    return Rectangle(tuple(corner), extent[0], extent[1], fill=False, lw=1.5, **kwargs)


def show_patch(ax, patch, title=None, cmap="gray"):
    """One ``(size, size)`` patch as the CropNet sees it (row ``q``, column ``p``)."""
    values = _numpy(patch).astype(np.float64)
    if values.ndim != 2:
        raise ValueError(f"patch must be one (size, size) channel, got shape {values.shape}")
    image = ax.imshow(values, cmap=cmap, interpolation="nearest")
    ax.set(xlabel="p", ylabel="q")
    if title:
        ax.set_title(title)
    return image


def plot_landscape(ax, landscape: dict, *, tangent=None, title=None, levels: int = 6,
                   unit: str = "px"):
    """One loss landscape (Yan Fig. 6): the loss at each offset, scaled to [0, 1] as Yan do.

    Args:
        landscape: a :func:`lmk.landscape.loss_landscape` result (``offsets``, ``values``,
            ``kind``).
        tangent: optional ``(x, y)`` contour direction, drawn as a dashed line through the
            ground truth (the centre).
        levels: contour lines over the scaled values.
        unit: the offsets' unit, for the axis labels (e.g. ``"map px"``).
    Returns:
        The ``(steps, steps)`` scaled values that are drawn.
    """
    offsets = _numpy(landscape["offsets"]).astype(np.float64)
    values = _numpy(landscape["values"]).astype(np.float64)
    if values.shape != (len(offsets), len(offsets)):
        raise ValueError(f"landscape values must be ({len(offsets)}, {len(offsets)}) for "
                         f"{len(offsets)} offsets, got {values.shape}")
    span = values.max() - values.min()
    scaled = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    r, step = offsets[-1], offsets[1] - offsets[0]
    extent = (offsets[0] - step / 2, r + step / 2, r + step / 2, offsets[0] - step / 2)
    ax.imshow(scaled, cmap="coolwarm", extent=extent, interpolation="nearest", vmin=0, vmax=1)
    ax.contour(offsets, offsets, scaled, levels=np.linspace(0, 1, levels + 2)[1:-1],
               colors="k", linewidths=0.5, alpha=0.6)
    ax.plot(0, 0, "o", mfc="none", mec="red", ms=10, mew=1.5)
    if tangent is not None:
        t = _numpy(tangent).astype(np.float64).reshape(2)
        t = r * t / np.linalg.norm(t)
        ax.plot([-t[0], t[0]], [-t[1], t[1]], "--", color="k", lw=1, label="contour")
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel=f"dx ({unit})", ylabel=f"dy ({unit})")
    ax.set_title(title or LANDSCAPE_TITLES.get(landscape.get("kind"), landscape.get("kind")),
                 fontsize=SMALL)
    return scaled


def plot_landscapes(axes, landscapes: dict, *, tangent=None, unit: str = "px") -> dict:
    """:func:`plot_landscape` of each entry of ``landscapes`` on the matching axis."""
    axes = list(np.ravel(axes))
    if len(axes) < len(landscapes):
        raise ValueError(f"{len(landscapes)} landscapes need as many axes, got {len(axes)}")
    return {kind: plot_landscape(ax, land, tangent=tangent, unit=unit)
            for ax, (kind, land) in zip(axes, landscapes.items())}


def plot_profiles(ax, distances, profiles: dict, *, normalise: bool = True, unit: str = "px",
                  legend: str = "outside"):
    """Loss along lines through the ground truth: ``{label: (T,) values}`` against distance.

    With ``normalise`` every curve is divided by the largest value of *all* of them, so curves
    of the same loss stay comparable (flat along a contour, steep across it). ``legend``:
    ``"outside"`` (right of the axes) or ``"below"`` (under them, for a panel in a grid).
    """
    if legend not in ("outside", "below"):
        raise ValueError(f"plot_profiles: legend must be 'outside' or 'below', got {legend!r}")
    t = _numpy(distances).astype(np.float64).reshape(-1)
    curves = {label: _numpy(values).astype(np.float64).reshape(-1)
              for label, values in profiles.items()}
    for label, v in curves.items():
        if v.shape != t.shape:
            raise ValueError(f"profile {label!r} has {v.size} values for {t.size} distances")
    top = max((v.max() for v in curves.values()), default=0.0)
    scale = top if normalise and top > 0 else 1.0
    for label, v in curves.items():
        ax.plot(t, v / scale, label=label)
    ax.set(xlabel=f"distance from the truth ({unit})",
           ylabel="loss / largest value shown" if normalise else "loss")
    ax.grid(alpha=0.3)
    (legend_outside if legend == "outside" else legend_below)(ax)
    return ax


def plot_stage_nme(ax, runs: dict, baseline: float | None = None, title=None):
    """NME (%) after each stage: one line per run, ``{label: [nme stage0, stage1, ...]}``.

    Args:
        runs: per-stage NMEs as fractions, e.g. one entry per seed.
        baseline: the mean shape's NME (fraction), drawn dashed.
    """
    for k, (label, nmes) in enumerate(runs.items()):
        values = 100 * np.asarray(nmes, np.float64).reshape(-1)
        ax.plot(np.arange(len(values)), values, "o-", ms=4, label=label, color=f"C{k}")
    if baseline is not None:
        ax.axhline(100 * baseline, color="k", ls="--", lw=1, label="mean shape")
    stages = max(len(np.ravel(v)) for v in runs.values())
    ax.set_xticks(range(stages), ["S0 (baseline)"] + [f"S{k}" for k in range(1, stages)])
    ax.set(xlabel="estimate", ylabel="NME (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    if title:
        ax.set_title(title)
    return ax


def plot_stage_corrections(axes, corrections, *, strides=None, bins: int = 41,
                           limit: float | None = None) -> list[dict]:
    """Histograms of each stage's corrections ``S_k - S_{k-1}`` (Yan Fig. 13), in input px.

    One panel per stage, x and y components of every landmark of every face, on one common
    symmetric range (the 99.9th percentile of all ``|correction|`` unless ``limit`` is given;
    values beyond it are counted in the outermost bins, so no correction is dropped).

    Args:
        corrections: list of ``(M, N, 2)`` arrays, stage 1 first.
        strides: optional feature stride of each stage, for the titles.
    Returns:
        per stage ``{"std": (2,), "mean_abs": float, "p99": float, "counts": (2, bins)}``.
    """
    values = [_numpy(c).astype(np.float64).reshape(-1, 2) for c in corrections]
    axes = list(np.ravel(axes))
    if len(axes) < len(values):
        raise ValueError(f"{len(values)} stages need as many axes, got {len(axes)}")
    if limit is None:
        limit = float(np.quantile(np.abs(np.concatenate(values)), 0.999)) or 1.0
    edges = np.linspace(-limit, limit, bins + 1)
    stats = []
    for k, (ax, v) in enumerate(zip(axes, values), 1):
        clipped = np.clip(v, edges[0], edges[-1])
        counts = np.stack([np.histogram(clipped[:, i], edges)[0] for i in (0, 1)])
        for i, (name, color) in enumerate((("x", "tab:blue"), ("y", "tab:orange"))):
            ax.stairs(counts[i], edges, color=color, label=f"{name}: std {v[:, i].std():.2f} px")
        size = np.linalg.norm(v, axis=1)
        stride = f", stride {strides[k - 1]}" if strides is not None else ""
        ax.set_title(f"stage {k}{stride}\n99 % of |dS| below {np.quantile(size, 0.99):.2f} px",
                     fontsize=SMALL)
        ax.set(xlabel="correction (input px)", ylabel="landmark coordinates")
        legend_below(ax, ncols=2)
        stats.append({"std": v.std(0), "mean_abs": float(size.mean()),
                      "p99": float(np.quantile(size, 0.99)), "counts": counts})
    return stats


def draw_refinement(ax, image, estimates, truth, index: int, *, radius: float = 6.0,
                    title=None):
    """A zoom on landmark ``index``: the path ``S_0 -> S_1 -> ... -> S_K`` and the truth.

    Args:
        image: ``(3, H, W)`` or ``(H, W, 3)`` image (a normalised tensor is rescaled for display)
            or ``(H, W)`` map.
        estimates: list of ``(N, 2)`` estimates of one face, ``S_0`` first, input px.
        truth: ``(N, 2)``.
    """
    img = _numpy(image).astype(np.float64)
    if img.ndim == 3 and img.shape[0] == 3:
        img = img.transpose(1, 2, 0)
    if img.ndim == 3:
        img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
    pts = np.stack([_numpy(e).astype(np.float64)[index] for e in estimates])
    gt = _numpy(truth).astype(np.float64)[index]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    ax.plot(pts[:, 0], pts[:, 1], "-", color="w", lw=1)
    for k, p in enumerate(pts):
        ax.plot(*p, "o", ms=6, color=STAGE_COLORS[k % len(STAGE_COLORS)],
                label=f"S{k}: {np.linalg.norm(p - gt):.2f} px off")
    ax.plot(*gt, "+", color="cyan", ms=14, mew=2, label="truth")
    ax.set(xlim=(gt[0] - radius, gt[0] + radius), ylim=(gt[1] + radius, gt[1] - radius))
    ax.set_xticks([])
    ax.set_yticks([])
    legend_outside(ax)
    if title:
        ax.set_title(title, fontsize=SMALL)
    return pts
