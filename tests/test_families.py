"""Model families: one table, recipes that name them, a seventh family added from a test file alone."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

import lmk.families.base as families_base
from lmk import experiments, recipes, store, zoo
from lmk.data import SynthFaces
from lmk.families import FAMILIES, Family, family_of
from lmk.recipes import RECIPES, Recipe
from lmk.train import milestone_epochs


# ------------------------------------------------------------------------ the table and recipes
def test_every_recipe_names_a_family_and_every_family_builds_its_recipes():
    used = {r.model for r in RECIPES.values()}
    assert used == set(FAMILIES)
    for name, recipe in RECIPES.items():
        cfg = recipe.config("zoo")
        assert family_of(cfg) is FAMILIES[recipe.model]
        assert recipes.main_decoder(cfg) in recipes.decoders(cfg)
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        family_of({"model": "nope"})


def test_each_zoo_config_equals_its_manifest_record_key_for_key():
    entries = store.manifest()
    for name, e in entries.items():
        assert RECIPES[name].config("zoo") == e["recipe"], name


def test_a_recipe_built_on_another_is_resolved_at_the_same_scale():
    """The tracker's detector is n02_1d_r3 at every scale: 64 px at zoo scale, 256 px at full scale."""
    for scale in recipes.SCALES:
        tracker, detector = RECIPES["n06_yin_l03"].config(scale), RECIPES["n02_1d_r3"].config(scale)
        assert tracker["model_args"]["detector"] == detector["model_args"]
        assert tracker["data"]["input_size"] == detector["data"]["input_size"]
        assert tracker["train"]["sigma"] == detector["train"]["sigma"]
    assert RECIPES["n06_yin_l03"].config("full")["data"]["input_size"] == 256
    assert RECIPES["n06_yin_l03"].config("full")["model_args"]["detector"]["width_mult"] == 1.0
    with pytest.raises(AttributeError, match="RECIPES_BEFORE_06 is gone"):
        recipes.RECIPES_BEFORE_06


def test_one_milestone_rule_rounds_halves_up():
    assert milestone_epochs([0.85], 10) == [9]          # round() would give 8
    assert milestone_epochs([0.6, 0.85], 12) == [7, 10]
    assert milestone_epochs([0.5, 0.75], 1) == [1]
    assert recipes.milestones(RECIPES["n03_sdsd"].config("zoo")) == milestone_epochs([0.5, 0.75], 15)


def test_old_names_warn_and_still_work():
    cfg = RECIPES["n03_sdsd"].config("zoo")
    with pytest.warns(DeprecationWarning, match="recipe_codec"):
        codec = recipes.build_codec(cfg)
    assert type(codec) is type(recipes.recipe_codec(cfg))
    with pytest.warns(DeprecationWarning, match="score_entry"):
        assert zoo.evaluate is zoo.score_entry


# --------------------------------------------------------------------------- manifest migration
SCORING = ("metrics", "baseline_nme", "task_metrics", "test", "validation")


def test_migration_to_schema_3_changes_only_the_flip_field_and_the_scores():
    shipped = json.loads((store.zoo_dir() / store.MANIFEST).read_text())
    assert shipped["schema"] == store.SCHEMA == 3
    old = copy.deepcopy(shipped)                     # the schema-1 document it was made from
    del old["schema"]
    flipped = [n for n, e in old["entries"].items() if "dark+flip" in e["metrics"]]
    assert flipped and all(n.startswith("n03_") for n in flipped)
    for name, e in old["entries"].items():
        v = e.pop("validation")                      # schema 2: validation figures at the top
        del e["test"]
        e.pop("task_metrics", None)
        e.update({k: v[k] for k in ("metrics", "baseline_nme", "task_metrics") if k in v},
                 validation={k: v[k] for k in ("n", "seed", "threshold")})
        if name in flipped:
            del e["recipe"]["train"]["flip_test"]
    with pytest.raises(store.ZooError, match="schema 2 -> 3 scores every model on the held-out test faces"):
        store.migrate(old)
    asked = []

    def rescore(entries):                            # what lmk.zoo.rescore computes from the weights
        asked.append(sorted(entries))
        return {n: {k: shipped["entries"][n][k] for k in SCORING if k in shipped["entries"][n]} for n in entries}

    migrated = store.migrate(old, rescore)
    assert migrated == shipped and asked == [sorted(shipped["entries"])]
    assert store.migrate(migrated) == migrated                # idempotent, nothing rescored
    for name, e in old["entries"].items():                    # weights, sha256, shape untouched
        for key in ("file", "sha256", "mean_shape", "history", "seconds"):
            assert migrated["entries"][name][key] == e[key]


