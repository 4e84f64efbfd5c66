"""Every training experiment of the course as a named recipe, at three scales: pure data.

A recipe names its model family (:mod:`lmk.families`) and says everything a training run needs:
the network's arguments, the data (source sizes, input size, crop or 5-point alignment,
augmentation), the codec and loss settings, the optimiser and schedule, the epochs and the
seed. :func:`run` trains one through its family::

    result = run("n03_sdsd", scale="fast")                 # ~1 min on a laptop CPU
    result = run("n03_sdsd", scale="zoo", seed=1)          # converged: ~5 min on one core
    result = run("n03_sdsd", scale="full", data="300w", data_root="/data/300W", device="cuda")

Scales:
  * ``fast``: a live notebook cell, about a minute on a laptop CPU; far from converged.
  * ``zoo``: converged on one CPU core in minutes; what ``lmk.zoo`` ships.
  * ``full``: each paper's own setup, for a GPU: input size, width, data set sizes, batch,
    optimiser, schedule and augmentation; where a paper's setting cannot be followed (data the
    loaders lack, a schedule capped in GPU hours) a stated substitute. The table of the paper's
    values beside ours, with each substitution's reason, is :mod:`lmk.recipes.setups`.

A recipe that builds on another (a tracker on its detector) names it (``base``), and its config
at a scale is completed from that recipe's config at the same scale.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..families import NO_AUGMENT, Result, family_of, mean_shape
from ..layouts import LAYOUT_68
from ..models import FlipAveraged
from ..scoring import baseline_nmes as _baseline_nmes
from ..train import milestone_epochs

SCALES = ("fast", "zoo", "full")


@dataclass(frozen=True)
class Recipe:
    """One named training experiment; :meth:`config` gives its settings at a scale."""

    name: str
    notebook: str                 # "02", "03", ... : the notebook whose tables it fills
    model: str                    # its family's name in lmk.families.FAMILIES
    model_args: dict              # keyword arguments of the network (at every scale)
    tags: dict                    # what this recipe varies, e.g. {"strategy": "SDSD"}
    data: dict                    # difficulty, mode (crop / align), augment changes
    train: dict                   # codec, loss and optimiser settings
    scales: dict = field(default_factory=dict)    # per-scale overrides of sizes and epochs
    base: str | None = None       # the recipe this one builds on, resolved at the same scale

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
        cfg = copy.deepcopy(cfg)
        if self.base is not None:
            if self.base not in RECIPES:
                raise ValueError(f"recipe {self.name} builds on {self.base!r}, which is not a recipe")
            cfg = family_of(cfg).resolve(cfg, RECIPES[self.base].config(scale))
        return cfg


# ------------------------------------------------------- a recipe's parts, through its family
def build_model(cfg: dict) -> torch.nn.Module:
    """The network of a recipe config (see :meth:`Recipe.config`)."""
    return family_of(cfg).build_model(cfg)


def heatmap_size(cfg: dict) -> int | None:
    """Side ``L`` of the model's heatmaps (1D length for marginal models; None without heatmaps)."""
    return family_of(cfg).heatmap_size(cfg)


def recipe_codec(cfg: dict, method: str | None = None):
    """The codec of a recipe config; ``method`` overrides its decoder.

    Multi-stage models (FFLD, CCNN) decode with :class:`lmk.codecs.StageCodec`, whose
    "method" is the stage to read (``"stage0"`` ... or ``"unit1"`` ..., ``"last"``).
    """
    return family_of(cfg).codec(cfg, method)


def decoders(cfg: dict) -> tuple[str, ...]:
    """Every decoder the zoo scores a model with: the heatmap decoders, or each stage's estimate.

    ATPN regresses its landmarks (``"regression"``); a tracker is scored by tracking the zoo's
    validation videos (``"tracking"``).
    """
    return family_of(cfg).decoders(cfg)


