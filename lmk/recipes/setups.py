"""Each paper's own setup beside the recipes' full scale, setting by setting: the README's table.

``full`` is each paper's setup where the course can follow it. :data:`PAPER_SETUPS` holds, per
model family, what the paper says (its training and evaluation sections), what our full-scale
config does (written out, and checked against the configs by a test), and for every setting
where ours differs, why: the data the loaders lack (300W-LP, Menpo, AFLW, WIDER Face, 300VW),
a schedule capped in GPU hours, or a detail the paper does not give::

    from lmk.recipes import setups
    rows = setups.rows()                 # one dict per (family, setting)
    print(setups.markdown())             # the README's "Full scale = each paper's setup"
    setups.check()                       # every full config against the table ("ours" values)

:func:`full_values` reads a setting from a config, so ``check`` fails when a full config and the
table part ways. Images seen are epochs x training images: the synthetic run draws as many faces
as the paper's training set (:data:`lmk.recipes.PAPER_SIZES`), so both compare; with the paper's
data set (``DATA``) the run reads the whole split.

GPU hours are projections, not measurements: training costs about three forward passes, the
forward pass costs :func:`lmk.complexity.profile`'s FLOPs (2 x MACs), and a GPU is assumed to
sustain :data:`ASSUMED_TFLOPS`. That bounds the compute-heavy CCNN; the small networks of the
other families are bound by the data pipeline instead (faces/s), so their FLOP projections (minutes)
are lower bounds. ``python -m lmk.bench --gpu`` measures faces/s on a real card.

The network and heatmap words come from each family (:meth:`lmk.families.Family.network_text`,
``heatmap_text``); nothing here asks for a model kind.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from ..families import augment_of, family_of
from . import PAPER_SIZES, RECIPES

__all__ = ["Setup", "PAPER_SETUPS", "full_scale_table", "PROTOCOL_SPLITS", "protocol_splits", "SETTINGS",
           "ASSUMED_TFLOPS", "SPLITS", "full_values", "rows", "markdown", "check", "images_seen",
           "projected_gpu_hours", "recipes_of"]

SETTINGS = ("input", "network", "heatmaps", "landmarks", "training data", "evaluation data", "batch",
            "optimiser", "schedule", "images seen", "augmentation", "protocol")
"""The settings of every row, in table order."""

ASSUMED_TFLOPS = 100.0
"""Sustained training TFLOP/s assumed for GPU-hour projections (an H100 runs convolutions at a
fraction of its 990 TFLOP/s bf16 peak); a projection, until ``lmk.bench --gpu`` measures one."""

SPLITS = {"300w": "`300w` test = common (554) + challenging (135); subsets: the `common` and "
                  "`challenging` splits",
          "wflw": "`wflw` test (2,500); subsets: the `test_pose`, `test_expression`, "
                  "`test_illumination`, `test_makeup`, `test_occlusion`, `test_blur` splits",
          "jd106": "`jd106` test (2,000)"}
"""What the full run scores with ``DATA`` set to the paper's data set: :meth:`Family.sources` opens
the loader's ``test`` split. The paper's subsets are the loader's other splits
(``lmk.data.open_source``), which the run does not score itself (:func:`protocol_splits`)."""
PROTOCOL_SPLITS = {"300w": ("common", "challenging", "test"),
                   "wflw": ("test", "test_pose", "test_expression", "test_illumination", "test_makeup",
                            "test_occlusion", "test_blur"),
                   "jd106": ("test",)}
"""The loader splits of each paper's evaluation protocol (300W common / challenging / full; WFLW
test and its six attribute subsets; JD-landmark test)."""


def protocol_splits(data: str) -> tuple[str, ...]:
    """The loader splits that make up the paper's evaluation protocol on ``data``."""
    if data not in PROTOCOL_SPLITS:
        raise ValueError(f"no paper protocol on DATA={data!r}; one of {tuple(PROTOCOL_SPLITS)}")
    return PROTOCOL_SPLITS[data]