# ----------------------------------------------------------------- a seventh family, from here
class ToyNet(nn.Module):
    """Image -> landmarks in input pixels: a mean shape plus a linear correction of pooled pixels."""

    def __init__(self, num_landmarks: int, input_size: int):
        super().__init__()
        self.num_landmarks = num_landmarks
        self.conv = nn.Conv2d(3, 4, 3, stride=4, padding=1)
        self.fc = nn.Linear(4 * (input_size // 4) ** 2, num_landmarks * 2)
        self.register_buffer("start", torch.full((num_landmarks, 2), input_size / 2))

    def forward(self, x):
        return self.start + self.fc(torch.relu(self.conv(x)).flatten(1)).view(-1, self.num_landmarks, 2)


class Direct:
    """The toy's codec: its outputs are the landmarks."""

    def __init__(self, method="direct"):
        self.method = method

    def decode(self, outputs):
        return outputs


class ToyFamily(Family):
    name, paper, loss_name = "toy", "a test family", "toy_l2"

    def build_model(self, cfg):
        return ToyNet(cfg["model_args"]["num_landmarks"], cfg["data"]["input_size"])

    def codec(self, cfg, method=None):
        return Direct(method or cfg["train"]["method"])

    def loss(self, cfg, codec, layout=None):
        return lambda outputs, batch: ((outputs - batch["landmarks"]) ** 2).mean()

    def decoders(self, cfg):
        return ("direct",)

    def init_model(self, model, cfg, shape):
        model.start.copy_(torch.as_tensor(shape, dtype=torch.float32))


TOY = Recipe("toy_r", "99", "toy", {"num_landmarks": 68}, {"kind": "toy"},
             {"input_size": 32, "render_size": 64, "mode": "crop", "difficulty": "easy", "n_train": 16,
              "n_val": 8, "augment": {}},
             {"loss": "toy_l2", "method": "direct", "lr": 1e-3, "milestones": [0.5], "batch_size": 8,
              "epochs": 1, "seed": 0, "norm": "bbox"})


def test_a_seventh_family_goes_through_run_build_verify_load_predict_and_outcome(tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "toy", ToyFamily())
    monkeypatch.setitem(RECIPES, "toy_r", TOY)
    monkeypatch.setattr(families_base, "VAL_N", 8)
    monkeypatch.setattr(families_base, "TEST_N", 8)
    torch.set_num_threads(1)

    res = recipes.run("toy_r", "zoo", device="cpu")
    assert res.model(torch.zeros(1, 3, 32, 32)).shape == (1, 68, 2) and len(res.history.epoch) == 1

    e = zoo.build_one("toy_r", tmp_path, command="test")            # one job, in this process
    store.write_manifest({"toy_r": e}, tmp_path)
    assert e["recipe"]["model"] == "toy" and set(e["metrics"]) == {"direct"}
    assert zoo.verify(["toy_r"], tmp_path, log=lambda *a: None) == []

    model, loaded = zoo.load("toy_r", tmp_path)
    assert isinstance(model, ToyNet) and loaded["sha256"] == e["sha256"]
    face = SynthFaces(1, size=64, seed=3, difficulty="easy")[0]
    points = zoo.predict("toy_r", face["image"], box=face["box"], zoo_dir=tmp_path)
    assert points.shape == (68, 2) and np.isfinite(points).all()

    out = experiments.outcome("toy_r", use_zoo=True, zoo_dir=tmp_path)
    assert out["source"] == "zoo" and out["nme"] == pytest.approx(e["metrics"]["direct"]["nme"], abs=1e-6)
    assert out["baseline_nme"] == pytest.approx(e["baseline_nme"], abs=1e-9)
    trained = experiments.outcome("toy_r", use_zoo=False, scale="fast", device="cpu")
    assert trained["source"] == "trained (fast)" and np.isfinite(trained["nme"])
