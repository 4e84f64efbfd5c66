"""Notebook 06's tables: ATPN's shapes, one flat row of figures per model, ablations and trackers.

* :func:`atpn_shape_table`: every part of an ATPN (Xia et al. 2022, Fig. 2) in the order it runs,
  with its output shape, parameters and MACs, from one forward pass of a zero image.
* :func:`figures`: one flat dict per model (landmark NME beside the mean shape, pose MAE and
  FR@10 degrees beside the mean pose, confidence AP beside a constant score, tracking beside
  the last frame), from a zoo entry (the numbers ``zoo verify`` checks) or from a run.
* :func:`group_rows`: per-model means over seeds of those figures, for the notebook's tables.
* :func:`pose_along`: the pose ATPN predicts on each crop of a tracked video (for drawing).
* :func:`budget_rows`: what differs between two zoo models besides their heads (data, inputs,
  epochs, parameters, training time), read from the manifest's recipes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import complexity, zoo
from ..families import family_of
from ..families.tracking import VIDEO_TEST_N, VIDEO_VAL_N, evaluation_videos, validation_videos
from ..data.transforms import normalize_image, warp_image
from ..models.atpn import LEVELS, paper_layers
from ..multitask_metrics import pose_degrees
from ..track import TrackResult, summarize

__all__ = ["atpn_shape_table", "VIDEO_VAL_N", "VIDEO_TEST_N", "validation_videos", "evaluation_videos", "figures",
           "tracking_figures", "group_rows", "tracking_rows", "budget_rows", "pose_along", "FIGURES"]

FIGURES = ("nme", "baseline_nme", "pose_mae", "pose_mae_baseline", "pose_fr", "pose_fr_baseline",
           "confidence_ap", "confidence_ap_baseline", "tracking_nme", "tracking_fr", "lost_rate",
           "calls_saved", "last_frame_nme")
"""The keys of :func:`figures` (fractions, degrees for pose; NaN where a model has no such output)."""


def _shape(x) -> str:
    if isinstance(x, dict):
        return ", ".join(_shape(v) for v in x.values())
    return " x ".join(str(d) for d in x.shape[1:])


def atpn_shape_table(model: nn.Module) -> list[dict]:
    """Every part of an ATPN in the order it runs (one zero image of its input size).

    Returns one row per part: ``part``, ``computes`` (Xia's symbols), ``output`` (shapes of one
    image, ``C x H x W``; several levels separated by commas), ``params`` and ``macs``.
    """
    layers = paper_layers(model)                 # refuses anything but an ATPN
    h, w = model.input_size
    rows = []
    for r in complexity.shape_table(model, (1, 3, h, w), layers):   # the order it ran
        if r["path"] == "pose" and model.flags["heatmap_fusion"]:    # Eq. 1 runs before the branches
            stride = LEVELS[0]
            rows.append({"part": "cheap heatmap", "computes": "Eq. 1 from S1 (no weights)",
                         "output": f"1 x {h // stride} x {w // stride}", "params": 0, "macs": 0})
        out = {s: r["output"][s] for s in LEVELS} if r["path"] == "backbone" else r["output"]
        rows.append({"part": r["part"], "computes": r["computes"], "output": _shape(out),
                     "params": r["params"], "macs": r["macs"]})
    return rows


def tracking_figures(summary: dict) -> dict:
    """The tracking keys of :data:`FIGURES` from :func:`lmk.track.summarize`'s dict."""
    return {"tracking_nme": summary["mean_nme"], "tracking_fr": summary["failure_rate"],
            "lost_rate": summary["lost_rate"], "calls_saved": summary["detector_calls_saved"],
            "last_frame_nme": summary["baseline_mean_nme"]}


def figures(source, tracks=None) -> dict:
    """One model's figures (:data:`FIGURES`), from a zoo name or an ``lmk.recipes.Result``.

    A zoo entry gives the numbers recorded when it was built (and checked by ``python -m
    lmk.zoo verify`` against today's code). A run gives its validation evaluation; tracking
    figures come from ``tracks`` (a list of :class:`lmk.track.TrackResult`) when given.
    """
    out = dict.fromkeys(FIGURES, float("nan"))
    if isinstance(source, str):
        e = zoo.entry(source)
        main = e["metrics"][e["method"]]
        out.update(nme=main["nme"], baseline_nme=e["baseline_nme"])
        task = dict(e.get("task_metrics", {}))
        if "tracking" in task:
            out.update(tracking_figures(task.pop("tracking")))
        out.update({k: v for k, v in task.items() if k in out})
        if e["method"] == "tracking":        # a tracker's NME is its tracking NME, on every frame
            out["nme"] = out["baseline_nme"] = float("nan")
        return out
    ev = source.evaluation
    out.update(nme=ev.nme, baseline_nme=float(np.mean(source.baseline_nmes)))
    if family_of(source.config).tracker:     # its evaluation is the detector's alone: not a tracker's
        out["nme"] = out["baseline_nme"] = float("nan")
    out.update({k: v for k, v in ev.metrics.items() if k in out})
    if tracks:
        out.update(tracking_figures(summarize(tracks)))
    return out


