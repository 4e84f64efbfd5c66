"""Tracked videos (notebook 06): frames with landmarks, the crop, head-pose axes, and NME over time.

All functions take a video dict (``frames`` ``(T, H, W, 3)`` uint8, ``landmarks`` ``(T, N, 2)``)
and its :class:`lmk.track.TrackResult`, in frame pixels.
"""

from __future__ import annotations

import numpy as np

from ..geometry import apply_affine, invert_affine
from ..layouts import LAYOUT_68
from .basics import draw_landmarks, draw_pose_axes
from .style import SMALL, legend_outside

__all__ = ["crop_outline", "draw_tracked_frame", "show_track_strip", "plot_tracking_nme", "show_track_frame"]


def crop_outline(transform, input_size: int) -> np.ndarray:
    """``(5, 2)`` closed outline, in frame pixels, of the square crop a ``(2, 3)`` frame -> crop
    ``transform`` makes (pixel edges at ``-0.5`` and ``input_size - 0.5``)."""
    e = input_size - 0.5
    corners = np.array([[-0.5, -0.5], [e, -0.5], [e, e], [-0.5, e], [-0.5, -0.5]])
    return apply_affine(corners, invert_affine(np.asarray(transform, np.float64)))


def draw_tracked_frame(ax, video: dict, result, t: int, *, pose=None, input_size: int | None = None,
                       layout=LAYOUT_68, title: bool = True, label: str | None = None):
    """Frame ``t``: truth (white), prediction (orange), the crop (yellow: the detector's, cyan:
    from the last frame's landmarks; dashed red when the face was lost) and ``pose`` axes
    (:func:`lmk.viz.draw_pose_axes`: red, green, blue).

    Args:
        pose: ``(T, 3)`` degrees (e.g. :func:`lmk.multitask_eval.pose_along`) or None.
        input_size: the model's input side (the crop outline), None to leave it out.
        label: the tracker's name, first in the title (whose points and NME these are).
    """
    frames = np.asarray(video["frames"])
    ax.imshow(frames[t])
    draw_landmarks(ax, None, result.truth[t], layout=layout, color="white", size=3)
    draw_landmarks(ax, None, result.landmarks[t], layout=layout, color="orange", size=4)
    if input_size is not None:
        outline = crop_outline(result.transforms[t], input_size)
        color = "yellow" if result.detected[t] else "cyan"
        ax.plot(outline[:, 0], outline[:, 1], "--" if result.lost[t] else "-",
                color="red" if result.lost[t] else color, lw=1.2)
    if pose is not None:
        nose = np.asarray(layout.five_points(result.landmarks[t]))[2]
        side = np.ptp(result.landmarks[t][:, 0])
        draw_pose_axes(ax, pose[t], nose, length=0.5 * side)
    if title:
        conf = result.confidence[t]
        text = f"{label + ', ' if label else ''}t={t}  NME {100 * result.nme[t]:.1f}%\n"
        text += "" if np.isnan(conf) else f"p(face) {conf:.2f}  "
        text += "detector" if result.detected[t] else "last landmarks"
        ax.set_title(text, fontsize=SMALL)
    ax.set_axis_off()
    return ax


def show_track_strip(fig, video: dict, result, frames, *, pose=None, input_size: int | None = None,
                     layout=LAYOUT_68):
    """A row of tracked frames (``frames``: indices), each drawn by :func:`draw_tracked_frame`."""
    frames = list(frames)
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, t in zip(axes, frames):
        draw_tracked_frame(ax, video, result, t, pose=pose, input_size=input_size, layout=layout)
    return axes


def plot_tracking_nme(ax, curves: dict, *, detected=None, threshold: float = 0.1, marker=None,
                      title: str | None = None):
    """Per-frame NME (%) of one video for several trackers ``{label: (T,) NMEs}``.

    ``detected``: ``(T,)`` bool, frames whose crop came from the detector (ticks at the bottom);
    ``threshold``: Xia's FR_0.1 line; ``marker``: a frame to mark (the widget's position). The
    last frame's truth as the prediction (label ``"last frame"``) has ``T - 1`` values, for
    frames 1 .. T-1.
    """
    for label, nme in curves.items():
        nme = 100 * np.asarray(nme, float)
        start = 1 if label == "last frame" else 0
        ax.plot(np.arange(start, start + len(nme)), nme, lw=1.2, label=label,
                ls=":" if label == "last frame" else "-", color="black" if label == "last frame" else None)
    ax.axhline(100 * threshold, color="grey", lw=0.8, ls="--", label=f"NME {100 * threshold:g} %")
    if detected is not None:
        idx = np.flatnonzero(np.asarray(detected))
        ax.plot(idx, np.zeros(len(idx)), "|", color="goldenrod", ms=12, mew=2, label="detector call")
    if marker is not None:
        ax.axvline(marker, color="tab:red", lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("NME (%)")
    ax.set_ylim(bottom=0)
    legend_outside(ax)
    if title:
        ax.set_title(title)
    return ax


def show_track_frame(fig, video: dict, results: dict, t: int, *, pose=None, input_size: int | None = None,
                     layout=LAYOUT_68):
    """The widget's view: frame ``t`` of the first tracker in ``results`` ``{label: TrackResult}``
    (its label in the title), and every tracker's per-frame NME with frame ``t`` marked.

    The axes have fixed places in the figure (no layout engine), so the view does not move
    while a slider scrubs through the frames.
    """
    fig.set_layout_engine("none")
    label, first = next(iter(results.items()))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6], "left": 0.01, "right": 0.76,
                                                  "bottom": 0.16, "top": 0.83, "wspace": 0.2})
    draw_tracked_frame(left, video, first, t, pose=pose, input_size=input_size, layout=layout, label=label)
    curves = {name: r.nme for name, r in results.items()}
    curves["last frame"] = first.baseline_nme
    plot_tracking_nme(right, curves, detected=first.detected, marker=t,
                      title=f"per-frame NME; red line: frame {t}")
    return left, right
