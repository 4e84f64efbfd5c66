"""The model zoo: converged models of the course's recipes, shipped as float16 weights.

A live notebook cell has about a minute of CPU; a converged model needs several. So every
recipe of :mod:`lmk.recipes` is trained once at ``"zoo"`` scale on synthetic faces, and its
weights (``data/zoo/<name>.pt``, packed float16) and a manifest entry (``manifest.json``: the
recipe's full configuration, tags, metrics, the mean-shape baseline, sha256, per-epoch history,
torch version, git commit, command and threads) are committed. Notebooks read their tables
from here.

Two sets of faces score every model. The manifest's ``metrics`` and ``baseline_nme`` (and
``task_metrics``) are on the **held-out test faces** (``entry["test"]``: 256 faces of the
``test`` split; a tracker: 32 test videos), which no training, monitoring or recipe choice read;
``entry["validation"]`` records the same figures on the validation faces the training monitored
and the recipe choices were made on. :func:`score` and :func:`score_entry` read test faces unless
told ``split="val"``::

    names("03", strategy="SDSD", trick="none", mode="align")   # ['n03_sdsd', 'n03_sdsd_s1', 'n03_sdsd_s2']
    model, entry = load("n03_sdsd")          # eval mode, sha256 checked
    score_entry("n03_sdsd")                  # test faces: {"nme", "auc", "failure_rate", "baseline_nme", ...}
    predict("n03_sdsd", image, five_points=five)   # landmarks in the image's own RGB pixels

A zoo holds one scale. ``build --scale full`` trains every recipe at its paper's input size and
width (``"full"`` of :mod:`lmk.recipes`, on a GPU) into another folder, with a checkpoint folder
per recipe under ``<zoo>/checkpoints/`` so that the same command resumes an interrupted build;
each entry records the ``data`` it was trained on, the ``split`` and the ``scale``, ``verify``
checks an entry against its recipe at that scale, and notebooks read such a zoo through
``ZOO_DIR`` (refusing one whose data or scale is not theirs).

Every function takes ``zoo_dir`` (default: ``$LMK_ZOO_DIR``, else the checkout's ``data/zoo/``;
:mod:`lmk.store` reads and checks the files). Command line::

    python -m lmk.zoo list [--zoo-dir DIR]
    python -m lmk.zoo build [NAME ...] [--jobs 2] [--zoo-dir DIR]   # default: every recipe
    python -m lmk.zoo build --scale full --zoo-dir DIR [--device cuda]   # a full-scale zoo
    python -m lmk.zoo verify [NAME ...] [--jobs 2] [--zoo-dir DIR]  # today's code gives the manifest's numbers
    python -m lmk.zoo migrate [--zoo-dir DIR] [--jobs 2]            # bring a manifest to this schema
                                                                    # (2 -> 3 rescores on the test faces)
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from . import recipes, store
from .data import to_original
from .data.transforms import alignment_matrix, crop_matrix, normalize_image, warp_image
from .families import family_of
from .metrics import EARP_FAILURE_THRESHOLD
from .progress import progress
from .scoring import summary
from .store import ZooError, entry, manifest, names

__all__ = ["ZooError", "names", "entry", "manifest", "load", "score", "score_dataset", "validation_dataset",
           "test_dataset", "score_entry", "rescore", "entry_of", "entry_scale", "predict", "predictor", "build", "build_one", "verify", "TOLERANCE",
           "TASK_TOLERANCE", "summary"]

THRESHOLD = EARP_FAILURE_THRESHOLD
TOLERANCE = {"nme": 2e-4, "auc": 2e-3}      # verify: allowed drift (fractions); failure rate: 1 face


def __getattr__(name: str):
    """Old names that still work, with a warning (see CHANGELOG.md)."""
    if name == "evaluate":
        warnings.warn("lmk.zoo.evaluate is deprecated (lmk.evaluation.evaluate scores a model); "
                      "use lmk.zoo.score_entry", DeprecationWarning, stacklevel=2)
        return score_entry
    if name == "ZOO_DIR":
        return store.zoo_dir()
    if name in ("pack", "unpack", "PACKED", "MANIFEST"):
        return getattr(store, name)
    raise AttributeError(f"module 'lmk.zoo' has no attribute {name!r}")


# ----------------------------------------------------------------------------- loading
def load(name: str, zoo_dir=None, entries: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """``(model, entry)``: the float32 network in eval mode with the shipped weights.

    An entry with a ``base`` (a model that fine-tunes part of another zoo model, e.g. the pose and
    tracking branches of an ATPN ablation) ships only its own parts; the rest comes from the base.
    ``entries`` (default: the zoo's manifest) is where the entries are looked up.
    """
    state, e = store.read_state(name, zoo_dir, entries=entries)
    rebuild = f"rebuild it with `python -m lmk.zoo build {name}`"
    path = store.weights_path(e, zoo_dir)
    try:
        model = family_of(e["recipe"]).build_model(e["recipe"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"zoo entry {name!r} in {store.zoo_dir(zoo_dir) / store.MANIFEST}: its recipe "
                       f"record cannot build a network ({type(exc).__name__}: {exc}); {rebuild}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ZooError(f"zoo weights {path} do not fit today's network for {name} ({exc}); {rebuild}") from None
    return model.eval(), e


# ----------------------------------------------------------------------------- scoring
def validation_dataset(cfg: dict, n: int | None = None, seed: int | None = None):
    """The zoo's validation faces of a recipe config (no augmentation): monitoring and choices."""
    return family_of(cfg).evaluation_set(cfg, "val", n, seed)


def test_dataset(cfg: dict, n: int | None = None, seed: int | None = None):
    """The zoo's held-out test faces of a recipe config (no augmentation): reported figures."""
    return family_of(cfg).evaluation_set(cfg, "test", n, seed)


def score_dataset(model, cfg: dict, dataset, shape, methods=("dark",), flip: bool = False,
                  device="cpu", batch: int = 64, flip_methods=()) -> dict:
    """Score ``model`` on a data set with each decoder in ``methods`` (see :mod:`lmk.scoring`).

    Returns ``{"methods": {method: {"nme", "auc", "failure_rate", "nmes"}}, "baseline_nmes"}``.
    """
    return family_of(cfg).score_dataset(model, cfg, dataset, shape, methods, flip, device, flip_methods)


def score(model, cfg: dict, shape, n: int | None = None, seed: int | None = None, methods=None,
          flip: bool = False, flip_methods=(), split: str = "test") -> dict:
    """Score ``model`` on the zoo's ``split`` data of its family (faces, or a tracker's videos):
    the held-out ``"test"`` faces by default, ``"val"`` for the validation faces.

    ``methods`` defaults to every decoder of the model (:func:`lmk.recipes.decoders`).
    """
    return family_of(cfg).score(model, cfg, shape, n, seed, methods, flip, flip_methods, split=split)


def score_entry(name: str, n: int | None = None, seed: int | None = None, method: str | None = None,
                flip: bool = False, zoo_dir=None, split: str = "test") -> dict:
    """Score a zoo model on ``n`` freshly rendered ``split`` faces of ``seed`` (default: the
    manifest's, 256 held-out test faces; a tracker: every frame of 32 test videos).

    Returns ``nme``, ``auc``, ``failure_rate`` (fractions), ``baseline_nme`` (the entry's mean
    shape on the same faces), ``nmes`` and ``baseline_nmes`` per image (for paired comparisons),
    ``method``, ``norm``, ``name``.
    """
    model, e = load(name, zoo_dir)
    method = method or e["method"]
    faces = e["test"] if split == "test" else e["validation"]
    n = faces["n"] if n is None else n
    seed = faces["seed"] if seed is None else seed
    s = score(model, e["recipe"], e["mean_shape"], n, seed, (method,), flip, split=split)
    m = s["methods"][method]
    return {**m, "baseline_nme": float(s["baseline_nmes"].mean()), "baseline_nmes": s["baseline_nmes"],
            "method": method, "norm": e["norm"], "name": name}


def predictor(model, cfg: dict):
    """The :class:`lmk.track.Tracker` ``predict_fn`` of a zoo or trained model (ATPN, Yin's tracker)."""
    return family_of(cfg).predictor(model, cfg)


# ----------------------------------------------------------------------------- predicting
def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB (H, W, 3), got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be RGB (H, W, 3) uint8, got shape {image.shape}"
                         + (" (grayscale: stack it to 3 channels, e.g. np.dstack([g, g, g]))"
                            if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1) else ""))
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    return image


