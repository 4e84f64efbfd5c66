"""ATPN's pieces drawn (notebook 06): the cheap heatmap on a face and the three training stages."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from ..geometry import rescale_points
from ..ops import HEATMAP_FLOOR, cheap_heatmap
from .basics import _numpy, draw_landmarks
from .style import SMALL, legend_below

__all__ = ["show_cheap_heatmap", "plot_stages", "STAGE_PANELS"]

STAGE_PANELS = {1: ("val_nme", "NME (%)", 100.0, "mean shape"),
                2: ("confidence_ap", "confidence AP (%)", 100.0, "constant score"),
                3: ("pose_mae", "pose MAE (degrees)", 1.0, "mean pose")}
"""What each stage's panel shows: the History key, the axis label, the scale, the baseline's name."""


def show_cheap_heatmap(axes, image, landmarks, stride: int = 4, floor: float = HEATMAP_FLOOR):
    """Three panels: the face with its landmarks, Xia's Eq. 1 heatmap on the stride-``stride``
    grid (with ``floor``), and the face multiplied by that heatmap upsampled (Eq. 2's effect).

    Args:
        image: ``(3, H, W)`` normalised tensor or ``(H, W, 3)`` image in [0, 1] or uint8.
        landmarks: ``(N, 2)`` input pixels.
    """
    img = _numpy(image)
    if img.ndim == 3 and img.shape[0] == 3:
        img = img.transpose(1, 2, 0)
    img = img.astype(np.float64)
    img = (img - img.min()) / max(np.ptp(img), 1e-9)
    h, w = img.shape[:2]
    if h % stride or w % stride:
        raise ValueError(f"the image ({h} x {w}) must be a multiple of stride {stride} on each side")
    size = (h // stride, w // stride)
    points = torch.as_tensor(np.asarray(landmarks, np.float64))[None]
    heat = cheap_heatmap(rescale_points(points, 1.0 / stride), size, floor=floor)[0, 0].numpy()
    draw_landmarks(axes[0], img, landmarks, size=4)
    axes[0].set_title("face and landmarks", fontsize=SMALL)
    axes[1].imshow(heat, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title(f"cheap heatmap, {size[0]}x{size[1]}, floor {floor:g}", fontsize=SMALL)
    axes[1].set_axis_off()
    up = np.kron(heat, np.ones((stride, stride)))[:h, :w]
    axes[2].imshow(img * up[..., None], interpolation="nearest")
    axes[2].set_title("face x heatmap (Eq. 2's effect)", fontsize=SMALL)
    axes[2].set_axis_off()
    return heat


def plot_stages(axes, stage_histories: dict, baselines: dict | None = None):
    """One panel per trained stage: the figure that stage improves, per epoch, beside its baseline.

    Args:
        stage_histories: ``{stage: History or its dict}`` (``Result.extras["stage_histories"]``).
        baselines: ``{stage: value}`` in the History's units (fractions for NME and AP, degrees
            for pose), drawn dashed. Stages 2 and 3 default to the history's ``*_baseline``
            metric; stage 1's mean shape is not in its history, so pass it here.
    """
    baselines = dict(baselines or {})
    for ax, (stage, history) in zip(np.ravel(axes), sorted(stage_histories.items())):
        h = history if isinstance(history, dict) else history.to_dict()
        key, label, scale, base_name = STAGE_PANELS[stage]
        values = h[key] if key in h else h.get("val_metrics", {}).get(key, [])
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, scale * np.asarray(values, float), "o-", ms=4, label=f"stage {stage}")
        base = baselines.get(stage)
        if base is None and key != "val_nme":
            base_values = h.get("val_metrics", {}).get(f"{key}_baseline")
            base = base_values[-1] if base_values else None
        if base is not None:
            ax.axhline(scale * base, color="tab:red", ls="--", lw=1, label=base_name)
        ax.set_xlabel("epoch of the stage")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        if len(values) == 1:     # one epoch: a single point, labelled, on an axis from zero
            ax.annotate(f"{scale * values[0]:.3g}", (1, scale * values[0]), xytext=(6, 0),
                        textcoords="offset points", va="center")
        ax.set_xlim(0.5, len(values) + 0.5)
        if len(values) <= 12:
            ax.set_xticks(epochs)
        top = np.nanmax(np.r_[scale * np.asarray(values, float), [scale * base] if base is not None else []])
        ax.set_ylim(0, 1.12 * top if np.isfinite(top) and top > 0 else None)
        ax.set_title(f"stage {stage}")
        legend_below(ax, ncols=2)
    return axes