def main_decoder(cfg: dict) -> str:
    """The recipe's decoder by its name in :func:`decoders` (``"last"`` -> the last stage's)."""
    return family_of(cfg).main_decoder(cfg)


def build_loss(cfg: dict, codec, layout=LAYOUT_68):
    """The training loss of a recipe config."""
    return family_of(cfg).loss(cfg, codec, layout)


def sources(cfg: dict, data: str = "synthetic", data_root=None, *, data_seed: int = 0,
            val_seed: int = 0, on_error: str = "raise") -> tuple:
    """``(train, val)`` raw sources of a config (see :meth:`lmk.families.Family.sources`)."""
    return family_of(cfg).sources(cfg, data, data_root, on_error=on_error, data_seed=data_seed,
                                  val_seed=val_seed)


def datasets(cfg: dict, train_source, val_source, seed: int = 0) -> tuple:
    """``(train, val)`` :class:`lmk.data.LandmarkDataset` s of a config: crop or align, augment."""
    return family_of(cfg).datasets(cfg, train_source, val_source, seed)


def baseline_nmes(shape, landmarks, norm: str, layout=LAYOUT_68) -> np.ndarray:
    """Per-image NME of predicting ``shape`` for every image of ``landmarks`` ``(M, N, 2)``."""
    return _baseline_nmes(shape, landmarks, norm, layout)


def milestones(cfg: dict) -> list[int]:
    """The recipe's learning-rate milestones (fractions of the run) as epochs, halves rounded up."""
    return milestone_epochs(cfg["train"]["milestones"], cfg["train"]["epochs"])


def flip_averaged(model, layout=LAYOUT_68):
    """Earp's flip test-time averaging around a heatmap model (no training)."""
    return FlipAveraged(model, layout.flip_perm)


def configure(recipe, scale: str = "fast", *, seed=None, n_train=None, n_val=None, epochs=None,
              lr=None, batch_size=None, overrides: dict | None = None) -> dict:
    """A recipe's config at ``scale`` with a notebook's overrides applied (None keeps a setting)."""
    cfg = (get(recipe) if isinstance(recipe, str) else recipe).config(scale)
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