def _check_points(value, shape: tuple, name: str) -> np.ndarray:
    try:
        points = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers of shape {shape}, got {value!r}") from None
    if points.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"{name} must be finite, got {points.tolist()}")
    return points


@torch.no_grad()
def predict(name: str, image, box=None, five_points=None, method: str | None = None, zoo_dir=None) -> np.ndarray:
    """Landmarks ``(N, 2)`` in the pixels of ``image``, an ``(H, W, 3)`` uint8 **RGB** array.

    The zoo's models were trained on the synthetic face world only: on real photos expect errors
    several times larger (real-face models come from full-scale training on 300W or WFLW).
    The image goes through the recipe's own preprocessing: 5-point alignment (``five_points``
    ``(5, 2)``: eye centres, nose tip, mouth corners, e.g. from a face detector) for aligned
    models, or a square crop around ``box`` ``(x0, y0, x1, y1)`` (the face's box in image
    pixels) with the recipe's own margin for cropped ones. OpenCV reads BGR: convert with
    ``cv2.cvtColor(image, cv2.COLOR_BGR2RGB)`` first.
    """
    image = _check_image(image)                  # before the model is read: a bad image costs nothing
    model, e = load(name, zoo_dir)
    cfg = e["recipe"]
    d = cfg["data"]
    if d.get("mode", "crop") == "align":
        if five_points is None:
            raise ValueError(f"{name} was trained on 5-point aligned faces: pass five_points (5, 2)")
        given, what = _check_points(five_points, (5, 2), "five_points"), "five_points"
    else:
        if box is None:
            raise ValueError(f"{name} was trained on face-box crops: pass box (x0, y0, x1, y1)")
        given, what = _check_points(box, (4,), "box"), "box"
        if not (given[2] > given[0] and given[3] > given[1]):
            raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {given.tolist()}")
    try:
        matrix = (alignment_matrix(given, d["input_size"]) if what == "five_points"
                  else crop_matrix(given, d["input_size"], margin=d.get("margin", 0.2)))
        crop = warp_image(image, matrix, d["input_size"])
    except ValueError as exc:                    # e.g. coinciding points, a box too large to invert
        raise ValueError(f"{what} {given.tolist()} gives no usable crop: {exc}") from None
    points = family_of(cfg).predict_batch(model, cfg, normalize_image(crop)[None], method)[0]
    return to_original(points.double().numpy(), matrix)


