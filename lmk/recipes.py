"""Every training experiment of the course as a named recipe, at three scales.

A recipe says everything a training run needs: the network and its arguments, the data (source,
sizes, input size, crop or 5-point alignment, augmentation), the codec and loss, the optimiser
and schedule, the number of epochs and the seed. :func:`run` trains one::

    result = run("n03_sdsd", scale="fast")                 # ~1 min on a laptop CPU
    result = run("n03_sdsd", scale="zoo", seed=1)          # converged: ~5 min on one core
    result = run("n03_sdsd", scale="full", data="300w", data_root="/data/300W", device="cuda")

Scales:
  * ``fast``: a live notebook cell, about a minute on a laptop CPU; far from converged.
  * ``zoo``: converged on one CPU core in about five minutes; what ``lmk.zoo`` ships.
  * ``full``: the papers' scale (input size, widths, data set sizes, 40 epochs), for a GPU.

Notebooks train from here, ``lmk.zoo`` builds from here; ``lmk.models`` holds networks only.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import metrics
from .codecs import HeatmapCodec, MarginalCodec
from .data import Augment, LandmarkDataset, open_source
from .layouts import LAYOUT_68, layout_for
from .losses import ForegroundHeatmapLoss, MarginalLoss
from .models import FlipAveraged, HeatmapModel, MarginalDetector
from .train import Evaluation, History, evaluate, fit

SCALES = ("fast", "zoo", "full")
NO_AUGMENT = {"flip_prob": 0.0, "max_rotation": 0.0, "max_scale": 0.0, "max_shift": 0.0,
              "erase_prob": 0.0}
"""Colour jitter and lighting only: the baseline of Earp et al.'s bag of tricks."""


@dataclass(frozen=True)
class Recipe:
    """One named training experiment; :meth:`config` gives its settings at a scale."""

    name: str
    notebook: str                 # "02", "03", ... : the notebook whose tables it fills
    model: str                    # "heatmap" (Earp) or "marginal" (Yin)
    model_args: dict              # keyword arguments of the network (at every scale)
    tags: dict                    # what this recipe varies, e.g. {"strategy": "SDSD"}
    data: dict                    # difficulty, mode (crop / align), augment changes
    train: dict                   # codec, loss and optimiser settings
    scales: dict = field(default_factory=dict)    # per-scale overrides of sizes and epochs

    def config(self, scale: str = "zoo") -> dict:
        """The complete settings at ``scale`` as plain JSON types (recorded in the zoo)."""
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        over = copy.deepcopy(self.scales.get(scale, {}))
        cfg = {"name": self.name, "notebook": self.notebook, "scale": scale, "model": self.model,
               "model_args": {**self.model_args, **over.pop("model_args", {})},
               "data": {**self.data, **over.pop("data", {})},
               "train": {**self.train, **over.pop("train", {})}, "tags": dict(self.tags)}
        if over:
            raise ValueError(f"recipe {self.name}: unknown scale overrides {sorted(over)}")
        return copy.deepcopy(cfg)


# ------------------------------------------------------------------ building blocks of a run
def build_model(cfg: dict) -> torch.nn.Module:
    """The network of a recipe config (see :meth:`Recipe.config`)."""
    args, size = dict(cfg["model_args"]), cfg["data"]["input_size"]
    if cfg["model"] == "heatmap":
        return HeatmapModel(**args)
    if cfg["model"] == "marginal":
        ratio = args.pop("length_ratio")
        return MarginalDetector(input_size=size, length=int(round(ratio * size)), **args)
    raise ValueError(f"recipe {cfg['name']}: unknown model kind {cfg['model']!r}")


def heatmap_size(cfg: dict) -> int:
    """Side ``L`` of the model's heatmaps (1D length for marginal models)."""
    args, size = cfg["model_args"], cfg["data"]["input_size"]
    if cfg["model"] == "marginal":
        return int(round(args["length_ratio"] * size))
    if args.get("output_size") is not None:
        return args["output_size"]
    return size * 2 ** len(args["strategy"]) // 32


def build_codec(cfg: dict, method: str | None = None):
    """The codec of a recipe config; ``method`` overrides its decoder."""
    t, size = cfg["train"], cfg["data"]["input_size"]
    kind = HeatmapCodec if cfg["model"] == "heatmap" else MarginalCodec
    return kind(size, heatmap_size(cfg), t["sigma"], method or t["method"])


def build_loss(cfg: dict, codec):
    loss = cfg["train"]["loss"]
    if loss == "foreground_mse":
        return ForegroundHeatmapLoss(codec, cfg["train"].get("foreground_weight", 20.0))
    if loss == "marginal":
        return MarginalLoss(codec)
    raise ValueError(f"recipe {cfg['name']}: unknown loss {loss!r}")


