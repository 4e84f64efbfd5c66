"""Scoring a trained model on a set of faces with several decoders at once.

:func:`score_dataset` runs the network once per batch and hands the same outputs to every
decoder it is given (argmax, shift, DARK ... of one heatmap; or each stage of a cascade), so a
table of decoders costs one forward pass. Earp et al.'s flip test-time averaging can be scored
alongside from one extra pass over the mirrored images. :func:`summary` turns per-image NMEs
into the figures the course reports (mean NME, AUC and failure rate at Earp's 0.08).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._pytree import tree_map

from . import metrics
from .models.heatmap import FlipAveraged, unflip_heatmaps

__all__ = ["summary", "baseline_nmes", "score_dataset"]


def summary(nmes, threshold: float = metrics.EARP_FAILURE_THRESHOLD) -> dict:
    """``{"nme", "auc", "failure_rate", "nmes"}`` of per-image NMEs (AUC and failures at ``threshold``)."""
    nmes = np.asarray(nmes)
    return {"nme": float(np.mean(nmes)), "auc": float(metrics.auc(nmes, threshold)),
            "failure_rate": float(metrics.failure_rate(nmes, threshold)), "nmes": nmes}


def baseline_nmes(shape, landmarks, norm: str, layout) -> np.ndarray:
    """Per-image NME of predicting ``shape`` ``(N, 2)`` for every image of ``landmarks`` ``(M, N, 2)``."""
    truth = np.asarray(landmarks, np.float64)
    return np.asarray(metrics.nme(np.broadcast_to(np.asarray(shape, np.float64), truth.shape).copy(),
                                  truth, norm=norm, layout=layout))


@torch.no_grad()
def score_dataset(model, dataset, decoders: dict, shape, *, norm: str, layout, flip: bool = False,
                  flip_decoders: dict | None = None, device="cpu", batch: int = 64) -> dict:
    """Score ``model`` on ``dataset`` (items with ``image`` and ``landmarks``) with named decoders.

    Args:
        decoders: ``{name: outputs -> (B, N, 2) landmarks}`` (e.g. codecs' ``decode``).
        shape: ``(N, 2)`` mean training shape: the baseline scored on the same faces.
        flip: score every decoder on Earp's flip-averaged heatmaps instead of the plain ones.
        flip_decoders: ``{name: decode}`` scored *as well* on the flip-averaged heatmaps, reusing
            the plain pass (so the mirrored images are the only extra forward pass).
    Returns:
        ``{"methods": {name: summary(...)}, "baseline_nmes": (M,)}``; only the ``(B, N, 2)``
        points of each batch are kept, never all the outputs.
    """
    flip_decoders = flip_decoders or {}
    net = (FlipAveraged(model, layout.flip_perm) if flip else model).to(device).eval()
    points, truth = {m: [] for m in (*decoders, *flip_decoders)}, []
    for start in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(start, min(start + batch, len(dataset)))]
        images = torch.stack([it["image"] for it in items]).to(device)
        out = tree_map(lambda t: t.float().cpu() if isinstance(t, torch.Tensor) else t, net(images))
        for m, decode in decoders.items():
            points[m].append(decode(out).double())
        if flip_decoders:
            mirrored = unflip_heatmaps(net(images.flip(-1)).float().cpu(), layout.flip_perm)
            averaged = 0.5 * (out + mirrored)                # as lmk.models.flip_test_heatmaps
            for m, decode in flip_decoders.items():
                points[m].append(decode(averaged).double())
        truth.append(torch.stack([it["landmarks"] for it in items]).double())
    truth = torch.cat(truth).numpy()
    per = {m: summary(metrics.nme(torch.cat(p).numpy(), truth, norm=norm, layout=layout))
           for m, p in points.items()}
    return {"methods": per, "baseline_nmes": baseline_nmes(shape, truth, norm, layout)}