# ---------------------------------------------------------------------------------- building
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1], text=True,
                             capture_output=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _metrics_record(s: dict) -> dict:
    return {m: {k: v for k, v in r.items() if k != "nmes"} for m, r in s["methods"].items()}


def build_one(name: str, zoo_dir=None, threads: int = 1, command: str = "", scale: str = "zoo",
              device="cpu") -> dict:
    """Train recipe ``name`` at ``scale`` (zoo: on one CPU thread); write its weights; return its entry.

    The metrics are those of the *shipped* float16 weights, reloaded into a float32 network. At
    full scale the run checkpoints into ``<zoo>/checkpoints/<name>/`` and resumes from there.
    """
    folder = store.zoo_dir(zoo_dir)
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    resumable = {} if scale == "zoo" else {"checkpoint_dir": folder / "checkpoints" / name, "resume": True}
    res = recipes.run(name, scale, threads=threads, device=device, zoo_dir=folder, **resumable)
    return entry_of(res, folder, command=command, threads=threads)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _environment() -> dict:
    """Where an entry was built: CPU, library versions, the commit and whether the tree was clean."""
    import cv2

    dirty = None
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], text=True,
                             cwd=Path(__file__).resolve().parents[1], capture_output=True, check=True)
        dirty = bool(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": _cpu_model(), "python": platform.python_version(), "numpy": np.__version__,
            "opencv": cv2.__version__, "torch": torch.__version__, "git_commit": _git_commit(),
            "git_dirty": dirty}


