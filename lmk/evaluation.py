"""Scoring a model on a data set: :func:`evaluate` and its :class:`Evaluation`.

``evaluate(model, data, decode_fn)`` predicts every item in batches, decodes the outputs to
``(B, N, 2)`` landmarks in input pixels and scores them with ``lmk.metrics``: per-image NMEs,
their mean, the AUC and the failure rate at a threshold (Earp et al. 2021, Sec. 3.2).

The batching lives here too because training shares it: :func:`collate` stacks item dicts,
:func:`data_loader` builds the ``DataLoader`` (shuffled by a generator seeded by
``(seed, epoch)`` when training, in order when evaluating) and :func:`resolve_device` picks the
device. ``lmk.train`` re-exports every public name of this module.
"""

from __future__ import annotations

import math
import numbers
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils._pytree import tree_map
from torch.utils.data import DataLoader

from . import metrics as metrics_
from .data.multitask import landmark_mask
from .distributed import RankBatches
from .progress import progress

__all__ = ["NORMS", "Evaluation", "resolve_device", "collate", "data_loader", "evaluate", "check_metrics"]

NORMS = ("inter_ocular", "inter_pupil", "bbox")


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: per-image NMEs, predictions and the summary metrics.

    ``nmes``, ``predictions`` and ``landmarks`` hold the samples with landmarks only (the
    negatives of a multitask set carry none), in data order; ``nme``, ``auc`` and
    ``failure_rate`` are NaN when no sample has landmarks.
    """

    nmes: np.ndarray          # (M,) fractions
    predictions: np.ndarray   # (M, N, 2) input pixels
    landmarks: np.ndarray     # (M, N, 2) ground truth, input pixels
    nme: float
    auc: float
    failure_rate: float
    threshold: float
    has_landmarks: np.ndarray | None = None   # (all M,) bool: which samples had landmarks
    metrics: dict = field(default_factory=dict)   # the named metrics of evaluate(metrics=...)


# ------------------------------------------------------------------- device and batching
def resolve_device(device="auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; other strings must name an available device."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"device must be a string like 'auto', 'cpu', 'cuda', got {device!r}")
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r} is not a valid torch device ({exc})") from None
    if (dev.type == "cuda" and not torch.cuda.is_available()) or (dev.type == "mps" and not mps_ok):
        raise ValueError(f"device {device!r} was requested but is not available on this machine")
    return dev


def collate(items: list[dict]) -> dict:
    """Stack a list of item dicts: tensors/arrays/numbers become batched tensors, the rest lists."""
    keys = list(items[0])
    batch = {}
    for key in keys:
        values = [item[key] for item in items]
        first = values[0]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, np.ndarray) and first.dtype != object:
            batch[key] = torch.from_numpy(np.stack(values))
        elif isinstance(first, numbers.Number) and not isinstance(first, bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32   # DataLoader sets it from the loader's generator
    np.random.seed(seed)
    random.seed(seed)


def data_loader(data, batch_size, num_workers, device, shuffle, seed=0, epoch=0, ranks=None) -> DataLoader:
    """A ``DataLoader`` of :func:`collate`-d batches; with ``shuffle`` the order is a pure function
    of ``(seed, epoch)`` and an incomplete last batch is dropped.

    With ``ranks`` (a :class:`lmk.distributed.Ranks` of several processes) each batch is this
    rank's share of the batch of ``batch_size`` that one process would get.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch) if shuffle else None
    drop_last = shuffle and len(data) > batch_size                   # no size-1 batch for BN
    common = {"num_workers": num_workers, "collate_fn": collate, "worker_init_fn": _seed_worker,
              "pin_memory": device.type == "cuda", "generator": generator}
    if ranks is None or not ranks.distributed:
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, **common)
    order = (torch.utils.data.RandomSampler(data, generator=generator) if shuffle
             else torch.utils.data.SequentialSampler(data))
    batches = torch.utils.data.BatchSampler(order, batch_size, drop_last)
    return DataLoader(data, batch_sampler=RankBatches(batches, ranks), **common)


