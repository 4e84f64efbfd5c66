"""Comparing models across training seeds: when is a difference a difference?

Two models trained once differ by chance as well as by design: a new seed changes the
initialisation, the batch order and the augmentation, and moves the test NME by a few tenths of
a point. So the course calls a difference real only when it holds across training seeds, at 95 %
confidence, with at least three seeds a side, and says "level within noise" otherwise::

    verdict([0.0301, 0.0297, 0.0305], [0.0299, 0.0310, 0.0302])
    # 'level within noise: -0.03 NME points (95 % CI -0.14 to +0.09; Welch t, 3.6 df,
    #  3 + 3 training seeds; the test faces held fixed)'

Two tests, chosen by what the two readings share:

* **Welch's t** (:func:`welch`, :func:`verdict`) for two groups of independently trained seeds:
  the difference of the seed means, its standard error ``sqrt(s_a^2 / n_a + s_b^2 / n_b)``, and
  the Welch-Satterthwaite degrees of freedom. Seeds with the same number on two different
  networks are still independent: the same seed does not make two architectures share anything.
* **A paired t** (:func:`paired_t`, :func:`paired_verdict`) only where the two readings share
  trained weights: one model read two ways (two decoders, flip testing), a branch ablation on a
  shared base, or a refinement trained on one shared detector. Pairing removes the seed-to-seed
  spread that both readings share; its degrees of freedom are ``n - 1``.

The interval covers the training seeds only: the test faces (or videos) are one fixed draw, held
fixed for every model, so a difference between two models is measured on the same faces. With
three seeds the t quantile is large (4.30 for a paired t with 2 degrees of freedom), so a
difference must be large against the seed spread before it is called. Fewer than ``min_seeds``
seeds on either side is "no claim", whatever the numbers say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["CONFIDENCE", "MIN_SEEDS", "Comparison", "seed_stats", "seed_table", "difference", "welch",
           "paired_t", "verdict", "paired_verdict", "paired"]

CONFIDENCE = 0.95
"""Two-sided confidence of every verdict in the course."""
MIN_SEEDS = 3
"""Fewer training seeds than this on either side: no claim."""


def _values(x) -> np.ndarray:
    x = x["_values"] if isinstance(x, dict) else x
    v = np.asarray(x, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"per-seed values must be finite and non-empty, got {x!r}")
    return v


def seed_stats(values) -> dict:
    """``{"seeds", "values", "mean", "std", "min", "max"}`` of one model's per-seed figures."""
    v = _values(values)
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


@dataclass(frozen=True)
class Comparison:
    """The difference ``a - b`` with its two-sided interval at ``confidence`` over training seeds.

    ``test`` is ``"welch"`` or ``"paired"``; ``df`` its degrees of freedom; ``low``/``high`` the
    interval (``nan`` when a side has one seed); ``word`` is ``"lower"``, ``"higher"``,
    ``"level within noise"`` or ``"no claim"`` (fewer than ``min_seeds`` seeds a side).
    """

    diff: float
    se: float
    df: float
    low: float
    high: float
    t: float
    p: float
    n_a: int
    n_b: int
    test: str
    confidence: float
    min_seeds: int

    @property
    def claim(self) -> bool:
        """Enough seeds on both sides to say anything."""
        return min(self.n_a, self.n_b) >= self.min_seeds and math.isfinite(self.low)

    @property
    def word(self) -> str:
        if not self.claim:
            return "no claim"
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "level within noise"

    def text(self, scale: float = 100.0, unit: str = "NME points", held_fixed: str = "the test faces") -> str:
        """``"lower: -0.50 NME points (95 % CI -0.80 to -0.20; Welch t, 3.6 df, 3 + 3 training seeds;
        the test faces held fixed)"``, or ``"no claim: ..."`` with the seed counts."""
        seeds = (f"{self.n_a} paired training seeds" if self.test == "paired"
                 else f"{self.n_a} + {self.n_b} training seeds")
        if not self.claim:
            return (f"no claim: {seeds}, fewer than {self.min_seeds} a side "
                    f"({scale * self.diff:+.2f} {unit})")
        test = "paired t" if self.test == "paired" else "Welch t"
        return (f"{self.word}: {scale * self.diff:+.2f} {unit} ({100 * self.confidence:.0f} % CI "
                f"{scale * self.low:+.2f} to {scale * self.high:+.2f}; {test}, {self.df:.1f} df, {seeds}; "
                f"{held_fixed} held fixed)")

    def __str__(self) -> str:
        return self.text()