def get(name: str) -> "Recipe":
    """The recipe called ``name``; an unknown name says which are close."""
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(str(name), list(RECIPES), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"{len(RECIPES)} recipes exist (recipe_names())"
        raise KeyError(f"no recipe named {name!r}; {hint}")
    return RECIPES[name]


def run(recipe, scale: str = "fast", *, seed: int | None = None, data: str = "synthetic",
        data_root=None, device="auto", threads: int | None = None, checkpoint_dir=None,
        resume: bool = False, show_progress: bool = False, on_error: str = "raise",
        n_train: int | None = None, n_val: int | None = None, epochs: int | None = None,
        lr: float | None = None, batch_size: int | None = None, overrides: dict | None = None,
        prepared=None, zoo_dir=None, execution=None) -> Result:
    """Train a recipe at a scale and evaluate it, through its family (:mod:`lmk.families`).

    Args:
        recipe: a :class:`Recipe` or its name in :data:`RECIPES`.
        scale: ``"fast"``, ``"zoo"`` or ``"full"``.
        seed: training seed (initialisation, shuffling, augmentation); default the recipe's.
        data, data_root: a notebook's ``DATA`` / ``DATA_ROOT`` (``lmk.data.open_source``).
        threads: sets torch's CPU threads (for the whole process; ``None`` leaves it alone).
        checkpoint_dir, resume: passed to ``lmk.train.fit`` (atomic checkpoints, resume; a
            multi-stage family keeps one folder per stage and never mixes runs).
        n_train, n_val, epochs, lr, batch_size: override the scale's settings (None keeps them).
        overrides: ``{"model_args": {...}, "data": {...}, "train": {...}}`` changes to any other
            setting (e.g. a notebook's ``INPUT_SIZE`` or ``FILTERS``).
        prepared: the family's opened data (``(train, val)`` sources, or a tracker's videos).
        zoo_dir: where a recipe that starts from a zoo model (``train.init_from``) finds it.
        execution: precision, memory format, data workers and ranks (:class:`lmk.train.Execution`);
            None trains as the zoo does. ``lmk.runs.train_into`` trains into a folder with these.

    The network's number of landmarks follows the data (68 for 300W and synthetic faces, 98 for
    WFLW, 106 for JD-landmark), and so does the layout of the eye-based NME and of flipping.
    The returned model is on the CPU in eval mode.
    """
    cfg = configure(recipe, scale, seed=seed, n_train=n_train, n_val=n_val, epochs=epochs, lr=lr,
                    batch_size=batch_size, overrides=overrides)
    if threads is not None:
        torch.set_num_threads(int(threads))
    start = time.perf_counter()
    result = family_of(cfg).train(cfg, data=data, data_root=data_root, device=device,
                                  checkpoint_dir=checkpoint_dir, resume=resume, show_progress=show_progress,
                                  on_error=on_error, prepared=prepared, zoo_dir=zoo_dir,
                                  **({} if execution is None else {"execution": execution}))
    result.seconds = time.perf_counter() - start
    return result


def __getattr__(name: str):
    """Old names that still work, with a warning (see CHANGELOG.md)."""
    renamed = {"build_codec": "recipe_codec"}
    if name in renamed:
        warnings.warn(f"lmk.recipes.{name} is deprecated; use lmk.recipes.{renamed[name]}",
                      DeprecationWarning, stacklevel=2)
        return globals()[renamed[name]]
    if name == "RECIPES_BEFORE_06":
        raise AttributeError("lmk.recipes.RECIPES_BEFORE_06 is gone: a recipe that builds on another "
                             "names it (Recipe.base) and is resolved at the same scale")
    raise AttributeError(f"module 'lmk.recipes' has no attribute {name!r}")


# ------------------------------------------------------------------------------ the recipes
EARP_DATA = {"input_size": 64, "render_size": 128, "mode": "align", "difficulty": "default",
             "n_train": 4000, "n_val": 256, "augment": {}}
EARP_TRAIN = {"sigma": 2.0, "method": "dark", "loss": "foreground_mse", "foreground_weight": 20.0,
              "lr": 2e-3, "milestones": [0.5, 0.75], "batch_size": 16, "epochs": 15, "seed": 0,
              "norm": "bbox"}
TRICKS = {"flip_augmentation": {"flip_prob": 0.5}, "random_erasing": {"erase_prob": 0.5},
          "rotation": {"max_rotation": 15.0}}
EARP_COLOUR = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "lighting_std": 0.05}
"""Earp et al. (2021) Sec. 3.3: GluonCV colour jitter 0.4 and AlexNet PCA lighting sigma 0.05."""
PAPER_SIZES = {"300w": {"train": 3148, "test": 689}, "wflw": {"train": 7500, "test": 2500},
               "jd106": {"train": 11393, "test": 2000}, "300w+menpo": {"train": 11007}}
"""Training and test set sizes of the papers' data sets: full-scale synthetic runs draw as many
faces, so that images seen (epochs x training faces) compare with the paper's, and a real data set
is read whole (``n_train`` / ``n_val`` at least its split's size)."""


