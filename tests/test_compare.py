"""lmk.compare: seed statistics and the difference rule, against direct computations."""

import math

import numpy as np
import pytest

from lmk.compare import difference, paired, seed_stats, seed_table, verdict


def test_seed_stats_and_table_match_numpy():
    v = [0.031, 0.029, 0.034]
    s = seed_stats(v)
    assert s["mean"] == pytest.approx(np.mean(v)) and s["std"] == pytest.approx(np.std(v, ddof=1))
    row = seed_table({"A": v})[0]
    assert row["seeds"] == 3 and row["per seed"] == "3.10, 2.90, 3.40"
    assert row["range"] == pytest.approx(0.5)


def test_difference_uses_the_welch_standard_error():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    d, se = difference(a, b)
    assert d == pytest.approx(2.0 - 5.0)
    assert se == pytest.approx(math.sqrt(1.0 / 3 + np.var(b, ddof=1) / 4))


def test_verdict_calls_only_clear_differences_with_three_seeds():
    assert verdict([0.030, 0.031, 0.029], [0.040, 0.041, 0.039]).startswith("lower")
    assert verdict([0.040, 0.041, 0.039], [0.030, 0.031, 0.029]).startswith("higher")
    assert verdict([0.030, 0.035, 0.025], [0.031, 0.026, 0.036]).startswith("level within noise")
    assert verdict([0.030], [0.040]).startswith("fewer than 3 seeds")


def test_paired_and_bad_input():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.5, 2.5, 3.0])
    m, se = paired(a, b, scale=1)
    assert m == pytest.approx(np.mean(a - b)) and se == pytest.approx(np.std(a - b, ddof=1) / np.sqrt(3))
    with pytest.raises(ValueError, match="finite"):
        seed_stats([0.1, float("nan")])
    with pytest.raises(ValueError, match="paired"):
        paired([1.0], [2.0])