_LANDMARKS = "68 on synthetic faces; the data set's own on real data (300W 68, WFLW 98, JD-landmark 106)"
NORMS = {"bbox": "sqrt(box w x h)", "inter_ocular": "inter-ocular (outer eye corners)",
         "inter_pupil": "inter-pupil"}


def _n(x) -> str:
    return f"{x:,}"


def _augment(cfg: dict) -> str:
    a = augment_of(cfg)
    parts = [f"colour jitter {a.brightness:g}/{a.contrast:g}/{a.saturation:g}"]
    if a.lighting_std:
        parts.append(f"PCA lighting {a.lighting_std:g}")
    if a.flip_prob:
        parts.append(f"flip {a.flip_prob:g}")
    if a.max_rotation:
        parts.append(f"rotation +-{a.max_rotation:g} deg")
    if a.max_scale:
        parts.append(f"scale +-{100 * a.max_scale:g} %")
    if a.max_shift:
        parts.append(f"shift +-{a.max_shift:g} px")
    if a.erase_prob:
        parts.append(f"random erasing {a.erase_prob:g}")
    return ", ".join(parts)


def _schedule(epochs: int, t: dict) -> str:
    from ..train import milestone_epochs

    steps = milestone_epochs(t["milestones"], epochs)
    return f"{epochs} epochs, lr x {t.get('gamma', 0.1):g} at epochs {', '.join(map(str, steps))}"


def images_seen(cfg: dict, train_images: int | None = None) -> int:
    """Training images a run of ``cfg`` sees: epochs x training images (ATPN's stage 2 counts its
    negatives; a tracker counts detector crops and clip frames). ``train_images`` replaces the
    synthetic ``n_train`` (a real data set's split size)."""
    d, t = cfg["data"], cfg["train"]
    if "detector_epochs" in t:                 # a tracker: detector crops, then clips of frames
        def frames(length):           # lmk.data.FramePairs: clips start at frames 1, 1 + length, ...
            return d["videos"] * len(range(1, d["frames"] - length + 1, length)) * length
        return t["detector_epochs"] * frames(1) + t["refine_epochs"] * frames(d["clip_length"])
    n = d["n_train"] if train_images is None else train_images
    if "stage_epochs" in t:                    # ATPN's stages; stage 2 also sees its negatives
        e1, e2, e3 = t["stage_epochs"]
        return e1 * n + e2 * round(n * (1 + d["negatives_per_face"])) + e3 * n
    return t["epochs"] * n


@functools.lru_cache(maxsize=16)
def _forward_flops(key: str) -> float:
    from ..complexity import profile

    cfg = json.loads(key)
    family = family_of(cfg)
    model = family.costed_network(family.build_model(cfg))
    s = cfg["data"]["input_size"]
    return float(profile(model, (1, 3, s, s), device="cpu")["flops"])


def projected_gpu_hours(cfg: dict, train_images: int | None = None, tflops: float = ASSUMED_TFLOPS) -> float:
    """Projected GPU hours of a run: images seen x 3 forward passes' FLOPs / ``tflops``.

    The forward FLOPs are counted once per network and input size (a CPU forward pass)."""
    key = json.dumps({"model": cfg["model"], "model_args": cfg["model_args"],
                      "data": {"input_size": cfg["data"]["input_size"]}}, sort_keys=True)
    return images_seen(cfg, train_images) * 3 * _forward_flops(key) / (tflops * 1e12) / 3600


