"""One recipe trained into a folder that survives a crash: checkpoints, weights and a zoo entry.

    entry = train_into("n03_sdsd", "runs/n03_sdsd", scale="full", device="cuda", precision="bf16")

The folder ``out_dir`` then holds:

* ``checkpoints/``: ``fit``'s ``last.pt`` / ``best.pt`` (a folder per stage for multi-stage
  families). The same call again resumes there; a finished run is scored again, not retrained.
* ``run.json``: the recipe's config and how it ran. A folder holds one run: a call with other
  settings (another recipe, scale, data, seed, batch...) is refused; more epochs are fit's to judge.
* ``model.pt``: the trained state dict in its training dtype (``torch.load(path, weights_only=True)``).
* ``<name>.pt`` and ``result.json``: the zoo's packed float16 weights and the manifest entry
  that scores them (the fields of :func:`lmk.zoo.build_one`), so a run joins a zoo by copying
  ``<name>.pt`` into it and adding the entry to its manifest (:func:`add_to_zoo`).

Under ``torchrun`` every process calls :func:`train_into` with its :class:`lmk.distributed.Ranks`;
all of them train (DistributedDataParallel, :mod:`lmk.train`) and rank 0 alone writes.
``python -m lmk.recipes train NAME ...`` is the command line of this function.
:func:`train_run` is its first half (the folder, checkpoints, ``run.json`` and ``model.pt``,
returning the trained :class:`lmk.families.Result` unscored): the notebooks train their recipes
through it (:func:`lmk.experiments.train`), one folder per recipe under their ``RUN_DIR``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from . import recipes, store, zoo
from .distributed import Ranks
from .train import Execution

__all__ = ["train_into", "train_run", "merged", "epoch_overrides", "add_to_zoo", "RUN_FILE", "RESULT_FILE", "MODEL_FILE"]

RUN_FILE, RESULT_FILE, MODEL_FILE = "run.json", "result.json", "model.pt"
_EPOCH_KEYS = ("epochs", "stage_epochs", "detector_epochs", "refine_epochs")


def epoch_overrides(cfg: dict, epochs: int) -> dict:
    """``{"train": ...}`` overrides that give every trained stage of a config ``epochs`` epochs.

    One-stage recipes have ``epochs``; ATPN has ``stage_epochs`` (a stage with 0 stays skipped);
    Yin's tracker has ``detector_epochs`` and ``refine_epochs`` (likewise).
    """
    t = cfg["train"]
    if "stage_epochs" in t:
        return {"train": {"stage_epochs": [epochs if e else 0 for e in t["stage_epochs"]]}}
    if "detector_epochs" in t:
        return {"train": {k: epochs if t[k] else 0 for k in ("detector_epochs", "refine_epochs")}}
    return {"train": {"epochs": epochs}}


def _write_json(obj, path: Path) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def _save(state: dict, path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        torch.save(state, f)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def _comparable(record: dict) -> dict:
    """A run record without its epochs (more epochs continue a run; fit checks the schedule)."""
    r = json.loads(json.dumps(record))
    r["config"]["train"] = {k: v for k, v in r["config"]["train"].items() if k not in _EPOCH_KEYS}
    return r


def _claim(out: Path, record: dict) -> None:
    """Refuse a folder whose ``run.json`` records a run with other settings than ``record``."""
    path = out / RUN_FILE
    if path.is_file():
        old, new = _comparable(json.loads(path.read_text())), _comparable(record)
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(f"{out} holds a run with other settings ({', '.join(changed)} differ; see "
                             f"{path}); train into another folder or delete this one")


def merged(*overrides) -> dict | None:
    """``{"model_args", "data", "train"}`` overrides merged section by section (later ones win)."""
    out = {}
    for o in overrides:
        for section, changes in (o or {}).items():
            out.setdefault(section, {}).update(changes)
    return out or None


def train_run(recipe, out_dir, scale: str = "fast", *, data: str = "synthetic", data_root=None,
              seed: int | None = None, n_train: int | None = None, n_val: int | None = None,
              epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
              overrides: dict | None = None, device="auto", execution: Execution | None = None,
              show_progress=False, on_error: str = "raise", prepared=None, zoo_dir=None):
    """Train ``recipe`` into ``out_dir`` (checkpoints, ``run.json``, ``model.pt``), resuming there.

    What :func:`train_into` does before it scores: the notebooks train their recipes through this
    (:func:`lmk.experiments.train`) and score the returned model themselves.

    Args:
        recipe: a :class:`lmk.recipes.Recipe` or its name in :data:`lmk.recipes.RECIPES`.
        lr, overrides, on_error, prepared: as :func:`lmk.recipes.run` (``overrides``: a notebook's
            ``INPUT_SIZE``, ``FILTERS``, ``STAGE_EPOCHS`` ...; recorded in ``run.json``'s config).
        the others: as :func:`train_into`.
    Returns:
        ``(result, record)``: the :class:`lmk.families.Result` and ``run.json``'s record on rank 0;
        ``(None, None)`` on other ranks.
    """
    execution = execution or Execution()
    ranks = execution.ranks or Ranks()
    out = Path(out_dir)
    name = recipe if isinstance(recipe, str) else recipe.name
    sizes = dict(seed=seed, n_train=n_train, n_val=n_val, lr=lr, batch_size=batch_size)
    cfg = recipes.configure(recipe, scale, **sizes, overrides=overrides)
    overrides = merged(overrides, None if epochs is None else epoch_overrides(cfg, int(epochs)))
    cfg = recipes.configure(recipe, scale, **sizes, overrides=overrides)
    record = {"name": name, "scale": scale, "data": data, "data_root": None if data_root is None else str(data_root),
              "config": cfg, "precision": execution.precision, "world_size": ranks.world_size}
    if ranks.writer:
        out.mkdir(parents=True, exist_ok=True)
        _claim(out, record)
        _write_json(record, out / RUN_FILE)
    ranks.barrier()
    res = recipes.run(recipe, scale, data=data, data_root=data_root, device=device,
                      checkpoint_dir=out / "checkpoints", resume=True, show_progress=show_progress,
                      on_error=on_error, prepared=prepared, overrides=overrides, zoo_dir=zoo_dir,
                      execution=execution, **sizes)
    if not ranks.writer:
        return None, None
    _save(res.model.state_dict(), out / MODEL_FILE)
    return res, record


def train_into(name: str, out_dir, scale: str = "fast", *, data: str = "synthetic", data_root=None,
               seed: int | None = None, n_train: int | None = None, n_val: int | None = None,
               epochs: int | None = None, batch_size: int | None = None, device="auto",
               execution: Execution | None = None, show_progress=False, zoo_dir=None,
               command: str = "", score: bool = True) -> dict | None:
    """Train recipe ``name`` at ``scale`` into ``out_dir``, resuming what is there; see the module.

    Args:
        name: a recipe of :data:`lmk.recipes.RECIPES`.
        out_dir: the run's folder (created).
        scale, data, data_root, seed, n_train, n_val, batch_size: as :func:`lmk.recipes.run`;
            ``batch_size`` is the global batch of a data-parallel run.
        epochs: every trained stage's epochs (:func:`epoch_overrides`).
        execution: precision, channels-last, workers, ranks (:class:`lmk.train.Execution`).
        zoo_dir: where a recipe that starts from a zoo model finds it.
        command: the command line recorded in the entry.
        score: score the float16 weights for ``result.json`` (False: write the weights only).
    Returns:
        The zoo entry on rank 0 (without ``score``: ``run.json``'s record), None on other ranks.
    """
    execution = execution or Execution()
    res, record = train_run(name, out_dir, scale, data=data, data_root=data_root, seed=seed,
                            n_train=n_train, n_val=n_val, epochs=epochs, batch_size=batch_size,
                            device=device, execution=execution, show_progress=show_progress,
                            zoo_dir=zoo_dir)
    if res is None:
        return None
    if not score:
        return record
    out = Path(out_dir)
    entry = result_entry(res, out, command=command, threads=torch.get_num_threads(), data=data)
    entry["execution"] = {"scale": scale, "data": data, "precision": execution.precision,
                          "world_size": (execution.ranks or Ranks()).world_size, "device": str(device)}
    _write_json(entry, out / RESULT_FILE)
    return entry


def result_entry(res, folder, command: str = "", threads: int = 1, data: str = "synthetic") -> dict:
    """The zoo entry of a trained :class:`lmk.families.Result`; writes ``folder/<name>.pt``.

    Exactly as :func:`lmk.zoo.build_one` records it (:func:`lmk.zoo.entry_of`): the metrics are
    those of the float16 weights the entry ships, on the zoo's test and validation data.
    """
    return zoo.entry_of(res, folder, command=command, threads=threads, data=data)


def add_to_zoo(run_dir, zoo_dir=None) -> dict:
    """Copy a finished run's float16 weights into a zoo and add its entry to the manifest."""
    run = Path(run_dir)
    entry = json.loads((run / RESULT_FILE).read_text())
    entry = {k: v for k, v in entry.items() if k != "execution"}
    folder = store.zoo_dir(zoo_dir)
    target = folder / entry["file"]
    data = (run / entry["file"]).read_bytes()
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
        f.write(data)
    os.chmod(f.name, 0o644)
    os.replace(f.name, target)
    store.write_manifest({**store.manifest(folder), entry["name"]: entry}, folder)
    return entry

