"""Comparing models across training seeds: when is a difference a difference?

Two models trained once differ by chance as well as by design: a new seed changes the
initialisation, the batch order and the augmentation, and moves the validation NME by a few
tenths of a point. So the course calls a difference real only when it holds across training
seeds (at least three per model), and says "level within noise" otherwise::

    rows = seed_table({"SDSD": [0.0301, 0.0297, 0.0305], "DDDD": [0.0299, 0.0310, 0.0302]})
    verdict(rows[0], rows[1])      # 'level within noise (-0.03 +- 0.04 NME points)'

The rule (:func:`verdict`): the difference of the seed means must exceed twice its standard
error, ``sqrt(s_a^2 / n_a + s_b^2 / n_b)`` with the sample standard deviations ``s`` across
seeds, and there must be at least ``min_seeds`` seeds on each side. With three seeds a side this
is a lenient test (about 85-90 % two-sided confidence, as the standard deviations are themselves
estimated from three values): a "lower" or "higher" is a finding to report, not a proof.
"""

from __future__ import annotations

import math

import numpy as np


def seed_stats(values) -> dict:
    """``{"seeds", "values", "mean", "std", "min", "max"}`` of one model's per-seed figures."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"per-seed values must be finite and non-empty, got {values!r}")
    return {"seeds": int(v.size), "values": v.tolist(), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
            "min": float(v.min()), "max": float(v.max())}


def seed_table(groups: dict, scale: float = 100.0) -> list[dict]:
    """One row per model: per-seed values, mean and spread, multiplied by ``scale`` (% by default).

    Args:
        groups: ``{label: [value of seed 0, value of seed 1, ...]}`` (e.g. NME fractions).
    """
    rows = []
    for label, values in groups.items():
        s = seed_stats(values)
        rows.append({"model": label, "seeds": s["seeds"],
                     "per seed": ", ".join(f"{scale * x:.2f}" for x in s["values"]),
                     "mean": scale * s["mean"], "std": scale * s["std"],
                     "range": scale * (s["max"] - s["min"]), "_values": s["values"]})
    return rows


def difference(a, b) -> tuple[float, float]:
    """``(mean(a) - mean(b), standard error)`` of two models' per-seed values."""
    sa, sb = seed_stats(a), seed_stats(b)
    if sa["seeds"] < 2 or sb["seeds"] < 2:
        return sa["mean"] - sb["mean"], math.nan
    se = math.sqrt(sa["std"] ** 2 / sa["seeds"] + sb["std"] ** 2 / sb["seeds"])
    return sa["mean"] - sb["mean"], se


def verdict(a, b, scale: float = 100.0, unit: str = "NME points", min_seeds: int = 3) -> str:
    """Say whether ``a`` and ``b`` (per-seed values, or rows of :func:`seed_table`) differ.

    Returns ``"lower"``/``"higher"``/``"level within noise"`` with the difference and its
    standard error, or ``"fewer than 3 seeds: no claim (...)"`` when a side has fewer than
    ``min_seeds``.
    """
    a = a["_values"] if isinstance(a, dict) else a
    b = b["_values"] if isinstance(b, dict) else b
    d, se = difference(a, b)
    text = f"{scale * d:+.2f} +- {scale * se:.2f} {unit}"
    if min(np.size(a), np.size(b)) < min_seeds or not math.isfinite(se):
        return f"fewer than {min_seeds} seeds: no claim ({scale * d:+.2f} {unit})"
    if abs(d) > 2 * se:
        return f"{'lower' if d < 0 else 'higher'} ({text})"
    return f"level within noise ({text})"


def paired(a, b, scale: float = 100.0) -> tuple[float, float]:
    """Mean and standard error of the per-image difference ``a - b`` on the same faces."""
    d = scale * (np.asarray(a, np.float64) - np.asarray(b, np.float64))
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"paired() needs two equal-length per-image arrays, got shape {d.shape}")
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


def paired_verdict(a, b, min_seeds: int = 3, scale: float = 100.0, unit: str = "NME points") -> str:
    """:func:`verdict` on per-seed differences ``a - b`` of two readings of the same seeds
    (e.g. two decoders of one model).

    The difference of the means of paired values is the mean of their differences, and its
    standard error is ``std(a - b) / sqrt(n)``: :func:`verdict` of the differences
    against zeros computes exactly that (the zeros add no variance). The rule is the course's:
    "lower"/"higher" when the mean difference exceeds twice its standard error.

    Args:
        a, b: per-seed values (fractions) of the same seeds, in the same order.
        scale, unit: of the printed difference (as :func:`verdict`; degrees: ``1.0, "degrees"``).
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_verdict needs one value per seed on both sides, got {a.size} and {b.size}")
    d = a - b
    return verdict(d, np.zeros_like(d), scale=scale, unit=unit, min_seeds=min_seeds)