def earp_scales(trick: str = "none") -> dict:
    """Earp's scales; ``full`` is Sec. 3.3-4.1 (192 px, 256 filters, JD-landmark's sizes)."""
    return {"fast": {"data": {"n_train": 512, "n_val": 128},
                     "train": {"epochs": 6, "lr": 3e-3, "milestones": [0.8]}},
            "full": {"model_args": {"filters": 256}, "train": {"epochs": 40, "lr": 1e-3},
                     "data": {"input_size": 192, "render_size": 256,
                              "n_train": PAPER_SIZES["jd106"]["train"],
                              "n_val": PAPER_SIZES["jd106"]["test"],
                              "augment": {**EARP_COLOUR, **TRICKS.get(trick, {})}}}}


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
                  {**EARP_TRAIN, "seed": seed, "flip_test": True}, earp_scales(trick))


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
              "full": {"data": {"input_size": 256, "render_size": 256,
                                "n_train": PAPER_SIZES["300w"]["train"], "n_val": PAPER_SIZES["300w"]["test"]},
                       "model_args": {"width_mult": 1.0} if kind == "1d" else {"width_mult": 1.0, "filters": 256},
                       "train": {"epochs": 120, "lr": 1e-4, "batch_size": 10, "sigma": sigma["full"]}}}
    return Recipe(_seeded(name, seed), "02", "heatmap" if kind == "2d" else "marginal", args,
                  {"representation": kind, "L_over_F": ratio, **tags},
                  {**EARP_DATA, "mode": "crop"},
                  {**EARP_TRAIN, "norm": "inter_ocular", "seed": seed, "sigma": sigma["zoo"],
                   "loss": loss}, scales)


YAN_AUGMENT = {"max_scale": 0.2, "max_shift": 22.4, "max_rotation": 20.0}
"""Yan et al. (2020) Sec. 6.6: +-20 % scale, +-10 % translation (22.4 px of 224), +-20 (degrees) rotation."""
YAN_ASSIGNMENTS = {"yan": ["iod_l2", "l2", "l1", "align"], "l2": ["iod_l2", "l2", "l2", "l2"],
                   "l1": ["iod_l2", "l1", "l1", "l1"]}
"""Yan Table 5 in miniature: the paper's multi-loss scheme against one loss for every stage."""
GRADIENT_PATHS = {"both": (True, True), "features": (True, False), "centers": (False, True),
                  "none": (False, False)}
"""Yan Table 6: which gradients of the crops reach the base network, ``(features, centres)``."""


def yan(assignment: str = "yan", gradients: str = "both", seed: int = 0) -> Recipe:
    """Yan et al. (2020): FFLD, a ResNet-18 regression baseline + 3 CropNet stages (notebook 04).

    Zoo scale keeps the 64 px faces of notebook 03 (same validation faces) with a 12.5 %-channel
    ResNet-18, 4 x 4 crops and 32-channel CropNets: the crops then cover the same fraction of
    the face (1/2, 1/4, 1/8 at strides 8, 4, 2) as Yan's 8 x 8 crops of a 128 px face. Full
    scale is the paper's network: 224 px, 25 % channels, 8 x 8 crops, 128-channel CropNets.
    All stages train together from the start (each new CropNet is the identity at first).
    """
    if assignment not in YAN_ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {tuple(YAN_ASSIGNMENTS)}, got {assignment!r}")
    if gradients not in GRADIENT_PATHS:
        raise ValueError(f"gradients must be one of {tuple(GRADIENT_PATHS)}, got {gradients!r}")
    losses = YAN_ASSIGNMENTS[assignment]
    grad_features, grad_centers = GRADIENT_PATHS[gradients]
    name = ("n04_ffld" + ("" if assignment == "yan" else f"_{assignment}")
            + ("" if gradients == "both" else f"_grad_{gradients}"))
    args = {"num_landmarks": 68, "stages": 3, "backbone": "resnet18", "channel_ratio": 0.125,
            "strides": [8, 4, 2], "patch_size": 4, "selected": 4, "width": 32,
            "grad_features": grad_features, "grad_centers": grad_centers,
            "return_features": "align" in losses}
    train = {**EARP_TRAIN, "method": "last", "loss": "staged", "stage_losses": losses,
             "align_blur": 1.0, "seed": seed}
    for key in ("sigma", "foreground_weight"):
        train.pop(key)
    scales = {"fast": {"data": {"n_train": 512, "n_val": 128},
                       "train": {"epochs": 6, "lr": 3e-3, "milestones": [0.8]}},
              "full": {"model_args": {"channel_ratio": 0.25, "patch_size": 8, "width": 128},
                       "train": {"epochs": 400, "lr": 5e-4, "milestones": [0.2, 0.4, 0.6, 0.8],
                                 "gamma": 0.3, "weight_decay": 5e-4, "batch_size": 64,
                                 "norm": "inter_ocular"},
                       "data": {"input_size": 224, "render_size": 256, "mode": "crop",
                                "n_train": PAPER_SIZES["300w"]["train"],
                                "n_val": PAPER_SIZES["300w"]["test"], "augment": YAN_AUGMENT}}}
    return Recipe(_seeded(name, seed), "04", "ffld", args,
                  {"stages": 3, "loss_assignment": assignment, "gradient_path": gradients},
                  dict(EARP_DATA), train, scales)