def group_rows(groups: dict, keys=("nme", "pose_mae", "pose_fr", "confidence_ap", "tracking_nme")) -> list[dict]:
    """``{label: [figures of seed 0, seed 1, ...]}`` -> rows of per-model means (percent / degrees).

    NME, FR and AP are printed in percent, pose MAE in degrees; ``seeds`` counts the models.
    """
    rows = []
    for label, items in groups.items():
        row = {"model": label, "seeds": len(items)}
        for key in keys:
            values = np.array([it[key] for it in items], dtype=float)
            scale = 1.0 if key == "pose_mae" else 100.0
            row[key] = scale * float(np.mean(values)) if np.isfinite(values).all() else float("nan")
        rows.append(row)
    return rows


def tracking_rows(groups: dict) -> list[dict]:
    """Xia Table 4 in miniature: ``{label: [lmk.track.summarize dicts, one per seed]}`` -> rows.

    Means over seeds of the frames, detector calls, calls saved, lost frames (Xia's tracking
    failure rate), NME and FR0.1 (percent), and a last row for the last frame's truth (no motion),
    read from the first group's first summary (every tracker of a table tracks the same videos).
    """
    rows = []
    for label, sums in groups.items():
        mean = lambda key: float(np.mean([s[key] for s in sums]))      # noqa: E731
        calls = mean("detector_calls")
        rows.append({"tracker": label, "seeds": len(sums), "frames": int(mean("frames")),
                     "detector calls": int(calls) if calls.is_integer() else round(calls, 1),
                     "calls saved %": round(100 * mean("detector_calls_saved"), 2),
                     "lost %": round(100 * mean("lost_rate"), 2), "NME %": round(100 * mean("mean_nme"), 2),
                     "FR0.1 %": round(100 * mean("failure_rate"), 2)})
    first = next(iter(groups.values()))[0]
    rows.append({"tracker": "last frame's truth (no motion)", "seeds": "-",
                 "frames": first["frames"] - first["videos"], "detector calls": "-", "calls saved %": "-",
                 "lost %": "-", "NME %": round(100 * first["baseline_mean_nme"], 2),
                 "FR0.1 %": round(100 * first["baseline_failure_rate"], 2)})
    return rows


_OUTPUTS = {"atpn": lambda a: f"coordinate regression; MobileNetV3-Small x{a['width']:g}",
            "marginal": lambda a: f"1D heatmaps, L = {a['length_ratio']:g}F; MobileNetV2 x{a['width_mult']:g}"}


def _chain(name: str) -> list[dict]:
    """The zoo entries a model was trained through (``train.init_from``), itself first."""
    out = []
    while name:
        out.append(zoo.entry(name))
        name = out[-1]["recipe"]["train"].get("init_from")
    return out


def budget_rows(models: dict) -> list[dict]:
    """What differs between zoo models besides their design: ``{label: zoo name}`` -> rows.

    One row per property, one column per model, read from the manifest's recipes along each
    model's chain of ``init_from`` (a tracker: its detector, and the model that started it):
    landmark output and backbone, input size and crop margin, still faces x epochs (and whether
    augmented), video frames x epochs, parameters, and the zoo's training minutes of the chain.
    """
    props = ("landmarks from", "input, crop margin", "still faces x epochs", "video frames x epochs",
             "parameters", "training minutes (whole chain)")
    rows = [{"": p} for p in props]
    for label, name in models.items():
        chain = _chain(name)
        first = chain[-1]["recipe"]                       # the model trained from scratch
        still = [e["recipe"] for e in chain if "n_train" in e["recipe"]["data"]]
        video = [e["recipe"] for e in chain if "videos" in e["recipe"]["data"]]
        faces = ", ".join(f"{r['data']['n_train']:,} x {r['train'].get('epochs') or r['train']['stage_epochs'][0]}"
                          + (" augmented" if r["data"].get("augment") else " not augmented") for r in still)
        frames = ", ".join(f"{r['data']['videos'] * r['data']['frames']:,} x {r['train']['detector_epochs']} (detector)"
                           if r["train"]["detector_epochs"] else
                           f"{r['data']['videos'] * r['data']['frames']:,} x {r['train']['refine_epochs']} (refinement)"
                           for r in video[::-1])
        margin = first["data"].get("margin", 0.2)         # SynthFaces crops: 20 % unless set
        values = (_OUTPUTS[first["model"]](first["model_args"]), f"{first['data']['input_size']} px, {100 * margin:.0f} %",
                  faces or "-", frames or "-", f"{chain[0]['params']:,}",
                  f"{sum(e['seconds'] for e in chain) / 60:.1f}")
        for row, v in zip(rows, values):
            row[label] = v
    return rows


@torch.no_grad()
def pose_along(model, video: dict, result: TrackResult) -> np.ndarray:
    """``(T, 3)`` yaw, pitch, roll in degrees that ``model`` (an ATPN) gives on each crop the
    tracker made of ``video`` (its ``transforms``), frame by frame."""
    size = model.input_size
    crops = torch.stack([normalize_image(warp_image(frame, m, size))
                         for frame, m in zip(np.asarray(video["frames"]), result.transforms)])
    model.eval()
    return pose_degrees({"pose": model(crops)["pose"]}).numpy()


def __getattr__(name: str):
    """``shape_table``, the name notebook 06 used first, still works and warns."""
    if name == "shape_table":
        import warnings

        warnings.warn("lmk.lessons.n06_multitask.shape_table is deprecated; use atpn_shape_table", DeprecationWarning, stacklevel=2)
        return atpn_shape_table
    raise AttributeError(f"module 'lmk.lessons.n06_multitask' has no attribute {name!r}")