def entry_of(res, folder, command: str = "", threads: int = 1, data: str = "synthetic") -> dict:
    """The manifest entry of a trained :class:`lmk.families.Result`; writes ``folder/<name>.pt``.

    The weights are packed in float16 (a fine-tuning recipe ships only its ``stored`` parts); the
    metrics are those of those float16 weights reloaded into a float32 network, on the zoo's test
    and validation faces (:func:`rescore`'s fields). Used by :func:`build_one` and by a training
    run's ``result.json`` (:mod:`lmk.runs`). ``data`` names the training data (``scale``: the
    recipe's; ``split``: the split it trained on) as :func:`lmk.experiments.reads_zoo` reads them.
    """
    cfg = res.config
    name, family = cfg["name"], family_of(cfg)
    full = {k: v.float() if v.is_floating_point() else v for k, v in res.model.state_dict().items()}
    stored = cfg["train"].get("stored")            # a fine-tuned part of a base entry: ship that part
    state = {k: v for k, v in full.items() if stored is None or k.startswith(tuple(stored))}
    path = Path(folder) / f"{name}.pt"
    store.write_weights(state, path)
    base = {}
    if stored is not None:               # the base weights this run actually started from
        base = {"base": cfg["train"]["init_from"], "stored": list(stored),
                "base_sha256": res.extras["base_sha256"]}
    model = family.build_model(cfg)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict({**full, **store.to_float32(half)})
    shape = np.round(res.mean_shape, 4)             # as stored in the manifest
    extra = family.entry_extras(res)
    scored = _scored(model.eval(), cfg, shape, extra.get("mean_pose"), family.flip_methods(cfg))
    h = res.history
    env = _environment()
    return {"name": name, "notebook": cfg["notebook"], "file": path.name, "recipe": cfg,
            "data": data, "split": "train", "scale": cfg["scale"],
            "seed": cfg["train"]["seed"], "tags": cfg["tags"], "method": family.main_decoder(cfg),
            "norm": cfg["train"]["norm"], **scored,
            "mean_shape": shape.tolist(),
            "params": sum(p.numel() for p in model.parameters()),
            "sha256": store.sha256(path), "bytes": path.stat().st_size, "seconds": round(res.seconds, 1),
            "history": {"epoch": h.epoch, "train_loss": h.train_loss, "val_nme": h.val_nme,
                        "seconds": [round(x, 2) for x in h.seconds],
                        **({"val_metrics": h.val_metrics} if h.val_metrics else {})},
            "torch": torch.__version__, "git_commit": env["git_commit"], "command": command,
            "threads": threads, "environment": env, **extra, **base}


def _split_record(model, cfg: dict, shape, mean_pose, flip_methods, split: str) -> dict:
    """``{"metrics", "baseline_nme"[, "task_metrics"]}`` of a model on the zoo's ``split`` faces."""
    family = family_of(cfg)
    faces = family.zoo_faces(cfg, split)
    s = family.score(model, cfg, shape, faces["n"], faces["seed"], flip_methods=tuple(flip_methods), split=split)
    record = {"metrics": _metrics_record(s), "baseline_nme": float(s["baseline_nmes"].mean())}
    task = family.task_metrics(model, cfg, mean_pose, s, split=split)
    if task is not None:
        record["task_metrics"] = task
    return record


