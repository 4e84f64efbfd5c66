"""Plots of the CCNN's cascade (notebook 05, Mahpod et al. (2018)).

* :func:`example_landmarks` -- four landmarks worth drawing in any layout;
* :func:`show_cascade` -- the heatmaps ``H_0 .. H_K`` of a few landmarks of one face, drawn in
  input pixels, with the truth, each map's argmax and each regression unit's refined point;
* :func:`plot_unit_errors` -- NME after each unit: heatmap argmax against refined point, per seed;
* :func:`plot_ablation` -- NME against the number of cascades ``K`` (Mahpod Fig. 11 in miniature).
"""

from __future__ import annotations

import numpy as np
from matplotlib import patheffects
from matplotlib.patches import Rectangle

from ..codecs import decode_heatmaps
from ..data.transforms import denormalize_image
from ..geometry import resize_points
from .basics import _numpy
from .style import SMALL, legend_outside

_OUTLINE = [patheffects.withStroke(linewidth=3.5, foreground="black")]   # visible on any colour
TRUTH = {"marker": "+", "color": "lime", "ms": 11, "mew": 2, "path_effects": _OUTLINE}
MAXIMUM = {"marker": "x", "color": "white", "ms": 8, "mew": 2, "ls": "none", "path_effects": _OUTLINE}
REFINED = {"marker": "o", "mfc": "none", "color": "cyan", "ms": 8, "mew": 1.5, "ls": "none",
           "path_effects": _OUTLINE}


def _display_image(image) -> np.ndarray:
    """``(3, H, W)`` normalised network input -> uint8 ``(H, W, 3)``; ``(H, W[, 3])`` unchanged."""
    img = _numpy(image)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        return denormalize_image(img)
    return img