def _augment(cfg: dict) -> Augment:
    return Augment(**{**NO_AUGMENT, **cfg["data"].get("augment", {})})


def sources(cfg: dict, data: str = "synthetic", data_root=None, *, data_seed: int = 0,
            val_seed: int = 0, on_error: str = "raise") -> tuple:
    """``(train, val)`` raw sources; synthetic items are rendered once and kept in memory.

    Real images are checked when opened (truncated or undecodable files are errors, or skipped
    with ``on_error="skip"``), so a bad photo cannot stop a run half-way through.
    """
    d = cfg["data"]
    common = {"size": d["render_size"], "difficulty": d["difficulty"], "on_error": on_error,
              "verify_images": data != "synthetic"}
    train = open_source(data, data_root, "train", n=d["n_train"], seed=data_seed, **common)
    val_split = "val" if data == "synthetic" else "test"
    val = open_source(data, data_root, val_split, n=d["n_val"], seed=val_seed, **common)
    if data == "synthetic":
        train, val = [train[i] for i in range(len(train))], [val[i] for i in range(len(val))]
    return train, val


def datasets(cfg: dict, train_source, val_source, seed: int = 0) -> tuple:
    """``(train, val)`` :class:`LandmarkDataset` s: crop or align, augment the training set.

    Items of real data sets are cached reduced after their first use (``cache=True``), so later
    epochs do not decode full-size photos again; synthetic sources are already in memory.
    """
    d = cfg["data"]
    kw = {"input_size": d["input_size"], "mode": d["mode"], "seed": seed,
          "cache": not isinstance(train_source, list)}
    return (LandmarkDataset(train_source, augment=_augment(cfg), **kw),
            LandmarkDataset(val_source, augment=None, **kw))


def mean_shape(dataset) -> np.ndarray:
    """``(N, 2)`` average training shape in input pixels: the baseline that ignores the image."""
    return np.stack([np.asarray(dataset[i]["landmarks"], np.float64) for i in range(len(dataset))]).mean(0)


def baseline_nmes(shape, landmarks, norm: str, layout=LAYOUT_68) -> np.ndarray:
    """Per-image NME of predicting ``shape`` for every image of ``landmarks`` ``(M, N, 2)``."""
    truth = np.asarray(landmarks, np.float64)
    return np.asarray(metrics.nme(np.broadcast_to(shape, truth.shape).copy(), truth, norm=norm,
                                  layout=layout))


def milestones(cfg: dict) -> list[int]:
    """The recipe's learning-rate milestones (fractions of the run) as epochs, halves rounded up."""
    t = cfg["train"]
    return sorted({max(1, math.floor(f * t["epochs"] + 0.5)) for f in t["milestones"]})


@dataclass
class Result:
    """What :func:`run` returns: the trained model and everything needed to read its numbers."""

    config: dict
    model: torch.nn.Module
    codec: object
    history: History
    evaluation: Evaluation           # on the validation set, with the recipe's decoder
    mean_shape: np.ndarray           # (N, 2) input px, from the training set
    baseline_nmes: np.ndarray        # (M,) the mean shape on the validation set
    seconds: float
    val_set: LandmarkDataset = None
    train_set: LandmarkDataset = None


def configure(recipe, scale: str = "fast", *, seed=None, n_train=None, n_val=None, epochs=None,
              lr=None, batch_size=None, overrides: dict | None = None) -> dict:
    """A recipe's config at ``scale`` with a notebook's overrides applied (None keeps a setting)."""
    cfg = (RECIPES[recipe] if isinstance(recipe, str) else recipe).config(scale)
    for section, changes in (overrides or {}).items():
        if section not in ("model_args", "data", "train"):
            raise ValueError(f"overrides: unknown section {section!r}; use model_args, data or train")
        cfg[section].update({k: v for k, v in changes.items() if v is not None})
    for section, key, value in (("data", "n_train", n_train), ("data", "n_val", n_val),
                                ("train", "epochs", epochs), ("train", "lr", lr),
                                ("train", "batch_size", batch_size), ("train", "seed", seed)):
        if value is not None:
            cfg[section][key] = value
    return cfg


