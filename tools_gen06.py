"""Writes notebooks/06_multitask_training.ipynb (sources only; papermill executes it)."""
import json
import sys

CELLS = []


def md(text):
    CELLS.append(("markdown", text.strip("\n"), []))


def code(text, tags=()):
    CELLS.append(("code", text.strip("\n"), list(tags)))


PROSE = {}
if len(sys.argv) > 1:
    exec(open(sys.argv[1]).read(), PROSE)


def prose(key, default="(to be written from the executed outputs)"):
    md(PROSE.get(key, default))


md(r"""
# 06 · Multitask training: alignment, head pose and tracking (ATPN), and Yin's temporal tracker

Xia et al. (2022), *An Efficient Multitask Neural Network for Face Alignment, Head Pose Estimation and
Face Tracking* (ATPN): one light network, three outputs. A MobileNetV3 backbone feeds an
**alignment branch** that regresses the landmarks, a **pose branch** (yaw, pitch, roll) and a **tracking
branch** that says whether the crop still holds a face. In a video the network needs a face detector
only when it loses the face: each frame is cropped around the landmarks of the frame before.
Yin et al. (2020) track with their 1D heatmap detector of notebook 02, extended by a
**temporal refinement** that carries features from frame to frame (their Eq. 13).

**Learning goals**
1. Follow ATPN's data flow (Xia Fig. 2) through the shapes of one forward pass, and compare its cost at
   the paper's configuration with Xia Tables 2 and 5.
2. Compute the **cheap heatmap** (Eq. 1) from landmarks and see how Eq. 2 fuses it with features.
3. Read the three losses (Eqs. 3, 5, 7), including a misprint in Eq. 5.
4. Train the three stages of Sec. 3.4 live (backbone + alignment, then tracking, then pose) and read each
   stage's figure beside its baseline.
5. Read converged models from the zoo: NME, pose MAE, FR@10°, confidence AP, and the ablations of
   Xia Tables 7 and 8 in miniature.
6. Track synthetic videos frame by frame (Xia Table 4 in miniature), scrub through one, and compare
   ATPN's tracker with Yin's for $\lambda = 0$ and $\lambda = 0.3$ (Yin Table 2 in miniature).

**Where the numbers come from.** As in notebooks 03-05: one model is trained live (section 4, short,
far from converged), and the tables come from the **model zoo**: converged models of the named recipes
in `lmk.recipes` (`n06_atpn*`, `n06_yin_*`), whose figures `python -m lmk.zoo verify` checks against
today's code. Tracking figures are computed here, live, on the zoo's validation videos. With
`USE_ZOO=False`, `SCALE="full"` or real data, the ATPN recipes are trained instead.

**Real data.** 300W, WFLW and JD-landmark have no head-pose angles and no video. With `DATA` set to one
of them the notebook trains the alignment and tracking stages and skips stage 3 and every pose figure.
Tracking then uses the synthetic videos, unless `VIDEO_ROOT` points to a folder of 300VW videos
(Shen et al. 2015; one sub-folder per video with `vid.avi` and `annot/`), which are tracked instead.

Paper sections: Xia 3.1-3.4 (Fig. 2, Eqs. 1-7), 4.2 (training data), 4.3 (Eq. 9, Tables 2-5),
4.5 (Tables 7-9); Yin 4.2 (Eqs. 13-14), 5 (Table 2).

*A freshly opened notebook shows its saved widgets as text until you run it: JupyterLab does not render
the widget state of an untrusted notebook.*
""")

code('''
SCALE = "fast"          # "fast": one live training + zoo tables; "full": paper scale, trains every recipe
SEED = 0
DEVICE = "auto"         # "auto" picks CUDA, then MPS, then CPU
DATA = "synthetic"      # or "sample", "300w", "wflw", "jd106" (see data/README.md): no pose labels
DATA_ROOT = None
ON_ERROR = "raise"      # or "skip": leave out bad files of a real data set (listed below)
RESULTS = None          # path of a JSON file for the results table (lmk.course collects it)
SHOW_PROGRESS = False
USE_ZOO = True          # experiment tables from the shipped converged models (synthetic data only)
INPUT_SIZE = None       # network input side: 64 (fast) / 112 (full, Xia's 28/14/7 maps)
N_TRAIN = None          # training faces of the live run: 512 (fast) / 10000 (full)
N_VAL = None            # validation faces of the live run: 128 (fast) / 2000 (full)
STAGE_EPOCHS = None     # epochs of stages 1, 2, 3: [4, 1, 2] (fast) / [40, 10, 20] (full)
LR = None               # Adam learning rate: 3e-3 (fast, short run) / 1e-3 (full)
BATCH_SIZE = None       # 16
N_VIDEOS = None         # tracked validation videos: 8 (64 frames each)
VIDEO = 0               # the video drawn frame by frame
VIDEO_ROOT = None       # a folder of 300VW videos to track instead of the synthetic ones
''', tags=["parameters"])