def full_values(cfg: dict, setup: "Setup") -> dict:
    """``{setting: text}`` of a config (its full scale, or any scale) in the table's words."""
    d, t = cfg["data"], cfg["train"]
    size, data = d["input_size"], setup.data
    real = PAPER_SIZES.get(data, {}).get("train") if data else None
    if "detector_epochs" in t:                 # a tracker trained on videos
        mode = f"crop of the last frame's landmarks (margin {d['margin']:g}, jitter {d['jitter']:g})"
        training = (f"{d['videos']} synthetic videos x {d['frames']} frames; clips of {d['clip_length']}")
        evaluation = f"synthetic videos: {d['val_videos']} validation; the zoo's 32 test videos"
        batch = f"{t['batch_size']} crops; {t['clip_batch_size']} clips"
        schedule = (f"detector {t['detector_epochs']} + refinement {t['refine_epochs']} epochs, "
                    f"lr x 0.1 for the last epoch of each")
        seen = _n(images_seen(cfg))
        augment = "none (crop jitter only)"
    else:
        mode = "5-point alignment" if d["mode"] == "align" else f"box crop (margin {d.get('margin', 0.2):g})"
        training = f"synthetic: {_n(d['n_train'])} faces" + (f"; `{data}` train ({_n(real)})" if real else "")
        evaluation = (f"synthetic: {_n(d['n_val'])} validation faces (zoo: 256 test faces)"
                      + (f"; {SPLITS[data]}" if data in SPLITS else ""))
        batch = str(t["batch_size"])
        if "stage_epochs" in t:
            e = t["stage_epochs"]
            schedule = (f"stages {e[0]} + {e[1]} + {e[2]} epochs, lr x 0.1 at "
                        f"{', '.join(f'{100 * m:g} %' for m in t['milestones'])} of each stage")
            augment = _augment(cfg) + f"; {d['negatives_per_face']:g} negatives per face in stage 2"
        else:
            schedule = _schedule(t["epochs"], t)
            augment = _augment(cfg)
        seen = f"{_n(images_seen(cfg))} synthetic" + (f"; {_n(images_seen(cfg, real))} on `{data}`" if real else "")
    optimiser = f"Adam, lr {t['lr']:g}" + (f", weight decay {t['weight_decay']:g}" if t.get("weight_decay") else "")
    family = family_of(cfg)
    return {"input": f"{size} x {size} px, {mode}", "network": family.network_text(cfg),
            "heatmaps": family.heatmap_text(cfg),
            "landmarks": ("68 (synthetic videos only)" if "detector_epochs" in t else _LANDMARKS),
            "training data": training, "evaluation data": evaluation, "batch": batch,
            "optimiser": optimiser, "schedule": schedule, "images seen": seen, "augmentation": augment,
            "protocol": f"NME / {NORMS[t['norm']]}; AUC and FR at 0.08 (lmk.scoring.summary: any threshold)"}


@dataclass(frozen=True)
class Setup:
    """One family's row group: the paper's settings, ours at full scale, and why they differ.

    Args:
        family: the label of the row group, e.g. ``"Earp heatmaps (n03_*)"``.
        paper, sections: the paper (``"Earp et al. (2021)"``) and the sections read.
        recipe: the recipe whose full config the ``ours`` values are (the paper's main model).
        prefix: the recipes of the group (names starting with it); each must agree with
            ``ours`` on every setting not in ``varies``.
        data: the ``DATA`` value of the paper's data set among the loaders (None: none).
        paper: ``{setting: the paper's value}``; ``ours``: ``{setting: our full-scale value}``,
            exactly as :func:`full_values` writes it for ``recipe``.
        substitutes: ``{setting: why ours differs}``; a setting without an entry follows the paper.
        varies: ``{setting: how it varies across the group's recipes}``.
    """

    family: str
    paper: str
    sections: str
    recipe: str
    prefix: str
    data: str | None
    paper_values: dict
    ours: dict
    substitutes: dict
    varies: dict = field(default_factory=dict)


_PROTOCOL_08 = "NME / {}; AUC and FR at 0.08 (lmk.scoring.summary: any threshold)"

