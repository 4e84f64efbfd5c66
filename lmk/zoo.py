"""The model zoo: converged models of the course's recipes, shipped as float16 weights.

A live notebook cell has about a minute of CPU; a converged model needs several. So every
recipe of :mod:`lmk.recipes` is trained once at ``"zoo"`` scale on synthetic faces, and its
weights (``data/zoo/<name>.pt``, a float16 state dict) and a manifest entry
(``data/zoo/manifest.json``: the recipe's full configuration, tags, metrics, the mean-shape
baseline, sha256, per-epoch history, torch version, git commit, command and threads) are
committed. Notebooks read their tables from here::

    names("03", strategy="SDSD", trick="none", mode="align")   # ['n03_sdsd', 'n03_sdsd_s1', 'n03_sdsd_s2']
    model, entry = load("n03_sdsd")          # eval mode, sha256 checked
    evaluate("n03_sdsd", n=256, seed=0)      # {"nme", "auc", "failure_rate", "baseline_nme", ...}
    predict("n03_sdsd", image, five_points=five)   # landmarks in the image's own pixels

Command line::

    python -m lmk.zoo list
    python -m lmk.zoo build [NAME ...] [--jobs 2]     # default: every recipe (make zoo)
    python -m lmk.zoo verify [NAME ...] [--jobs 2]    # today's code still gives the manifest's numbers
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from torch.utils._pytree import tree_map

from . import metrics, multitask_run, recipes
from .data import LandmarkDataset, open_source, to_original
from .data.transforms import alignment_matrix, crop_matrix, normalize_image, warp_image
from .layouts import layout_for
from .models.heatmap import unflip_heatmaps
from .progress import progress

ZOO_DIR = Path(__file__).resolve().parents[1] / "data" / "zoo"
MANIFEST = "manifest.json"
VAL_N, VAL_SEED, THRESHOLD = 256, 0, 0.08
TOLERANCE = {"nme": 2e-4, "auc": 2e-3}      # verify: allowed drift (fractions); failure rate: 1 face


class ZooError(RuntimeError):
    """A zoo file is missing, corrupt or out of date; the message names it and the fix."""


# ------------------------------------------------------------------------------ the manifest
def manifest(zoo_dir=None) -> dict:
    """``{name: entry}`` of ``data/zoo/manifest.json`` (empty if there is none yet)."""
    path = Path(zoo_dir or ZOO_DIR) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["entries"]
    except (ValueError, KeyError) as exc:
        raise ZooError(f"{path} is not a valid zoo manifest ({exc}); rebuild it with "
                       f"`python -m lmk.zoo build`") from None


def _write_manifest(entries: dict, zoo_dir: Path) -> None:
    text = json.dumps({"entries": dict(sorted(entries.items()))}, indent=1, sort_keys=False)
    with tempfile.NamedTemporaryFile("w", dir=zoo_dir, suffix=".tmp", delete=False) as f:
        f.write(text + "\n")
    os.chmod(f.name, 0o644)
    os.replace(f.name, zoo_dir / MANIFEST)


def names(notebook: str | None = None, **tags) -> list[str]:
    """Names of the shipped models of a notebook whose tags match ``tags``."""
    return [n for n, e in manifest().items() if (notebook is None or e["notebook"] == notebook)
            and all(e["tags"].get(k) == v for k, v in tags.items())]


def entry(name: str, zoo_dir=None) -> dict:
    entries = manifest(zoo_dir)
    if name not in entries:
        raise ZooError(f"no zoo model named {name!r} in {Path(zoo_dir or ZOO_DIR) / MANIFEST}; "
                       f"known: {', '.join(entries) or 'none'} (build it: python -m lmk.zoo build {name})")
    return entries[name]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(name: str, zoo_dir=None) -> tuple[torch.nn.Module, dict]:
    """``(model, entry)``: the float32 network in eval mode with the shipped weights.

    An entry with a ``base`` (a model that fine-tunes part of another zoo model, e.g. the pose and
    tracking branches of an ATPN ablation) ships only its own parts; the rest comes from the base.
    """
    e = entry(name, zoo_dir)
    path = Path(zoo_dir or ZOO_DIR) / e["file"]
    rebuild = f"rebuild it with `python -m lmk.zoo build {name}`"
    if not path.is_file():
        raise ZooError(f"zoo weights {path} are missing; {rebuild}")
    if _sha256(path) != e["sha256"]:
        raise ZooError(f"zoo weights {path} do not match the manifest's sha256 (corrupt or "
                       f"replaced); {rebuild}")
    try:
        state = _float32(unpack(torch.load(path, map_location="cpu", weights_only=True)))
        model = recipes.build_model(e["recipe"])
        if e.get("base"):
            base_model, base_entry = load(e["base"], zoo_dir)
            if base_entry["sha256"] != e["base_sha256"]:
                raise ZooError(f"{name} was built on other weights of {e['base']} than the shipped "
                               f"ones (rebuilt since?); {rebuild}")
            own = tuple(e["stored"])
            state = {**{k: v for k, v in base_model.state_dict().items() if not k.startswith(own)},
                     **state}
        model.load_state_dict(state)
    except ZooError:                   # about the base: its own message names what to rebuild
        raise
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"zoo weights {path} do not fit today's network for {name} ({exc}); "
                       f"{rebuild}") from None
    return model.eval(), e


PACKED = "lmk.zoo/flat-float16-1"
"""Format tag of :func:`pack`: one float16 vector for all floating tensors (earlier entries are
plain float16 state dicts; a zip entry per tensor costs ~0.2 MB on a small ATPN)."""


def pack(state: dict) -> dict:
    """A state dict as ``{"format", "names", "shapes", "float16": one flat vector, "other": {...}}``."""
    floats = [(k, v.detach()) for k, v in state.items() if v.is_floating_point()]
    flat = (torch.cat([v.reshape(-1).half() for _, v in floats]) if floats
            else torch.empty(0, dtype=torch.float16))
    return {"format": PACKED, "names": [k for k, _ in floats], "shapes": [list(v.shape) for _, v in floats],
            "float16": flat, "other": {k: v for k, v in state.items() if not v.is_floating_point()}}


def unpack(obj: dict) -> dict:
    """The state dict of :func:`pack` (a plain state dict is returned as it is)."""
    if obj.get("format") != PACKED:
        return obj
    counts = [int(np.prod(shape, dtype=np.int64)) for shape in obj["shapes"]]
    if sum(counts) != obj["float16"].numel():
        raise ValueError(f"packed weights hold {obj['float16'].numel()} values, the shapes {sum(counts)}")
    out, start = {}, 0
    for name, shape, count in zip(obj["names"], obj["shapes"], counts):
        out[name] = obj["float16"][start:start + count].view(shape)
        start += count
    return {**out, **obj["other"]}


def _float32(state: dict) -> dict:
    """A float16 state dict as float32 (integer buffers unchanged)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# ----------------------------------------------------------------------------- evaluation