def run(recipe, scale: str = "fast", *, seed: int | None = None, data: str = "synthetic",
        data_root=None, device="auto", threads: int | None = None, checkpoint_dir=None,
        resume: bool = False, show_progress: bool = False, on_error: str = "raise",
        n_train: int | None = None, n_val: int | None = None, epochs: int | None = None,
        lr: float | None = None, batch_size: int | None = None, overrides: dict | None = None,
        prepared=None) -> Result:
    """Train a recipe at a scale and evaluate it.

    Args:
        recipe: a :class:`Recipe` or its name in :data:`RECIPES`.
        scale: ``"fast"``, ``"zoo"`` or ``"full"``.
        seed: training seed (initialisation, shuffling, augmentation); default the recipe's.
        data, data_root: a notebook's ``DATA`` / ``DATA_ROOT`` (``lmk.data.open_source``).
        threads: sets torch's CPU threads (for the whole process; ``None`` leaves it alone).
        checkpoint_dir, resume: passed to ``lmk.train.fit`` (atomic checkpoints, resume).
        n_train, n_val, epochs, lr, batch_size: override the scale's settings (None keeps them).
        overrides: ``{"model_args": {...}, "data": {...}, "train": {...}}`` changes to any other
            setting (e.g. a notebook's ``INPUT_SIZE`` or ``FILTERS``).
        prepared: ``(train_source, val_source)`` already opened (shared between runs).

    The network's number of landmarks follows the data (68 for 300W and synthetic faces, 98 for
    WFLW, 106 for JD-landmark), and so does the layout of the eye-based NME and of flipping.
    The returned model is on the CPU in eval mode.
    """
    cfg = configure(recipe, scale, seed=seed, n_train=n_train, n_val=n_val, epochs=epochs, lr=lr,
                    batch_size=batch_size, overrides=overrides)
    t = cfg["train"]
    if threads is not None:
        torch.set_num_threads(int(threads))
    start = time.perf_counter()
    train_src, val_src = prepared or sources(cfg, data, data_root, on_error=on_error)
    if len(train_src) == 0 or len(val_src) == 0:
        raise ValueError(f"recipe {cfg['name']}: no usable {'training' if len(train_src) == 0 else 'validation'}"
                         f" faces in DATA={data!r} (root {data_root}); see the skipped files")
    layout = layout_for(len(train_src[0]["landmarks"]))
    cfg["model_args"]["num_landmarks"] = layout.num_points
    train_set, val_set = datasets(cfg, train_src, val_src, seed=t["seed"])
    torch.manual_seed(t["seed"])
    model, codec = build_model(cfg), build_codec(cfg)
    history = fit(model, train_set, val_set, loss_fn=build_loss(cfg, codec), decode_fn=codec.decode,
                  epochs=t["epochs"], lr=t["lr"], milestones=milestones(cfg),
                  batch_size=t["batch_size"], seed=t["seed"], device=device, norm=t["norm"],
                  eval_every=t.get("eval_every", 1), channels_last=cfg["model"] == "heatmap",
                  checkpoint_dir=checkpoint_dir, resume=resume, show_progress=show_progress,
                  layout=layout)
    model = model.to(memory_format=torch.contiguous_format)
    ev = evaluate(model, val_set, codec.decode, norm=t["norm"], device=device, layout=layout)
    plain = LandmarkDataset(train_src, augment=None, input_size=cfg["data"]["input_size"],
                            mode=cfg["data"]["mode"])
    shape = mean_shape(plain)
    return Result(cfg, model.cpu().eval(), codec, history, ev, shape,
                  baseline_nmes(shape, ev.landmarks, t["norm"], layout), time.perf_counter() - start,
                  val_set, train_set)


def flip_averaged(model, layout=LAYOUT_68):
    """Earp's flip test-time averaging around a heatmap model (no training)."""
    return FlipAveraged(model, layout.flip_perm)


# ------------------------------------------------------------------------------ the recipes
EARP_DATA = {"input_size": 64, "render_size": 128, "mode": "align", "difficulty": "default",
             "n_train": 4000, "n_val": 256, "augment": {}}
EARP_TRAIN = {"sigma": 2.0, "method": "dark", "loss": "foreground_mse", "foreground_weight": 20.0,
              "lr": 2e-3, "milestones": [0.5, 0.75], "batch_size": 16, "epochs": 15, "seed": 0,
              "norm": "bbox"}
EARP_SCALES = {
    "fast": {"data": {"n_train": 512, "n_val": 128}, "train": {"epochs": 6, "lr": 3e-3, "milestones": [0.8]}},
    "full": {"model_args": {"filters": 256}, "train": {"epochs": 40, "lr": 1e-3},
             "data": {"input_size": 192, "render_size": 256, "n_train": 10000, "n_val": 2000}},
}
TRICKS = {"flip_augmentation": {"flip_prob": 0.5}, "random_erasing": {"erase_prob": 0.5},
          "rotation": {"max_rotation": 15.0}}


def _seeded(name: str, seed: int) -> str:
    return name if seed == 0 else f"{name}_s{seed}"


