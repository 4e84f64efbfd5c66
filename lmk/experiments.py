"""A notebook's experiment table, read from the zoo or trained from the recipes.

Notebooks ask for the outcome of named recipes and do not care where it comes from::

    out = outcome("n03_sdsd", use_zoo=True)                        # converged zoo model, scored live
    out = outcome("n03_sdsd", use_zoo=False, scale="full", data="300w", data_root=root)

Either way the answer has the same keys: ``nme``, ``auc``, ``failure_rate`` (fractions, with the
recipe's decoder), ``methods`` (the same per decoder), per-image ``nmes`` and the mean-shape
``baseline_nmes`` on the same faces, ``faces`` (those faces) and ``split`` (which set they are),
``source`` (``"zoo"`` or the scale it was trained at), the trained ``model`` (on the CPU, eval
mode), its ``config``, ``history`` and ``val_set`` (its validation faces). The zoo serves
synthetic faces at fast scale, scored on the zoo's held-out **test** faces (``split="test"``); a
model trained here is scored on its own validation faces (``split="val"``): live runs never read
the test faces. With real data or ``scale="full"`` everything is trained, unless a zoo built at
that scale on that data is given (``python -m lmk.zoo build --scale full --zoo-dir DIR``, a
notebook's ``ZOO_DIR``; :func:`reads_zoo` checks that it matches).

Training goes into a run folder when one is given (a notebook's ``RUN_DIR``; at full scale a new
``runs/<timestamp>-<notebook>/`` otherwise, :func:`run_folder`): each recipe trains through
:func:`lmk.runs.train_run` into ``<run folder>/<recipe name>/`` with checkpoints every epoch, and
the same call with the same folder resumes it (a finished recipe is read back, not retrained), so
a crash loses at most an epoch. Without a folder (fast scale) it trains in memory.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from . import recipes, runs, store, zoo
from .families import family_of
from .params import ParameterError
from .train import resolve_device

_CHECKOUT_RUNS = Path(__file__).resolve().parents[1] / "runs"
ZOO_SCALE = {"fast": "zoo", "full": "full"}
"""The zoo scale a notebook's ``SCALE`` reads: the shipped zoo serves ``"fast"`` notebooks."""


_OPENED: dict = {}      # one data set in memory: the runs of a notebook share it


def prepared_sources(cfg: dict, data: str = "synthetic", data_root=None, on_error: str = "raise"):
    """``(train, val)`` sources of a recipe config, opened once and shared by the runs after it.

    Families that open data the same way (the same ``sources`` method) share one opened set.
    Real sources list the files they left out (``on_error="skip"``) in ``.skipped``.
    """
    family, d = family_of(cfg), cfg["data"]
    key = (type(family).sources, data, data_root, d["render_size"], d["difficulty"], d["n_train"],
           d["n_val"], on_error)
    if key not in _OPENED:
        _OPENED.clear()
        _OPENED[key] = family.sources(cfg, data, data_root, on_error=on_error)
    return _OPENED[key]


def run_folder(run_dir, scale: str, notebook: str, log=print) -> Path | None:
    """Where a notebook's training runs go: ``run_dir``; at ``scale="full"`` without one a new
    ``runs/<timestamp>-<notebook>/`` beside the notebooks (named, so it can be given back as
    ``RUN_DIR`` to resume); ``None`` (in memory) at fast scale without one."""
    if run_dir is not None:
        folder = Path(run_dir).expanduser()
    elif scale == "full":
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = _CHECKOUT_RUNS / f"{stamp}-{notebook}"
    else:
        return None
    log(f"training runs -> {folder} (a folder per recipe; RUN_DIR={str(folder)!r} resumes them)")
    return folder


def zoo_record(e: dict) -> tuple[str, str]:
    """``(data, scale)`` a zoo entry was trained on; entries without the fields are the shipped
    zoo's (synthetic faces; the scale is in the recipe record)."""
    return e.get("data", "synthetic"), zoo.entry_scale(e)


def reads_zoo(wanted: bool, zoo_dir, data: str, scale: str) -> bool:
    """Whether a notebook reads its tables from a zoo (else it trains them).

    Without ``zoo_dir`` the shipped zoo serves synthetic faces at fast scale only. A ``zoo_dir``
    (a notebook's ``ZOO_DIR``) is read when ``wanted`` and must have been built on ``data`` at
    the scale ``scale`` reads (:data:`ZOO_SCALE`): every entry is checked.

    Raises:
        ParameterError: the zoo holds no models, or one of them was trained on other data or at
            another scale (the message names the entry, what it holds and how to build a match).
    """
    if not wanted:
        return False
    if zoo_dir is None:
        return data == "synthetic" and scale == "fast"
    entries = store.manifest(zoo_dir)
    want = (data, ZOO_SCALE[scale])
    build = (f"build one with `python -m lmk.zoo build --scale {want[1]} --zoo-dir DIR`" if data == "synthetic"
             else "`python -m lmk.zoo build` trains on synthetic faces only")
    if not entries:
        raise ParameterError(f"ZOO_DIR={str(zoo_dir)!r} holds no models; {build}, or set USE_ZOO=False "
                             f"to train here", parameter="ZOO_DIR")
    for name, e in entries.items():
        have = zoo_record(e)
        if have != want:
            raise ParameterError(f"ZOO_DIR={str(zoo_dir)!r}: entry {name} was trained on {have[0]} data at "
                                 f"{have[1]} scale, but DATA={data!r} and SCALE={scale!r} need {want[0]} data "
                                 f"at {want[1]} scale; {build}, or set USE_ZOO=False to train here",
                                 parameter="ZOO_DIR")
    return True


