"""lmk.reproduce: the "what reproduces" table, from the manifest, and the README's copy of it."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lmk import reproduce, store

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_is_the_function_output():
    text = README.read_text()
    found = re.search(r"<!-- reproduces: start -->\n(.*?)<!-- reproduces: end -->", text, re.S)
    assert found, "README.md has no 'What reproduces' table between its markers"
    assert found.group(1) == reproduce.markdown(), "README's table is stale: paste `python -m lmk.reproduce`"


def test_every_effect_reads_existing_entries_and_uses_the_right_test():
    entries = store.manifest()
    for eff in reproduce.EFFECTS:
        assert set(eff.a) | set(eff.b) <= set(entries), eff.effect
        assert eff.expect in ("lower", "higher", "level", "none")
        if eff.paired:                                   # pairs share weights: same entries or a shared base
            for a, b in zip(eff.a, eff.b):
                ea, eb = entries[a], entries[b]
                shared = a == b or ea.get("base") == b or eb.get("base") == a or \
                    (ea.get("base") is not None and ea.get("base") == eb.get("base"))
                assert shared, f"{eff.effect}: {a} and {b} share no weights, so they are not pairs"


def _read(entry: dict, read: str) -> float:
    """A figure of an entry by hand: the manifest's own fields, without lmk.reproduce.value."""
    if read.startswith("nme"):
        method = entry["method"] if read == "nme" else read.split(":", 1)[1]
        return entry["metrics"][method]["nme"]
    if read == "baseline_nme":
        return entry["baseline_nme"]
    keys = read.split(".")
    return entry["task_metrics"][keys[0]] if len(keys) == 1 else entry["task_metrics"][keys[0]][keys[1]]


def test_each_row_equals_scipy_on_the_manifest_figures():
    entries = store.manifest()
    for r in reproduce.judge(entries=entries):
        eff = r["effect"]
        a = np.array([_read(entries[n], eff.read_a) for n in eff.a])
        b = np.array([_read(entries[n], eff.read_b) for n in eff.b])
        assert r["comparison"].diff == pytest.approx(a.mean() - b.mean(), abs=1e-12)
        if min(a.size, b.size) < 3:
            assert r["verdict"] == "no claim", eff.effect
            continue
        ref = stats.ttest_rel(a, b) if eff.paired else stats.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(0.95)
        assert (r["comparison"].low, r["comparison"].high) == pytest.approx((ci.low, ci.high), rel=1e-9)
        found = "level" if ci.low <= 0 <= ci.high else ("lower" if ci.high < 0 else "higher")
        expected = {("lower", "lower"): "reproduces", ("higher", "higher"): "reproduces",
                    ("lower", "higher"): "opposite", ("higher", "lower"): "opposite",
                    ("level", "level"): "consistent"}.get((found, eff.expect))
        if eff.expect == "none":
            assert r["verdict"].startswith("no paper figure"), eff.effect
        elif found == "level":
            assert r["verdict"] == ("consistent" if eff.expect == "level" else "not shown"), eff.effect
        elif eff.expect == "level":
            assert r["verdict"] == f"differs ({found})", eff.effect
        else:
            assert r["verdict"] == expected, eff.effect


def test_verdict_words_follow_the_paper_direction():
    eff = reproduce.Effect("00", "X et al. 2000", "A vs B", "Table 1", ("a", "a_s1", "a_s2"),
                           ("b", "b_s1", "b_s2"))
    base = {"method": "dark", "metrics": {"dark": {"nme": 0.0}}}

    def zoo(a, b):
        out = {}
        for names, values in (((eff.a), a), ((eff.b), b)):
            for n, v in zip(names, values):
                out[n] = copy.deepcopy(base)
                out[n]["metrics"]["dark"]["nme"] = v
        return out

    lower, level = zoo([0.03, 0.031, 0.029], [0.05, 0.051, 0.049]), zoo([0.03, 0.04, 0.05], [0.031, 0.041, 0.048])
    assert reproduce.judge([eff], entries=lower)[0]["verdict"] == "reproduces"
    assert reproduce.judge([eff], entries=level)[0]["verdict"] == "not shown"
    higher = reproduce.Effect(**{**eff.__dict__, "expect": "higher"})
    assert reproduce.judge([higher], entries=lower)[0]["verdict"] == "opposite"
    flat = reproduce.Effect(**{**eff.__dict__, "expect": "level"})
    assert reproduce.judge([flat], entries=level)[0]["verdict"] == "consistent"
    assert reproduce.judge([flat], entries=lower)[0]["verdict"] == "differs (lower)"
    one = reproduce.Effect(**{**eff.__dict__, "a": ("a",)})
    assert reproduce.judge([one], entries=lower)[0]["verdict"] == "no claim"
    with pytest.raises(store.ZooError, match="no entries"):
        reproduce.judge([eff], entries={})


def test_one_notebook_rows():
    rows = reproduce.rows("03")
    assert rows and {r["notebook"] for r in rows} == {"03"}
    assert all(np.isfinite(float(r["ours, test set (A vs B; A - B [95 % CI])"].split()[0])) for r in rows)