@functools.lru_cache(maxsize=4)
def _val_source(render_size: int, difficulty: str, n: int, seed: int) -> tuple:
    src = open_source("synthetic", None, "val", n=n, size=render_size, seed=seed, difficulty=difficulty)
    return tuple(src[i] for i in range(len(src)))


def validation_dataset(cfg: dict, n: int | None = None, seed: int = VAL_SEED) -> LandmarkDataset:
    """The zoo's validation faces of a recipe config as a :class:`LandmarkDataset` (no augmentation)."""
    d, n = cfg["data"], VAL_N if n is None else n
    return LandmarkDataset(list(_val_source(d["render_size"], d["difficulty"], n, seed)),
                           d["input_size"], mode=d.get("mode", "crop"), margin=d.get("margin", 0.2))


@torch.no_grad()
def score_dataset(model, cfg: dict, dataset, shape, methods=("dark",), flip: bool = False,
                  device="cpu", batch: int = 64, flip_methods=()) -> dict:
    """Score ``model`` on a :class:`lmk.data.LandmarkDataset` with each decoder in ``methods``.

    Decodes batch by batch (only the ``(B, N, 2)`` points are kept, never all the heatmaps).
    ``flip`` scores every method with Earp's flip test-time averaging instead; ``flip_methods``
    scores those decoders with it *as well*, as ``"<method>+flip"``, reusing the plain pass (so
    the mirrored images are the only extra forward pass).
    Returns ``{"methods": {method: {"nme", "auc", "failure_rate", "nmes"}}, "baseline_nmes"}``.
    """
    codecs = {m: recipes.build_codec(cfg, m) for m in methods}
    flipped = {f"{m}+flip": recipes.build_codec(cfg, m) for m in flip_methods}
    layout = layout_for(len(np.asarray(shape)))
    net = (recipes.flip_averaged(model, layout) if flip else model).to(device).eval()
    points, truth = {m: [] for m in (*codecs, *flipped)}, []
    for start in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(start, min(start + batch, len(dataset)))]
        images = torch.stack([it["image"] for it in items]).to(device)
        out = tree_map(lambda t: t.float().cpu() if isinstance(t, torch.Tensor) else t, net(images))
        for m, codec in codecs.items():
            points[m].append(codec.decode(out).double())
        if flipped:
            mirrored = unflip_heatmaps(net(images.flip(-1)).float().cpu(), layout.flip_perm)
            averaged = 0.5 * (out + mirrored)                # as lmk.models.flip_test_heatmaps
            for m, codec in flipped.items():
                points[m].append(codec.decode(averaged).double())
        truth.append(torch.stack([it["landmarks"] for it in items]).double())
    truth = torch.cat(truth).numpy()
    norm = cfg["train"]["norm"]
    per = {m: summary(metrics.nme(torch.cat(p).numpy(), truth, norm=norm, layout=layout))
           for m, p in points.items()}
    return {"methods": per, "baseline_nmes": recipes.baseline_nmes(shape, truth, norm, layout)}