MAHPOD_AUGMENT = {"max_rotation": 10.0, "max_scale": 0.05, "max_shift": 8.0}
"""Mahpod et al. (2018) Sec. 4: colour changes, small rotations, scaling and translations (their
sizes are not given: +-10 degrees, +-5 %, +-8 px of 256)."""
MAHPOD_FULL_EPOCHS = 200
"""Mahpod et al. train 2,500 epochs; full scale caps the CCNN at 200 (see lmk.recipes.setups)."""


def mahpod(cascades: int = 4, seed: int = 0) -> Recipe:
    """Mahpod et al. (2018): the CCNN with ``K = cascades`` heatmap + regression units (notebook 05).

    Zoo scale: the 64 px faces of notebooks 03 and 04 (16 x 16 heatmaps, sigma 1.3 cells) and
    1/8 of Table 2-4's channels, 10 epochs (a CCNN epoch costs about four FFLD epochs on a CPU).
    Full scale is the paper's network on 256 px faces (64 x 64 heatmaps).

    The coordinate terms weigh 0.05 (Mahpod give no weights). Early on the heatmap maxima are
    random, so the residuals the regression units must predict are large and jump as the maxima
    move; with weight 1 they swamp the heatmap terms and the network did not learn (K = 1, 1024
    faces, 4 epochs: 51 % NME, loss rising; weight 0.1: 9.6 %, 0.05: 8.7 %, 0.02: 8.4 %; one
    run each, fast scale). 1/4 of the channels trained better (K = 1, 2000 faces x 6 epochs:
    5.9 % against 6.7 %; a converged K = 4 model: 4.4 %), but its 3.4 M parameters (the
    regression units' C4-C5 hold most) would take 7 MB per model: the zoo keeps 1/8 (1.05 M).
    """
    k = int(cascades)
    args = {"num_cascades": k, "num_landmarks": 68, "width": 0.125}
    train = {**EARP_TRAIN, "method": "last", "loss": "cascade", "sigma": 1.3, "coordinate_weight": 0.05,
             "epochs": 10, "seed": seed}
    scales = {"fast": {"data": {"n_train": 512, "n_val": 128},
                       "train": {"epochs": 5, "lr": 3e-3, "milestones": [0.8]}},
              "full": {"model_args": {"width": 1.0},
                       "train": {"epochs": MAHPOD_FULL_EPOCHS, "lr": 1e-3, "norm": "inter_ocular"},
                       "data": {"input_size": 256, "render_size": 256, "mode": "crop",
                                "n_train": PAPER_SIZES["300w+menpo"]["train"],
                                "n_val": PAPER_SIZES["300w"]["test"], "augment": MAHPOD_AUGMENT}}}
    return Recipe(_seeded(f"n05_ccnn_k{k}", seed), "05", "ccnn", args, {"K": k}, dict(EARP_DATA),
                  train, scales)


XIA_VARIANTS = {"atpn": {}, "no_low_level": {"low_level": False}, "no_multiview": {"multiview": False},
                "no_coordconv": {"coordconv": False}, "separate": {"shared_features": False},
                "no_fusion": {"heatmap_fusion": False}}
"""Xia Tables 7 and 8 in miniature: the full ATPN and one switch off at a time."""
XIA_FLAGS = ("low_level", "multiview", "coordconv", "shared_features", "heatmap_fusion")


