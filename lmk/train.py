"""One small training loop for every notebook: :func:`fit` (and :func:`evaluate`, re-exported).

A training run is one function call whose arguments say everything::

    codec = MarginalCodec(input_size=256, heatmap_size=768, sigma=3.0)
    history = fit(model, train_set, val_set, loss_fn=MarginalLoss(codec),
                  decode_fn=codec.decode, epochs=40, lr=1e-3, batch_size=16,
                  seed=0, checkpoint_dir="runs/1d")

Contract:
  * data sets yield dicts with ``image`` ``(3, H, W)`` float32 and ``landmarks`` ``(N, 2)`` in input
    pixels (``lmk.data`` datasets); other keys (``pose``, ``box``...) travel along in the batch.
  * ``loss_fn(outputs, batch) -> scalar tensor``, with ``outputs = model(batch["image"])`` and
    ``batch`` the collated dict on the device (see ``lmk.losses`` for ready-made ones).
  * ``decode_fn(outputs) -> (B, N, 2)`` landmarks in input pixels (e.g. a codec's ``decode``).
  * several tasks (Xia et al. 2022): samples without landmarks (negatives for a face-confidence
    branch) carry ``has_landmarks`` False and zero landmarks, never NaN (``lmk.data.multitask``);
    landmark metrics use only the other samples. ``metrics={name: fn(outputs_list, batches)}``
    adds metrics of other outputs (pose MAE, confidence AP: ``lmk.multitask_metrics``), recorded
    per epoch in ``History.val_metrics``; ``monitor`` picks the one that chooses ``best.pt``.
  * clips (Yin et al. 2020's tracker): training items may hold ``image`` ``(T, 3, H, W)`` and
    ``landmarks`` ``(T, N, 2)``, for a model and loss that take clips (``val_data=None``, as the
    evaluation scores single images; ``lmk.multitask_run.ClipMarginalLoss``).

Optimisation follows Earp et al. (2021), Sec. 3.3: Adam, learning rate 1e-3 divided by 10 at half
and three quarters of the run (epochs 20 and 30 of 40), batch 16. Shuffling uses a generator seeded
by ``(seed, epoch)``, so a run is repeatable on CPU and a resumed run continues identically.
Checkpoints (``last.pt``, ``best.pt``) are written to a temporary file and renamed with
``os.replace``, so an interrupted save never leaves a corrupt checkpoint behind; they hold only
tensors and plain Python types and load with ``weights_only=True``, so loading one runs no code
(``lmk.checkpoints``; its public names are re-exported here).

Staged training: ``freeze`` keeps parts of the model fixed for a run and ``param_groups`` gives
parts their own learning-rate multiplier, so a model is trained stage by stage in several calls
(Yan et al. 2020, Sec. 6.6: baseline first, then CropNet refinement stages; Xia et al. 2022,
Sec. 3.4: backbone and alignment branch first, then the other branches on a frozen backbone)::

    fit(model, ..., freeze=["stages.1."])                      # stage 1: backbone and first head
    fit(model, ..., freeze=["backbone."],                      # stage 2: frozen backbone,
        param_groups=[{"prefix": "stages.0.", "lr_scale": 0.1}])   # slow first head, new second head

This module is the loop itself; its parts live next to it and are re-exported here:
``lmk.evaluation`` (:class:`Evaluation`, :func:`collate`, :func:`resolve_device`, the seeded
data loader and :func:`evaluate`: the landmark metrics on the masked-in samples plus the named
``metrics`` of ``lmk.multitask_metrics``), ``lmk.param_groups`` (how ``freeze`` and ``param_groups``
become Adam groups) and ``lmk.checkpoints``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils._pytree import tree_map

from .checkpoints import (CHECKPOINT_NAMES, CheckpointError, load_checkpoint, remove_stale_temporaries,
                          restore_run, rng_state, save_checkpoint, sync_best)
from .distributed import Ranks, batchnorm_across_ranks
from .evaluation import NORMS, Evaluation, check_metrics, collate, data_loader, evaluate, resolve_device
from .param_groups import check_prefixes, frozen_parameters, split_parameters
from .progress import EPOCH_LINES, check_show_progress, epoch_line, progress

__all__ = ["NORMS", "PRECISIONS", "Execution", "NonFiniteLossError", "History", "Evaluation", "resolve_device",
           "collate",
           "default_milestones", "milestone_epochs", "merge_histories", "evaluate", "fit",
           "CheckpointError", "save_checkpoint", "load_checkpoint", "remove_stale_temporaries"]

# Settings a resumed run must share with its checkpoint; freeze / param_groups are None when unused,
# which is also what checkpoints written before they existed read as.
_RESUME_KEYS = ("lr", "milestones", "gamma", "batch_size", "seed", "amp", "freeze", "param_groups",
                "weight_decay", "monitor", "precision", "world_size")
_LANDMARK_SCORES = ("nme", "auc", "failure_rate")   # the Evaluation attributes fit can monitor


PRECISIONS = ("fp32", "bf16", "fp16", "fp64")
"""``fit``'s arithmetic: float32; bfloat16 or float16 autocast (float32 weights; float16 with a
gradient scaler, CUDA only); float64 throughout (exactness tests)."""
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Execution:
    """How a training run executes, as opposed to what it learns (the recipe).

    Args:
        precision: one of :data:`PRECISIONS`.
        channels_last: NHWC weights and activations; None keeps what the caller (a model family)
            chose. Clips ``(B, T, 3, H, W)`` always train in the default layout.
        num_workers: data loader worker processes; None keeps the caller's.
        ranks: this process's place in a data-parallel run (:class:`lmk.distributed.Ranks`);
            None or one rank: one process.
        data_cache: a folder where a model family renders synthetic faces once per data set and
            reads them back memory-mapped (:mod:`lmk.data.render_cache`); None renders into memory.
    Zoo-scale training uses none of this (``Execution()`` changes nothing).
    """

    precision: str = "fp32"
    channels_last: bool | None = None
    num_workers: int | None = None
    ranks: Ranks | None = None
    data_cache: str | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse what a device cannot train in, saying what it can."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision 'fp16' trains with a gradient scaler on CUDA only, got device "
                         f"{str(device)!r}; on the CPU use 'bf16' (autocast, no scaler needed) or 'fp32'")
    if precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise ValueError(f"precision 'bf16' runs on the CPU or CUDA, got device {str(device)!r}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("precision 'bf16': this CUDA device has no bfloat16; use 'fp16'")
    if precision == "fp64" and device.type == "mps":
        raise ValueError("precision 'fp64': Apple's MPS has no float64; use the CPU")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass
class History:
    """Per-epoch record of a run; ``val_*`` are NaN on epochs without evaluation.

    NMEs and failure rates are fractions (0.05 = 5 %), AUC is in [0, 1]. ``val_metrics`` maps the
    name of each metric passed to ``fit(metrics=...)`` to its per-epoch values (units its own).
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)    # mean loss over the epoch's steps
    lr: list = field(default_factory=list)            # learning rate used during the epoch
    val_nme: list = field(default_factory=list)
    val_auc: list = field(default_factory=list)
    val_fr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)       # wall time of the epoch incl. evaluation
    step_loss: list = field(default_factory=list)     # every step's loss, in order
    val_metrics: dict = field(default_factory=dict)   # name -> per-epoch values
    best_epoch: int | None = None

    def record(self, epoch: int, losses: list, lr: float, ev: "Evaluation | None", seconds: float) -> None:
        """Append one epoch: its step losses, learning rate, evaluation (or None) and duration."""
        self.epoch.append(epoch)
        self.train_loss.append(float(np.mean(losses)))
        self.lr.append(lr)
        self.step_loss.extend(losses)
        self.seconds.append(seconds)
        for name, attr in (("val_nme", "nme"), ("val_auc", "auc"), ("val_fr", "failure_rate")):
            getattr(self, name).append(math.nan if ev is None else getattr(ev, attr))
        extra = getattr(ev, "metrics", None) or {}
        for name in sorted(set(self.val_metrics) | set(extra)):   # a new name: NaN for earlier epochs
            values = self.val_metrics.setdefault(name, [math.nan] * (len(self.epoch) - 1))
            values.append(float(extra.get(name, math.nan)))

    def to_dict(self) -> dict:
        """Plain Python lists of ints and floats (what ``torch.load(weights_only=True)`` accepts)."""
        d = {name: [float(v) for v in values] for name, values in asdict(self).items()
             if isinstance(values, list)}
        d["epoch"] = [int(e) for e in self.epoch]
        d["val_metrics"] = {str(k): [float(v) for v in values] for k, values in self.val_metrics.items()}
        d["best_epoch"] = None if self.best_epoch is None else int(self.best_epoch)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