def _scored(model, cfg: dict, shape, mean_pose, flip_methods) -> dict:
    """The scoring fields of a schema-3 entry: test figures at the top, validation beside them."""
    family = family_of(cfg)
    test = _split_record(model, cfg, shape, mean_pose, flip_methods, "test")
    val = _split_record(model, cfg, shape, mean_pose, flip_methods, "val")
    return {**test, "test": {**family.zoo_faces(cfg, "test"), "threshold": THRESHOLD},
            "validation": {**family.zoo_faces(cfg, "val"), "threshold": THRESHOLD, **val}}


def _flip_methods_of(e: dict) -> tuple:
    return tuple(m[:-5] for m in e["metrics"] if m.endswith("+flip"))


def rescore(name: str, entries: dict, zoo_dir=None) -> dict:
    """The scoring fields of entry ``name`` (schema 2 or 3) recomputed on the test and
    validation faces from its shipped weights (no training): what :func:`store.migrate` adds."""
    model, e = load(name, zoo_dir, entries=entries)
    return _scored(model, e["recipe"], e["mean_shape"], e.get("mean_pose"), _flip_methods_of(e))


def _rescore_one(name: str, entries: dict, zoo_dir) -> tuple[str, dict]:
    torch.set_num_threads(1)
    return name, rescore(name, entries, zoo_dir)


def _rescore_all(entries: dict, zoo_dir=None, jobs: int = 2, log=print) -> dict:
    """``{name: rescore(name)}`` for every entry, in ``jobs`` one-thread processes."""
    out = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        heavy_first = sorted(entries, key=lambda n: not _scored_by_tracking(entries[n]))
        for fut in as_completed([pool.submit(_rescore_one, n, entries, zoo_dir) for n in heavy_first]):
            name, record = fut.result()
            out[name] = record
            log(f"{name:28s} test NME {100 * record['metrics'][entries[name]['method']]['nme']:5.2f} %  "
                f"validation {100 * record['validation']['metrics'][entries[name]['method']]['nme']:5.2f} %")
    return out


def entry_scale(e: dict) -> str:
    """The scale an entry was trained at (entries that do not record it: their recipe's)."""
    return e.get("scale", e["recipe"].get("scale", "zoo"))


def build(selected=None, jobs: int = 2, zoo_dir=None, log=print, scale: str = "zoo", device=None,
          threads: int = 1) -> dict:
    """Train the ``selected`` recipes (default: all) at ``scale`` in ``jobs`` processes of
    ``threads`` threads each, on ``device`` (default: the CPU at zoo scale, else the best there is).

    A zoo holds one scale: building into a zoo with entries of another scale is refused.
    """
    folder = store.zoo_dir(zoo_dir)
    if scale not in ("zoo", "full"):
        raise ZooError(f"a zoo is built at scale 'zoo' or 'full', not {scale!r}")
    folder.mkdir(parents=True, exist_ok=True)
    other = sorted(n for n, e in manifest(folder).items() if entry_scale(e) != scale)
    if other:
        raise ZooError(f"zoo {folder} holds {len(other)} entries of another scale than {scale!r} "
                       f"({', '.join(other[:3])}{' ...' if len(other) > 3 else ''}); a zoo holds one "
                       f"scale: build into another --zoo-dir")
    selected = list(selected or recipes.RECIPES)
    unknown = [n for n in selected if n not in recipes.RECIPES]
    if unknown:
        raise ZooError(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(recipes.RECIPES)}")
    command = " ".join(["python -m lmk.zoo"] + [shlex.quote(a) for a in sys.argv[1:]])
    failed = {}
    device = device or ("cpu" if scale == "zoo" else "auto")
    for wave in _waves(selected, scale):
        _build_wave(wave, jobs, folder, command, failed, log, scale, device, threads)
    if failed:
        raise ZooError("zoo build failed for " + "; ".join(f"{n} ({why})" for n, why in failed.items()))
    return manifest(folder)