def earp(strategy: str, seed: int = 0, trick: str = "none", mode: str = "align") -> Recipe:
    """Earp et al. (2021): MobileNetV2 0.25 + an S/D head, 64 px inputs (Tables 3-5 in miniature)."""
    if trick != "none" and trick not in TRICKS:
        raise ValueError(f"trick must be 'none' or one of {tuple(TRICKS)}, got {trick!r}")
    if mode not in ("align", "crop"):
        raise ValueError(f"mode must be 'align' or 'crop', got {mode!r}")
    name = f"n03_{strategy.lower()}" + ("" if trick == "none" else f"_{trick}") + ("" if mode == "align" else f"_{mode}")
    data = {**EARP_DATA, "mode": mode, "augment": dict(TRICKS.get(trick, {}))}
    return Recipe(_seeded(name, seed), "03", "heatmap",
                  {"width_mult": 0.25, "strategy": strategy, "filters": 64, "num_landmarks": 68},
                  {"strategy": strategy, "trick": trick, "mode": mode}, data,
                  {**EARP_TRAIN, "seed": seed}, EARP_SCALES)


def yin(kind: str, ratio: float, seed: int = 0, gamma: float = 0.3) -> Recipe:
    """Yin et al. (2020) Table 1 in miniature: a 2D or 1D heatmap model at L = ratio * F.

    Targets have the same width in input pixels at every L (4 px at F = 64, 8 px at F = 256):
    sigma = 4 L / F heatmap cells (8 L / F at full scale), at least one cell.
    """
    if kind not in ("2d", "1d"):
        raise ValueError(f"kind must be '2d' or '1d', got {kind!r}")
    if kind == "2d" and not float(np.log2(ratio * 32)).is_integer():
        raise ValueError(f"a 2D model doubles the stride-32 features: L/F must be 2**k / 32 "
                         f"(0.125, 0.25, 0.5, 1, ...), got {ratio}")
    tag = f"{ratio:g}".replace(".", "")
    name = f"n02_{kind}_r{tag}" + ("_g0" if kind == "1d" and gamma == 0 else "")
    sigma = {scale: max(1.0, (8.0 if scale == "full" else 4.0) * ratio) for scale in SCALES}
    if kind == "2d":          # 2x deconvolutions from the stride-32 features up to L
        blocks = int(round(np.log2(ratio * 32)))
        args, loss, tags = {"width_mult": 0.25, "strategy": "D" * blocks, "filters": 64,
                            "num_landmarks": 68}, "foreground_mse", {"gamma": None}
    else:
        args, loss, tags = {"num_landmarks": 68, "length_ratio": ratio, "width_mult": 0.25,
                            "channels": 32, "gamma": gamma}, "marginal", {"gamma": gamma}
    scales = {"fast": {"data": {"n_train": 512, "n_val": 128}, "train": {"epochs": 6, "lr": 3e-3,
                                                                         "milestones": [0.8], "sigma": sigma["fast"]}},
              "full": {"data": {"input_size": 256, "render_size": 256, "n_train": 10000, "n_val": 2000},
                       "model_args": {"width_mult": 1.0} if kind == "1d" else {"width_mult": 1.0, "filters": 256},
                       "train": {"epochs": 40, "lr": 1e-3, "batch_size": 10, "sigma": sigma["full"]}}}
    return Recipe(_seeded(name, seed), "02", "heatmap" if kind == "2d" else "marginal", args,
                  {"representation": kind, "L_over_F": ratio, **tags},
                  {**EARP_DATA, "mode": "crop"},
                  {**EARP_TRAIN, "norm": "inter_ocular", "seed": seed, "sigma": sigma["zoo"],
                   "loss": loss}, scales)


def _table() -> dict:
    recipes = [earp(s, seed) for s in ("SSSS", "SDSD", "DDDD") for seed in (0, 1, 2)]
    recipes += [earp("SDSD", 0, trick) for trick in TRICKS] + [earp("SDSD", 0, mode="crop")]
    recipes += [yin(kind, 0.25, seed) for kind in ("2d", "1d") for seed in (0, 1, 2)]
    recipes += [yin("2d", 0.5), yin("1d", 1.0), yin("1d", 1.0, gamma=0.0), yin("1d", 3.0)]
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _table()
"""Every recipe of the course by name (``n02_*``: notebook 02, ``n03_*``: notebook 03)."""


def recipe_names(notebook: str | None = None, **tags) -> list[str]:
    """Names of the recipes of a notebook whose tags match ``tags`` (all if none given)."""
    return [n for n, r in RECIPES.items() if (notebook is None or r.notebook == notebook)
            and all(r.tags.get(k) == v for k, v in tags.items())]


__all__ = ["Recipe", "RECIPES", "recipe_names", "configure", "run", "earp", "yin", "TRICKS", "milestones", "Result", "build_model", "build_codec",
           "build_loss", "sources", "datasets", "mean_shape", "baseline_nmes", "heatmap_size",
           "flip_averaged", "SCALES"]
