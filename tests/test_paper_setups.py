"""lmk.recipes.setups: full scale = each paper's setup, the table of paper vs ours, and its checks."""

import copy
import dataclasses
import re
from pathlib import Path

import pytest

from lmk import recipes
from lmk.data import sources
from lmk.data.wflw import WFLW_ATTRIBUTES
from lmk.families import base as family_base
from lmk.recipes import PAPER_SIZES, RECIPES, setups

README = Path(__file__).resolve().parents[1] / "README.md"


def _with_full(name, section, **changes):
    """Recipe ``name`` with its full scale's ``section`` changed (the other scales kept)."""
    r = RECIPES[name]
    scales = copy.deepcopy(r.scales)
    scales.setdefault("full", {}).setdefault(section, {}).update(changes)
    return dataclasses.replace(r, scales=scales)


def test_every_full_config_matches_the_table():
    assert setups.check() == []


@pytest.mark.parametrize("name, section, changes, setting", [
    ("n04_ffld", "train", {"batch_size": 16}, "batch"),                 # the row's own recipe
    ("n04_ffld_l1", "train", {"gamma": 0.1}, "schedule"),             # another recipe of the group
    ("n03_sdsd", "data", {"n_train": 10000}, "training data"),
    ("n05_ccnn_k4", "train", {"epochs": 2500}, "images seen"),
    ("n06_atpn_no_fusion", "data", {"augment": {}}, "augmentation"),
    ("n06_yin_l0", "train", {"lr": 1e-3}, "optimiser"),
])
def test_a_full_config_that_leaves_the_table_fails_the_check(monkeypatch, name, section, changes, setting):
    monkeypatch.setitem(RECIPES, name, _with_full(name, section, **changes))
    problems = setups.check()
    assert problems and any(name in p and f" {setting} " in p for p in problems), problems


def test_every_substitution_names_a_setting_and_gives_a_reason():
    for s in setups.PAPER_SETUPS:
        assert set(s.paper_values) == set(s.ours) == set(setups.SETTINGS), s.family
        assert set(s.substitutes) <= set(setups.SETTINGS), s.family
        assert set(s.varies) <= set(setups.SETTINGS), s.family
        for key, reason in s.substitutes.items():
            assert isinstance(reason, str) and len(reason.split()) >= 3, (s.family, key)
    bad = dataclasses.replace(setups.PAPER_SETUPS[0], substitutes={"batch": " "})
    assert any("no reason" in p for p in setups.check((bad,)))
    unknown = dataclasses.replace(setups.PAPER_SETUPS[0], substitutes={"epochs": "a reason here"})
    assert any("no setting" in p for p in setups.check((unknown,)))


def test_data_the_loaders_lack_is_flagged():
    """Each paper data set missing from lmk.data.sources is named in a substitution of its row."""
    missing = {"Earp": ["JD-landmark-2"], "Yin 1D": ["AFLW"], "Yan": ["300W-LP"], "Mahpod": ["Menpo"],
               "Xia": ["WIDER Face", "300W-LP", "300VW"], "Yin tracker": ["300VW"]}
    for s in setups.PAPER_SETUPS:
        key = next(k for k in sorted(missing, key=len, reverse=True) if s.family.startswith(k))
        reasons = " ".join(s.substitutes.values())
        for name in missing[key]:
            assert name in reasons, (s.family, name)


def test_every_recipe_is_in_exactly_one_row_group():
    groups = [set(setups.recipes_of(s)) for s in setups.PAPER_SETUPS]
    assert set().union(*groups) == set(RECIPES)
    assert sum(len(g) for g in groups) == len(RECIPES)
    assert {s.recipe for s in setups.PAPER_SETUPS} <= set(RECIPES)


def test_a_real_data_run_reads_the_whole_paper_splits():
    """n_train / n_val below a split's size would score a random part of the paper's test set."""
    for s in setups.PAPER_SETUPS:
        if s.data is None:
            continue
        sizes = PAPER_SIZES[s.data]
        for name in setups.recipes_of(s):
            d = RECIPES[name].config("full")["data"]
            assert d["n_train"] >= sizes["train"] and d["n_val"] >= sizes["test"], name
        assert setups.protocol_splits(s.data)[-1 if s.data == "300w" else 0] == "test"
    with pytest.raises(ValueError, match="no paper protocol"):
        setups.protocol_splits("synthetic")
    assert set(setups.protocol_splits("300w")) <= set(sources._300W_SPLITS)         # the loaders' splits
    subsets = [s.partition("_")[2] for s in setups.protocol_splits("wflw")[1:]]
    assert [{"makeup": "make_up"}.get(a, a) for a in subsets] == list(WFLW_ATTRIBUTES)