def xia(variant: str = "atpn", seed: int = 0) -> Recipe:
    """Xia et al. (2022): ATPN, alignment + head pose + face confidence in three stages (notebook 06).

    Zoo scale: 64 px face crops (25 % margin, the tracker's ROI) with mild shifts, scales,
    rotations and flips so that a tracked ROI is in-distribution; a 0.4-width MobileNetV3 (the
    16/8/4 feature levels of a 64 px input); one negative per face in stage 2 (Xia: ten);
    12 + 3 + 5 epochs for the three stages. Full scale: Xia's 112 px, width 1, ten negatives.

    The variants of the pose and tracking branches (``no_fusion``, ``separate``) change nothing
    in stage 1, so at zoo scale they start from the full ATPN of the same seed (``init_from``)
    and train stages 2 and 3 only: a paired comparison, and the zoo ships only those branches.
    """
    if variant not in XIA_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(XIA_VARIANTS)}, got {variant!r}")
    flags = {f: True for f in XIA_FLAGS} | XIA_VARIANTS[variant]
    name = "n06_atpn" + ("" if variant == "atpn" else f"_{variant}")
    data = {"input_size": 64, "render_size": 128, "mode": "crop", "margin": 0.25,
            "difficulty": "default", "n_train": 2000, "n_val": 256, "negatives_per_face": 1.0,
            "augment": {"flip_prob": 0.5, "max_rotation": 10.0, "max_scale": 0.1, "max_shift": 4.0}}
    train = {"method": "regression", "loss": "multitask", "stage_epochs": [12, 3, 5], "lr": 2e-3,
             "milestones": [0.6, 0.85], "batch_size": 16, "weight_decay": 1e-5, "seed": seed,
             "norm": "inter_ocular", "init_from": None, "stored": None}
    branch_only = variant in ("no_fusion", "separate")
    if branch_only:
        train.update(init_from=_seeded("n06_atpn", seed), stored=["pose.", "tracking."],
                     stage_epochs=[0, 3, 5])
    scratch = {"init_from": None, "stored": None}
    scales = {"fast": {"data": {"n_train": 512, "n_val": 128},
                       "train": {"stage_epochs": [4, 1, 2], "lr": 3e-3, **scratch}},
              "full": {"model_args": {"width": 1.0},
                       "data": {"input_size": 112, "render_size": 256, "n_train": PAPER_SIZES["wflw"]["train"],
                                "n_val": PAPER_SIZES["wflw"]["test"], "negatives_per_face": 10.0},
                       "train": {"stage_epochs": [40, 10, 20], "lr": 1e-3, "batch_size": 128, **scratch}}}
    return Recipe(_seeded(name, seed), "06", "atpn", {"num_landmarks": 68, "width": 0.4, **flags},
                  {**flags, "stage": 3, "variant": variant}, data, train, scales)