code('''
import lmk.params

P = lmk.params.validate("06", globals())
import lmk.recipes as recipes
from lmk.data import data_label

FAST, LABEL = SCALE == "fast", data_label(DATA)
ZOO = USE_ZOO and DATA == "synthetic" and FAST   # zoo models: synthetic faces, below paper scale
HAS_POSE = DATA == "synthetic"                   # the real data sets carry no head-pose angles
LIVE = dict(n_train=N_TRAIN, n_val=N_VAL, lr=LR, batch_size=BATCH_SIZE,
            overrides={"data": {"input_size": INPUT_SIZE}, "train": {"stage_epochs": STAGE_EPOCHS}})
CFG = recipes.configure(recipes.xia("atpn", SEED), SCALE, **LIVE)
SEEDS = (0, 1, 2) if ZOO else ((SEED,) if FAST else (SEED, SEED + 1, SEED + 2))
N_VIDEOS = N_VIDEOS or 8
print(f"{SCALE} on {LABEL}: live ATPN, {CFG['data']['n_train']} faces, {CFG['data']['input_size']} px, "
      f"stage epochs {CFG['train']['stage_epochs']}; tables from "
      + ("the zoo (converged, seeds 0-2)" if ZOO else f"training every recipe ({SCALE}, seeds {SEEDS})"))
''')

code('''
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from ipywidgets import FloatSlider, IntSlider

import lmk.course
from lmk import experiments, multitask_eval, multitask_run, viz, zoo
from lmk.compare import paired_verdict, verdict
from lmk.losses.multitask import confidence_loss
from lmk.models import ATPN
from lmk.models.atpn import cost_table
from lmk.ops import cheap_heatmap
from lmk.track import Tracker, summarize

if FAST:      # small convolutions train faster on one thread than on two shared cores
    torch.set_num_threads(1)
''')

md(r"""
## 1. ATPN, shape by shape

Xia Fig. 2: a MobileNetV3-Small backbone (Howard et al. 2019: inverted residual "bnecks" with
squeeze-excitation and hard-swish) gives features at three levels, $F_4$, $F_8$, $F_{16}$ (strides 4, 8
and 16: $28\times28$, $14\times14$, $7\times7$ for a 112 px crop). The **alignment branch** (Sec. 3.1)

* fuses high-level into low-level features, as a feature pyramid: $P_s = F_s + \mathrm{Deconv}(1\times1(P_{2s}))$;
* passes each level through a **multiview block** (three chained $3\times3$ convolutions that see
  $3\times3$, $5\times5$ and $7\times7$ windows, concatenated, plus a residual; Fig. 3);
* brings every level down to the $7\times7$ grid with a **CoordConv** (Liu et al. 2018: two extra input
  channels hold each pixel's x and y, so a filter knows where it is);
* mixes them with a $1\times1$ CoordConv and a **$7\times7$ coordinate depthwise** convolution whose kernel
  covers the whole map (a separate weight for every position, unlike pooling), giving one vector;
* and regresses the **residual to a mean shape** $S_0$ from the training set: $S_1 = S_0 + \mathrm{Linear}(v)$.

From $S_1$ the **cheap heatmap** (section 2) weights the low-level features $F_4$, and the pose and
tracking branches (bnecks 4-8 of MobileNetV3-Small, pooling, a linear layer) read them. Our zoo
configuration: 64 px crops, width 0.4, 68 landmarks. One forward pass (shapes of one image):
""")

code('''
# NBVAL_CHECK_OUTPUT
ZOO_CFG = recipes.configure(recipes.xia("atpn"), "zoo")
zoo_net = recipes.build_model(ZOO_CFG)
parts = pd.DataFrame(multitask_eval.shape_table(zoo_net))
parts["MMACs"] = (parts.pop("macs") / 1e6).round(2)
print(f"width {ZOO_CFG['model_args']['width']}, {ZOO_CFG['data']['input_size']} px, 68 landmarks")
print(parts.to_string(index=False))
print(f"total: {parts['params'].sum():,} parameters, {parts['MMACs'].sum():.1f} MMACs per 64 px face")
''')