# ----------------------------------------------------------------------------- helpers
def _to_device(batch: dict, device: torch.device, dtype=None) -> dict:
    """The batch on ``device``; with ``dtype`` its floating tensors in that dtype (float64 runs)."""
    if dtype is not None:
        batch = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                 for k, v in batch.items()}
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def default_milestones(epochs: int) -> list[int]:
    """Earp et al. (2021), Sec. 3.3 scaled to any length: epochs 20 and 30 of 40 -> 1/2 and 3/4."""
    halves_up = (math.floor(epochs * f + 0.5) for f in (0.5, 0.75))   # not round(): 4.5 -> 5, not 4
    return sorted({m for m in halves_up if 1 <= m < epochs})


def milestone_epochs(fractions, epochs: int) -> list[int]:
    """Learning-rate milestones given as fractions of a run, as epochs (halves rounded up, at least 1).

    The one rule of every recipe and stage: 10 epochs x 0.85 -> epoch 9 (``round`` would give 8).
    """
    return sorted({max(1, math.floor(f * epochs + 0.5)) for f in fractions})


def merge_histories(histories) -> History:
    """One :class:`History` of consecutive runs (epochs numbered on; a multi-stage training).

    ``best_epoch`` is that of the last run that recorded one; a metric that a run did not record
    is NaN on its epochs.
    """
    out = History()
    for h in histories:
        offset = len(out.epoch)
        for name in ("train_loss", "lr", "val_nme", "val_auc", "val_fr", "seconds", "step_loss"):
            getattr(out, name).extend(getattr(h, name))
        out.epoch.extend(offset + e for e in range(1, len(h.epoch) + 1))
        for name in sorted(set(out.val_metrics) | set(h.val_metrics)):
            values = out.val_metrics.setdefault(name, [float("nan")] * offset)
            values.extend(h.val_metrics.get(name, [float("nan")] * len(h.epoch)))
        if h.best_epoch is not None:
            out.best_epoch = offset + h.best_epoch
    return out


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"fit(): {name} must be an int >= {low}, got {value!r}")


