"""The cost and accuracy numbers of Earp et al. (2021), Tables 2-4 and 6, beside ours.

The paper's models: MobileNetV2 features at stride 32, input 192 x 192, 106 landmarks (JD-landmark).
Table 3: width 0.25, 256 filters, four blocks (96 x 96 heatmaps). Table 4: width 1.0; the
text says the filters were reduced to 128 before upsizing (Sec. 4.3), and 128 is what makes
the costs fit, so :func:`cost_table` uses 128 there. Three-block strategies give 48 x 48 heatmaps.

What matches and what does not (see :func:`cost_table`):

* The paper's "GFLOPS" are multiply-accumulates: ours lie 0.02-0.045 G below the paper's for
  every strategy of Tables 3 and 4 (within 5.2 % for the eleven of Table 3, DDDD 3.455 G vs
  3.50; 8.5 % for the small SSD of Table 4). A near-constant gap points at the backbone
  (channel rounding, or element-wise operations counted), not at the heads. Counting 2 FLOPs
  per MAC would double every number.
* The ranking by cost is the paper's exactly (Spearman rho = 1 over the eleven).
* Sizes are 2.6-4.1 MB below the paper's for every row (SSSS: 3.1 MB vs 6.12; DDDD: 14.6 vs
  18.26), so differences between strategies are roughly reproduced but not the offset. The
  paper does not say how it measured size (MXNet parameter files may hold unused backbone
  layers); we count fp32 parameters and buffers.
"""

from __future__ import annotations

import numpy as np
import torch

# Table 3 (Table 2 is its SSSS and DDDD rows): strategy -> (AUC %, GFLOPS, size MB).
EARP_TABLE_3 = {
    "SSSS": (79.18, 0.56, 6.12),
    "DSSS": (80.72, 0.64, 9.56),
    "DDSS": (80.66, 0.96, 12.00),
    "DSSD": (81.55, 1.10, 10.08),
    "DSDS": (80.92, 1.73, 11.69),
    "DDDS": (80.81, 2.25, 16.44),
    "SSSD": (81.71, 1.02, 6.64),
    "SDSD": (81.90, 1.29, 8.76),
    "SSDD": (81.10, 2.90, 10.08),
    "SDDD": (81.89, 3.36, 13.51),
    "DDDD": (82.20, 3.50, 18.26),
}
TABLE_3_SETTINGS = {"width_mult": 0.25, "filters": 256, "num_landmarks": 106, "input_size": 192}

# Table 4: MobileNetV2 1.0, strategy -> (AUC %, GFLOPS); no sizes given.
EARP_TABLE_4 = {
    "SSD": (84.56, 0.32),
    "SDD": (84.67, 0.43),
    "SSSD": (84.43, 0.55),
    "SDSD": (84.46, 0.61),
}
TABLE_4_SETTINGS = {"width_mult": 1.0, "filters": 128, "num_landmarks": 106, "input_size": 192}

# Table 6: backbone -> (GPU ms, CPU ms (Apache TVM, one core of an i5-9300H), GFLOPS, size MB).
EARP_TABLE_6 = {
    "mobilenet_v2": (4.20, 65.70, 0.43, 12.16),
    "resnet18": (4.83, 131.5, 1.13, 45.56),
    "resnet50": (8.71, 241.5, 3.23, 94.10),
}


def earp_cost_table(table: int = 3) -> list[dict]:
    """Our cost of every strategy of Earp Table 3 or 4 beside the paper's numbers.

    Returns one row per strategy: ``strategy``, ``paper_gflops``, ``our_gmacs``, ``ratio``
    (ours / paper), ``paper_size_mb`` (Table 3 only), ``our_size_mb``, ``paper_auc``, ``params``.
    Deterministic (shape arithmetic on the meta device, no weights involved).
    """
    from ..complexity import profile
    from .heatmap import HeatmapModel

    if table not in (3, 4):
        raise ValueError(f"table must be 3 or 4, got {table!r}")
    paper, settings = (EARP_TABLE_3, TABLE_3_SETTINGS) if table == 3 else (EARP_TABLE_4, TABLE_4_SETTINGS)
    size = settings["input_size"]
    rows = []
    for strategy, values in paper.items():
        with torch.device("meta"):      # shapes only: no weights are allocated or initialised
            model = HeatmapModel(settings["width_mult"], strategy, settings["filters"],
                                 settings["num_landmarks"])
        cost = profile(model, (1, 3, size, size))
        row = {"strategy": strategy, "paper_gflops": values[1], "our_gmacs": round(cost["gmacs"], 3),
               "ratio": round(cost["gmacs"] / values[1], 3)}
        if table == 3:
            row["paper_size_mb"] = values[2]
        row["our_size_mb"] = round(cost["size_mb"], 2)
        row["paper_auc"] = values[0]
        row["params"] = cost["params"]
        rows.append(row)
    return rows


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally long sequences (average ranks for ties)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two 1D sequences of the same length >= 2, got {a.shape} and {b.shape}")

    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):          # average the ranks of ties
            tie = v == value
            r[tie] = r[tie].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def __getattr__(name: str):
    """Old names that still work, with a warning (see CHANGELOG.md)."""
    if name == "cost_table":
        import warnings

        warnings.warn("lmk.models.earp_tables.cost_table is deprecated; use earp_cost_table", DeprecationWarning, stacklevel=2)
        return earp_cost_table
    raise AttributeError(f"module 'lmk.models.earp_tables' has no attribute {name!r}")