def summary(nmes) -> dict:
    """``{"nme", "auc", "failure_rate", "nmes"}`` of per-image NMEs (AUC and failures at 0.08)."""
    nmes = np.asarray(nmes)
    return {"nme": float(np.mean(nmes)), "auc": float(metrics.auc(nmes, THRESHOLD)),
            "failure_rate": float(metrics.failure_rate(nmes, THRESHOLD)), "nmes": nmes}


def score(model, cfg: dict, shape, n: int | None = None, seed: int | None = None, methods=None,
          flip: bool = False, flip_methods=()) -> dict:
    """:func:`score_dataset` on the zoo's validation faces (``n`` of ``seed``, default 256 of 0).

    A tracker (Yin's, model kind ``"yin"``) is scored on every frame of ``n`` validation videos
    of ``seed`` instead (default 8 of 7; :mod:`lmk.multitask_run`), and its baseline is the last
    frame's truth; ``"tracks"`` holds its :class:`lmk.track.TrackResult` s.

    ``methods`` defaults to every decoder of the model (:func:`lmk.recipes.decoders`: the heatmap
    decoders, or the estimate of every stage of a refinement model).
    """
    methods = recipes.decoders(cfg) if methods is None else methods
    if cfg["model"] == "yin":        # a tracker: every frame of the validation videos
        nmes, baseline, tracks = multitask_run.score_tracker(
            model, cfg, multitask_run.VIDEO_VAL_N if n is None else n,
            multitask_run.VIDEO_VAL_SEED if seed is None else seed)
        return {"methods": {"tracking": summary(nmes)}, "baseline_nmes": baseline, "tracks": tracks}
    return score_dataset(model, cfg, validation_dataset(cfg, n, VAL_SEED if seed is None else seed),
                         shape, methods, flip, flip_methods=flip_methods)


def evaluate(name: str, n: int | None = None, seed: int | None = None, method: str | None = None,
             flip: bool = False) -> dict:
    """Score a zoo model on ``n`` (default 256) freshly rendered validation faces of ``seed``
    (a tracker: on every frame of ``n`` validation videos, default 8, see :func:`score`).

    Args:
        seed: of the validation faces (default the entry's: 0; a tracker's videos: 7).
        method: decoder (default the recipe's, DARK for heatmaps).
        flip: Earp's flip test-time averaging (heatmap models).
    Returns:
        ``nme``, ``auc``, ``failure_rate`` (fractions), ``baseline_nme`` (the entry's mean shape on
        the same faces), ``nmes`` and ``baseline_nmes`` per image (for paired comparisons),
        ``method``, ``norm``.
    """
    model, e = load(name)
    method = method or e["method"]
    seed = e["validation"]["seed"] if seed is None else seed
    s = score(model, e["recipe"], e["mean_shape"], n, seed, (method,), flip)
    m = s["methods"][method]
    return {**m, "baseline_nme": float(s["baseline_nmes"].mean()), "baseline_nmes": s["baseline_nmes"],
            "method": method, "norm": e["norm"], "name": name}


