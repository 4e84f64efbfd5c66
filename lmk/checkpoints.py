"""Checkpoints of :func:`lmk.train.fit`: atomic writes, safe loads, RNG states and resuming.

A checkpoint is one ``torch.save`` archive of a dict (``_CHECKPOINT_KEYS``): the model, optimizer,
scheduler and AMP-scaler states, the finished epoch, the history, the best score, the run's config
and every RNG state. Two rules keep runs safe to interrupt and to share:

  * **Atomic writes.** :func:`save_checkpoint` writes a temporary file beside the target and renames
    it with ``os.replace``: a reader sees the old file or the new one, never half of one.
  * **Safe loads.** :func:`load_checkpoint` uses ``torch.load(weights_only=True)``, which unpickles
    only tensors and plain Python types, so a crafted file cannot run code. Checkpoints therefore
    hold RNG states and the history as tensors, lists and numbers (:func:`rng_state`).

``fit`` writes ``last.pt`` every epoch and then, at a new best epoch, ``best.pt``;
:func:`restore_run` and :func:`sync_best` resume from ``last.pt`` and repair ``best.pt`` after a kill.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT_NAMES = ("last.pt", "best.pt")
_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "history", "best", "config", "rng")
_ZIP_MAGIC = b"PK\x03\x04"   # torch.save writes a zip archive


class CheckpointError(ValueError):
    """A checkpoint cannot be used: missing, empty, truncated, not a checkpoint, unsafe to unpickle,
    or not the run asked for. The message names the file and what was wrong."""


# ------------------------------------------------------------------------- RNG states
def rng_state() -> dict:
    """Every RNG state as tensors and plain types, so a checkpoint loads with ``weights_only=True``."""
    np_state = np.random.get_state(legacy=False)   # {"state": {"key": uint32 (624,), "pos": int}, ...}
    version, mt_words, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                      "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                      "gauss": float(np_state["gauss"])},
            "python": [version, list(mt_words), gauss_next],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    """Restore the torch, numpy, python (and CUDA, if present) RNGs from :func:`rng_state`'s dict."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    version, mt_words, gauss_next = state["python"]
    random.setstate((version, tuple(mt_words), gauss_next))
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------ save / load
def save_checkpoint(state: dict, path) -> None:
    """Write ``state`` with ``torch.save`` to a temporary file beside ``path``, then rename it.

    The temporary file is ``.<name>.<random>.tmp``; a killed process may leave one behind, and
    ``fit`` removes those when a run starts or resumes (:func:`remove_stale_temporaries`).
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


def remove_stale_temporaries(checkpoint_dir, names=CHECKPOINT_NAMES) -> list[Path]:
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
    """Load a checkpoint written by ``fit``; if ``model`` is given, load its weights into it.

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


# --------------------------------------------------------------------------- resuming
def restore_run(path, config: dict, resume_keys, model, optimizer, scheduler, scaler) -> dict:
    """Load ``path`` (a ``last.pt``) into a fresh run's objects and RNGs; return the checkpoint dict.

    The checkpoint must be a complete ``fit`` checkpoint, have finished at most ``config["epochs"]``
    epochs, and agree with ``config`` on every key of ``resume_keys`` (a key the checkpoint lacks
    reads as None, so a setting added later with a None default accepts older checkpoints).

    Raises:
        CheckpointError: unreadable or incomplete file, more epochs done than asked for, or states
            that do not fit the model / optimizer (both sides named).
        ValueError: a setting of ``resume_keys`` differs (the key and both values named).
    """
    path = Path(path)
    state = load_checkpoint(path)
    missing = [key for key in _CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path}: is not a fit() checkpoint (missing {missing})")
    done = state["epoch"]
    if done > config["epochs"]:
        raise CheckpointError(f"fit(): {path} has already completed {done} epochs but fit() was asked for "
                              f"epochs={config['epochs']}; pass epochs >= {done} or use a new checkpoint_dir")
    for key in resume_keys:
        if state["config"].get(key) != config[key]:
            raise ValueError(f"fit(): {path} was written with {key}={state['config'].get(key)!r} but "
                             f"fit() got {key}={config[key]!r}; pass the same arguments or use a new "
                             "checkpoint_dir")
    _load_weights(path, state, model)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path}: cannot restore this run "
                              f"({type(exc).__name__}: {exc})") from None
    return state


def sync_best(ckpt_dir, last: dict, best_epoch: int | None) -> None:
    """Make ``best.pt`` agree with the best epoch that ``last.pt`` records, repairing a kill.

    At a new best epoch ``fit`` writes ``last.pt`` first, then ``best.pt`` (each atomically). A
    kill between the two leaves ``last.pt`` at epoch E with ``best_epoch == E`` and ``best.pt``
    at an older epoch (or absent). That is the only way they can disagree, and ``last.pt`` then
    holds exactly the best epoch's state, so the repair is to write it as ``best.pt``. Any other
    disagreement means the files were changed by hand, and is an error rather than a guess.
    (Writing ``best.pt`` first would be worse: a kill in between would leave the old best's
    weights overwritten by an epoch that ``last.pt`` has not recorded yet.)

    Args:
        ckpt_dir: the run's directory.
        last: the loaded ``last.pt``.
        best_epoch: the best epoch its history records (None: no epoch was scored yet).
    """
    ckpt_dir = Path(ckpt_dir)
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