def _waves(selected: list[str], scale: str = "zoo") -> list[list[str]]:
    """``selected`` in waves: a recipe that starts from another zoo entry comes after it."""
    remaining, waves = list(selected), []
    while remaining:
        base_of = {n: recipes.RECIPES[n].config(scale)["train"].get("init_from") for n in remaining}
        wave = [n for n in remaining if base_of[n] not in remaining]
        if not wave:
            raise ZooError(f"zoo recipes start from each other in a cycle: {remaining}")
        waves.append(wave)
        remaining = [n for n in remaining if n not in wave]
    return waves


def _build_wave(selected, jobs, folder, command, failed, log, scale="zoo", device="cpu", threads=1) -> None:
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(build_one, n, folder, threads, command, scale, device): n for n in selected}
        for fut in progress(as_completed(futures), total=len(futures), desc="zoo build"):
            try:
                e = fut.result()
            except Exception as exc:          # keep the other jobs' entries; report at the end
                failed[futures[fut]] = f"{type(exc).__name__}: {exc}"
                entries = manifest(folder)        # re-read: another build may have added entries
                entries.pop(futures[fut], None)   # its weights may already be replaced
                store.write_manifest(entries, folder)
                log(f"{futures[fut]:28s} FAILED ({failed[futures[fut]]})")
                continue
            store.write_manifest({**manifest(folder), e["name"]: e}, folder)
            m = e["metrics"][e["method"]]
            log(f"{e['name']:28s} NME {100 * m['nme']:5.2f} %  baseline {100 * e['baseline_nme']:5.2f} %  "
                f"({m['nme'] / e['baseline_nme']:.2f}x)  {e['seconds']:.0f} s")


# ---------------------------------------------------------------------------------- verifying
TASK_TOLERANCE = {"pose_mae": 0.05, "pose_mae_baseline": 1e-6, "pose_fr": 1.01 / 256,
                  "pose_fr_baseline": 1e-6, "confidence_ap": 2e-3, "confidence_ap_baseline": 1e-6,
                  "mean_nme": 1e-3, "failure_rate": 0.025, "baseline_mean_nme": 1e-6,
                  "lost_rate": 0.01, "detector_calls_saved": 0.01}
"""verify: allowed drift of the notebook-06 figures (degrees, fractions).

Pose and confidence: one of 256 faces. Tracking is looser, because the loop feeds each frame's
landmarks back into the next frame's crop, so float rounding that depends on the thread count or
the batch (a few 1e-7) grows along a video: ATPN's tracking NME moved by up to 4.2e-4 and its
FR0.1 by up to 5 of 512 frames between one and two threads (measured on every ATPN entry);
the tolerances are about twice that.
"""


def _close(now, shipped, limit: float) -> bool:
    """Within ``limit``; NaN only matches NaN (a model whose predictions were not finite)."""
    if now is None or shipped is None:
        return now is shipped
    if np.isnan(now) or np.isnan(shipped):
        return bool(np.isnan(now) and np.isnan(shipped))
    return abs(now - shipped) <= limit


def _check_task_metrics(name: str, shipped: dict, now: dict, where: str = "") -> list[str]:
    problems = []
    for key, value in shipped.items():
        if isinstance(value, dict):
            problems += _check_task_metrics(name, value, now.get(key, {}), f"{where}{key}.")
        elif key in TASK_TOLERANCE and _close(now.get(key), value, TASK_TOLERANCE[key]):
            continue
        elif key in TASK_TOLERANCE:
            problems.append(f"{name}: {where}{key} is {now.get(key)}, the manifest says {value} "
                            f"(tolerance {TASK_TOLERANCE[key]})")
    return problems


