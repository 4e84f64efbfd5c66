"""One small training loop for every notebook: :func:`fit` and :func:`evaluate`.

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

Optimisation follows Earp et al. (2021), Sec. 3.3: Adam, learning rate 1e-3 divided by 10 at half
and three quarters of the run (epochs 20 and 30 of 40), batch 16. Shuffling uses a generator seeded
by ``(seed, epoch)``, so a run is repeatable on CPU and a resumed run continues identically.
Checkpoints (``last.pt``, ``best.pt``) are written to a temporary file and renamed with
``os.replace``, so an interrupted save never leaves a corrupt checkpoint behind; they hold only
tensors and plain Python types and load with ``weights_only=True``, so loading one runs no code.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils._pytree import tree_map
from torch.utils.data import DataLoader

from .progress import progress

NORMS = ("inter_ocular", "inter_pupil", "bbox")
_RESUME_KEYS = ("lr", "milestones", "gamma", "batch_size", "seed", "amp")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass
class History:
    """Per-epoch record of a run; ``val_*`` are NaN on epochs without evaluation.

    NMEs and failure rates are fractions (0.05 = 5 %), AUC is in [0, 1].
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)    # mean loss over the epoch's steps
    lr: list = field(default_factory=list)            # learning rate used during the epoch
    val_nme: list = field(default_factory=list)
    val_auc: list = field(default_factory=list)
    val_fr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)       # wall time of the epoch incl. evaluation
    step_loss: list = field(default_factory=list)     # every step's loss, in order
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

    def to_dict(self) -> dict:
        """Plain Python lists of ints and floats (what ``torch.load(weights_only=True)`` accepts)."""
        d = {name: [float(v) for v in values] for name, values in asdict(self).items()
             if isinstance(values, list)}
        d["epoch"] = [int(e) for e in self.epoch]
        d["best_epoch"] = None if self.best_epoch is None else int(self.best_epoch)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: per-image NMEs, predictions and the summary metrics."""

    nmes: np.ndarray          # (M,) fractions
    predictions: np.ndarray   # (M, N, 2) input pixels
    landmarks: np.ndarray     # (M, N, 2) ground truth, input pixels
    nme: float
    auc: float
    failure_rate: float
    threshold: float


# ----------------------------------------------------------------------------- helpers
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


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def _float_outputs(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_float_outputs(o) for o in outputs)
    return outputs


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32   # DataLoader sets it from the loader's generator
    np.random.seed(seed)
    random.seed(seed)


def _loader(data, batch_size, num_workers, device, shuffle, seed=0, epoch=0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch) if shuffle else None
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, collate_fn=collate, worker_init_fn=_seed_worker,
                      pin_memory=device.type == "cuda",
                      drop_last=shuffle and len(data) > batch_size)   # no size-1 batch for BN


def _rng_state() -> dict:
    """Every RNG state as tensors and plain types, so a checkpoint loads with ``weights_only=True``."""
    np_state = np.random.get_state(legacy=False)   # {"state": {"key": uint32 (624,), "pos": int}, ...}
    version, mt_words, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                      "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                      "gauss": float(np_state["gauss"])},
            "python": [version, list(mt_words), gauss_next],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    version, mt_words, gauss_next = state["python"]
    random.setstate((version, tuple(mt_words), gauss_next))
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------- checkpoints
class CheckpointError(ValueError):
    """A checkpoint cannot be used: missing, empty, truncated, not a checkpoint, unsafe to unpickle,
    or not the run asked for. The message names the file and what was wrong."""


_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "history", "best", "config", "rng")
_ZIP_MAGIC = b"PK\x03\x04"   # torch.save writes a zip archive


def save_checkpoint(state: dict, path) -> None:
    """Write ``state`` with ``torch.save`` to a temporary file beside ``path``, then rename it.

    The temporary file is ``.<name>.<random>.tmp``; a killed process may leave one behind, and
    :func:`fit` removes those when a run starts or resumes (:func:`remove_stale_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)   # atomic: readers see the old file or the new one, never half
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temporaries(checkpoint_dir, names=("last.pt", "best.pt")) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files that interrupted :func:`save_checkpoint` calls left behind.

    Only the temporaries of ``names`` are touched; other files in the directory stay.
    Returns:
        The removed paths.
    """
    removed = []
    for name in names:
        for tmp in sorted(Path(checkpoint_dir).glob(f".{name}.*.tmp")):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _unsafe_global(message: str) -> str:
    """The ``module.name`` a weights-only unpickler refused, from its message (or a generic phrase)."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    return found.group(1) if found else "an object that is not a tensor or a plain Python type"


def load_checkpoint(path, model: nn.Module | None = None) -> dict:
    """Load a checkpoint written by :func:`fit`; if ``model`` is given, load its weights into it.

    Loading uses ``torch.load(..., weights_only=True)``: only tensors and plain Python types
    (dicts, lists, numbers, strings, None) are unpickled, so a crafted file cannot run code;
    checkpoints keep RNG states and the history in those types for that reason.

    Raises:
        CheckpointError: the file is missing, a directory, unreadable, empty, truncated, not a
            ``torch.save`` archive, holds other objects (refused, the global is named), or its
            weights do not fit ``model``. The message starts with the path.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a directory, expected a file written by torch.save")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise CheckpointError(f"checkpoint {path}: is empty (0 bytes); the run that wrote it was "
                              "interrupted or the file was copied incompletely")
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"checkpoint {path}: is not a torch.save archive (it starts with {head!r}, "
                              f"expected {_ZIP_MAGIC!r})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"checkpoint {path}: refused to unpickle {_unsafe_global(str(exc))} "
                              "(weights_only=True loads tensors and plain Python types only; "
                              "an arbitrary object could run code)") from None
    except Exception as exc:   # torch reports a cut archive as RuntimeError, a bad record as others
        first_line = str(exc).split(". ")[0].strip() or type(exc).__name__
        raise CheckpointError(f"checkpoint {path}: is truncated or corrupt ({first_line})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: holds a {type(state).__name__}, expected a dict")
    if model is not None:
        _load_weights(path, state, model)
    return state


def _load_weights(path: Path, state: dict, model: nn.Module) -> None:
    if "model" not in state:
        raise CheckpointError(f"checkpoint {path}: has no 'model' weights (keys {sorted(state)})")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: does not fit this model: {exc}") from None


def default_milestones(epochs: int) -> list[int]:
    """Earp et al. (2021), Sec. 3.3 scaled to any length: epochs 20 and 30 of 40 -> 1/2 and 3/4."""
    halves_up = (math.floor(epochs * f + 0.5) for f in (0.5, 0.75))   # not round(): 4.5 -> 5, not 4
    return sorted({m for m in halves_up if 1 <= m < epochs})


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"fit(): {name} must be an int >= {low}, got {value!r}")


def _check_data(name, data):
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
    if getattr(image, "ndim", None) != 3 or image.shape[0] != 3:
        raise ValueError(f"fit(): {name}[0]['image'] must have shape (3, H, W), got {tuple(image.shape)}")
    if getattr(landmarks, "ndim", None) != 2 or landmarks.shape[1] != 2:
        raise ValueError(f"fit(): {name}[0]['landmarks'] must have shape (N, 2), got {tuple(landmarks.shape)}")


# -------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: nn.Module, data, decode_fn, *, batch_size: int = 32, num_workers: int = 0,
             device="auto", norm: str = "inter_ocular", threshold: float = 0.08,
             amp: bool = False, show_progress: bool = False) -> Evaluation:
    """Predict every item of ``data`` and score it with ``lmk.metrics``.

    Args:
        decode_fn: model outputs -> ``(B, N, 2)`` landmarks in input pixels.
        norm: NME normalisation passed to ``lmk.metrics.nme`` (``"inter_ocular"``, ``"inter_pupil"``,
            ``"bbox"``).
        threshold: NME threshold of the AUC and the failure rate (0.08 as in Earp et al. 2021, Sec. 3.2).
    Returns:
        :class:`Evaluation` with per-image ``nmes`` ``(M,)``, ``predictions`` ``(M, N, 2)`` and the
        summary ``nme`` (mean), ``auc`` and ``failure_rate``.
    """
    from . import metrics

    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    preds, gts = [], []
    try:
        for batch in progress(_loader(data, batch_size, num_workers, dev, shuffle=False),
                              disable=not show_progress, desc="evaluate"):
            with torch.autocast(dev.type, enabled=amp):
                outputs = model(batch["image"].to(dev))
            pred = torch.as_tensor(decode_fn(_float_outputs(outputs))).detach().float().cpu()
            gt = batch["landmarks"].float()
            if pred.shape != gt.shape:
                raise ValueError(f"decode_fn returned shape {tuple(pred.shape)}, expected (B, N, 2) = "
                                 f"{tuple(gt.shape)} like batch['landmarks']")
            preds.append(pred)
            gts.append(gt)
    finally:
        model.train(was_training)
    predictions, landmarks = torch.cat(preds).numpy(), torch.cat(gts).numpy()
    nmes = np.asarray(metrics.nme(predictions.astype(np.float64), landmarks.astype(np.float64), norm=norm))
    return Evaluation(nmes=nmes, predictions=predictions, landmarks=landmarks, nme=float(nmes.mean()),
                      auc=float(metrics.auc(nmes, threshold)),
                      failure_rate=float(metrics.failure_rate(nmes, threshold)), threshold=threshold)


# ---------------------------------------------------------------------------- training
def _contiguous(outputs):
    """Outputs of a channels-last model back in the default layout (losses run faster on it)."""
    return tree_map(lambda t: t.contiguous() if isinstance(t, torch.Tensor) else t, outputs)


def _train_epoch(model, loader, loss_fn, optimizer, scaler, device, amp, epoch, epochs,
                 channels_last=False) -> list[float]:
    model.train()
    losses = []
    for step, batch in enumerate(loader, start=1):
        batch = _to_device(batch, device)
        images = batch["image"]
        with torch.autocast(device.type, enabled=amp):
            if channels_last:
                outputs = _contiguous(model(images.contiguous(memory_format=torch.channels_last)))
            else:
                outputs = model(images)
            loss = loss_fn(outputs, batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__} "
                             f"{tuple(getattr(loss, 'shape', ()))}")
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"loss is {value} at epoch {epoch}/{epochs}, step {step}/{len(loader)}; "
                                     "check the learning rate, the targets and the inputs of this batch")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(value)
    return losses


def _resume(ckpt_dir: Path, config: dict, model, optimizer, scheduler, scaler):
    """Restore a run from ``ckpt_dir/last.pt``; returns ``(history, next_epoch, best_score)``."""
    path = ckpt_dir / "last.pt"
    state = load_checkpoint(path)
    missing = [key for key in _CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path}: is not a fit() checkpoint (missing {missing})")
    done = state["epoch"]
    if done > config["epochs"]:
        raise CheckpointError(f"fit(): {path} has already completed {done} epochs but fit() was asked for "
                              f"epochs={config['epochs']}; pass epochs >= {done} or use a new checkpoint_dir")
    for key in _RESUME_KEYS:
        if state["config"].get(key) != config[key]:
            raise ValueError(f"fit(): {path} was written with {key}={state['config'].get(key)!r} but "
                             f"fit() got {key}={config[key]!r}; pass the same arguments or use a new "
                             "checkpoint_dir")
    _load_weights(path, state, model)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        history = History.from_dict(state["history"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path}: cannot restore this run "
                              f"({type(exc).__name__}: {exc})") from None
    _sync_best(ckpt_dir, state, history.best_epoch)
    return history, done + 1, state["best"]


def _sync_best(ckpt_dir: Path, last: dict, best_epoch: int | None) -> None:
    """Make ``best.pt`` agree with the best epoch that ``last.pt`` records, repairing a kill.

    At a new best epoch ``fit`` writes ``last.pt`` first, then ``best.pt`` (each atomically). A
    kill between the two leaves ``last.pt`` at epoch E with ``best_epoch == E`` and ``best.pt``
    at an older epoch (or absent). That is the only way they can disagree, and ``last.pt`` then
    holds exactly the best epoch's state, so the repair is to write it as ``best.pt``. Any other
    disagreement means the files were changed by hand, and is an error rather than a guess.
    (Writing ``best.pt`` first would be worse: a kill in between would leave the old best's
    weights overwritten by an epoch that ``last.pt`` has not recorded yet.)
    """
    best_path = ckpt_dir / "best.pt"
    held = load_checkpoint(best_path).get("epoch") if best_path.is_file() else None
    if held == best_epoch:
        return
    if best_epoch is not None and best_epoch == last["epoch"]:
        save_checkpoint(last, best_path)
        return
    raise CheckpointError(f"checkpoint {best_path}: holds epoch {held} but {ckpt_dir / 'last.pt'} records "
                          f"best epoch {best_epoch}; it cannot be repaired from last.pt (epoch "
                          f"{last['epoch']}): delete best.pt or use a new checkpoint_dir")


def fit(model: nn.Module, train_data, val_data=None, *, loss_fn, decode_fn, epochs: int = 40,
        lr: float = 1e-3, milestones=None, gamma: float = 0.1, batch_size: int = 16,
        num_workers: int = 0, device="auto", seed: int = 0, amp: bool = False,
        checkpoint_dir=None, resume: bool = False, show_progress: bool = True, eval_every: int = 1,
        norm: str = "inter_ocular", threshold: float = 0.08, channels_last: bool = False) -> History:
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
            ``best.pt`` is checked against ``last.pt`` and repaired after a kill (see ``_sync_best``).
        eval_every: evaluate every this many epochs (and always after the last one).
        norm, threshold: NME normalisation and the AUC / failure-rate threshold of the evaluation.
        channels_last: train with channels-last (NHWC) weights and activations, oneDNN's preferred
            layout on CPU (a small heatmap model at 64 px trains about 1.3x faster on one thread);
            the model keeps that layout afterwards (its outputs are the same up to float rounding).
    Adam runs as one fused kernel on CPU and CUDA (``fused=True``: the same update, fewer calls).
    Returns:
        The :class:`History`. ``best.pt`` holds the epoch with the lowest validation NME (the lowest
        training loss when there is no ``val_data``).
    Raises:
        NonFiniteLossError: the loss became NaN or infinite (epoch and step named).
        ValueError: a bad argument (named in the message).
        CheckpointError: on resume, ``last.pt`` or ``best.pt`` is unreadable or unsafe, does not fit
            the model, or has completed more epochs than ``epochs`` (both numbers named).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"fit(): model must be a torch.nn.Module, got {type(model).__name__}")
    _check_data("train_data", train_data)
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
    if resume and checkpoint_dir is None:
        raise ValueError("fit(): resume=True needs a checkpoint_dir to resume from")
    dev = resolve_device(device)
    if amp and dev.type != "cuda":
        raise ValueError(f"fit(): amp=True needs a CUDA device, got device {str(dev)!r}")

    config = {"lr": float(lr), "milestones": milestones, "gamma": float(gamma), "batch_size": batch_size,
              "seed": seed, "amp": bool(amp), "epochs": epochs}
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    if channels_last:
        model.to(dev, memory_format=torch.channels_last)
    else:
        model.to(dev)
    params = list(model.parameters())
    fused = dev.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    optimizer = torch.optim.Adam(params, lr=lr, fused=fused or None)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    history, start, best = History(), 1, math.inf

    ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    if ckpt_dir is not None:
        remove_stale_temporaries(ckpt_dir)
        if resume and (ckpt_dir / "last.pt").is_file():
            history, start, best = _resume(ckpt_dir, config, model, optimizer, scheduler, scaler)
        else:   # a fresh run replaces an earlier one: no old best.pt may outlive it
            for name in ("last.pt", "best.pt"):
                (ckpt_dir / name).unlink(missing_ok=True)

    bar = progress(range(start, epochs + 1), disable=not show_progress, desc="fit", total=epochs,
                   initial=start - 1)
    for epoch in bar:
        if hasattr(train_data, "set_epoch"):   # augmentation seeded by (seed, epoch, index)
            train_data.set_epoch(epoch)
        t0 = time.perf_counter()
        loader = _loader(train_data, batch_size, num_workers, dev, shuffle=True, seed=seed, epoch=epoch)
        current_lr = optimizer.param_groups[0]["lr"]
        losses = _train_epoch(model, loader, loss_fn, optimizer, scaler, dev, amp, epoch, epochs,
                              channels_last)
        scheduler.step()
        ev = None
        if val_data is not None and (epoch % eval_every == 0 or epoch == epochs):
            ev = evaluate(model, val_data, decode_fn, batch_size=batch_size, num_workers=num_workers,
                          device=dev, norm=norm, threshold=threshold, amp=amp)
        history.record(epoch, losses, current_lr, ev, time.perf_counter() - t0)
        score = history.train_loss[-1] if val_data is None else (ev.nme if ev is not None else None)
        improved = score is not None and score < best
        if improved:
            best, history.best_epoch = score, epoch
        if ckpt_dir is not None:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                     "history": history.to_dict(), "best": best, "config": config, "rng": _rng_state()}
            save_checkpoint(state, ckpt_dir / "last.pt")   # first: the record that _sync_best trusts
            if improved:
                save_checkpoint(state, ckpt_dir / "best.pt")
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history.train_loss[-1]:.4g}", val_nme_pct=f"{100 * history.val_nme[-1]:.2f}",
                            refresh=False)
    return history