PAPER_SETUPS: tuple[Setup, ...] = (
    Setup(
        "Earp heatmaps (n03_*)", "Earp et al. (2021)", "Sec. 3-5", "n03_dddd", "n03_", "jd106",
        {"input": "192 x 192 px, aligned on 5 detector points (RetinaFace)",
         "network": "MobileNetV2 x 0.25, DDDD head, 256 filters (baseline; Table 3 varies S/D)",
         "heatmaps": "96 x 96, sigma not given",
         "landmarks": "106 (JD-landmark)",
         "training data": "JD-landmark-2 train less the 2,000 JD-landmark test faces",
         "evaluation data": "JD-landmark test (2,000)",
         "batch": "16", "optimiser": "Adam, lr 0.001",
         "schedule": "40 epochs, lr x 0.1 at epochs 20, 30",
         "images seen": "40 x training set (size not given)",
         "augmentation": "colour jitter 0.4, PCA lighting 0.05; Sec. 5.1 tricks: flip, random erasing, "
                         "rotation +-15 deg",
         "protocol": "NME / sqrt(box w x h); AUC and FR at 0.08"},
        {"input": "192 x 192 px, 5-point alignment",
         "network": "MobileNetV2 x 0.25, DDDD head, 256 filters",
         "heatmaps": "96 x 96, sigma 2 cells",
         "landmarks": _LANDMARKS,
         "training data": "synthetic: 11,393 faces; `jd106` train (11,393)",
         "evaluation data": "synthetic: 2,000 validation faces (zoo: 256 test faces); `jd106` test (2,000)",
         "batch": "16", "optimiser": "Adam, lr 0.001",
         "schedule": "40 epochs, lr x 0.1 at epochs 20, 30",
         "images seen": "455,720 synthetic; 455,720 on `jd106`",
         "augmentation": "colour jitter 0.4/0.4/0.4, PCA lighting 0.05",
         "protocol": _PROTOCOL_08.format(NORMS["bbox"])},
        {"input": "the 5 points come from the ground-truth landmarks (no face detector in the course)",
         "heatmaps": "sigma not given by the paper: 2 cells (4 input px), as at zoo scale",
         "training data": "JD-landmark-2 is not among the loaders: JD-landmark's own train split "
                          "(11,393), and as many synthetic faces"},
        {"input": "n03_sdsd_crop: a box crop (margin 0.2) instead of the alignment",
         "network": "the strategy (SSSS, SDSD, DDDD) per recipe", "heatmaps": "96 x 96 for every "
         "four-block strategy", "augmentation": "the trick recipes add flip 0.5, random erasing 0.5 "
         "or rotation +-15 deg"}),
    Setup(
        "Yin 1D heatmaps (n02_*)", "Yin et al. (2020)", "Sec. 4.1, 5.1-5.2", "n02_1d_r3", "n02_", "300w",
        {"input": "256 x 256 px, face box crop",
         "network": "stacked hourglass + 1D heads, co-attention gamma 0.3",
         "heatmaps": "2 x 768 (L = 3F), sigma not given",
         "landmarks": "68 (300W); 19 (AFLW)",
         "training data": "300W train (3,148); AFLW train (20,000)",
         "evaluation data": "300W common (554), challenging (135), full (689); AFLW test (4,386)",
         "batch": "10", "optimiser": "Adam, lr 1e-4",
         "schedule": "not given", "images seen": "not given",
         "augmentation": "not given",
         "protocol": "NRMSE / inter-ocular (300W); / face size (AFLW); no AUC or FR"},
        {"input": "256 x 256 px, box crop (margin 0.2)",
         "network": "MobileNetV2 x 1, 1D heads (32 ch), co-attention gamma 0.3",
         "heatmaps": "2 x 768 (1D), sigma 24 cells",
         "landmarks": _LANDMARKS,
         "training data": "synthetic: 3,148 faces; `300w` train (3,148)",
         "evaluation data": "synthetic: 689 validation faces (zoo: 256 test faces); " + SPLITS["300w"],
         "batch": "10", "optimiser": "Adam, lr 0.0001",
         "schedule": "120 epochs, lr x 0.1 at epochs 60, 90",
         "images seen": "377,760 synthetic; 377,760 on `300w`",
         "augmentation": "colour jitter 0.2/0.2/0.2, PCA lighting 0.1",
         "protocol": _PROTOCOL_08.format(NORMS["inter_ocular"])},
        {"network": "the course's MobileNetV2 backbone for every family, not Yin's stacked "
                    "hourglass; the 2D arm is Earp's head at L = F/4, F/2",
         "heatmaps": "sigma not given by the paper: 8 input px (8 L / F cells)",
         "training data": "AFLW is not among the loaders",
         "evaluation data": "AFLW is not among the loaders",
         "schedule": "not given by the paper: 120 epochs keep the 378 k images seen of the earlier "
                     "full scale (40 x 10,000 synthetic faces)",
         "images seen": "not given by the paper",
         "augmentation": "not given by the paper: colour jitter and lighting only"},
        {"network": "2D recipes: MobileNetV2 x 1 with a D head, 256 filters; gamma 0 in n02_1d_r1_g0",
         "heatmaps": "L = ratio x F: 64 to 768; sigma 8 L / F cells, at least 1"}),
    Setup(
        "Yan FFLD (n04_*)", "Yan et al. (2020)", "Sec. 3-4, 6.1-6.6", "n04_ffld", "n04_", "300w",
        {"input": "224 x 224 px, face crop",
         "network": "ResNet-18 x 0.25 + 3 CropNets (8 x 8 crops, 128 ch)",
         "heatmaps": "none (coordinate regression)",
         "landmarks": "68 (300W); 19 (AFLW); 29 (COFW)",
         "training data": "300W-LP pre-training (80 epochs), 300W train (3,148): baseline 350 epochs, "
                          "then all stages",
         "evaluation data": "300W common (554), challenging (135), full (689)",
         "batch": "64", "optimiser": "Adam, lr 0.0005, weight decay 0.0005",
         "schedule": "400 epochs, lr x 0.3 every 80 epochs",
         "images seen": "1,259,200 (400 x 3,148) after 300W-LP and the baseline's 350 epochs",
         "augmentation": "scale +-20 %, translation +-10 %, rotation +-20 (deg)",
         "protocol": "NME / inter-ocular (300W); CED"},
        {"input": "224 x 224 px, box crop (margin 0.2)",
         "network": "ResNet-18 x 0.25 + 3 CropNets (8 x 8 crops, 128 ch)",
         "heatmaps": "none (coordinate regression)",
         "landmarks": _LANDMARKS,
         "training data": "synthetic: 3,148 faces; `300w` train (3,148)",
         "evaluation data": "synthetic: 689 validation faces (zoo: 256 test faces); " + SPLITS["300w"],
         "batch": "64", "optimiser": "Adam, lr 0.0005, weight decay 0.0005",
         "schedule": "400 epochs, lr x 0.3 at epochs 80, 160, 240, 320",
         "images seen": "1,259,200 synthetic; 1,259,200 on `300w`",
         "augmentation": "colour jitter 0.2/0.2/0.2, PCA lighting 0.1, rotation +-20 deg, scale +-20 %, "
                         "shift +-22.4 px",
         "protocol": _PROTOCOL_08.format(NORMS["inter_ocular"])},
        {"training data": "300W-LP is not among the loaders, and the family trains every stage "
                          "together from the start: no pre-training, no 350-epoch baseline phase",
         "images seen": "without 300W-LP's 80 epochs and the baseline's 350",
         "input": "crop not described by the paper: the face box, as for Yin and Mahpod",
         "augmentation": "colour jitter and lighting added (every family has them)"},
        {"training data": "n04_ffld_grad_*: the gradient paths of Table 6; n04_ffld_l1/_l2: one loss "
                          "for every stage (Table 5)"}),
    Setup(
        "Mahpod CCNN (n05_*)", "Mahpod et al. (2018)", "Sec. 3-4", "n05_ccnn_k4", "n05_", "300w",
        {"input": "256 x 256 px, 300W box extended to a square",
         "network": "CCNN, K = 4 (Tables 2-4)",
         "heatmaps": "64 x 64, sigma 1.3",
         "landmarks": "68",
         "training data": "300W train + Menpo frontal (11,007)",
         "evaluation data": "300W common (554), challenging (135), full (689); 300W private; COFW",
         "batch": "not given", "optimiser": "not given (MatConvNet); lr 1e-5, 5e-6, 1e-6",
         "schedule": "2,500 epochs: lr 1e-5 for 30, 5e-6 for 5, then 1e-6",
         "images seen": "27,517,500 (2,500 x 11,007)",
         "augmentation": "colour, small rotations, scaling, translations",
         "protocol": "NLE / inter-ocular and inter-pupil; AUC and FR at 0.08"},
        {"input": "256 x 256 px, box crop (margin 0.2)",
         "network": "CCNN, K = 4, width x 1",
         "heatmaps": "64 x 64, sigma 1.3 cells",
         "landmarks": _LANDMARKS,
         "training data": "synthetic: 11,007 faces; `300w` train (3,148)",
         "evaluation data": "synthetic: 689 validation faces (zoo: 256 test faces); " + SPLITS["300w"],
         "batch": "16", "optimiser": "Adam, lr 0.001",
         "schedule": "200 epochs, lr x 0.1 at epochs 100, 150",
         "images seen": "2,201,400 synthetic; 629,600 on `300w`",
         "augmentation": "colour jitter 0.2/0.2/0.2, PCA lighting 0.1, rotation +-10 deg, scale +-5 %, "
                         "shift +-8 px",
         "protocol": _PROTOCOL_08.format(NORMS["inter_ocular"])},
        {"training data": "Menpo is not among the loaders: `300w` train alone (3,148); the synthetic "
                          "run draws the paper's 11,007",
         "evaluation data": "300W private and COFW are not read by the full run (`300w` has a "
                            "`private` split)",
         "batch": "not given by the paper: Earp's 16",
         "optimiser": "not given by the paper; its lr 1e-5 to 1e-6 belongs to its 2,500-epoch run: "
                      "Adam at 0.001 as every family",
         "schedule": "capped at 200 epochs: 2,500 epochs of the paper's 11,007 faces (the CCNN "
                     "costs 100 GFLOPs a face forward) project to about 23 GPU hours per recipe at "
                     "100 TFLOP/s, 200 epochs to about 1.8 (`setups.projected_gpu_hours`)",
         "images seen": "capped: 8 % of the paper's",
         "augmentation": "magnitudes not given by the paper: +-10 deg, +-5 %, +-8 px"},
        {"network": "K = 1, 2, 4 by recipe"}),
    Setup(
        "Xia ATPN (n06_atpn*)", "Xia et al. (2022)", "Sec. 3.4, 4.1-4.3", "n06_atpn", "n06_atpn", "wflw",
        {"input": "112 x 112 px, ROI with 25 % margin",
         "network": "MobileNetV3 + alignment, pose and tracking branches",
         "heatmaps": "none (regression; a cheap heatmap fused inside)",
         "landmarks": "98 (WFLW); 68 (300VW, 300W-LP)",
         "training data": "stage 1 WFLW train (7,500); stage 2 WIDER Face, 10 negatives a face; "
                          "stage 3 300W-LP without its augmentation (3,148)",
         "evaluation data": "WFLW test (2,500) and its six subsets; 300VW A, B, C; 300W-LP (689) for pose",
         "batch": "128", "optimiser": "Adam (0.9, 0.999), lr 0.001",
         "schedule": "stage 1: lr x 0.03 every 4 epochs; stages 2-3: x 0.04 every 2 epochs; "
                     "epochs not given",
         "images seen": "not given",
         "augmentation": "translation, rotation, flip, channel changes, background mix-up (WIDER)",
         "protocol": "NME / inter-ocular; FR and AUC at 0.1; pose MAE, FR at 10 deg; tracking "
                     "threshold 0.7"},
        {"input": "112 x 112 px, box crop (margin 0.25)",
         "network": "MobileNetV3 x 1, alignment + pose + tracking branches",
         "heatmaps": "none (coordinate regression)",
         "landmarks": _LANDMARKS,
         "training data": "synthetic: 7,500 faces; `wflw` train (7,500)",
         "evaluation data": "synthetic: 2,500 validation faces (zoo: 256 test faces); " + SPLITS["wflw"],
         "batch": "128", "optimiser": "Adam, lr 0.001, weight decay 1e-05",
         "schedule": "stages 40 + 10 + 20 epochs, lr x 0.1 at 60 %, 85 % of each stage",
         "images seen": "1,275,000 synthetic; 1,275,000 on `wflw`",
         "augmentation": "colour jitter 0.2/0.2/0.2, PCA lighting 0.1, flip 0.5, rotation +-10 deg, "
                         "scale +-10 %, shift +-4 px; 10 negatives per face in stage 2",
         "protocol": _PROTOCOL_08.format(NORMS["inter_ocular"])},
        {"training data": "WIDER Face and 300W-LP are not among the loaders: stage 2's negatives are "
                          "synthetic face-free crops; stage 3 (pose) trains on synthetic faces only "
                          "(real data sets carry no pose, so it is skipped on them)",
         "evaluation data": "300VW and 300W-LP are not among the loaders: tracking is scored on the "
                            "zoo's synthetic videos, pose on synthetic faces",
         "optimiser": "the L2 terms of Eqs. 3-8 as Adam weight decay 1e-5 (weights not given)",
         "schedule": "the decay is ambiguous (x 0.03, or x 0.97 as a TensorFlow decay rate, every "
                     "4 epochs) and the epochs are not given: x 0.1 at 60 % and 85 % of each stage",
         "images seen": "not given by the paper",
         "augmentation": "magnitudes not given; no background mix-up (no WIDER Face images)",
         "protocol": "the run reports FR and AUC at 0.08; at Xia's 0.1 from its per-image NMEs "
                     "(lmk.scoring.summary(nmes, 0.1))"},
        {"network": "n06_atpn_no_*: one module off (Table 7); _separate: unshared features"}),
    Setup(
        "Yin tracker (n06_yin*)", "Yin et al. (2020)", "Sec. 4.2, 5.1, 5.4", "n06_yin_l03", "n06_yin", None,
        {"input": "256 x 256 px frames, cropped at the face",
         "network": "the 1D detector + temporal refinement (Eq. 13), lambda 0.3",
         "heatmaps": "2 x 768 (L = 3F), sigma not given",
         "landmarks": "68 (300VW); 7 common points (Talking Face)",
         "training data": "300VW train (50 videos) + 300W train (detector only)",
         "evaluation data": "300VW S1, S2, S3 (64 test videos); Talking Face",
         "batch": "10 images or frames", "optimiser": "Adam, lr 1e-4",
         "schedule": "not given", "images seen": "not given", "augmentation": "not given",
         "protocol": "NRMSE / inter-ocular"},
        {"input": "256 x 256 px, crop of the last frame's landmarks (margin 0.2, jitter 0.05)",
         "network": "1D detector (MobileNetV2 x 1, L = 3 F) + refinement (32 ch), lambda 0.3",
         "heatmaps": "2 x 768 (1D), sigma 24 cells",
         "landmarks": "68 (synthetic videos only)",
         "training data": "200 synthetic videos x 64 frames; clips of 3",
         "evaluation data": "synthetic videos: 20 validation; the zoo's 32 test videos",
         "batch": "10 crops; 8 clips", "optimiser": "Adam, lr 0.0001",
         "schedule": "detector 10 + refinement 10 epochs, lr x 0.1 for the last epoch of each",
         "images seen": "252,000",
         "augmentation": "none (crop jitter only)",
         "protocol": _PROTOCOL_08.format(NORMS["inter_ocular"])},
        {"training data": "300VW and 300W are not videos the loaders have (300W has no time): "
                          "synthetic videos, detector and refinement both on them",
         "evaluation data": "300VW and Talking Face are not among the loaders: the zoo's synthetic "
                            "test videos",
         "network": "the course's MobileNetV2 backbone, not a stacked hourglass",
         "batch": "clip length and clips per batch not given: 8 clips of 3 frames",
         "heatmaps": "sigma not given by the paper: 8 input px",
         "schedule": "not given by the paper",
         "images seen": "not given by the paper",
         "augmentation": "not given by the paper"},
        {"network": "lambda 0 or 0.3; n06_yin_detector: the detector alone",
         "schedule": "n06_yin_detector: no refinement epochs", "images seen": "n06_yin_detector: "
         "the detector's crops only"}),
)
"""Every family's setup: the paper's values, ours at full scale, and the reason for each difference."""