prose("shapes")

code('''
# NBVAL_CHECK_OUTPUT
costs = pd.DataFrame(cost_table())
print("Xia's configuration: 112 px, width 1, 98 landmarks (WFLW)")
print(costs.to_string(index=False))
''')

prose("costs")

md(r"""
## 2. The cheap heatmap (Eq. 1) and the fusion (Eq. 2)

A heatmap head costs layers and MACs; Xia compute a heatmap from the predicted landmarks **by formula**,
on the grid of the low-level features $F_4$, and multiply it in:

$$H(x, y) = \max\left(0.5,\ \frac{1}{\sqrt{1 + \min_i \lVert (x, y) - p_i \rVert}}\right) \quad\text{(Eq. 1 with the floor of Sec. 3.3)},
\qquad F_4' = F_4 \odot H \quad\text{(Eq. 2)}$$

$p_i$ are the landmarks in map pixels ($S_1 / 4$), distances are measured from each pixel's centre (the
course's convention: pixel $i$ covers $[i - 0.5, i + 0.5]$). $H$ is 1 on a landmark, $1/\sqrt{2}$ one pixel
away, and reaches the floor 0.5 at 3 pixels: features far from every landmark are halved, not erased
("to avoid the problem that the CNN cannot see the whole face"). In `lmk.ops.cheap_heatmap`:

```python
d = torch.cdist(pixel_centres, points).amin(-1)          # nearest landmark, map pixels
heat = (1 + d).rsqrt().clamp(min=floor)                  # Eq. 1, floored
```

A check against the formula by hand, at two pixels of a map with one landmark at $(1.3, 2.0)$:
""")

code('''
# NBVAL_CHECK_OUTPUT
H = cheap_heatmap(torch.tensor([[[1.3, 2.0]]]), (5, 5))[0, 0]
for x, y in ((1, 2), (4, 4)):
    by_hand = max(0.5, 1 / np.sqrt(1 + np.hypot(x - 1.3, y - 2.0)))
    print(f"pixel ({x}, {y}): cheap_heatmap {H[y, x].item():.4f}, formula {by_hand:.4f}")
''')

md(r"""
On a validation face, from its true landmarks, on the $16\times16$ grid of a 64 px crop. The slider sets the
floor (Xia: 0.5; 0 is Eq. 1 without it):
""")

code('''
faces = zoo.validation_dataset(ZOO_CFG, 16)

def show_heatmap(floor=0.5, face=0):
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    item = faces[face]
    viz.show_cheap_heatmap(axes, item["image"], item["landmarks"], floor=floor)
    fig.tight_layout()
    return fig

viz.explore(show_heatmap, floor=FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="floor"),
            face=IntSlider(value=0, min=0, max=len(faces) - 1, description="face"))
''')

prose("heatmap")

md(r"""
## 3. Three losses

**Alignment (Eq. 3).** The mean distance between predicted and true landmarks, divided by the
inter-ocular distance: the NME itself, so the loss is the figure we report. **Pose (Eq. 7).** The
mean absolute error of yaw, pitch and roll (we train in radians; the labels come in degrees and are
converted in one place). **Confidence (Eq. 5).** The paper prints

$$L_{conf} = -\left[\,y \log p + (1 - y)(1 - \log p)\,\right]$$

but binary cross-entropy is $-[\,y \log p + (1 - y)\log(1 - p)\,]$. For a negative ($y = 0$) the printed
form is $\log p - 1$: it falls without limit as $p \to 0$, so it has no minimum, and a network could lower
it forever by pushing one negative's $p$ further down. We use the binary cross-entropy on the logit
(`binary_cross_entropy_with_logits`, stable where $p$ is near 0 or 1). For a negative:
""")

code('''
# NBVAL_CHECK_OUTPUT
rows = []
for p in (0.5, 0.1, 0.01, 1e-4):
    logit = torch.logit(torch.tensor([p], dtype=torch.float64))
    rows.append({"p(face)": p, "printed Eq. 5": round(float(np.log(p) - 1), 4),
                 "binary cross-entropy": round(float(confidence_loss(logit, torch.zeros(1, dtype=torch.float64))), 4)})
print(pd.DataFrame(rows).to_string(index=False))
''')