def verify(selected=None, zoo_dir=None, log=print, jobs: int = 1) -> list[str]:
    """Re-evaluate shipped models with today's code; return the problems found (empty: all good).

    A problem is a recipe whose current definition differs from the one recorded, missing or
    corrupt weights, a malformed entry, or a metric that moved beyond :data:`TOLERANCE` (and a
    notebook-06 figure beyond :data:`TASK_TOLERANCE`) from the manifest. Every entry is checked
    even when others fail. ``jobs > 1`` checks models in that many one-thread processes.
    """
    entries = manifest(zoo_dir)
    problems = [] if selected else [f"{n}: recipe has no zoo entry; build it with `python -m lmk.zoo build {n}`"
                                    for n in recipes.RECIPES if n not in entries]
    names_ = list(selected or entries)
    if jobs <= 1:
        for name in names_:
            found, line = _verify_one(name, zoo_dir)
            problems += found
            if line:
                log(line)
        return problems
    heavy_first = sorted(names_, key=lambda n: not _scored_by_tracking(entries.get(n)))
    found_by = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = {pool.submit(_verify_one, name, zoo_dir): name for name in heavy_first}
        for fut in as_completed(futures):
            try:
                found_by[futures[fut]], line = fut.result()
            except Exception as exc:             # a worker that died: report it, keep the rest
                found_by[futures[fut]], line = [f"{futures[fut]}: {type(exc).__name__}: {exc}"], None
            if line:
                log(line)
    return problems + [p for name in names_ for p in found_by[name]]


def _scored_by_tracking(e) -> bool:
    """Whether an entry's checks track videos (they take longest: started first)."""
    return isinstance(e, dict) and "task_metrics" in e


def _verify_one(name: str, zoo_dir=None) -> tuple[list[str], str | None]:
    """``(problems, the line to log)`` of one shipped model (see :func:`verify`); never raises."""
    try:
        return _check_one(name, zoo_dir)
    except ZooError as exc:
        return [f"{name}: {exc}"], None
    except Exception as exc:                       # report it with the entry; the others go on
        return [f"{name}: scoring failed ({type(exc).__name__}: {exc})"], None


def _check_one(name: str, zoo_dir=None) -> tuple[list[str], str | None]:
    model, e = load(name, zoo_dir)
    if name not in recipes.RECIPES:
        return [f"{name}: no recipe of that name any more (remove the entry or rebuild)"], None
    scale = entry_scale(e)
    if recipes.RECIPES[name].config(scale) != e["recipe"]:
        again = f"python -m lmk.zoo build {name}" + ("" if scale == "zoo" else f" --scale {scale}")
        return [f"{name}: its recipe at {scale} scale changed since the weights were built; rebuild it "
                f"with `{again}`"], None
    problems, lines = [], {}
    for split, record in (("test", e), ("val", e["validation"])):
        found, lines[split] = _check_split(name, model, e, record, split)
        problems += [f"{name}: {'' if split == 'test' else 'validation '}{p}" for p in found]
    return problems, (f"{name:28s} test NME {lines['test'][0]:5.2f} % (manifest {lines['test'][1]:5.2f} %)  "
                      f"validation {lines['val'][0]:5.2f} % (manifest {lines['val'][1]:5.2f} %)")


def _check_split(name: str, model, e: dict, record: dict, split: str) -> tuple[list[str], tuple]:
    """Problems of one split's figures of entry ``e`` (``record``: the entry, or its validation)."""
    family = family_of(e["recipe"])
    faces = e["test"] if split == "test" else e["validation"]
    s = family.score(model, e["recipe"], e["mean_shape"], faces["n"], faces["seed"],
                     flip_methods=_flip_methods_of(e), split=split)
    now = _metrics_record(s)
    scored = len(next(iter(s["methods"].values()))["nmes"])      # faces, or a tracker's frames
    tol = {**TOLERANCE, "failure_rate": 1.01 / scored}
    problems = []
    for method, shipped in record["metrics"].items():
        if method not in now:
            problems.append(f"decoder {method} of the manifest is no longer scored")
            continue
        for key, limit in tol.items():
            if not _close(now[method][key], shipped[key], limit):
                problems.append(f"{method} {key} is {now[method][key]:.5f}, the manifest "
                                f"says {shipped[key]:.5f} (tolerance {limit:.5f})")
    if "task_metrics" in record:
        problems += [p.split(": ", 1)[1] for p in _check_task_metrics(
            name, record["task_metrics"], family.task_metrics(model, e["recipe"], e.get("mean_pose"), s, split=split))]
    base = float(s["baseline_nmes"].mean())
    if abs(base - record["baseline_nme"]) > TOLERANCE["nme"]:
        problems.append(f"mean-shape baseline {base:.5f}, manifest {record['baseline_nme']:.5f}")
    return problems, (100 * now[e["method"]]["nme"], 100 * record["metrics"][e["method"]]["nme"])