@torch.no_grad()
def predict(name: str, image, box=None, five_points=None, method: str | None = None) -> np.ndarray:
    """Landmarks ``(N, 2)`` in the pixels of ``image`` ``(H, W, 3)`` uint8 RGB.

    The image goes through the recipe's own preprocessing: 5-point alignment (``five_points``
    ``(5, 2)``, e.g. a face detector's eye centres, nose tip and mouth corners) for aligned
    models, a square crop around ``box`` ``(x0, y0, x1, y1)`` for cropped ones.
    """
    model, e = load(name)
    d = e["recipe"]["data"]
    if d["mode"] == "align":
        if five_points is None:
            raise ValueError(f"{name} was trained on 5-point aligned faces: pass five_points (5, 2)")
        matrix = alignment_matrix(np.asarray(five_points, np.float64), d["input_size"])
    else:
        if box is None:
            raise ValueError(f"{name} was trained on face-box crops: pass box (x0, y0, x1, y1)")
        matrix = crop_matrix(np.asarray(box, np.float64), d["input_size"])
    crop = warp_image(image, matrix, d["input_size"])
    outputs = model(normalize_image(crop)[None])
    points = recipes.build_codec(e["recipe"], method).decode(outputs)[0]
    return to_original(points.double().numpy(), matrix)


# ---------------------------------------------------------------------------------- building
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ZOO_DIR.parent.parent, text=True,
                             capture_output=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _metrics_record(s: dict) -> dict:
    return {m: {k: v for k, v in r.items() if k != "nmes"} for m, r in s["methods"].items()}


def build_one(name: str, zoo_dir=None, threads: int = 1, command: str = "") -> dict:
    """Train recipe ``name`` at zoo scale on one CPU thread; write its weights; return its entry.

    The metrics are those of the *shipped* float16 weights, reloaded into a float32 network.
    """
    zoo_dir = Path(zoo_dir or ZOO_DIR)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    res = recipes.run(name, "zoo", threads=threads, device="cpu")
    cfg = res.config
    stored = cfg["train"].get("stored")            # a fine-tuned part of a base entry: ship that part
    state = {k: v.half() if v.is_floating_point() else v for k, v in res.model.state_dict().items()
             if stored is None or k.startswith(tuple(stored))}
    path = zoo_dir / f"{name}.pt"
    with tempfile.NamedTemporaryFile(dir=zoo_dir, suffix=".tmp", delete=False) as f:
        torch.save(pack(state), f)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)
    base = {}
    if stored is not None:               # the base weights this run actually started from
        base = {"base": cfg["train"]["init_from"], "stored": list(stored),
                "base_sha256": res.extras["base_sha256"]}
    model = recipes.build_model(cfg)
    model.load_state_dict({**res.model.state_dict(), **_float32(state)})
    flip = cfg["notebook"] == "03" and cfg["model"] == "heatmap"     # the tricks of Earp et al.
    shape = np.round(res.mean_shape, 4)             # as stored in the manifest
    val_seed = multitask_run.VIDEO_VAL_SEED if cfg["model"] == "yin" else VAL_SEED
    s = score(model.eval(), cfg, shape, seed=val_seed, flip_methods=("dark",) if flip else ())
    record = _metrics_record(s)
    extra = {}
    if cfg["model"] in ("atpn", "yin"):          # pose, confidence and tracking (notebook 06)
        pose0 = res.extras.get("mean_pose")
        extra["mean_pose"] = None if pose0 is None else np.round(pose0, 4).tolist()
        extra["task_metrics"] = multitask_run.task_metrics(model, cfg, extra["mean_pose"],
                                                           tracks=s.get("tracks"))
    h = res.history
    return {"name": name, "notebook": cfg["notebook"], "file": path.name, "recipe": cfg,
            "seed": cfg["train"]["seed"], "tags": cfg["tags"], "method": recipes.main_decoder(cfg),
            "norm": cfg["train"]["norm"], "metrics": record,
            "baseline_nme": float(s["baseline_nmes"].mean()),
            "mean_shape": shape.tolist(),
            "params": sum(p.numel() for p in model.parameters()),
            "sha256": _sha256(path), "bytes": path.stat().st_size, "seconds": round(res.seconds, 1),
            "history": {"epoch": h.epoch, "train_loss": h.train_loss, "val_nme": h.val_nme,
                        "seconds": [round(x, 2) for x in h.seconds],
                        **({"val_metrics": h.val_metrics} if h.val_metrics else {})},
            "torch": torch.__version__, "git_commit": _git_commit(), "command": command,
            "threads": threads, **extra, **base,
            "validation": {"n": multitask_run.VIDEO_VAL_N if cfg["model"] == "yin" else len(s["baseline_nmes"]),
                           "seed": val_seed, "threshold": THRESHOLD}}