def seeds(n_seeds, seed: int, zoo: bool, fast: bool) -> tuple:
    """The training seeds of a table row that compares seeds (a notebook's ``N_SEEDS``).

    The zoo has seeds 0, 1, 2 (``n_seeds`` of them, default all); trained here: ``n_seeds`` from
    ``seed`` on (default one at fast scale, three at full scale).

    Raises:
        ParameterError: more seeds than the zoo has.
    """
    if zoo:
        if n_seeds is not None and n_seeds > 3:
            raise ParameterError(f"N_SEEDS={n_seeds}: the zoo has 3 seeds of each multi-seed recipe; set "
                                 f"USE_ZOO=False to train {n_seeds}", parameter="N_SEEDS")
        return (0, 1, 2)[:n_seeds or 3]
    return tuple(range(seed, seed + (n_seeds or (1 if fast else 3))))


def train(recipe, scale: str = "fast", *, run_dir=None, **run_kwargs):
    """Train one recipe: :func:`lmk.recipes.run` in memory, or with ``run_dir`` into
    ``run_dir/<recipe name>/`` through :func:`lmk.runs.train_run` (resumes what is there).

    ``run_kwargs`` are :func:`lmk.recipes.run`'s (``data``, ``device``, ``n_train``, ``prepared``...);
    ``epochs`` sets every trained stage's epochs (:func:`lmk.runs.epoch_overrides`: a tracker's
    detector and refinement, ATPN's stages), as the training command's ``--epochs`` does.
    Returns the :class:`lmk.families.Result`.
    """
    if run_kwargs.get("epochs") is not None:      # every trained stage's epochs, as the training command
        cfg = recipes.configure(recipe, scale, overrides=run_kwargs.get("overrides"))
        run_kwargs["overrides"] = runs.merged(run_kwargs.get("overrides"),
                                              runs.epoch_overrides(cfg, int(run_kwargs.pop("epochs"))))
    if run_dir is None:
        return recipes.run(recipe, scale, **run_kwargs)
    name = recipe if isinstance(recipe, str) else recipe.name
    res, _ = runs.train_run(recipe, Path(run_dir) / name, scale, **run_kwargs)
    return res


def outcome(recipe, *, use_zoo: bool = True, scale: str = "fast", data: str = "synthetic",
            data_root=None, device="auto", methods=None, flip: bool = False, on_error: str = "raise",
            show_progress: bool = False, zoo_dir=None, run_dir=None, **run_kwargs) -> dict:
    """The outcome of one recipe (a name or a :class:`lmk.recipes.Recipe`); see the module docstring.

    Args:
        use_zoo: read the converged model from the zoo at ``zoo_dir`` (a notebook decides with
            :func:`reads_zoo`); else train at ``scale``.
        zoo_dir: the zoo read (default: the shipped one), and where a recipe that starts from a
            zoo model finds it.
        run_dir: train into ``run_dir/<recipe name>/`` (checkpoints, resume; :func:`train`).
        methods: decoders to score (default: the recipe's).
        flip: also score Earp's flip test-time averaging (recipe's decoder): ``out["flip"]``.
        run_kwargs: passed to :func:`lmk.recipes.run` when training (``n_train``, ``epochs``, ...).
    """
    name = recipe if isinstance(recipe, str) else recipe.name
    if use_zoo and (zoo_dir is not None or (data == "synthetic" and scale != "full")):
        model, base = zoo.load(name, zoo_dir)
        methods = tuple(methods or (base["method"],))
        cfg, shape = base["recipe"], base["mean_shape"]
        s = zoo.score(model, cfg, shape, methods=methods)
        per = s["methods"]
        out = {"source": "zoo", "seconds": base["seconds"], "tags": base["tags"], "model": model,
               "config": cfg, "baseline_nmes": s["baseline_nmes"], "history": base["history"],
               "val_set": zoo.validation_dataset(cfg), "faces": zoo.test_dataset(cfg), "split": "test"}
        if flip:
            out["flip"] = zoo.score(model, cfg, shape, methods=methods[:1], flip=True)["methods"][methods[0]]
    else:
        cfg = recipes.configure(recipe, scale, **{k: run_kwargs.get(k) for k in
                                                  ("n_train", "n_val", "overrides")})
        prepared = prepared_sources(cfg, data, data_root, on_error)
        res = train(recipe, scale, run_dir=run_dir, data=data, data_root=data_root, device=device,
                    show_progress=show_progress, on_error=on_error, prepared=prepared,
                    zoo_dir=zoo_dir, **run_kwargs)
        methods = tuple(methods or (res.config["train"]["method"],))
        dev = resolve_device(device)
        s = zoo.score_dataset(res.model, res.config, res.val_set, res.mean_shape, methods, False, dev)
        per = s["methods"]
        out = {"source": f"trained ({scale})", "seconds": res.seconds, "tags": res.config["tags"],
               "model": res.model, "config": res.config, "baseline_nmes": s["baseline_nmes"],
               "history": res.history.to_dict(), "val_set": res.val_set, "faces": res.val_set, "split": "val"}
        if flip:
            out["flip"] = zoo.score_dataset(res.model, res.config, res.val_set, res.mean_shape,
                                        methods[:1], True, dev)["methods"][methods[0]]
    main = per[methods[0]]
    return {"name": name, **out, "methods": per, "nme": main["nme"], "auc": main["auc"],
            "failure_rate": main["failure_rate"], "nmes": main["nmes"],
            "baseline_nme": float(np.mean(out["baseline_nmes"]))}