def _check_data(name, data, clips: bool = False):
    if data is None or not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise ValueError(f"fit(): {name} must be an indexable data set with a length, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"fit(): {name} is empty")
    item = data[0]
    if not isinstance(item, dict) or "image" not in item or "landmarks" not in item:
        got = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise ValueError(f"fit(): {name}[0] must be a dict with 'image' (3, H, W) and 'landmarks' "
                         f"(N, 2), got {got}")
    image, landmarks = item["image"], item["landmarks"]
    clip = clips and getattr(image, "ndim", None) == 4   # (T, 3, H, W) clips of T frames (Yin's tracker)
    if getattr(image, "ndim", None) != (4 if clip else 3) or image.shape[-3] != 3:
        clip_text = " (or (T, 3, H, W) for clips)" if clips else " (clips only for training)"
        raise ValueError(f"fit(): {name}[0]['image'] must have shape (3, H, W){clip_text}, got "
                         f"{tuple(getattr(image, 'shape', ()))}")
    want = "(T, N, 2) like its (T, 3, H, W) image" if clip else "(N, 2)"
    if getattr(landmarks, "ndim", None) != (3 if clip else 2) or landmarks.shape[-1] != 2 \
            or (clip and landmarks.shape[0] != image.shape[0]):
        raise ValueError(f"fit(): {name}[0]['landmarks'] must have shape {want}, got "
                         f"{tuple(getattr(landmarks, 'shape', ()))}")


# ---------------------------------------------------------------------------- training
def _contiguous(outputs):
    """Outputs of a channels-last model back in the default layout (losses run faster on it)."""
    return tree_map(lambda t: t.contiguous() if isinstance(t, torch.Tensor) else t, outputs)


def _rank_weighted(loss, samples: int, ranks) -> tuple:
    """``(loss to back-propagate, the global batch's mean loss)`` of this rank's ``samples``.

    One process minimises the mean over the global batch ``B = sum_r n_r``; rank ``r`` back-propagates
    ``(n_r W / B) L_r``, whose gradients DistributedDataParallel averages (``lmk.distributed``).
    """
    if ranks is None or not ranks.distributed:
        return loss, float(loss.detach())
    totals = torch.stack([loss.detach().double() * samples,
                          torch.tensor(float(samples), dtype=torch.float64, device=loss.device)])
    dist.all_reduce(totals)
    total_loss, batch = totals.tolist()
    return loss * (samples * ranks.world_size / batch), total_loss / batch


def _train_epoch(model, loader, loss_fn, optimizer, scaler, device, amp, epoch, epochs,
                 channels_last=False, frozen_norms=(), dtype=None, ranks=None) -> list[float]:
    model.train()
    for norm_layer in frozen_norms:   # frozen parts keep their running statistics
        norm_layer.eval()
    losses = []
    autocast = {"enabled": amp} if not isinstance(amp, torch.dtype) else {"dtype": amp, "enabled": True}
    for step, batch in enumerate(loader, start=1):
        batch = _to_device(batch, device, dtype)
        images = batch["image"]
        with torch.autocast(device.type, **autocast):
            if channels_last:
                outputs = _contiguous(model(images.contiguous(memory_format=torch.channels_last)))
            else:
                outputs = model(images)
            loss = loss_fn(outputs, batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__} "
                             f"{tuple(getattr(loss, 'shape', ()))}")
        loss, value = _rank_weighted(loss, images.shape[0], ranks)
        if not math.isfinite(value):
            raise NonFiniteLossError(f"loss is {value} at epoch {epoch}/{epochs}, step {step}/{len(loader)}; "
                                     "check the learning rate, the targets and the inputs of this batch")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(value)
    return losses