md(r"""
The training adds L2 regularisation of the weights (Adam's weight decay, $10^{-5}$). Negatives carry no
landmarks and no pose: each sample has a mask (`has_landmarks`) that keeps it out of the alignment and
pose terms, rather than NaN labels that a sum could carry into the gradient.

## 4. Three training stages, live

Xia Sec. 3.4 train in three stages: **(1)** the backbone and the alignment branch on faces; **(2)** the
tracking branch on faces and negatives (crops with IoU < 0.3 to the face, or no face at all; Xia use ten
per face, the zoo one), the rest frozen; **(3)** the pose branch on faces, the rest frozen. Each stage
watches its own figure. The live run below is the recipe `n06_atpn` at `SCALE`: synthetic face crops
with a 25 % margin (the tracker's crop) and mild shifts, scalings, rotations and flips, Adam, batch 16.
""")

code('''
train_src, val_src = experiments.prepared_sources(CFG, DATA, DATA_ROOT, ON_ERROR)
skipped = [s for src in (train_src, val_src) for s in getattr(src, "skipped", [])]
print(f"{LABEL}: {len(train_src)} training and {len(val_src)} validation faces, {len(skipped)} files skipped")
for path, reason in skipped:
    print(f"  skipped {path}: {reason}")
live = recipes.run(recipes.xia("atpn", SEED), SCALE, data=DATA, data_root=DATA_ROOT, device=DEVICE,
                   show_progress=SHOW_PROGRESS, prepared=(train_src, val_src), **LIVE)
LIVE_FIG = multitask_eval.figures(live)
print(f"trained in {live.seconds:.0f} s; validation: NME {100 * LIVE_FIG['nme']:.2f} % "
      f"(mean shape {100 * LIVE_FIG['baseline_nme']:.2f} %), confidence AP {100 * LIVE_FIG['confidence_ap']:.1f} % "
      f"(constant {100 * LIVE_FIG['confidence_ap_baseline']:.1f} %)"
      + (f", pose MAE {LIVE_FIG['pose_mae']:.1f} deg (mean pose {LIVE_FIG['pose_mae_baseline']:.1f} deg)"
         if HAS_POSE else ", no pose labels: stage 3 skipped"))
''')

code('''
stages = live.extras["stage_histories"]
fig, axes = plt.subplots(1, len(stages), figsize=(4 * len(stages), 3.2), squeeze=False)
viz.plot_stages(axes[0], stages, {1: LIVE_FIG["baseline_nme"]})
fig.suptitle(f"Live ATPN on {LABEL}: each stage moves its own figure only", fontsize=10)
fig.tight_layout()
plt.show()
''')

prose("live")

md(r"""
## 5. Converged models (three seeds)

The zoo's `n06_atpn`: 2,000 faces, 12 + 3 + 5 epochs, three seeds, scored on the 256 validation faces of
the zoo (and as many negatives for the AP), and tracking the zoo's 8 validation videos. Every figure
sits beside the baseline that ignores the image: the mean training shape (NME), the mean training pose
(pose MAE and FR@10°, Eq. 9: the share of faces whose mean angle error exceeds 10°), a constant
confidence (AP = the share of faces), and for tracking the last frame's true landmarks (no motion).
""")

code('''
def atpn(variant, seed):
    """The figures and network of one ATPN recipe: the zoo's, or trained here."""
    recipe = recipes.xia(variant, seed)
    if ZOO:
        model, _ = zoo.load(recipe.name)
        return {"name": recipe.name, "model": model, "config": recipes.configure(recipe, "zoo"),
                **multitask_eval.figures(recipe.name)}
    res = recipes.run(recipe, SCALE, data=DATA, data_root=DATA_ROOT, device=DEVICE,
                      show_progress=SHOW_PROGRESS, prepared=(train_src, val_src), **LIVE)
    return {"name": recipe.name, "model": res.model, "config": res.config, **multitask_eval.figures(res)}

full = [atpn("atpn", seed) for seed in SEEDS]
KEYS = ["nme", "baseline_nme", "pose_mae", "pose_mae_baseline", "pose_fr", "pose_fr_baseline",
        "confidence_ap", "confidence_ap_baseline"]
table = pd.DataFrame([{"seed": s, **{k: r[k] for k in KEYS}} for s, r in zip(SEEDS, full)])
for k in KEYS:
    table[k] = table[k] * (1 if k.startswith("pose_mae") else 100)
table["x mean shape"] = table["nme"] / table["baseline_nme"]
print(f"ATPN on {LABEL} ({'zoo' if ZOO else 'trained'}): NME, FR and AP in %, pose MAE in degrees")
print(table.round(2).to_string(index=False))
''')

