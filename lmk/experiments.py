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
the test faces. With real data or ``scale="full"`` everything is trained.
"""

from __future__ import annotations

import numpy as np

from . import recipes, zoo
from .families import family_of
from .train import resolve_device


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


def outcome(recipe, *, use_zoo: bool = True, scale: str = "fast", data: str = "synthetic",
            data_root=None, device="auto", methods=None, flip: bool = False, on_error: str = "raise",
            show_progress: bool = False, zoo_dir=None, **run_kwargs) -> dict:
    """The outcome of one recipe (a name or a :class:`lmk.recipes.Recipe`); see the module docstring.

    Args:
        use_zoo: read the converged zoo model (synthetic data, fast scale only); else train at
            ``scale``. The zoo's models are ``"zoo"``-scale models, so ``scale="full"`` trains.
        methods: decoders to score (default: the recipe's).
        flip: also score Earp's flip test-time averaging (recipe's decoder): ``out["flip"]``.
        run_kwargs: passed to :func:`lmk.recipes.run` when training (``n_train``, ``epochs``, ...).
    """
    name = recipe if isinstance(recipe, str) else recipe.name
    if use_zoo and data == "synthetic" and scale != "full":
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
        res = recipes.run(recipe, scale, data=data, data_root=data_root, device=device,
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