def yin_tracker(lam: float | None = 0.3, seed: int = 0, detector: str = "n02_1d_r3") -> Recipe:
    """Yin et al. (2020) Sec. 4.2: a 1D heatmap detector + temporal refinement (Eq. 13, ``lam``).

    ``lam=None`` is the detector alone (``n06_yin_detector``): the zoo's notebook-02 model
    ``detector`` (64 px, L = 3F) fine-tuned for 4 epochs on tracking crops of 48 synthetic videos
    of 64 frames (the previous frame's landmark box, 20 % margin as the detector's training
    crops, 5 % jitter); its refinement is the identity. A tracker (``lam`` in [0, 1]) starts
    from it and trains the refinement only, for 4 epochs on clips of 3 frames, the detector
    frozen: so ``lam = 0`` and ``lam = 0.3`` share one detector (Yin Table 2's comparison, paired),
    and the zoo ships only their refinements. Full scale trains the detector from scratch.
    """
    data = {"input_size": None, "render_size": None,       # the detector's (Recipe.base), same scale
            "difficulty": "default", "videos": 48, "frames": 64, "val_videos": 4, "data_seed": 100,
            "margin": 0.2, "jitter": 0.05, "clip_length": 3}
    train = {"init_from": detector, "stored": None, "detector_epochs": 4, "refine_epochs": 0,
             "lr": 1e-3, "batch_size": 16, "clip_batch_size": 8, "sigma": None, "method": None,
             "loss": "marginal", "norm": "inter_ocular", "seed": seed}
    name = "n06_yin_detector"
    if lam is not None:
        train.update(init_from=name, stored=["refinement."], detector_epochs=0, refine_epochs=4)
        name = "n06_yin_l" + f"{lam:g}".replace(".", "")
    scratch = {"init_from": None, "stored": None, "detector_epochs": 10}
    scales = {"fast": {"data": {"videos": 6, "val_videos": 2},      # a tracker: the zoo's detector
                       "train": {"detector_epochs": 1} if lam is None else {"refine_epochs": 1}},
              "full": {"data": {"videos": 200, "val_videos": 20},
                       "train": {**scratch, "refine_epochs": 0 if lam is None else 10, "lr": 1e-4,
                                 "batch_size": 10}}}
    return Recipe(_seeded(name, seed), "06", "yin",
                  {"detector": None, "lam": 0.0 if lam is None else float(lam), "channels": 32},
                  {"lam": lam, "detector": detector}, data, train, scales, base=detector)


def _table() -> dict:
    """Every recipe, in the order the notebooks use them."""
    recipes = [earp(s, seed) for s in ("SSSS", "SDSD", "DDDD") for seed in (0, 1, 2)]
    recipes += [earp("SDSD", 0, trick) for trick in TRICKS] + [earp("SDSD", 0, mode="crop")]
    recipes += [yin(kind, 0.25, seed) for kind in ("2d", "1d") for seed in (0, 1, 2)]
    recipes += [yin("2d", 0.5), yin("1d", 1.0), yin("1d", 1.0, gamma=0.0), yin("1d", 3.0)]
    recipes += [yan(seed=seed) for seed in (0, 1, 2)]
    recipes += [yan(assignment) for assignment in YAN_ASSIGNMENTS if assignment != "yan"]
    recipes += [yan(gradients=path) for path in GRADIENT_PATHS if path != "both"]
    # K = 3 is left out of the zoo (building time); the K = 4 models are scored after every unit
    recipes += [mahpod(k) for k in (1, 2)] + [mahpod(4, seed) for seed in (0, 1, 2)]
    recipes += [xia(variant, seed) for variant in ("atpn", "no_fusion") for seed in (0, 1, 2)]
    recipes += [xia(v) for v in XIA_VARIANTS if v not in ("atpn", "no_fusion")]
    recipes += [yin_tracker(None)] + [yin_tracker(lam, seed) for lam in (0.0, 0.3) for seed in (0, 1, 2)]
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _table()
"""Every recipe of the course by name (``n02_*``: notebook 02, ``n03_*``: notebook 03, ...)."""


def recipe_names(notebook: str | None = None, **tags) -> list[str]:
    """Names of the recipes of a notebook whose tags match ``tags`` (all if none given)."""
    return [n for n, r in RECIPES.items() if (notebook is None or r.notebook == notebook)
            and all(r.tags.get(k) == v for k, v in tags.items())]


__all__ = ["Recipe", "RECIPES", "PAPER_SIZES", "recipe_names", "configure", "run", "earp", "yin", "yan", "mahpod",
           "xia", "yin_tracker", "XIA_VARIANTS",
           "TRICKS", "YAN_ASSIGNMENTS", "GRADIENT_PATHS", "decoders", "main_decoder", "milestones", "Result",
           "build_model", "recipe_codec", "get",
           "build_loss", "sources", "datasets", "mean_shape", "baseline_nmes", "heatmap_size",
           "flip_averaged", "SCALES", "NO_AUGMENT"]