prose("converged")

md(r"""
## 6. Ablations: Xia Tables 7 and 8 in miniature

**Table 7** switches off parts of the alignment branch: the low-level features (regress from the $7\times7$
level only), the multiview blocks, the CoordConvs. **Table 8** asks what sharing buys the pose and tracking
branches: their own copy of the low-level layers instead of the shared features (`separate`), and no
heatmap fusion (Eq. 2 skipped, `no_fusion`). The branch variants train stages 2 and 3 on the very network
stage 1 gave the full model of the same seed, so their comparison with it is paired, seed by seed. The
alignment variants are one seed each and are read against the range of the three full models: **no claim
from a one-seed row alone**.
""")

code('''
VARIANTS = {"no_low_level": "no low-level features", "no_multiview": "no multiview blocks",
            "no_coordconv": "no CoordConv", "separate": "separate features (not shared)",
            "no_fusion": "no heatmap fusion"}
MULTI = {"no_fusion"}                                          # three seeds in the zoo
by_variant = {"full ATPN": full}
for v, label in VARIANTS.items():
    by_variant[label] = [atpn(v, seed) for seed in (SEEDS if v in MULTI else SEEDS[:1])]
abl = pd.DataFrame(multitask_eval.group_rows(by_variant, keys=("nme", "pose_mae", "pose_fr", "confidence_ap")))
abl["params"] = [sum(p.numel() for p in rs[0]["model"].parameters()) for rs in by_variant.values()]
lo, hi = 100 * min(r["nme"] for r in full), 100 * max(r["nme"] for r in full)
print(f"means over seeds; NME, FR, AP in %, pose MAE in degrees; full-model NME range {lo:.2f}-{hi:.2f} %")
print(abl.round(2).to_string(index=False))
''')

code('''
fusion = by_variant["no heatmap fusion"]
separate = by_variant["separate features (not shared)"]
print("heatmap fusion, pose MAE (full - no fusion, paired by seed):",
      paired_verdict([r["pose_mae"] for r in full], [r["pose_mae"] for r in fusion], scale=1.0, unit="degrees"))
print("heatmap fusion, confidence AP (full - no fusion):",
      paired_verdict([r["confidence_ap"] for r in full], [r["confidence_ap"] for r in fusion], unit="AP points"))
print("shared features, pose MAE (full - separate):",
      paired_verdict([r["pose_mae"] for r in full[:len(separate)]], [r["pose_mae"] for r in separate],
                     scale=1.0, unit="degrees"))
''')

prose("ablations")

md(r"""
## 7. Tracking, frame by frame: Xia Table 4 in miniature

The loop of `lmk.track.Tracker` (Xia Sec. 3, Fig. 2a): the first frame is cropped from the face
detector's box (here a simulated detector: the true box, moved and resized by 5 % at random); every later
frame is cropped around the **bounding rectangle of the last frame's landmarks, widened by 25 %**; when
the confidence falls below 0.7 the face counts as lost and the detector places the next crop. Detection
mode calls the detector on every frame instead (Xia Table 3's setting). On the validation videos:
""")