def build(selected=None, jobs: int = 2, zoo_dir=None, log=print) -> dict:
    """Train the ``selected`` recipes (default: all) in ``jobs`` one-thread processes."""
    zoo_dir = Path(zoo_dir or ZOO_DIR)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    selected = list(selected or recipes.RECIPES)
    unknown = [n for n in selected if n not in recipes.RECIPES]
    if unknown:
        raise ZooError(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(recipes.RECIPES)}")
    command = " ".join(["python -m lmk.zoo"] + [shlex.quote(a) for a in sys.argv[1:]])
    failed = {}
    for wave in _waves(selected):
        _build_wave(wave, jobs, zoo_dir, command, failed, log)
    if failed:
        raise ZooError("zoo build failed for " + "; ".join(f"{n} ({why})" for n, why in failed.items()))
    return manifest(zoo_dir)


def _waves(selected: list[str]) -> list[list[str]]:
    """``selected`` in waves: a recipe that starts from another zoo entry comes after it."""
    remaining, waves = list(selected), []
    while remaining:
        base_of = {n: recipes.RECIPES[n].config("zoo")["train"].get("init_from") for n in remaining}
        wave = [n for n in remaining if base_of[n] not in remaining]
        if not wave:
            raise ZooError(f"zoo recipes start from each other in a cycle: {remaining}")
        waves.append(wave)
        remaining = [n for n in remaining if n not in wave]
    return waves


def _build_wave(selected, jobs, zoo_dir, command, failed, log) -> None:
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(build_one, n, zoo_dir, 1, command): n for n in selected}
        for fut in progress(as_completed(futures), total=len(futures), desc="zoo build"):
            try:
                e = fut.result()
            except Exception as exc:          # keep the other jobs' entries; report at the end
                failed[futures[fut]] = f"{type(exc).__name__}: {exc}"
                entries = manifest(zoo_dir)       # re-read: another build may have added entries
                entries.pop(futures[fut], None)   # its weights may already be replaced
                _write_manifest(entries, zoo_dir)
                log(f"{futures[fut]:28s} FAILED ({failed[futures[fut]]})")
                continue
            entries = {**manifest(zoo_dir), e["name"]: e}
            _write_manifest(entries, zoo_dir)
            m = e["metrics"][e["method"]]
            log(f"{e['name']:28s} NME {100 * m['nme']:5.2f} %  baseline {100 * e['baseline_nme']:5.2f} %  "
                f"({m['nme'] / e['baseline_nme']:.2f}x)  {e['seconds']:.0f} s")


