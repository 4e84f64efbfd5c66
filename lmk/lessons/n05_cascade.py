"""Reading a cascade unit by unit (notebook 05, Mahpod et al. (2018)).

Three questions a cascaded network raises, each one function:

* what flows through it: :func:`ccnn_shape_table` runs one forward pass of a :class:`lmk.models.CCNN`
  and lists every part (Tables 2-4) with its input and output shapes, parameters and MACs;
* where the error falls: :func:`per_decoder` gathers a metric of every decoder (``argmax1`` ..
  ``argmaxK``: the maxima of the heatmap units, ``unit1`` .. ``unitK``: the refined points of
  Eq. 1) over the training seeds of one recipe, and :func:`unit_rows` tabulates it;
* which step helps: :func:`lmk.compare.paired_verdict` and :func:`unit_verdicts` ask, across seeds, whether a
  refinement or a further unit lowers the NME.

Two decoders of one network are compared *within* each seed: whatever a seed does to the
network, both read the same network, so the test is on the per-seed differences
(:func:`lmk.compare.paired_verdict`), not on two independent groups of seeds (:func:`lmk.compare.verdict`).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from .. import complexity, recipes
from ..compare import paired_verdict
from ..models.ccnn import paper_layers

def ccnn_shape_table(model: nn.Module, input_size=(64, 64)) -> list[dict]:
    """Every part of a CCNN in the order it runs, from one forward pass of a zero image.

    Args:
        model: a :class:`lmk.models.CCNN` (its mode is restored afterwards; nothing else changes).
        input_size: ``(H, W)`` of the input image (multiples of 4).
    Returns:
        one row per part: ``part`` (Tables 2-4's layer names), ``computes`` (the paper's symbols;
        ``+`` is concatenation along channels), ``input`` and ``output`` shapes ``(C, h, w)`` of
        one image, ``params`` and ``macs`` (multiply-accumulates of one image, counted by
        ``torch.utils.flop_counter`` as :func:`lmk.complexity.profile` does).
    """
    if not all(hasattr(model, a) for a in ("base1", "base2", "heatmap_units", "regression_units")):
        raise TypeError(f"shape_table needs a CCNN (lmk.models.CCNN), got {type(model).__name__}")
    size = tuple(input_size) if isinstance(input_size, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"input_size must be (H, W), two positive ints, got {input_size!r}")
    h, w = size
    rows = complexity.shape_table(model, (1, 3, h, w), paper_layers(model))
    return [{"part": r["part"], "computes": r["computes"], "input": tuple(r["input"].shape[1:]),
             "output": tuple(r["output"].shape[1:]), "params": r["params"], "macs": r["macs"]}
            for r in rows]


def cost_rows(named: dict, scales=("zoo", "full")) -> list[dict]:
    """Parameters and MACs of recipes' networks at several scales (one image, their input size).

    Args:
        named: ``{label: recipe name or Recipe}``.
        scales: recipe scales; ``"zoo"`` is the course's configuration, ``"full"`` the paper's.
    Returns:
        one row per label: ``model`` and, per scale, ``"<scale> input"`` (px),
        ``"<scale> params"``, ``"<scale> GMACs"``. The networks are built with random weights
        on the CPU (a CCNN cannot run on the meta device: its argmax needs values).
    """
    rows = []
    for label, recipe in named.items():
        row = {"model": label}
        for scale in scales:
            cfg = recipes.configure(recipe, scale)
            size = cfg["data"]["input_size"]
            cost = complexity.profile(recipes.build_model(cfg), (1, 3, size, size), device="cpu")
            row.update({f"{scale} input": size, f"{scale} params": cost["params"],
                        f"{scale} GMACs": cost["macs"] / 1e9})
        rows.append(row)
    return rows


def per_decoder(outcomes: list[dict], metric: str = "nme") -> dict:
    """``{decoder: [metric of outcome 0, outcome 1, ...]}`` for decoders every outcome scored.

    Args:
        outcomes: results of :func:`lmk.experiments.outcome` (one per training seed), each with
            ``methods = {decoder: {"nme", "auc", "failure_rate", ...}}``.
        metric: ``"nme"``, ``"auc"`` or ``"failure_rate"``.
    """
    if not outcomes:
        raise ValueError("per_decoder needs at least one outcome")
    shared = [m for m in outcomes[0]["methods"] if all(m in o["methods"] for o in outcomes)]
    if not shared:
        raise ValueError("the outcomes share no decoder: score them with the same methods")
    if metric not in outcomes[0]["methods"][shared[0]]:
        raise ValueError(f"metric must be one of 'nme', 'auc', 'failure_rate', got {metric!r}")
    return {m: [float(o["methods"][m][metric]) for o in outcomes] for m in shared}


def _cascades(outcomes: list[dict]) -> int:
    ks = {o["config"]["model_args"].get("num_cascades") for o in outcomes}
    if len(ks) != 1 or None in ks:
        raise ValueError(f"outcomes must all be CCNNs with the same number of cascades, got {ks}")
    return ks.pop()


def unit_rows(outcomes: list[dict]) -> list[dict]:
    """Per unit ``k``: mean over seeds of the argmax and refined NME, AUC@0.08 and failure rate (%).

    Args:
        outcomes: one per seed, scored with every decoder (:func:`lmk.recipes.decoders`).
    Returns:
        one row per unit with ``unit``, ``seeds`` and, for ``argmax`` (``P^_k``) and ``refined``
        (``P_k``), ``NME %``, ``AUC %`` and ``FR %``.
    """
    k_max = _cascades(outcomes)
    tables = {m: per_decoder(outcomes, m) for m in ("nme", "auc", "failure_rate")}
    rows = []
    for k in range(1, k_max + 1):
        row = {"unit": k, "seeds": len(outcomes)}
        for label, name in (("argmax", f"argmax{k}"), ("refined", f"unit{k}")):
            for metric, short in (("nme", "NME %"), ("auc", "AUC %"), ("failure_rate", "FR %")):
                row[f"{label} {short}"] = 100 * float(np.mean(tables[metric][name]))
        rows.append(row)
    return rows


def ablation_rows(by_k: dict, reference: int | None = None) -> list[dict]:
    """Mahpod Fig. 11 in miniature: the refined ``P_K`` of CCNNs with ``K`` cascades (in %).

    Args:
        by_k: ``{K: [outcome of each seed]}``, each scored with ``unitK`` and ``argmaxK``.
        reference: a ``K`` with at least two seeds; every other ``K`` is placed against the range
            of its seeds (``"reading"``), the yardstick for one-seed rows.
    Returns:
        one row per ``K``: ``K``, ``seeds``, ``NME %``, ``AUC %``, ``FR %`` of ``P_K`` and
        ``argmax NME %`` of ``argmax(H_K)`` (means over seeds), and ``reading``.
    """
    if reference is not None and len(by_k.get(reference, ())) < 2:
        raise ValueError(f"reference K={reference} needs at least two seeds in by_k")
    ref = None if reference is None else per_decoder(by_k[reference])[f"unit{reference}"]
    rows = []
    for k in sorted(by_k):
        if _cascades(by_k[k]) != k:
            raise ValueError(f"by_k[{k}] holds CCNNs with {_cascades(by_k[k])} cascades")
        row = {"K": k, "seeds": len(by_k[k])}
        for metric, short in (("nme", "NME %"), ("auc", "AUC %"), ("failure_rate", "FR %")):
            row[short] = 100 * float(np.mean(per_decoder(by_k[k], metric)[f"unit{k}"]))
        row["argmax NME %"] = 100 * float(np.mean(per_decoder(by_k[k])[f"argmax{k}"]))
        if ref is None or k == reference:
            row["reading"] = "" if ref is None else f"seed range {100 * min(ref):.2f}-{100 * max(ref):.2f}"
        else:
            nme = row["NME %"] / 100
            place = (f"below all K={reference} seeds" if nme < min(ref) else
                     f"above all K={reference} seeds" if nme > max(ref) else
                     f"within the K={reference} seed range")
            row["reading"] = place + (" (one seed: no claim)" if len(by_k[k]) == 1 else "")
        rows.append(row)
    return rows


def unit_verdicts(outcomes: list[dict], min_seeds: int = 3,
                  held_fixed: str = "the test faces") -> list[tuple[str, str]]:
    """``(question, verdict)`` pairs: does each refinement, each further unit lower the NME?

    For every unit ``k``: ``P_k`` against ``argmax(H_k)`` (the regression unit's refinement), and
    for ``k > 1``: ``argmax(H_k)`` against ``argmax(H_{k-1})`` (one more heatmap unit) and
    ``P_k`` against ``P_{k-1}`` (one more cascade). Paired across seeds (:func:`lmk.compare.paired_verdict`).

    Args:
        outcomes: one per training seed, scored with every decoder.
        min_seeds: fewer seeds than this: "no claim".
        held_fixed: the faces every reading was scored on, as the verdicts print it
            (``"the 256 test faces"``; a model trained here: its validation faces).
    """
    k_max = _cascades(outcomes)
    nme = per_decoder(outcomes, "nme")

    def judge(a: str, b: str) -> str:
        return paired_verdict(nme[a], nme[b], min_seeds, held_fixed=held_fixed)

    out = []
    for k in range(1, k_max + 1):
        out.append((f"P{k} vs argmax(H{k}) (refinement {k})", judge(f"unit{k}", f"argmax{k}")))
        if k > 1:
            out.append((f"argmax(H{k}) vs argmax(H{k - 1}) (heatmap unit {k})", judge(f"argmax{k}", f"argmax{k - 1}")))
            out.append((f"P{k} vs P{k - 1} (cascade {k})", judge(f"unit{k}", f"unit{k - 1}")))
    return out


__all__ = ["ccnn_shape_table", "cost_rows", "per_decoder", "unit_rows", "ablation_rows", "paired_verdict",
           "unit_verdicts"]


def __getattr__(name: str):
    """``shape_table``, the name notebook 05 used first, still works and warns."""
    if name == "shape_table":
        import warnings

        warnings.warn("lmk.lessons.n05_cascade.shape_table is deprecated; use ccnn_shape_table", DeprecationWarning, stacklevel=2)
        return ccnn_shape_table
    raise AttributeError(f"module 'lmk.lessons.n05_cascade' has no attribute {name!r}")