code('''
if VIDEO_ROOT:
    from pathlib import Path
    from lmk.data import read_300vw
    folders = sorted(d for d in Path(VIDEO_ROOT).expanduser().iterdir() if (d / "vid.avi").is_file())[:N_VIDEOS]
    VIDEOS = [read_300vw(f, 0, 64) for f in folders]
    VIDEO_LABEL = f"300VW ({len(VIDEOS)} videos, first 64 frames)"
else:
    VIDEOS = multitask_run.validation_videos(ZOO_CFG, N_VIDEOS)
    VIDEO_LABEL = f"synthetic ({len(VIDEOS)} videos of 64 frames)"
VIDEO = min(VIDEO, len(VIDEOS) - 1)

def track(model, cfg, every_frame=False):
    size, margin = cfg["data"]["input_size"], cfg["data"]["margin"]
    return Tracker(multitask_run.predictor(model, cfg), size, margin=margin,
                   detect_every_frame=every_frame).track_all(VIDEOS)

main = full[0]
modes = {"tracking": track(main["model"], main["config"]),
         "detection (every frame)": track(main["model"], main["config"], every_frame=True)}
rows = []
for mode, results in modes.items():
    s = summarize(results)
    rows.append({"mode": mode, "frames": s["frames"], "detector calls": s["detector_calls"],
                 "calls saved %": 100 * s["detector_calls_saved"], "lost %": 100 * s["lost_rate"],
                 "NME %": 100 * s["mean_nme"], "FR0.1 %": 100 * s["failure_rate"]})
rows.append({"mode": "last frame's truth (no motion)", "frames": s["frames"] - s["videos"],
             "NME %": 100 * s["baseline_mean_nme"], "FR0.1 %": 100 * s["baseline_failure_rate"]})
print(f"ATPN (seed {SEEDS[0]}) on {VIDEO_LABEL}")
print(pd.DataFrame(rows).round(2).to_string(index=False))
''')

prose("tracking")

md(r"""
One tracked video, frame by frame: green the truth, red the prediction, the square the crop (yellow when
the detector placed it, white when the last frame's landmarks did), and the head axes of the predicted
pose at the nose (red: the head's x axis, green: down, blue: out of the face).
""")

code('''
track_video = VIDEOS[VIDEO]
result = modes["tracking"][VIDEO]
POSE = multitask_eval.pose_along(main["model"], track_video, result)
fig = plt.figure(figsize=(12, 2.6))
T = len(result.nme)
viz.show_track_strip(fig, track_video, result, np.linspace(0, T - 1, 6).astype(int), pose=POSE,
                     input_size=main["config"]["data"]["input_size"])
fig.tight_layout()
plt.show()
''')

md(r"""
Scrub through the video (headless, the notebook shows frame 0). The right panel is this video's NME per
frame for ATPN and for Yin's tracker (section 8), beside the last frame's truth:
""")

code('''
def yin(lam, seed=0):
    recipe = recipes.yin_tracker(lam, seed)
    model, entry = zoo.load(recipe.name)
    return {"name": recipe.name, "model": model, "config": entry["recipe"], "lam": lam}

YIN_SHOWN = yin(0.3)
yin_result = track(YIN_SHOWN["model"], YIN_SHOWN["config"])[VIDEO]

def show_frame(t=0):
    fig = plt.figure(figsize=(11, 3.6))
    viz.show_track_frame(fig, track_video, {"ATPN": result, "Yin, lambda 0.3": yin_result}, t, pose=POSE,
                         input_size=main["config"]["data"]["input_size"])
    fig.tight_layout()
    return fig

viz.explore(show_frame, t=IntSlider(value=0, min=0, max=T - 1, description="frame"))
''')

md(r"""
## 8. Yin's tracker: $\lambda = 0$ against $\lambda = 0.3$ (Yin Table 2 in miniature)

Yin et al. extend the 1D heatmap detector of notebook 02 with a temporal refinement (Sec. 4.2): the
detector's heatmaps of frame $t$ are encoded to features $U_t$ (CNN3), fused with the past,

$$V_t = \sum_{j=1}^{t} \lambda^{t-j}\,(1 - \lambda)\,U_j \;=\; (1 - \lambda)\,U_t + \lambda V_{t-1} \qquad \text{(Eq. 13)},$$

and decoded to a correction of the heatmaps (CNN4). $\lambda = 0$ is the same network with no memory. The
zoo's detector (`n06_yin_detector`) is notebook 02's `n02_1d_r3` fine-tuned on tracking crops; both
trackers train only the refinement on clips of three frames, on that same detector (three seeds each).
Yin's tracker has no confidence output: it is re-detected when its landmarks' box jumps (the `"spread"`
rule of `lmk.track`). Yin's models always come from the zoo (they train on synthetic videos only). All on
the same videos:
""")