# -------------------------------------------------------------------------------- command line
def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmk.zoo", description=__doc__.split("\n")[0])
    parser.add_argument("--zoo-dir", default=None,
                        help=f"the zoo folder (default: ${store.ENV_VAR}, else the checkout's data/zoo)")
    sub = parser.add_subparsers(dest="command", required=True)
    zoo_opt = argparse.ArgumentParser(add_help=False)
    zoo_opt.add_argument("--zoo-dir", default=argparse.SUPPRESS, help="the zoo folder")
    sub.add_parser("list", parents=[zoo_opt], help="the shipped models and their numbers")
    b = sub.add_parser("build", parents=[zoo_opt], help="train recipes at zoo (or full) scale into the zoo")
    b.add_argument("names", nargs="*", help="recipes to build (default: all)")
    b.add_argument("--jobs", type=_positive, default=None,
                   help="parallel jobs (default 2 at zoo scale, one thread each; 1 at full scale)")
    b.add_argument("--scale", choices=("zoo", "full"), default="zoo",
                   help="zoo: the shipped CPU models; full: each paper's input size and width (a GPU), "
                        "into another --zoo-dir, resumed from <zoo>/checkpoints/ when run again")
    b.add_argument("--device", default=None, help="cpu, cuda, auto (default: cpu at zoo scale, else auto)")
    b.add_argument("--threads", type=_positive, default=None,
                   help="torch CPU threads of each job (default 1 at zoo scale, else all cores / jobs)")
    v = sub.add_parser("verify", parents=[zoo_opt], help="check that today's code reproduces the manifest")
    v.add_argument("names", nargs="*")
    v.add_argument("--jobs", type=_positive, default=2, help="parallel one-thread processes (default 2)")
    m = sub.add_parser("migrate", parents=[zoo_opt], help=f"bring the manifest to schema {store.SCHEMA} "
                       "(from 2: rescores every model on the held-out test faces, no training)")
    m.add_argument("--jobs", type=_positive, default=2, help="parallel one-thread processes (default 2)")
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _command(args) -> int:
    if args.command == "list":
        for name, e in manifest(args.zoo_dir).items():
            m = e["metrics"][e["method"]]
            print(f"{name:28s} {e['notebook']}  NME {100 * m['nme']:5.2f} %  baseline "
                  f"{100 * e['baseline_nme']:5.2f} %  {e.get('bytes', 0) / 1e6:4.2f} MB  {e.get('seconds', 0):5.0f} s")
        return 0
    if args.command == "build":
        full = args.scale != "zoo"
        jobs = args.jobs or (1 if full else 2)
        threads = args.threads or (max(1, (os.cpu_count() or 1) // jobs) if full else 1)
        build(args.names or None, jobs=jobs, zoo_dir=args.zoo_dir, scale=args.scale, device=args.device,
              threads=threads)
        return 0
    if args.command == "migrate":
        old, new = store.migrate_manifest(
            args.zoo_dir, rescore=lambda entries: _rescore_all(entries, args.zoo_dir, args.jobs))
        print(f"{store.zoo_dir(args.zoo_dir) / store.MANIFEST}: schema {old} -> {new}")
        return 0
    start = time.perf_counter()
    problems = verify(args.names or None, zoo_dir=args.zoo_dir, jobs=args.jobs)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    failing = sorted({p.split(":", 1)[0] for p in problems})
    print(f"verify: {len(problems)} problem(s){' in ' + ', '.join(failing) if failing else ''}, "
          f"{time.perf_counter() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
