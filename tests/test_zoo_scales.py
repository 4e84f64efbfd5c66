"""A zoo holds one scale and says so: notebooks refuse a zoo of other data or another scale,
``verify`` checks each entry's recipe at the entry's own scale, ``build`` keeps scales apart."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from lmk import course, experiments, recipes, store, zoo
from lmk.families import base as families_base
from lmk.params import ParameterError

NAME = "n03_sdsd"


def _zoo(folder, **fields):
    """A zoo of one shipped entry (its weights copied), with ``fields`` changed in the entry."""
    folder.mkdir()
    e = {**store.entry(NAME), **fields}
    shutil.copy(store.weights_path(e), folder / e["file"])
    store.write_manifest({NAME: e}, folder)
    return folder


def test_the_shipped_zoo_serves_fast_synthetic_notebooks_only():
    assert experiments.reads_zoo(True, None, "synthetic", "fast")
    assert not experiments.reads_zoo(True, None, "synthetic", "full")      # full scale trains
    assert not experiments.reads_zoo(True, None, "300w", "fast")
    assert not experiments.reads_zoo(False, None, "synthetic", "fast")


def test_a_zoo_dir_must_match_the_notebooks_data_and_scale(tmp_path):
    shipped_like = _zoo(tmp_path / "zoo")                  # no fields: a zoo-scale synthetic entry
    assert experiments.reads_zoo(True, shipped_like, "synthetic", "fast")
    with pytest.raises(ParameterError, match=r"entry n03_sdsd was trained on synthetic data at zoo scale, "
                                             r"but DATA='synthetic' and SCALE='full' need synthetic data at "
                                             r"full scale; build one with `python -m lmk.zoo build --scale full"):
        experiments.reads_zoo(True, shipped_like, "synthetic", "full")
    full = _zoo(tmp_path / "full", scale="full", data="synthetic")
    assert experiments.reads_zoo(True, full, "synthetic", "full")
    with pytest.raises(ParameterError, match="at full scale, but DATA='synthetic' and SCALE='fast'"):
        experiments.reads_zoo(True, full, "synthetic", "fast")
    with pytest.raises(ParameterError, match=r"trained on synthetic data .* DATA='300w' .*trains on synthetic faces only, "
                                             r"or set USE_ZOO=False to train here"):
        experiments.reads_zoo(True, full, "300w", "full")
    assert not experiments.reads_zoo(False, full, "300w", "fast")          # not read: nothing to match
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="holds no models"):
        experiments.reads_zoo(True, tmp_path / "empty", "synthetic", "full")


def test_the_course_refuses_a_zoo_of_another_scale_before_it_runs(tmp_path, capsys):
    shipped_like = _zoo(tmp_path / "zoo")
    assert course.main(["--scale", "full", "--only", "03", "-p", "ZOO_DIR", str(shipped_like),
                        "--out", str(tmp_path / "runs")]) == 2
    assert "entry n03_sdsd was trained on synthetic data at zoo scale" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_verify_checks_an_entry_against_its_recipe_at_its_own_scale(tmp_path):
    folder = _zoo(tmp_path / "zoo", scale="full")          # a zoo-scale recipe recorded as full scale
    problems = zoo.verify([NAME], zoo_dir=folder, log=lambda *_: None)
    assert problems == [f"{NAME}: its recipe at full scale changed since the weights were built; rebuild "
                        f"it with `python -m lmk.zoo build {NAME} --scale full`"]
    assert zoo.entry_scale(store.entry(NAME)) == "zoo"      # shipped entries: their recipe's scale
    assert zoo.entry_scale({"recipe": recipes.RECIPES[NAME].config("full")}) == "full"


def test_build_keeps_one_scale_per_zoo(tmp_path):
    folder = _zoo(tmp_path / "zoo")
    with pytest.raises(zoo.ZooError, match="holds 1 entries of another scale than 'full'.*a zoo holds one scale"):
        zoo.build([NAME], zoo_dir=folder, scale="full", log=lambda *_: None)
    with pytest.raises(zoo.ZooError, match="scale 'zoo' or 'full', not 'fast'"):
        zoo.build([NAME], zoo_dir=folder, scale="fast", log=lambda *_: None)


def test_seeds_of_a_table_row():
    assert experiments.seeds(None, 0, zoo=True, fast=True) == (0, 1, 2)
    assert experiments.seeds(1, 0, zoo=True, fast=False) == (0,)
    assert experiments.seeds(None, 5, zoo=False, fast=True) == (5,)
    assert experiments.seeds(None, 5, zoo=False, fast=False) == (5, 6, 7)
    assert experiments.seeds(2, 5, zoo=False, fast=False) == (5, 6)
    with pytest.raises(ParameterError, match="N_SEEDS=4: the zoo has 3 seeds"):
        experiments.seeds(4, 0, zoo=True, fast=True)


@pytest.mark.heavy
def test_a_full_scale_zoo_is_built_resumed_and_verified_at_full_scale(tmp_path, monkeypatch):
    """``build --scale full`` in one process on a recipe whose full scale is shrunk to 4 faces,
    scored on 16 test and 16 validation faces instead of the zoo's 256 of each."""
    name = "n02_1d_r025"
    r = recipes.RECIPES[name]
    tiny = {**r.scales["full"], "data": {**r.scales["full"].get("data", {}), "n_train": 4, "n_val": 4},
            "train": {**r.scales["full"].get("train", {}), "epochs": 1, "batch_size": 2}}
    monkeypatch.setitem(recipes.RECIPES, name, dataclasses.replace(r, scales={**r.scales, "full": tiny}))
    monkeypatch.setattr(families_base, "TEST_N", 16)
    monkeypatch.setattr(families_base, "VAL_N", 16)
    folder = tmp_path / "zoo"
    e = zoo.build_one(name, folder, threads=torch.get_num_threads(), scale="full")
    assert (e["scale"], e["data"], e["split"]) == ("full", "synthetic", "train")
    assert e["recipe"]["data"]["input_size"] == 256 and e["test"]["split"] == "test"
    last = folder / "checkpoints" / name / "last.pt"
    assert last.is_file()
    store.write_manifest({name: e}, folder)
    assert experiments.reads_zoo(True, folder, "synthetic", "full")
    assert zoo.verify([name], zoo_dir=folder, log=lambda *_: None) == []
    stamp = last.stat().st_mtime_ns                          # built again: read back, not retrained
    assert zoo.build_one(name, folder, scale="full")["history"] == e["history"]
    assert last.stat().st_mtime_ns == stamp