def check_metrics(metrics, owner: str = "evaluate()") -> dict:
    """``metrics`` as a dict of callables by name (None: no metric); else a named ``ValueError``."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise ValueError(f"{owner}: metrics must be a dict {{name: fn(outputs_list, batches) -> float}}, "
                         f"got {type(metrics).__name__}")
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name or name in ("nme", "auc", "failure_rate"):
            raise ValueError(f"{owner}: metric names must be non-empty strings other than 'nme', 'auc', "
                             f"'failure_rate', got {name!r}")
        if not callable(fn):
            raise ValueError(f"{owner}: metric {name!r} must be callable, got {type(fn).__name__}")
    return dict(metrics)


def _float(outputs):
    """Outputs (of any nesting) in float32 where they are floating (autocast gives float16)."""
    return tree_map(lambda t: t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t,
                    outputs)


def _cpu(outputs):
    return tree_map(lambda t: t.detach().cpu() if isinstance(t, torch.Tensor) else t, outputs)


@torch.no_grad()
def evaluate(model: nn.Module, data, decode_fn, *, batch_size: int = 32, num_workers: int = 0,
             device="auto", norm: str = "inter_ocular", threshold: float = 0.08, amp: bool = False,
             show_progress: bool = False, layout=None, metrics=None, autocast_dtype=None) -> Evaluation:
    """Predict every item of ``data``; landmark metrics on the samples with landmarks, plus ``metrics``.

    Args:
        decode_fn: model outputs -> ``(B, N, 2)`` landmarks in input pixels.
        norm: NME normalisation of ``lmk.metrics.nme`` (``"inter_ocular"``, ``"inter_pupil"``, ``"bbox"``).
        threshold: NME threshold of the AUC and the failure rate (0.08 as in Earp et al. 2021, Sec. 3.2).
        layout: landmark layout of the eye-based norms (default: the 68-point iBUG layout).
        metrics: ``{name: fn(outputs_list, batches) -> float}`` (see ``lmk.multitask_metrics``). The outputs
            of every batch are kept for them, so they suit small outputs (ATPN's), not heatmaps;
            without metrics nothing is kept beyond the decoded landmarks.
        amp, autocast_dtype: predict under autocast (``amp``: the device's default low precision;
            ``autocast_dtype``: this one, e.g. ``torch.bfloat16``). Images are given to the model
            in the dtype of its parameters (float64 for a float64 model).
    Returns:
        :class:`Evaluation`; ``metrics`` maps each name to its float.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    metrics = check_metrics(metrics)
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    preds, gts, masks, kept_outputs, kept_batches = [], [], [], [], []
    try:
        for batch in progress(data_loader(data, batch_size, num_workers, dev, shuffle=False),
                              disable=not show_progress, desc="evaluate"):
            with torch.autocast(dev.type, dtype=autocast_dtype, enabled=amp or autocast_dtype is not None):
                outputs = model(batch["image"].to(dev, dtype=dtype))
            outputs = _float(outputs)
            pred = torch.as_tensor(decode_fn(outputs)).detach().float().cpu()
            gt = batch["landmarks"].float()
            if pred.shape != gt.shape:
                raise ValueError(f"decode_fn returned shape {tuple(pred.shape)}, expected (B, N, 2) = "
                                 f"{tuple(gt.shape)} like batch['landmarks']")
            mask = landmark_mask(batch)
            preds.append(pred[mask])
            gts.append(gt[mask])
            masks.append(mask)
            if metrics:
                kept_outputs.append(_cpu(outputs))
                kept_batches.append({k: v for k, v in batch.items() if k != "image"})
    finally:
        model.train(was_training)
    predictions, landmarks = torch.cat(preds).numpy(), torch.cat(gts).numpy()
    if len(landmarks):
        nmes = np.asarray(metrics_.nme(predictions.astype(np.float64), landmarks.astype(np.float64), norm=norm,
                                **({} if layout is None else {"layout": layout})))
        summary = (float(nmes.mean()), float(metrics_.auc(nmes, threshold)), float(metrics_.failure_rate(nmes, threshold)))
    else:
        nmes, summary = np.zeros(0), (math.nan,) * 3
    values = {}
    for name, fn in metrics.items():
        value = fn(kept_outputs, kept_batches)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"metric {name!r} must return a number, got {type(value).__name__}")
        values[name] = float(value)
    return Evaluation(nmes=nmes, predictions=predictions, landmarks=landmarks, nme=summary[0],
                               auc=summary[1], failure_rate=summary[2], threshold=threshold,
                               has_landmarks=torch.cat(masks).numpy(), metrics=values)