def _score(ev, monitor: str, mode: str) -> float | None:
    """The evaluation's ``monitor`` figure, negated when higher is better (lower score = better)."""
    if ev is None:
        return None
    value = getattr(ev, monitor) if monitor in _LANDMARK_SCORES else ev.metrics[monitor]
    return value if mode == "min" else -value


def _resume(ckpt_dir: Path, config: dict, model, optimizer, scheduler, scaler):
    """Restore a run from ``ckpt_dir/last.pt``; returns ``(history, next_epoch, best_score)``."""
    path = ckpt_dir / "last.pt"
    state = restore_run(path, config, _RESUME_KEYS, model, optimizer, scheduler, scaler)
    try:
        history = History.from_dict(state["history"])
    except TypeError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot restore this run (TypeError: {exc})") from None
    sync_best(ckpt_dir, state, history.best_epoch)
    return history, state["epoch"] + 1, state["best"]


# BatchNorm buffers are synced by the layers themselves (or, in a negative control, not at all)
_NO_BUFFER_BROADCAST = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                        inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False})


def fit(model: nn.Module, train_data, val_data=None, *, loss_fn, decode_fn, epochs: int = 40,
        lr: float = 1e-3, milestones=None, gamma: float = 0.1, batch_size: int = 16,
        num_workers: int = 0, device="auto", seed: int = 0, amp: bool = False,
        checkpoint_dir=None, resume: bool = False, show_progress: bool | str = True, eval_every: int = 1,
        norm: str = "inter_ocular", threshold: float = 0.08, channels_last: bool = False,
        freeze=None, param_groups=None, layout=None, metrics=None, monitor: str = "nme",
        monitor_mode: str = "min", weight_decay: float = 0.0, execution: Execution | None = None) -> History:
    """Train ``model`` in place with Adam and a step schedule; evaluate on ``val_data``.

    Args:
        model: maps ``batch["image"]`` ``(B, 3, H, W)`` to outputs that ``loss_fn`` and ``decode_fn`` take.
        train_data, val_data: data sets of dicts (see the module docstring); ``val_data`` may be None.
        loss_fn: ``(outputs, batch) -> scalar tensor``.
        decode_fn: ``outputs -> (B, N, 2)`` landmarks in input pixels.
        epochs, lr, milestones, gamma, batch_size: Adam with ``MultiStepLR``; defaults are Earp et al.
            (2021), Sec. 3.3; ``milestones=None`` puts them at 1/2 and 3/4 of ``epochs``.
        num_workers: data loader worker processes.
        device: ``"auto"`` (CUDA, MPS, CPU), or a device string.
        seed: seeds torch/numpy/python RNGs and the per-epoch shuffling.
        amp: mixed precision (CUDA only).
        checkpoint_dir: where ``last.pt`` and ``best.pt`` go (model, optimizer, scheduler, epoch,
            history, RNG states); None writes nothing. A fresh run removes earlier ``last.pt`` /
            ``best.pt`` there; every run removes temporaries that killed saves left behind.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists (else start fresh). The run
            continues exactly as if uninterrupted; a finished run returns its history at once.
            ``best.pt`` is checked against ``last.pt`` and repaired after a kill
            (``lmk.checkpoints.sync_best``).
        show_progress: ``True`` draws a progress bar, ``"epochs"`` prints one compact line per
            epoch (:func:`lmk.progress.epoch_line`), ``False`` shows nothing.
        eval_every: evaluate every this many epochs (and always after the last one).
        norm, threshold: NME normalisation and the AUC / failure-rate threshold of the evaluation.
        layout: landmark layout of the eye-based norms (default: the 68-point iBUG layout).
        channels_last: train with channels-last (NHWC) weights and activations, oneDNN's preferred
            layout on CPU (a small heatmap model at 64 px trains about 1.3x faster on one thread);
            the model keeps that layout afterwards (its outputs are the same up to float rounding).
        freeze: prefixes of parameter names (``["backbone.", "stages.0."]``; a prefix names a
            submodule or parameter, so ``"stages.1"`` covers ``stages.1.weight``, not
            ``stages.10.weight``) to keep fixed for this run: they get ``requires_grad=False`` and
            no optimiser slot, and BatchNorm layers inside them stay in eval mode, so their running
            statistics do not move either. ``requires_grad`` flags are restored when ``fit`` returns
            or fails.
        param_groups: ``[{"prefix": str, "lr_scale": float}, ...]``: parameters under ``prefix``
            train at ``lr * lr_scale`` (the schedule scales every group alike); the rest at ``lr``.
            A parameter covered by two prefixes is an error; frozen parameters stay frozen.
            ``history.lr`` records the base rate. Resuming needs the same ``freeze`` and
            ``param_groups`` (they are stored in the checkpoint's config).
        metrics: ``{name: fn(outputs_list, batches) -> float}`` computed on ``val_data`` with the
            landmark metrics (``lmk.multitask_metrics``, e.g. ``atpn_metrics()``), recorded in
            ``history.val_metrics[name]``. Samples whose ``has_landmarks`` is False are left out of
            the landmark metrics (and of ``MultitaskLoss``'s landmark and pose terms).
        monitor, monitor_mode: the validation figure that picks ``best.pt``: ``"nme"``, ``"auc"``,
            ``"failure_rate"`` or a name in ``metrics``, and whether lower (``"min"``) or higher
            (``"max"``) is better. A stage that trains no landmarks (Xia's stage 2) monitors its own
            metric, e.g. ``monitor="confidence_ap", monitor_mode="max"``.
        weight_decay: Adam's L2 penalty ``lam``: ``lam * theta`` joins the gradient of every trained
            parameter (the gradient of ``(lam / 2) * ||theta||^2``; Xia et al. 2022, Eqs. 4, 6, 8
            with ``w = lam / 2``); frozen parameters are not penalised.
        execution: precision, memory format, workers and ranks (:class:`Execution`; None: float32,
            ``amp`` and ``channels_last`` as given, one process). ``precision="fp16"`` is ``amp``.
            With several ranks (``torchrun``) the model trains wrapped in DistributedDataParallel:
            ``batch_size`` is the global batch, each rank gets its share of it, gradients are
            averaged with weights for ragged shares, BatchNorm statistics span the ranks
            (:mod:`lmk.distributed`), every rank evaluates, and rank 0 alone writes checkpoints.
    Adam runs as one fused kernel on CPU and CUDA (``fused=True``: the same update, fewer calls).
    Returns:
        The :class:`History`. ``best.pt`` holds the epoch with the best ``monitor`` (by default the
        lowest validation NME; the lowest training loss when there is no ``val_data``).
    Raises:
        NonFiniteLossError: the loss became NaN or infinite (epoch and step named).
        ValueError: a bad argument (named in the message), a ``freeze`` or ``param_groups`` prefix
            that matches no parameter, or a resume with other settings than the checkpoint's.
        CheckpointError: on resume, ``last.pt`` or ``best.pt`` is unreadable or unsafe, does not fit
            the model, or has completed more epochs than ``epochs`` (both numbers named).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"fit(): model must be a torch.nn.Module, got {type(model).__name__}")
    _check_data("train_data", train_data, clips=True)
    if val_data is not None:
        _check_data("val_data", val_data)
    for name, fn in (("loss_fn", loss_fn), ("decode_fn", decode_fn)):
        if not callable(fn):
            raise ValueError(f"fit(): {name} must be callable, got {type(fn).__name__}")
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    _check_int("num_workers", num_workers, 0)
    _check_int("eval_every", eval_every, 1)
    _check_int("seed", seed, 0)
    # numpy integers pass the checks; plain ints keep random.seed and weights-only checkpoints happy
    epochs, batch_size, num_workers, eval_every, seed = (int(v) for v in
                                                         (epochs, batch_size, num_workers, eval_every, seed))
    for name, value in (("lr", lr), ("gamma", gamma)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
            raise ValueError(f"fit(): {name} must be a positive finite number, got {value!r}")
    milestones = default_milestones(epochs) if milestones is None else list(milestones)
    for m in milestones:
        _check_int("each milestone", m, 1)
    milestones = [int(m) for m in milestones]
    if milestones != sorted(set(milestones)):
        raise ValueError(f"fit(): milestones must be strictly increasing epochs, got {milestones}")
    if norm not in NORMS:
        raise ValueError(f"fit(): norm must be one of {NORMS}, got {norm!r}")
    metrics = check_metrics(metrics, "fit()")
    if metrics and val_data is None:
        raise ValueError(f"fit(): metrics {sorted(metrics)} are computed on val_data, which is None")
    if monitor not in _LANDMARK_SCORES and monitor not in metrics:
        raise ValueError(f"fit(): monitor must be one of {_LANDMARK_SCORES} or a name in metrics "
                         f"{sorted(metrics)}, got {monitor!r}")
    if monitor_mode not in ("min", "max"):
        raise ValueError(f"fit(): monitor_mode must be 'min' or 'max', got {monitor_mode!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) \
            or not 0 <= weight_decay < math.inf:
        raise ValueError(f"fit(): weight_decay must be a finite number >= 0, got {weight_decay!r}")
    check_show_progress(show_progress, "fit(): show_progress")
    if resume and checkpoint_dir is None:
        raise ValueError("fit(): resume=True needs a checkpoint_dir to resume from")
    dev = resolve_device(device)
    if amp and dev.type != "cuda":
        raise ValueError(f"fit(): amp=True needs a CUDA device, got device {str(dev)!r}")
    execution = execution or Execution("fp16" if amp else "fp32")
    precision, ranks = execution.precision, execution.ranks or Ranks()
    if amp and precision != "fp16":
        raise ValueError(f"fit(): amp=True is precision 'fp16', but execution says {precision!r}")
    check_precision(precision, dev)
    amp = precision == "fp16"
    clips = getattr(train_data[0]["image"], "ndim", 3) == 4
    if execution.channels_last is not None:
        channels_last = execution.channels_last and not clips
    if execution.num_workers is not None:
        num_workers = int(execution.num_workers)
    freeze, groups = check_prefixes(freeze, param_groups)

    config = {"lr": float(lr), "milestones": milestones, "gamma": float(gamma), "batch_size": batch_size,
              "seed": seed, "amp": bool(amp), "epochs": epochs,
              "freeze": sorted(set(freeze)) or None,
              "param_groups": [{"prefix": prefix, "lr_scale": scale} for prefix, scale in groups] or None,
              "weight_decay": float(weight_decay) or None,
              "monitor": None if (monitor, monitor_mode) == ("nme", "min") else [monitor, monitor_mode],
              "precision": precision if precision in ("bf16", "fp64") else None,
              "world_size": ranks.world_size if ranks.distributed else None}
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    dtype = torch.float64 if precision == "fp64" else None
    if channels_last:
        model.to(dev, dtype, memory_format=torch.channels_last)
    else:
        model.to(dev, dtype)
    with contextlib.ExitStack() as stack:   # BatchNorm across ranks for this run only
        if ranks.distributed and "batchnorm" in ranks.synced:
            stack.enter_context(batchnorm_across_ranks(model))
        frozen, optimizer_groups, frozen_norms = split_parameters(model, freeze, groups, lr)
        trained = [p for group in optimizer_groups for p in group["params"]]
        fused = dev.type in ("cpu", "cuda") and all(p.is_floating_point() for p in trained)
        optimizer = torch.optim.Adam(optimizer_groups, lr=lr, weight_decay=float(weight_decay),
                                     fused=fused or None)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        history, start, best = History(), 1, math.inf

        ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if ckpt_dir is not None:
            resuming = resume and (ckpt_dir / "last.pt").is_file()
            ranks.barrier()                    # every rank has looked before rank 0 changes anything
            if ranks.writer:
                remove_stale_temporaries(ckpt_dir)
            if resuming:
                history, start, best = _resume(ckpt_dir, config, model, optimizer, scheduler, scaler)
            elif ranks.writer:   # a fresh run replaces an earlier one: no old best.pt may outlive it
                for name in CHECKPOINT_NAMES:
                    (ckpt_dir / name).unlink(missing_ok=True)
            ranks.barrier()
        autocast = _AUTOCAST.get(precision, False)

        with frozen_parameters(model, frozen, frozen_norms):   # for this run only, even if it fails
            net = model
            if ranks.distributed and "gradients" in ranks.synced:   # after freezing: DDP syncs trained parameters
                net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                              **_NO_BUFFER_BROADCAST)
            bar = progress(range(start, epochs + 1), disable=show_progress is not True, desc="fit", total=epochs,
                           initial=start - 1)
            for epoch in bar:
                if hasattr(train_data, "set_epoch"):   # augmentation seeded by (seed, epoch, index)
                    train_data.set_epoch(epoch)
                t0 = time.perf_counter()
                loader = data_loader(train_data, batch_size, num_workers, dev, shuffle=True, seed=seed,
                                     epoch=epoch, ranks=ranks)
                current_lr = optimizer.param_groups[0]["lr"]
                losses = _train_epoch(net, loader, loss_fn, optimizer, scaler, dev, autocast, epoch, epochs,
                                      channels_last, frozen_norms, dtype, ranks)
                scheduler.step()
                ev = None
                if val_data is not None and (epoch % eval_every == 0 or epoch == epochs):
                    ev = evaluate(model, val_data, decode_fn, batch_size=batch_size, num_workers=num_workers,
                                  device=dev, norm=norm, threshold=threshold, amp=amp, layout=layout,
                                  metrics=metrics, autocast_dtype=autocast or None)
                history.record(epoch, losses, current_lr, ev, time.perf_counter() - t0)
                score = history.train_loss[-1] if val_data is None else _score(ev, monitor, monitor_mode)
                improved = score is not None and score < best
                if improved:
                    best, history.best_epoch = score, epoch
                if ckpt_dir is not None and ranks.writer:
                    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                             "history": history.to_dict(), "best": best, "config": config, "rng": rng_state()}
                    save_checkpoint(state, ckpt_dir / "last.pt")   # first: the record that sync_best trusts
                    if improved:
                        save_checkpoint(state, ckpt_dir / "best.pt")
                if show_progress == EPOCH_LINES:
                    print(epoch_line(epoch, epochs, history.train_loss[-1], history.val_nme[-1],
                                     history.seconds[-1]), flush=True)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{history.train_loss[-1]:.4g}", val_nme_pct=f"{100 * history.val_nme[-1]:.2f}",
                                    refresh=False)
        return history