def example_landmarks(layout) -> dict:
    """Four landmarks that show different parts of a face: ``{name: index}`` in ``layout``.

    An outer eye corner, the nose tip, a mouth corner (from the layout's 5-point groups) and the
    middle of the jaw contour (for the 68-point layout: 36, 30, 48 and the chin, 8).
    """
    if "jaw" not in layout.groups or len(layout.five_point_groups) != 5:
        raise ValueError(f"layout {layout.name} needs a 'jaw' group and five 5-point groups")
    jaw = np.asarray(layout.groups["jaw"])
    return {"outer eye corner": int(layout.outer_eye_corners[0]),
            "nose tip": int(layout.five_point_groups[2][0]),
            "mouth corner": int(layout.five_point_groups[3][0]),
            "jaw (middle)": int(jaw[len(jaw) // 2])}


def show_cascade(fig, image, outputs: dict, landmarks, truth=None, *, index: int = 0,
                 names=None, window: float | None = None) -> np.ndarray:
    """Rows: landmarks; columns: the face, then ``H_0`` (BaseCNN_2) and ``H_1 .. H_K``.

    Every heatmap is drawn over the input image's pixel extent: cell ``i`` of a map at stride
    ``s`` covers input pixels ``[s i - 0.5, s (i + 1) - 0.5]`` (the course's pixel-centre
    convention), so the truth, the argmax of each map (white x) and the refined point ``P_k``
    of regression unit ``k`` (cyan circle) are drawn in input pixels without any shift.

    Args:
        fig: a matplotlib figure (its axes are replaced).
        image: the network input ``(3, H, W)`` (normalised) or a displayable ``(H, W[, 3])``.
        outputs: a :class:`lmk.models.CCNN` output dict for a batch containing the image.
        landmarks: indices of the landmarks to show (one row each).
        truth: ``(N, 2)`` ground truth in input pixels, or ``None``.
        index: the image's position in the batch of ``outputs``.
        names: optional labels of the rows (default ``"landmark i"``).
        window: half-width in input pixels of a square view of each map around the landmark (its
            truth, else the last map's argmax), outlined on the face; ``None`` shows whole maps.
    Returns:
        the ``(rows, K + 2)`` array of axes.
    """
    maps = [outputs["base_heatmaps"], *outputs["heatmaps"]]
    refined = [None, *outputs["coordinates"]]
    if not 0 <= index < len(maps[0]):
        raise IndexError(f"index {index} is outside the batch of {len(maps[0])} outputs")
    img = _display_image(image)
    size_in, size_map = img.shape[:2], tuple(maps[0].shape[-2:])
    points = list(np.atleast_1d(np.asarray(landmarks, dtype=int)))
    n = maps[0].shape[1]
    if not points or min(points) < 0 or max(points) >= n:
        raise ValueError(f"landmarks must be indices from 0 to {n - 1}, got {landmarks!r}")
    names = [f"landmark {i}" for i in points] if names is None else list(names)
    if len(names) != len(points):
        raise ValueError(f"names has {len(names)} labels for {len(points)} landmarks")
    gt = None if truth is None else _numpy(truth).reshape(-1, 2)
    # argmax of every map in input pixels (H_0 included: the base CNN's own estimate)
    maxima = [resize_points(decode_heatmaps(m[index:index + 1].detach().float(), "argmax"),
                            size_map, size_in)[0].numpy() for m in maps]
    extent = (-0.5, size_in[1] - 0.5, size_in[0] - 0.5, -0.5)
    if window is not None and not window > 0:
        raise ValueError(f"window must be a positive number of input pixels or None, got {window!r}")
    fig.clear()
    axes = np.asarray(fig.subplots(len(points), len(maps) + 1, squeeze=False))
    for row, (i, name) in enumerate(zip(points, names)):
        ax = axes[row, 0]
        ax.imshow(img, interpolation="nearest", extent=extent)
        if gt is not None:
            ax.plot(*gt[i], **TRUTH)
        ax.set_title(name, fontsize=SMALL)
        centre = gt[i] if gt is not None else maxima[-1][i]
        if window is not None:
            ax.add_patch(Rectangle(centre - window, 2 * window, 2 * window, fill=False, color="white", lw=1))
        for col, (m, peak, pk) in enumerate(zip(maps, maxima, refined), start=1):
            ax = axes[row, col]
            ax.imshow(_numpy(m[index, i]), cmap="magma", interpolation="nearest", extent=extent)
            if gt is not None:
                ax.plot(*gt[i], **TRUTH)
            ax.plot(*peak[i], **MAXIMUM)
            if pk is not None:
                ax.plot(*_numpy(pk[index, i]), **REFINED)
            if row == 0:
                ax.set_title("$H_0$ (base)" if col == 1 else f"$H_{col - 1}$, $P_{col - 1}$", fontsize=SMALL)
            if window is not None:
                ax.set_xlim(centre[0] - window, centre[0] + window)
                ax.set_ylim(centre[1] + window, centre[1] - window)
            else:
                ax.set_xlim(extent[:2])
                ax.set_ylim(extent[2:])
        axes[row, 0].set_xlim(extent[:2])
        axes[row, 0].set_ylim(extent[2:])
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def _mean_line(ax, x, values, **style):
    v = 100 * np.asarray(values, dtype=float)                  # (units, seeds)
    for seed in v.T if v.shape[1] > 1 else ():
        ax.plot(x, seed, color=style["color"], lw=0.8, alpha=0.35)
    ax.plot(x, v.mean(1), lw=2, ms=6, **style)


def plot_unit_errors(ax, nmes: dict, baseline: float | None = None, floor: float | None = None,
                     title: str | None = None):
    """NME after each unit ``k``: ``argmax(H_k)`` against the refined ``P_k`` (Eq. 1).

    Args:
        nmes: ``{"argmax1": [per seed], ..., "unit1": [...], ...}`` NME fractions
            (:func:`lmk.cascade_eval.per_decoder`); thin lines are the seeds, thick their mean.
        baseline: the mean shape's NME (fraction), a dashed line.
        floor: the NME of a perfect heatmap read by argmax (fraction), a dotted line.
    """
    units = sorted(int(m[4:]) for m in nmes if m.startswith("unit"))
    if not units or any(f"argmax{k}" not in nmes for k in units):
        raise ValueError(f"nmes needs 'argmaxK' and 'unitK' for the same K, got {sorted(nmes)}")
    seeds = len(nmes[f"unit{units[0]}"])
    _mean_line(ax, units, [nmes[f"argmax{k}"] for k in units], color="tab:orange", marker="s",
               label=f"argmax of $H_k$ (mean of {seeds})")
    _mean_line(ax, units, [nmes[f"unit{k}"] for k in units], color="tab:blue", marker="o",
               label=f"refined $P_k$ (mean of {seeds})")
    if baseline is not None:
        ax.axhline(100 * baseline, color="tab:red", ls="--", lw=1, label="mean shape")
    if floor is not None:
        ax.axhline(100 * floor, color="grey", ls=":", lw=1.2, label="argmax of a perfect heatmap")
    _finish(ax, units, "unit k", title)
    ax.set_ylim(bottom=0)
    return ax


def _finish(ax, ticks, xlabel: str, title: str | None) -> None:
    """The axes of an NME-per-unit or per-K plot: ticks, labels, grid, legend, title."""
    ax.set_xticks(ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("NME (%)")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    if title:
        ax.set_title(title)


def plot_ablation(ax, values: dict, reference: int | None = None, baseline: float | None = None,
                  title: str | None = None):
    """NME against the number of cascades ``K``: every seed's value and their mean.

    Args:
        values: ``{K: [NME fraction of each seed]}``.
        reference: a ``K`` with several seeds whose range is drawn as a band across the plot:
            the yardstick for the one-seed points.
        baseline: the mean shape's NME (fraction), a dashed line.
    """
    if not values:
        raise ValueError("plot_ablation needs at least one K")
    ks = sorted(values)
    for k in ks:
        v = 100 * np.asarray(values[k], dtype=float)
        ax.plot(np.full(v.size, k), v, "o", color="tab:blue", alpha=0.5, ms=5)
    ax.plot(ks, [100 * np.mean(values[k]) for k in ks], "s-", color="tab:blue", lw=1.5,
            label="NME of $P_K$ (mean over seeds; dots: seeds)")
    if reference is not None:
        if reference not in values:
            raise ValueError(f"reference K={reference} is not among {ks}")
        ref = 100 * np.asarray(values[reference], dtype=float)
        ax.axhspan(ref.min(), ref.max(), color="tab:blue", alpha=0.12,
                   label=f"range of the {ref.size} seeds of K = {reference}")
    if baseline is not None:
        ax.axhline(100 * baseline, color="tab:red", ls="--", lw=1, label="mean shape")
    _finish(ax, ks, "cascades K", title)
    return ax


__all__ = ["example_landmarks", "show_cascade", "plot_unit_errors", "plot_ablation"]
