"""Training in stages (Xia's three ATPN stages, Yin's detector then refinement) that cannot mix runs.

Each stage is one :func:`lmk.train.fit` run on the same network, with its checkpoints in a
folder of its own under ``checkpoint_dir``. A stage's folder also holds ``origin.json``: the
sha256 of the weights the stage started from (the previous stage's result) and its settings.

* A fresh run (``resume=False``) clears every stage's folder before it trains anything, so no
  stage of an earlier run can be picked up later.
* A resumed run continues a stage only if that stage started from exactly the weights it starts
  from now, with the same settings (``fit``'s keyword arguments of plain values; only more
  epochs are allowed, and only if the schedule stays the same, e.g. milestones given in epochs).
  Otherwise the stage (and so every stage after it) is trained again from those weights. A
  longer stage 1 whose milestones are fractions of its epochs (Xia's ATPN) thus trains stage 1
  again and then stages 2 and 3, and the result equals an uninterrupted run with the new
  settings; ``fit`` alone would refuse to resume with other milestones.
* A stage folder with checkpoints but no ``origin.json`` (or an unreadable one) cannot be
  checked: resuming refuses with an error naming the folder.
* In a data-parallel run (``execution.ranks``) every rank makes these decisions from the same
  files, then rank 0 alone clears folders and writes ``origin.json`` while the others wait.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..checkpoints import CheckpointError
from ..distributed import Ranks
from ..train import fit

__all__ = ["ORIGIN", "state_sha256", "fit_stages"]

ORIGIN = "origin.json"


def state_sha256(model) -> str:
    """sha256 of a model's state dict (names, dtypes, shapes and values), independent of device."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).numpy().tobytes())
    return digest.hexdigest()


def _settings(kwargs: dict) -> dict:
    """The plain-valued settings of a stage, recorded beside its start weights."""
    plain = (bool, int, float, str, type(None))
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, plain):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value):
            out[key] = list(value)
    return out


def _continues(old: dict, now: dict) -> bool:
    """Whether a stage run with settings ``old`` can be continued as one with settings ``now``:
    the same settings, or more epochs on the same explicit milestones (``fit``'s default
    milestones move with the epochs, and ``fit`` resumes only on the same schedule)."""
    if {k: v for k, v in old.items() if k != "epochs"} != {k: v for k, v in now.items() if k != "epochs"}:
        return False
    if old.get("epochs") == now.get("epochs"):
        return True
    return now.get("milestones") is not None and isinstance(old.get("epochs"), int) \
        and isinstance(now.get("epochs"), int) and old["epochs"] < now["epochs"]


def _origin_matches(folder: Path, start: str, settings: dict) -> bool:
    """Whether the stage in ``folder`` started from weights ``start`` with ``settings`` that it can
    continue with (False: retrain it)."""
    has_checkpoints = any(folder.glob("*.pt"))
    path = folder / ORIGIN
    if not path.is_file():
        if has_checkpoints:
            raise CheckpointError(f"checkpoint folder {folder}: holds checkpoints but no {ORIGIN}, so "
                                  "the weights its stage started from cannot be checked; delete the "
                                  "folder or run with resume=False")
        return False
    try:
        origin = json.loads(path.read_text())
        if not isinstance(origin["start_sha256"], str) or not isinstance(origin["settings"], dict):
            raise TypeError("start_sha256 must be a string and settings an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint folder {folder}: {ORIGIN} is unreadable ({type(exc).__name__}: "
                              f"{exc}); delete the folder or run with resume=False") from None
    # through JSON, as recorded: tuples become lists, so both sides compare alike
    return origin["start_sha256"] == start and _continues(origin["settings"], json.loads(json.dumps(settings)))


def fit_stages(model, runs, *, checkpoint_dir=None, resume: bool = False, device="cpu",
               show_progress: bool = False, execution=None) -> dict:
    """Train ``model`` in place through ``runs``: ``[(key, folder name, fit keyword arguments), ...]``.

    A stage's arguments may hold ``module``: the part of ``model`` it trains (default: all of it).
    ``execution`` (:class:`lmk.train.Execution`) applies to every stage.
    Returns ``{key: History}`` of the stages run. See the module docstring for the checkpoint rules.
    """
    root = None if checkpoint_dir is None else Path(checkpoint_dir)
    ranks = getattr(execution, "ranks", None) or Ranks()
    if root is not None and not resume and ranks.writer:
        for _, folder, _ in runs:
            shutil.rmtree(root / folder, ignore_errors=True)
    histories = {}
    for key, folder, kwargs in runs:
        kwargs = dict(kwargs)
        module = kwargs.pop("module", model)
        ckpt = None if root is None else root / folder
        stage_resume = resume
        if ckpt is not None:
            start, settings = state_sha256(model), _settings(kwargs)
            ranks.barrier()                               # every rank reads the folder as it was
            if resume and ckpt.exists() and not _origin_matches(ckpt, start, settings):
                stage_resume = False                      # an earlier stage or its settings changed: anew
                ranks.barrier()
                if ranks.writer:
                    shutil.rmtree(ckpt)
            if ranks.writer:
                ckpt.mkdir(parents=True, exist_ok=True)
                (ckpt / ORIGIN).write_text(json.dumps({"start_sha256": start, "settings": settings},
                                                      indent=1) + "\n")
            ranks.barrier()
        histories[key] = fit(module, checkpoint_dir=ckpt, resume=stage_resume,
                             device=device, show_progress=show_progress, execution=execution, **kwargs)
    return histories
