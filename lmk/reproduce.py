"""What reproduces: every paper effect the course discusses, judged on the zoo's test faces.

Each :class:`Effect` names a paper, the effect in words, the paper's own figure, and two arms of
zoo models (per-seed entries of the manifest). :func:`judge` reads their held-out test figures
from the manifest, compares the arms at 95 % (:mod:`lmk.compare`: Welch's t across independently
trained seeds, a paired t only where the two readings share trained weights) and says whether
the paper's direction shows::

    rows = judge()                       # every effect, today's manifest
    print(markdown(notebook="03"))       # one notebook's rows, as in its closing table

The README's "What reproduces" table is :func:`markdown` of all rows (a test checks it).

Verdicts: ``reproduces`` (the paper's direction, at 95 %), ``opposite`` (the other direction, at
95 %), ``not shown`` (level within noise where the paper reports a difference), ``consistent``
(the paper reports no difference that matters and none is found: not a proof of equality),
``differs`` (the paper reports none, we find one), ``no paper figure; ours ...`` (a question the
course asks that the paper does not answer), and ``no claim`` (fewer than 3 seeds on a side: one
seed is never a finding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import store
from .compare import MIN_SEEDS, paired_t, welch

__all__ = ["Effect", "EFFECTS", "judge", "rows", "markdown", "counts", "value"]

_SEEDS = ("", "_s1", "_s2")


def _seeds(name: str) -> tuple[str, ...]:
    return tuple(name + s for s in _SEEDS)


@dataclass(frozen=True)
class Effect:
    """One paper effect and the zoo models that test it.

    Args:
        notebook: the notebook that discusses it.
        paper: ``"Author et al. YEAR"``.
        effect: the effect in words, as "A vs B" with what the paper finds.
        figure: the paper's own figure for it (table, numbers, data set).
        a, b: the zoo entries of the two arms (one per training seed, in seed order).
        read_a, read_b: what to read from each entry (see :func:`value`).
        paired: the arms share trained weights seed by seed (one model read two ways, a branch
            trained on a shared base, a refinement of one detector): a paired t.
        expect: the paper's direction of ``A - B`` for the figure read: ``"lower"``,
            ``"higher"``, ``"level"`` (no difference that matters), or ``"none"`` (the paper
            reports no figure: the row states what we find and judges no paper).
        unit, scale: of the printed difference (NME points: ``100``; degrees: ``1``).
        note: what else differs between the arms, or what the interval does not cover.
        held_fixed: what is held fixed in the comparison (the test faces, or videos).
    """

    notebook: str
    paper: str
    effect: str
    figure: str
    a: tuple
    b: tuple
    read_a: str = "nme"
    read_b: str = "nme"
    paired: bool = False
    expect: str = "lower"
    unit: str = "NME points"
    scale: float = 100.0
    note: str = ""
    held_fixed: str = "the 256 test faces"


def value(entry: dict, read: str) -> float:
    """A figure of a manifest entry on the test faces.

    ``read``: ``"nme"`` (the entry's own decoder), ``"nme:<decoder>"`` (another decoder or
    ``dark+flip``), ``"baseline_nme"`` (the mean shape), or a dotted path into
    ``task_metrics`` (``"pose_mae"``, ``"tracking.mean_nme"``, ``"tracking.baseline_mean_nme"``).
    """
    if read == "nme":
        return float(entry["metrics"][entry["method"]]["nme"])
    if read.startswith("nme:"):
        return float(entry["metrics"][read[4:]]["nme"])
    if read == "baseline_nme":
        return float(entry["baseline_nme"])
    out = entry["task_metrics"]
    for key in read.split("."):
        out = out[key]
    return float(out)


_TRACK_VIDEOS = "the 32 test videos"
EFFECTS: tuple[Effect, ...] = (
    # ------------------------------------------------------------------ 02: Yin et al.
    Effect("02", "Yin et al. 2020", "1D marginal heatmaps vs 2D heatmaps, L/F = 0.25",
           "Table 1 (300W full, NRMSE %): 1D 3.99 vs 2D 4.04 at L/F = 0.25; 3.70 vs 3.72 at 0.5",
           _seeds("n02_1d_r025"), _seeds("n02_2d_r025"), expect="level"),
    Effect("02", "Yin et al. 2020", "1D heatmaps: L/F = 1 vs L/F = 0.25 (finer heatmaps)",
           "Table 1 (1D, 300W full): 3.56 at L/F = 1 vs 3.99 at 0.25",
           ("n02_1d_r1",), _seeds("n02_1d_r025"), "nme:argmax", "nme:argmax",
           note="argmax decoding, as Yin"),
    Effect("02", "Yin et al. 2020", "1D heatmaps: L/F = 3 vs L/F = 1",
           "Table 1 (1D, 300W full): 3.38 at L/F = 3 vs 3.56 at 1",
           ("n02_1d_r3",), ("n02_1d_r1",), "nme:argmax", "nme:argmax", note="argmax decoding, as Yin"),
    Effect("02", "Yin et al. 2020", "co-attention gamma 0.3 vs gamma 0 (L/F = 1)",
           "Sec. 5.3 (Fig. 3): gamma 0 to 0.4 lowers NRMSE by 5.3 % relative (300W full)",
           ("n02_1d_r1",), ("n02_1d_r1_g0",)),
    Effect("02", "Yin et al. 2020", "sub-pixel decoding (DARK) vs argmax, 1D L/F = 0.25",
           "Table 3 (300W full): 1D + DARK 3.12 vs argmax 3.38 at L/F = 3",
           _seeds("n02_1d_r025"), _seeds("n02_1d_r025"), "nme:dark", "nme:argmax", paired=True,
           note="one model read two ways"),
    # ------------------------------------------------------------------ 03: Earp et al.
    Effect("03", "Earp et al. 2021", "pixel shuffle SSSS vs deconvolution DDDD",
           "Table 2 (JD-landmark, AUC@0.08): SSSS 79.18 vs DDDD 82.20 at 0.56 vs 3.50 GFLOPS",
           _seeds("n03_ssss"), _seeds("n03_dddd"), expect="higher"),
    Effect("03", "Earp et al. 2021", "pixel shuffle SSSS vs mixed SDSD",
           "Tables 2-3 (JD-landmark, AUC@0.08): SSSS 79.18 vs SDSD 81.90",
           _seeds("n03_ssss"), _seeds("n03_sdsd"), expect="higher"),
    Effect("03", "Earp et al. 2021", "mixed SDSD vs deconvolution DDDD",
           "Table 3 (JD-landmark, AUC@0.08): SDSD 81.90 vs DDDD 82.20 at 1.29 vs 3.50 GFLOPS",
           _seeds("n03_sdsd"), _seeds("n03_dddd"), expect="level"),
    Effect("03", "Earp et al. 2021", "flip test-time averaging vs none (SDSD)",
           "Sec. 5.1: about +0.6 AUC (JD-landmark)",
           _seeds("n03_sdsd"), _seeds("n03_sdsd"), "nme:dark+flip", "nme:dark", paired=True,
           note="one model read two ways"),
    Effect("03", "Earp et al. 2021", "flip augmentation vs none (SDSD)",
           "Sec. 5.1: about +0.7 AUC (JD-landmark)",
           ("n03_sdsd_flip_augmentation",), _seeds("n03_sdsd")),
    Effect("03", "Earp et al. 2021", "random erasing vs none (SDSD)",
           "Sec. 5.1: about +0.2 AUC (JD-landmark)",
           ("n03_sdsd_random_erasing",), _seeds("n03_sdsd")),
    Effect("03", "Earp et al. 2021", "rotation augmentation vs none (SDSD)",
           "Sec. 5.1: rotation about +0.2 AUC (JD-landmark)",
           ("n03_sdsd_rotation",), _seeds("n03_sdsd")),
    # ------------------------------------------------------------------ 04: Yan et al.
    Effect("04", "Yan et al. 2020", "FFLD after stage 1 vs the base regression S0",
           "Tables 1, 5 (300W full, NME %): regression 4.98, with CropNet stages 3.66-3.85",
           _seeds("n04_ffld"), _seeds("n04_ffld"), "nme:stage1", "nme:stage0", paired=True,
           note="one model read at two stages"),
    Effect("04", "Yan et al. 2020", "FFLD after stage 3 vs after stage 1",
           "Table 5 (300W full, L2 losses): 3 stages 3.81 vs 2 stages 3.85",
           _seeds("n04_ffld"), _seeds("n04_ffld"), "nme:stage3", "nme:stage1", paired=True,
           note="one model read at two stages"),
    Effect("04", "Yan et al. 2020", "loss assignment: all-L2 vs the paper's assignment",
           "Table 5 (300W full, NME %): L2/L2/L2 3.81 vs the paper's 3.66",
           ("n04_ffld_l2",), _seeds("n04_ffld"), expect="higher"),
    Effect("04", "Yan et al. 2020", "loss assignment: all-L1 vs the paper's assignment",
           "Table 5 (300W full, NME %): L1/L1/L1 3.76 vs the paper's 3.66",
           ("n04_ffld_l1",), _seeds("n04_ffld"), expect="higher"),
    Effect("04", "Yan et al. 2020", "crop gradients: features only vs both",
           "Table 6 (300W, NME %): features only 3.69 vs both 3.66",
           ("n04_ffld_grad_features",), _seeds("n04_ffld"), expect="higher"),
    Effect("04", "Yan et al. 2020", "crop gradients: centres only vs both",
           "Table 6 (300W, NME %): centres only 3.74 vs both 3.66",
           ("n04_ffld_grad_centers",), _seeds("n04_ffld"), expect="higher"),
    Effect("04", "Yan et al. 2020", "crop gradients: neither vs both",
           "Table 6 (300W, NME %): neither 3.78 vs both 3.66",
           ("n04_ffld_grad_none",), _seeds("n04_ffld"), expect="higher"),
    # ------------------------------------------------------------------ 05: Mahpod et al.
    Effect("05", "Mahpod et al. 2018", "regression unit P4 vs the argmax of its heatmap H4 (K = 4)",
           "Sec. 3: the units refine the heatmap maxima (no figure reported)",
           _seeds("n05_ccnn_k4"), _seeds("n05_ccnn_k4"), "nme:unit4", "nme:argmax4", paired=True,
           note="one model read two ways"),
    Effect("05", "Mahpod et al. 2018", "K = 4 cascades vs K = 1",
           "Fig. 11 (text): more cascades lower the error, most beyond K = 1",
           _seeds("n05_ccnn_k4"), ("n05_ccnn_k1",)),
    Effect("05", "Mahpod et al. 2018", "K = 4 cascades vs K = 2",
           "Fig. 11 (text): one more cascade about 2 % better",
           _seeds("n05_ccnn_k4"), ("n05_ccnn_k2",)),
    # ------------------------------------------------------------------ 06: Xia et al., Yin et al.
    Effect("06", "Xia et al. 2022", "ATPN head pose vs the training mean pose",
           "Table 6 (300W-LP): pose MAE 1.55 deg common, 2.84 challenging",
           _seeds("n06_atpn"), _seeds("n06_atpn"), "pose_mae", "pose_mae_baseline", paired=True,
           unit="degrees", scale=1.0, note="the model against a constant on the same faces"),
    Effect("06", "Xia et al. 2022", "heatmap fusion vs none: head pose",
           "Table 8 (300W-LP, MAE deg): 1.55 / 2.84 with the heatmap vs 1.71 / 3.17 without",
           _seeds("n06_atpn"), _seeds("n06_atpn_no_fusion"), "pose_mae", "pose_mae", paired=True,
           unit="degrees", scale=1.0, note="pose branches trained on one shared stage-1 base per seed"),
    Effect("06", "Xia et al. 2022", "no low-level features vs full ATPN",
           "Table 7 (WFLW, NME %): adding them 5.61 to 5.40",
           ("n06_atpn_no_low_level",), _seeds("n06_atpn"), expect="higher"),
    Effect("06", "Xia et al. 2022", "no multiview blocks vs full ATPN",
           "Table 7 (WFLW, NME %): adding them 5.40 to 5.33",
           ("n06_atpn_no_multiview",), _seeds("n06_atpn"), expect="higher"),
    Effect("06", "Xia et al. 2022", "no CoordConv vs full ATPN",
           "Table 7 (WFLW, NME %): adding it 5.33 to 5.13",
           ("n06_atpn_no_coordconv",), _seeds("n06_atpn"), expect="higher"),
    Effect("06", "Xia et al. 2022", "separate vs shared features: head pose",
           "Table 8 (300W-LP, MAE deg): single-task 1.68 / 3.12 vs shared 1.71 / 3.17",
           ("n06_atpn_separate",), _seeds("n06_atpn"), "pose_mae", "pose_mae", expect="level",
           unit="degrees", scale=1.0),
    Effect("06", "Xia et al. 2022", "ATPN tracking vs the previous frame's true landmarks",
           "not reported (Table 3: tracking 3.52 vs detection 3.49 % NME, 300VW A)",
           _seeds("n06_atpn"), _seeds("n06_atpn"), "tracking.mean_nme", "tracking.baseline_mean_nme",
           paired=True, expect="none", note="an oracle baseline: the truth one frame late",
           held_fixed=_TRACK_VIDEOS),
    Effect("06", "Yin et al. 2020", "temporal refinement lambda 0.3 vs lambda 0",
           "Table 2 (300VW S1/S2/S3, NRMSE %): 3.06 / 3.17 / 4.12 vs 3.31 / 3.45 / 4.42",
           _seeds("n06_yin_l03"), _seeds("n06_yin_l0"), "tracking.mean_nme", "tracking.mean_nme", paired=True,
           note="both refine one detector (seed 0), paired by refinement seed", held_fixed=_TRACK_VIDEOS),
    Effect("06", "Yin et al. 2020", "tracker (lambda 0.3) vs its detector alone",
           "not reported (Table 2's lambda = 0 is the closest)",
           _seeds("n06_yin_l03"), ("n06_yin_detector",), "tracking.mean_nme", "tracking.mean_nme",
           expect="none", note="one detector seed", held_fixed=_TRACK_VIDEOS),
)
"""Every paper effect the course discusses, in notebook order."""


def _word(comparison, expect: str) -> str:
    if not comparison.claim:
        return "no claim"
    found = comparison.word
    if expect == "none":
        return f"no paper figure; ours {found}"
    if found == "level within noise":
        return "consistent" if expect == "level" else "not shown"
    if expect == "level":
        return f"differs ({found})"
    return "reproduces" if found == expect else "opposite"


def judge(effects=EFFECTS, zoo_dir=None, entries: dict | None = None) -> list[dict]:
    """One record per effect: the per-seed values of both arms, the comparison and the verdict."""
    entries = store.manifest(zoo_dir) if entries is None else entries
    out = []
    for eff in effects:
        missing = [n for n in (*eff.a, *eff.b) if n not in entries]
        if missing:
            raise store.ZooError(f"effect {eff.effect!r} ({eff.notebook}): the zoo has no entries {missing}")
        a = np.array([value(entries[n], eff.read_a) for n in eff.a])
        b = np.array([value(entries[n], eff.read_b) for n in eff.b])
        c = (paired_t if eff.paired else welch)(a, b, min_seeds=MIN_SEEDS)
        out.append({"effect": eff, "a": a, "b": b, "comparison": c, "verdict": _word(c, eff.expect)})
    return out


def _ours(r: dict) -> str:
    eff, c = r["effect"], r["comparison"]
    s = eff.scale
    seeds = f"{c.n_a} paired seeds" if eff.paired else f"{c.n_a} + {c.n_b} seeds"
    means = f"{s * r['a'].mean():.2f} vs {s * r['b'].mean():.2f}"
    if not c.claim:
        return f"{means}; {seeds}"
    test = "paired t" if eff.paired else "Welch t"
    return (f"{means}; {s * c.diff:+.2f} [{s * c.low:+.2f}, {s * c.high:+.2f}]; {seeds}, {test}")


def rows(notebook: str | None = None, zoo_dir=None, entries: dict | None = None) -> list[dict]:
    """The table's rows (``notebook`` selects one notebook's): paper, effect, the paper's figure,
    ours (means of the arms; the difference A - B and its 95 % interval; seeds, test) and verdict."""
    effects = [e for e in EFFECTS if notebook is None or e.notebook == notebook]
    return [{"notebook": r["effect"].notebook, "paper": r["effect"].paper, "effect (A vs B)": r["effect"].effect,
             "paper's figure": r["effect"].figure,
             f"ours, test set (A vs B; A - B [95 % CI])": _ours(r) + (f" ({r['effect'].unit}"
                                                                      f"{'; ' + r['effect'].note if r['effect'].note else ''})"),
             "verdict": r["verdict"]}
            for r in judge(effects, zoo_dir, entries)]


def markdown(notebook: str | None = None, zoo_dir=None, entries: dict | None = None) -> str:
    """:func:`rows` as a Markdown table (the README's "What reproduces")."""
    table = rows(notebook, zoo_dir, entries)
    if not table:
        return ""
    keys = list(table[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]).replace("|", "/") for k in keys) + " |" for r in table]
    return "\n".join(lines) + "\n"


def counts(zoo_dir=None) -> dict:
    """``{verdict: number of effects}`` of today's manifest."""
    out: dict = {}
    for r in judge(zoo_dir=zoo_dir):
        out[r["verdict"]] = out.get(r["verdict"], 0) + 1
    return out


if __name__ == "__main__":                              # python -m lmk.reproduce
    print(markdown(), end="")
    print("\n" + ", ".join(f"{k}: {v}" for k, v in sorted(counts().items())))