def test_full_scale_changes_leave_fast_and_zoo_alone():
    """The full scale's paper settings are full-scale overrides only (zoo training is pinned)."""
    zoo = RECIPES["n04_ffld"].config("zoo")["train"]
    assert "gamma" not in zoo and "weight_decay" not in zoo and zoo["batch_size"] == 16
    assert RECIPES["n03_sdsd_rotation"].config("zoo")["data"]["augment"] == {"max_rotation": 15.0}
    full = RECIPES["n03_sdsd_rotation"].config("full")["data"]["augment"]
    assert full == {**recipes.EARP_COLOUR, "max_rotation": 15.0}          # the trick survives


class _Stop(Exception):
    pass


@pytest.mark.parametrize("scale, gamma, weight_decay", [("zoo", 0.1, 0.0), ("full", 0.3, 5e-4)])
def test_the_family_trains_with_the_configs_gamma_and_weight_decay(monkeypatch, scale, gamma, weight_decay):
    seen = {}

    def fake_fit(model, train_data, val_data=None, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(family_base, "fit", fake_fit)
    cfg = recipes.configure("n04_ffld", scale, n_train=2, n_val=2)
    cfg["data"].update(input_size=64, render_size=64)
    cfg["model_args"].update(channel_ratio=0.125, patch_size=4, width=8)
    with pytest.raises(_Stop):
        family_base.Family.train(recipes.family_of(cfg), cfg, device="cpu")
    assert seen["gamma"] == gamma and seen["weight_decay"] == weight_decay
    assert seen["batch_size"] == (64 if scale == "full" else 16)


def test_images_seen_counts_epochs_times_faces():
    cfg = RECIPES["n05_ccnn_k4"].config("full")
    assert setups.images_seen(cfg) == 200 * 11007 and setups.images_seen(cfg, 3148) == 200 * 3148
    atpn = RECIPES["n06_atpn"].config("full")
    assert setups.images_seen(atpn) == 40 * 7500 + 10 * 7500 * 11 + 20 * 7500
    yin = RECIPES["n06_yin_l03"].config("full")              # FramePairs: 63 frames a video either way
    assert setups.images_seen(yin) == 10 * 200 * 63 + 10 * 200 * 21 * 3


@pytest.mark.heavy
def test_the_ccnn_cap_matches_its_stated_gpu_hours():
    cfg = RECIPES["n05_ccnn_k4"].config("full")
    ours = setups.projected_gpu_hours(cfg)
    paper = copy.deepcopy(cfg)
    paper["train"]["epochs"] = 2500
    reason = next(s for s in setups.PAPER_SETUPS if s.recipe == "n05_ccnn_k4").substitutes["schedule"]
    stated = [float(x) for x in re.findall(r"about (\d+(?:\.\d+)?)", reason)]
    assert stated == [pytest.approx(setups.projected_gpu_hours(paper), abs=0.5), pytest.approx(ours, abs=0.05)]


def test_markdown_has_one_row_per_family_and_setting():
    text = setups.markdown()
    lines = text.splitlines()
    assert lines[0] == "| family | setting | paper | ours (full scale) | substitution |"
    body = lines[2:]
    assert len(body) == len(setups.PAPER_SETUPS) * len(setups.SETTINGS)
    assert all(line.count(" | ") == 4 for line in body)
    named = [line for line in body if not line.startswith("|  |")]
    assert len(named) == len(setups.PAPER_SETUPS)
    assert setups.full_scale_table() == setups.rows()


def test_readme_table_is_the_function_output():
    text = README.read_text()
    found = re.search(r"<!-- setups: start -->\n(.*?)<!-- setups: end -->", text, re.S)
    assert found, "README.md has no settings table between its <!-- setups: start/end --> markers"
    assert found.group(1) == setups.markdown(), "README's table is stale: paste `python -m lmk.recipes.setups`"
