"""lmk.compare: seed statistics and the 95 % verdicts, against scipy.stats and direct computations."""

import math

import numpy as np
import pytest
from scipy import stats

from lmk.compare import (Comparison, difference, paired, paired_t, paired_verdict, seed_stats, seed_table,
                         verdict, welch)


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


def _draws(n_cases=200):
    """Random per-seed groups: unequal counts (3 against 5 among them) and unequal variances."""
    rng = np.random.default_rng(0)
    counts = [(3, 3), (3, 5), (5, 3), (4, 7), (2, 6), (5, 5)]
    for k in range(n_cases):
        na, nb = counts[k % len(counts)]
        sa, sb = rng.uniform(0.0005, 0.01, size=2)
        shift = rng.normal(0, 0.006)
        yield rng.normal(0.05, sa, na), rng.normal(0.05 + shift, sb, nb)


def test_welch_matches_scipy_ttest_ind_and_its_interval():
    for a, b in _draws():
        ref = stats.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(0.95)
        c = welch(a, b, min_seeds=2)
        assert c.t == pytest.approx(ref.statistic, rel=1e-9)
        assert c.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
        assert c.df == pytest.approx(ref.df, rel=1e-9)
        assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)
        assert c.word == ("level within noise" if ref.pvalue >= 0.05 else ("lower" if c.diff < 0 else "higher"))


def test_paired_t_matches_scipy_ttest_rel_and_its_interval():
    rng = np.random.default_rng(1)
    for n in (3, 4, 5, 8):
        for _ in range(40):
            a = rng.normal(0.05, 0.01, n)
            b = a + rng.normal(rng.normal(0, 0.002), rng.uniform(1e-4, 3e-3), n)
            ref = stats.ttest_rel(a, b)
            ci = ref.confidence_interval(0.95)
            c = paired_t(a, b)
            assert c.t == pytest.approx(ref.statistic, rel=1e-9)
            assert c.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
            assert c.df == n - 1
            assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)


def test_paired_t_quantile_with_three_seeds_is_4_30():
    # the difference of three pairs must exceed 4.30 standard errors, not 2
    d = np.array([1.0, 2.0, 3.3])
    c = paired_t(d, np.zeros(3))
    q = (c.high - c.diff) / c.se
    assert q == pytest.approx(4.3027, abs=1e-4)


def test_verdict_words_at_95_percent():
    assert verdict([0.030, 0.031, 0.029], [0.040, 0.041, 0.039]).startswith("lower: -1.00 NME points (95 % CI")
    assert verdict([0.040, 0.041, 0.039], [0.030, 0.031, 0.029]).startswith("higher")
    assert verdict([0.030, 0.035, 0.025], [0.031, 0.026, 0.036]).startswith("level within noise")
    # twice the standard error is no longer enough with three seeds a side
    a, b = np.array([0.030, 0.032, 0.034]), np.array([0.0335, 0.0355, 0.0375])
    d, se = difference(a, b)
    assert 2 * se < abs(d) and verdict(a, b).startswith("level within noise")


def test_too_few_seeds_is_no_claim_whatever_the_gap():
    text = verdict([0.030], [0.090, 0.091, 0.092])
    assert text.startswith("no claim: 1 + 3 training seeds") and "+-" not in text
    assert verdict([0.03, 0.031], [0.09, 0.091]).startswith("no claim")
    assert paired_verdict([0.03, 0.04], [0.05, 0.06]).startswith("no claim: 2 paired training seeds")


def test_the_text_says_what_the_interval_covers():
    text = verdict([0.03, 0.031, 0.032], [0.03, 0.031, 0.0325], held_fixed="the 32 test videos")
    assert "training seeds" in text and "the 32 test videos held fixed" in text and "Welch t" in text
    assert "paired t, 2.0 df" in paired_verdict([0.03, 0.04, 0.05], [0.031, 0.039, 0.0505])


def test_pairing_removes_the_shared_seed_spread():
    # a constant shift hidden in a large seed-to-seed spread: unpaired it is noise, paired it is not
    a = np.array([0.030, 0.040, 0.050])
    b = a + 0.001 + np.array([0.0, 0.0001, -0.0001])
    assert verdict(a, b).startswith("level within noise")
    assert paired_verdict(a, b).startswith("lower")


def test_identical_seeds_and_exact_ties():
    same = welch([0.03, 0.03, 0.03], [0.03, 0.03, 0.03])
    assert same.word == "level within noise"
    shift = paired_t([0.03, 0.04, 0.05], [0.02, 0.03, 0.04])
    assert shift.word == "higher" and shift.low == pytest.approx(0.01)


def test_bad_input():
    with pytest.raises(ValueError, match="finite"):
        seed_stats([0.1, float("nan")])
    with pytest.raises(ValueError, match="finite"):
        welch([0.1, 0.2, 0.3], [])
    with pytest.raises(ValueError, match="one value per seed"):
        paired_t([0.03, 0.04, 0.05], [0.03, 0.04])


def test_paired_per_image():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.5, 2.5, 3.0])
    m, se = paired(a, b, scale=1)
    assert m == pytest.approx(np.mean(a - b)) and se == pytest.approx(np.std(a - b, ddof=1) / np.sqrt(3))
    with pytest.raises(ValueError, match="paired"):
        paired([1.0], [2.0])
    assert isinstance(welch([1, 2, 3], [2, 3, 4]), Comparison)