def _interval(diff: float, se: float, df: float, confidence: float) -> tuple[float, float, float, float]:
    """``(low, high, t, p)`` of a difference with standard error ``se`` on ``df`` degrees of freedom."""
    if not (math.isfinite(se) and math.isfinite(df)):
        return math.nan, math.nan, math.nan, math.nan
    if se == 0.0:                                           # every seed agrees exactly
        t = math.copysign(math.inf, diff) if diff else math.nan
        return diff, diff, t, (0.0 if diff else 1.0)
    q = float(stats.t.ppf(0.5 + confidence / 2, df))
    t = diff / se
    return diff - q * se, diff + q * se, t, float(2 * stats.t.sf(abs(t), df))


def difference(a, b) -> tuple[float, float]:
    """``(mean(a) - mean(b), Welch standard error)`` of two models' per-seed values."""
    c = welch(a, b, min_seeds=1)
    return c.diff, c.se


def welch(a, b, confidence: float = CONFIDENCE, min_seeds: int = MIN_SEEDS) -> Comparison:
    """Welch's t for two groups of independently trained seeds (unequal counts and variances).

    ``se = sqrt(v_a / n_a + v_b / n_b)`` with the sample variances ``v``, and the
    Welch-Satterthwaite degrees of freedom
    ``df = se^4 / ((v_a / n_a)^2 / (n_a - 1) + (v_b / n_b)^2 / (n_b - 1))``.
    """
    a, b = _values(a), _values(b)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        se = df = math.nan
    else:
        wa, wb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        se = math.sqrt(wa + wb)
        den = wa ** 2 / (a.size - 1) + wb ** 2 / (b.size - 1)
        df = (wa + wb) ** 2 / den if den > 0 else float(a.size + b.size - 2)
    low, high, t, p = _interval(diff, se, df, confidence)
    return Comparison(diff, se, df, low, high, t, p, int(a.size), int(b.size), "welch", confidence, min_seeds)


def paired_t(a, b, confidence: float = CONFIDENCE, min_seeds: int = MIN_SEEDS) -> Comparison:
    """The paired t on per-seed differences ``a - b`` of two readings that share trained weights.

    ``se = std(a - b) / sqrt(n)`` on ``n - 1`` degrees of freedom. Only for readings of the same
    trained weights (see the module docstring); seeds of different networks are not pairs.
    """
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        raise ValueError(f"a paired comparison needs one value per seed on both sides, "
                         f"got {a.size} and {b.size}")
    d = a - b
    diff = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.nan
    df = float(d.size - 1) if d.size > 1 else math.nan
    low, high, t, p = _interval(diff, se, df, confidence)
    return Comparison(diff, se, df, low, high, t, p, int(d.size), int(d.size), "paired", confidence, min_seeds)


def verdict(a, b, scale: float = 100.0, unit: str = "NME points", min_seeds: int = MIN_SEEDS,
            held_fixed: str = "the test faces", confidence: float = CONFIDENCE) -> str:
    """Say whether ``a`` and ``b`` (per-seed values, or rows of :func:`seed_table`) differ: Welch's t.

    Returns ``"lower: ..."``, ``"higher: ..."``, ``"level within noise: ..."`` with the
    difference ``a - b`` and its interval, or ``"no claim: ..."`` when a side has fewer than
    ``min_seeds`` seeds.
    """
    return welch(a, b, confidence, min_seeds).text(scale, unit, held_fixed)


def paired_verdict(a, b, min_seeds: int = MIN_SEEDS, scale: float = 100.0, unit: str = "NME points",
                   held_fixed: str = "the test faces", confidence: float = CONFIDENCE) -> str:
    """:func:`verdict` for two readings that share trained weights, seed by seed: the paired t.

    Args:
        a, b: per-seed values (fractions) of the same trained seeds, in the same order.
        scale, unit: of the printed difference (degrees: ``1.0, "degrees"``).
    """
    return paired_t(a, b, confidence, min_seeds).text(scale, unit, held_fixed)


def paired(a, b, scale: float = 100.0) -> tuple[float, float]:
    """Mean and standard error of the per-image difference ``a - b`` on the same faces.

    This is the face-sampling noise of *one* trained model read two ways; it says nothing about
    another training seed (use :func:`paired_verdict` across seeds for that).
    """
    d = scale * (np.asarray(a, np.float64) - np.asarray(b, np.float64))
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"paired() needs two equal-length per-image arrays, got shape {d.shape}")
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