TASK_TOLERANCE = {"pose_mae": 0.05, "pose_mae_baseline": 1e-6, "pose_fr": 1.01 / VAL_N,
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
    corrupt weights, or a metric that moved beyond :data:`TOLERANCE` (and a notebook-06 figure
    beyond :data:`TASK_TOLERANCE`) from the manifest. ``jobs > 1`` checks models in that many
    one-thread processes (the command line's default is 2).
    """
    entries = manifest(zoo_dir)
    problems = [] if selected else [f"{n}: recipe has no zoo entry; build it with `python -m lmk.zoo build {n}`"
                                    for n in recipes.RECIPES if n not in entries]
    names = list(selected or entries)
    if jobs <= 1:
        for name in names:
            found, line = _verify_one(name, zoo_dir)
            problems += found
            if line:
                log(line)
        return problems
    heavy_first = sorted(names, key=lambda n: entries.get(n, {}).get("recipe", {}).get("model")
                         not in ("atpn", "yin"))     # the trackers take longest: start them first
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = {pool.submit(_verify_one, name, zoo_dir): name for name in heavy_first}
        found_by = {}
        for fut in as_completed(futures):
            found_by[futures[fut]], line = fut.result()
            if line:
                log(line)
    return problems + [p for name in names for p in found_by[name]]


def _verify_one(name: str, zoo_dir=None) -> tuple[list[str], str | None]:
    """``(problems, the line to log)`` of one shipped model (see :func:`verify`)."""
    try:
        model, e = load(name, zoo_dir)
    except ZooError as exc:
        return [str(exc)], None
    if name not in recipes.RECIPES:
        return [f"{name}: no recipe of that name any more (remove the entry or rebuild)"], None
    if recipes.RECIPES[name].config("zoo") != e["recipe"]:
        return [f"{name}: its recipe changed since the weights were built; rebuild it "
                f"with `python -m lmk.zoo build {name}`"], None
    problems = []
    s = score(model, e["recipe"], e["mean_shape"], e["validation"]["n"], e["validation"]["seed"],
              flip_methods=("dark",) if "dark+flip" in e["metrics"] else ())
    now = _metrics_record(s)
    scored = len(next(iter(s["methods"].values()))["nmes"])      # faces, or a tracker's frames
    tol = {**TOLERANCE, "failure_rate": 1.01 / scored}
    for method, shipped in e["metrics"].items():
        if method not in now:
            continue
        for key, limit in tol.items():
            if not _close(now[method][key], shipped[key], limit):
                problems.append(f"{name}: {method} {key} is {now[method][key]:.5f}, the manifest "
                                f"says {shipped[key]:.5f} (tolerance {limit:.5f})")
    if "task_metrics" in e:
        problems += _check_task_metrics(name, e["task_metrics"],
                                        multitask_run.task_metrics(model, e["recipe"], e["mean_pose"],
                                                                   tracks=s.get("tracks")))
    base = float(s["baseline_nmes"].mean())
    if abs(base - e["baseline_nme"]) > TOLERANCE["nme"]:
        problems.append(f"{name}: mean-shape baseline {base:.5f}, manifest {e['baseline_nme']:.5f}")
    return problems, (f"{name:28s} NME {100 * now[e['method']]['nme']:5.2f} % (manifest "
                      f"{100 * e['metrics'][e['method']]['nme']:5.2f} %)  baseline {100 * base:5.2f} %")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmk.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the shipped models and their numbers")
    b = sub.add_parser("build", help="train recipes at zoo scale and write data/zoo")
    b.add_argument("names", nargs="*", help="recipes to build (default: all)")
    b.add_argument("--jobs", type=int, default=2, help="parallel one-thread jobs (default 2)")
    v = sub.add_parser("verify", help="check that today's code reproduces the manifest")
    v.add_argument("names", nargs="*")
    v.add_argument("--jobs", type=int, default=2, help="parallel one-thread processes (default 2)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, e in manifest().items():
            m = e["metrics"][e["method"]]
            print(f"{name:28s} {e['notebook']}  NME {100 * m['nme']:5.2f} %  baseline "
                  f"{100 * e['baseline_nme']:5.2f} %  {e['bytes'] / 1e6:4.2f} MB  {e['seconds']:5.0f} s")
        return 0
    if args.command == "build":
        if args.jobs < 1:
            parser.error(f"--jobs must be >= 1, got {args.jobs}")
        build(args.names or None, jobs=args.jobs)
        return 0
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    start = time.perf_counter()
    problems = verify(args.names or None, jobs=args.jobs)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    print(f"verify: {len(problems)} problem(s), {time.perf_counter() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
