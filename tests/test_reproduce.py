"""lmk.reproduce: the "what reproduces" table, from the manifest, and the README's copy of it."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from lmk import compare, reproduce, store

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


def test_judge_recomputes_each_row_independently():
    entries = store.manifest()
    for r in reproduce.judge(entries=entries):
        eff = r["effect"]
        a = [reproduce.value(entries[n], eff.read_a) for n in eff.a]
        b = [reproduce.value(entries[n], eff.read_b) for n in eff.b]
        c = compare.paired_t(a, b) if eff.paired else compare.welch(a, b)
        assert (r["comparison"].diff, r["comparison"].low) == pytest.approx((c.diff, c.low), nan_ok=True)
        if min(len(a), len(b)) < 3:
            assert r["verdict"] == "no claim"


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