def recipes_of(setup: Setup) -> list[str]:
    """The recipe names of a setup's group (names starting with its ``prefix``)."""
    return [n for n in RECIPES if n.startswith(setup.prefix)]


def check(setups=PAPER_SETUPS) -> list[str]:
    """Every way the full configs and the table disagree (empty: they agree).

    Each setup's ``ours`` must equal :func:`full_values` of its recipe at full scale; every other
    recipe of its group must agree on the settings not in ``varies``; every setting needs a
    paper value and ours; every substitute names a setting and gives a reason.
    """
    problems = []
    for s in setups:
        for part, table in (("paper", s.paper_values), ("ours", s.ours)):
            if set(table) != set(SETTINGS):
                problems.append(f"{s.family}: {part} settings {sorted(set(SETTINGS) ^ set(table))} "
                                f"missing or unknown")
        for key, reason in s.substitutes.items():
            if key not in SETTINGS or not str(reason).strip():
                problems.append(f"{s.family}: substitute {key!r} has no reason or is no setting")
        if s.recipe not in RECIPES:
            problems.append(f"{s.family}: no recipe {s.recipe}")
            continue
        ours = full_values(RECIPES[s.recipe].config("full"), s)
        for key in SETTINGS:
            if ours.get(key) != s.ours.get(key):
                problems.append(f"{s.family}: {s.recipe} full {key} is {ours.get(key)!r}, the table "
                                f"says {s.ours.get(key)!r}")
        for name in recipes_of(s):
            other = full_values(RECIPES[name].config("full"), s)
            for key in SETTINGS:
                if key not in s.varies and other[key] != ours[key]:
                    problems.append(f"{s.family}: {name} full {key} is {other[key]!r}, "
                                    f"{s.recipe} has {ours[key]!r} (not listed as varying)")
    return problems


def rows(setups=PAPER_SETUPS) -> list[dict]:
    """One dict per (family, setting): family, setting, paper, ours (full scale), substitution."""
    out = []
    for s in setups:
        for key in SETTINGS:
            ours = s.ours[key] + (f" (varies: {s.varies[key]})" if key in s.varies else "")
            out.append({"family": f"{s.family}, {s.paper} {s.sections}", "setting": key,
                        "paper": s.paper_values[key], "ours (full scale)": ours,
                        "substitution": ("**" + s.substitutes[key] + "**") if key in s.substitutes else "as the paper"})
    return out


def markdown(setups=PAPER_SETUPS) -> str:
    """:func:`rows` as a Markdown table, the family named on its first row only."""
    table = rows(setups)
    keys = list(table[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    last = None
    for r in table:
        cells = [str(r[k]).replace("|", "/") for k in keys]
        if r["family"] == last:
            cells[0] = ""
        last = r["family"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


full_scale_table = rows
"""The README's table as rows (:func:`rows`)."""


if __name__ == "__main__":                                   # python -m lmk.recipes.setups
    print(markdown(), end="")
    problems = check()
    if problems:
        raise SystemExit("\n".join(problems))