code('''
trackers = {"ATPN": full, "Yin detector alone": [yin(None)]}
for lam in (0.0, 0.3):
    trackers[f"Yin, lambda {lam:g}"] = [yin(lam, seed) for seed in (0, 1, 2)]
TRACKED = {label: [summarize(track(m["model"], m["config"])) for m in models] for label, models in trackers.items()}
rows = []
for label, sums in TRACKED.items():
    rows.append({"tracker": label, "seeds": len(sums), "NME %": 100 * np.mean([s["mean_nme"] for s in sums]),
                 "FR0.1 %": 100 * np.mean([s["failure_rate"] for s in sums]),
                 "lost %": 100 * np.mean([s["lost_rate"] for s in sums]),
                 "calls saved %": 100 * np.mean([s["detector_calls_saved"] for s in sums])})
LAST = TRACKED["ATPN"][0]["baseline_mean_nme"]
rows.append({"tracker": "last frame's truth (no motion)", "NME %": 100 * LAST,
             "FR0.1 %": 100 * TRACKED["ATPN"][0]["baseline_failure_rate"]})
print(f"on {VIDEO_LABEL}")
print(pd.DataFrame(rows).round(2).to_string(index=False))
nme = {k: [s["mean_nme"] for s in v] for k, v in TRACKED.items()}
print("lambda 0.3 - lambda 0 (paired by seed):", paired_verdict(nme["Yin, lambda 0.3"], nme["Yin, lambda 0"]))
print("lambda 0.3 - ATPN:", verdict(nme["Yin, lambda 0.3"], nme["ATPN"]))
''')

code('''
fig, ax = plt.subplots(figsize=(7, 3.4))
curves = {label: np.concatenate([r.nme for r in track(models[0]["model"], models[0]["config"])])
          for label, models in trackers.items()}
viz.plot_ced(ax, {**curves, "last frame's truth": np.concatenate([r.baseline_nme for r in modes["tracking"]])},
             threshold=0.1, xmax="auto")
ax.set_title("Tracked frames: cumulative NME distribution (seed 0 of each)", fontsize=10)
plt.show()
''')

prose("yin")

md("## Results")

code('''
def row(experiment, figs, seeds=1, model=None):
    figs = figs if isinstance(figs, list) else [figs]
    mean = lambda k: float(np.nanmean([f.get(k, np.nan) for f in figs]))
    return {"experiment": experiment, "seeds": seeds,
            "params": None if model is None else sum(p.numel() for p in model.parameters()),
            "NME %": round(100 * mean("nme"), 2), "pose MAE deg": round(mean("pose_mae"), 2),
            "FR@10deg %": round(100 * mean("pose_fr"), 1), "AP %": round(100 * mean("confidence_ap"), 1)}

results = [{"experiment": f"mean shape / mean pose / constant score ({LABEL})", "seeds": 1, "params": 0,
            "NME %": round(100 * full[0]["baseline_nme"], 2), "pose MAE deg": round(full[0]["pose_mae_baseline"], 2),
            "FR@10deg %": round(100 * full[0]["pose_fr_baseline"], 1),
            "AP %": round(100 * full[0]["confidence_ap_baseline"], 1)},
           row(f"live ATPN ({SCALE}, stages {live.config['train']['stage_epochs']})", LIVE_FIG, 1, live.model)]
results += [row(label, rs, len(rs), rs[0]["model"]) for label, rs in by_variant.items()]
metrics = {"atpn_nme": float(np.mean([r["nme"] for r in full])), "mean_shape_nme": full[0]["baseline_nme"],
           "atpn_pose_mae": float(np.mean([r["pose_mae"] for r in full])),
           "mean_pose_mae": full[0]["pose_mae_baseline"],
           "atpn_confidence_ap": float(np.mean([r["confidence_ap"] for r in full])),
           "tracking_nme": {k: float(np.mean([s["mean_nme"] for s in v])) for k, v in TRACKED.items()},
           "last_frame_nme": LAST, "live_seconds": live.seconds, "scale": SCALE, "data": DATA,
           "videos": VIDEO_LABEL, "tables_from": "zoo" if ZOO else "trained"}
display(pd.DataFrame(results))
lmk.course.write_results(RESULTS, "06_multitask_training", results, metrics);
''')

prose("questions")

nb = {"cells": [], "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                "language_info": {"name": "python"}},
      "nbformat": 4, "nbformat_minor": 5}
for i, (kind, src, tags) in enumerate(CELLS):
    cell = {"cell_type": kind, "id": f"c{i:02d}", "metadata": {"tags": tags} if tags else {},
            "source": src.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    nb["cells"].append(cell)
json.dump(nb, open("notebooks/06_multitask_training.ipynb", "w"), indent=1)
print(len(CELLS), "cells")
