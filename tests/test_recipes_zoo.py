"""Recipes and the model zoo: configs, a tiny end-to-end build, load / evaluate / predict / verify."""

import json

import numpy as np
import pytest
import torch

import lmk.recipes as recipes
import lmk.zoo as zoo
from lmk import store
import lmk.families.base as families_base
from lmk.data import SynthFaces
from lmk.recipes import RECIPES, Recipe


def tiny(name="tiny_sd", model="heatmap"):
    """A recipe small enough to train in seconds (16 faces, 1 epoch, 32 px)."""
    data = {"input_size": 32, "render_size": 64, "mode": "align", "difficulty": "easy",
            "n_train": 16, "n_val": 8, "augment": {}}
    train = {"sigma": 1.0, "method": "dark", "loss": "foreground_mse", "lr": 1e-3, "milestones": [0.5],
             "batch_size": 8, "epochs": 1, "seed": 0, "norm": "bbox"}
    if model == "heatmap":
        args = {"width_mult": 0.25, "strategy": "SD", "filters": 8, "num_landmarks": 68}
        train["flip_test"] = True                     # Earp's flip test-time averaging is scored too
    elif model == "ffld":
        args = {"num_landmarks": 68, "stages": 2, "channel_ratio": 0.125, "strides": [8, 4],
                "patch_size": 3, "width": 8, "return_features": True}
        train.update(method="last", loss="staged", stage_losses=["iod_l2", "l1", "align"],
                     align_blur=1.0)
    elif model == "ccnn":
        args = {"num_cascades": 2, "num_landmarks": 68, "width": 0.125}
        train.update(method="last", loss="cascade", sigma=1.3, coordinate_weight=0.05)
    else:
        args = {"num_landmarks": 68, "length_ratio": 1.0, "width_mult": 0.25, "channels": 8, "gamma": 0.3}
        train["loss"], data["mode"] = "marginal", "crop"
    return Recipe(name, "03", model, args, {"strategy": "SD"}, data, train, {})


def test_every_recipe_builds_its_network_and_codec_at_every_scale():
    for name, recipe in RECIPES.items():
        for scale in recipes.SCALES:
            cfg = recipe.config(scale)
            json.dumps(cfg)                                     # plain types only
            assert cfg["name"] == name and cfg["scale"] == scale
            codec = recipes.recipe_codec(cfg)
            assert codec.input_size == (cfg["data"]["input_size"],) * 2
        cfg = recipe.config("zoo")
        model = recipes.build_model(cfg).eval()
        images = torch.zeros(1, 3, cfg["data"]["input_size"], cfg["data"]["input_size"])
        with torch.no_grad():                      # a tracker (Yin's) runs frame by frame
            out = model.step(images)[0] if cfg["model"] == "yin" else model(images)
        assert recipes.recipe_codec(cfg).decode(out).shape == (1, 68, 2)


def test_recipe_tags_say_what_varies():
    assert set(recipes.recipe_names("03", strategy="SDSD", trick="none", mode="align")) == {
        "n03_sdsd", "n03_sdsd_s1", "n03_sdsd_s2"}
    assert recipes.recipe_names("02", representation="1d", L_over_F=1.0, gamma=0.0) == ["n02_1d_r1_g0"]
    for r in RECIPES.values():
        assert r.config("zoo")["train"]["seed"] == (int(r.name[-1]) if "_s" in r.name[-3:] else 0)


def test_recipe_config_rejects_unknown_scale_and_overrides():
    with pytest.raises(ValueError, match="scale"):
        RECIPES["n03_sdsd"].config("huge")
    bad = Recipe("x", "03", "heatmap", {}, {}, {}, {}, {"fast": {"epochz": 3}})
    with pytest.raises(ValueError, match="epochz"):
        bad.config("fast")


def test_mean_shape_baseline_matches_a_direct_computation():
    truth = np.random.default_rng(0).normal(size=(5, 68, 2)) * 10 + 50
    shape = truth.mean(0)
    from lmk.metrics import nme
    direct = [float(nme(shape[None], truth[i:i + 1], norm="bbox")[0]) for i in range(5)]
    np.testing.assert_allclose(recipes.baseline_nmes(shape, truth, "bbox"), direct, rtol=1e-12)


@pytest.fixture(params=["heatmap", "marginal", "ffld", "ccnn"])
def tiny_zoo(request, tmp_path, monkeypatch):
    """A zoo folder holding one freshly built tiny model (2D heatmaps, aligned; or 1D, cropped)."""
    monkeypatch.setenv("LMK_ZOO_DIR", str(tmp_path))
    monkeypatch.setattr(families_base, "VAL_N", 8)
    monkeypatch.setattr(families_base, "TEST_N", 8)
    monkeypatch.setitem(RECIPES, "tiny_sd", tiny(model=request.param))
    e = zoo.build_one("tiny_sd", tmp_path, command="test")
    store.write_manifest({"tiny_sd": e}, tmp_path)
    return tmp_path, e


def test_build_writes_float16_weights_and_a_complete_entry(tiny_zoo):
    folder, e = tiny_zoo
    packed = torch.load(folder / "tiny_sd.pt", weights_only=True)
    assert packed["format"] == store.PACKED and packed["float16"].dtype == torch.float16
    state = store.unpack(packed)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    for key in ("recipe", "seed", "tags", "metrics", "baseline_nme", "norm", "sha256", "seconds",
                "history", "torch", "git_commit", "command", "threads", "mean_shape"):
        assert key in e
    assert set(e["metrics"]) >= set(recipes.decoders(e["recipe"]))
    assert e["method"] == recipes.decoders(e["recipe"])[-1] or e["recipe"]["model"] in ("heatmap", "marginal")
    assert ("dark+flip" in e["metrics"]) == (e["recipe"]["model"] == "heatmap")
    assert len(e["history"]["val_nme"]) == 1
    model, loaded = zoo.load("tiny_sd")
    assert not model.training and loaded["sha256"] == e["sha256"]


def test_evaluate_reproduces_the_manifest_and_verify_passes(tiny_zoo):
    folder, e = tiny_zoo
    r = zoo.score_entry("tiny_sd", n=8, seed=0)
    assert r["nme"] == pytest.approx(e["metrics"][e["method"]]["nme"], abs=1e-6)
    assert r["baseline_nme"] == pytest.approx(e["baseline_nme"], abs=1e-9)
    assert r["nmes"].shape == (8,)
    other = zoo.score_entry("tiny_sd", n=8, seed=5)
    assert other["baseline_nme"] != pytest.approx(r["baseline_nme"])       # fresh faces
    assert zoo.verify(["tiny_sd"], folder, log=lambda *a: None) == []


def test_verify_names_an_entry_whose_numbers_moved_or_whose_recipe_changed(tiny_zoo, monkeypatch):
    folder, e = tiny_zoo
    moved = json.loads(json.dumps(e))
    moved["metrics"][e["method"]]["nme"] += 0.01
    store.write_manifest({"tiny_sd": moved}, folder)
    problems = zoo.verify(["tiny_sd"], folder, log=lambda *a: None)
    assert problems and "tiny_sd" in problems[0] and "nme" in problems[0]
    store.write_manifest({"tiny_sd": e}, folder)
    changed = tiny()
    monkeypatch.setitem(RECIPES, "tiny_sd", Recipe("tiny_sd", "03", "heatmap", changed.model_args,
                                                   changed.tags, changed.data,
                                                   {**changed.train, "lr": 5e-3}, {}))
    problems = zoo.verify(["tiny_sd"], folder, log=lambda *a: None)
    assert problems and "recipe at zoo scale changed" in problems[0]


def test_corrupt_or_missing_weights_name_the_file_and_the_fix(tiny_zoo):
    folder, _ = tiny_zoo
    (folder / "tiny_sd.pt").write_bytes(b"garbage")
    with pytest.raises(zoo.ZooError, match=r"tiny_sd\.pt.*sha256.*lmk.zoo build tiny_sd"):
        zoo.load("tiny_sd")
    (folder / "tiny_sd.pt").unlink()
    with pytest.raises(zoo.ZooError, match=r"tiny_sd\.pt.*missing"):
        zoo.load("tiny_sd")
    with pytest.raises(zoo.ZooError, match="no zoo model named 'nope'"):
        zoo.load("nope")


def test_predict_maps_back_to_the_image_like_evaluation(tiny_zoo):
    """predict() on a raw image equals the dataset pipeline's prediction mapped back to the image."""
    from lmk.data import LandmarkDataset, to_original
    item = SynthFaces(1, size=64, seed=3, difficulty="easy")[0]
    model, e = zoo.load("tiny_sd")
    d = e["recipe"]["data"]
    points = zoo.predict("tiny_sd", item["image"], box=item["box"], five_points=item["five_points"])
    assert points.shape == (68, 2) and np.isfinite(points).all()
    ds_item = LandmarkDataset([item], d["input_size"], mode=d["mode"])[0]
    with torch.no_grad():
        out = model(ds_item["image"][None])
    expected = to_original(recipes.recipe_codec(e["recipe"]).decode(out)[0].double().numpy(),
                           ds_item["transform"].double().numpy())
    np.testing.assert_allclose(points, expected, atol=1e-3)
    missing = "five_points" if d["mode"] == "align" else "box"
    with pytest.raises(ValueError, match=missing):
        zoo.predict("tiny_sd", item["image"])


def test_run_follows_the_data_s_layout_and_returns_a_cpu_model():
    """A 98-point (WFLW-style) source trains a 98-landmark network scored with the 98-point layout."""
    from lmk.layouts import LAYOUT_98
    from lmk.metrics import nme
    faces = SynthFaces(12, size=64, seed=1, difficulty="easy")
    items = []
    for i in range(12):
        it = dict(faces[i])
        pts = it["landmarks"]
        it["landmarks"] = np.concatenate([pts, pts[:30] + 0.5]).astype(np.float32)   # 98 points
        it.pop("five_points")
        items.append(it)
    res = recipes.run(tiny(), "fast", prepared=(items[:8], items[8:]), device="cpu")
    assert res.config["model_args"]["num_landmarks"] == 98
    assert res.evaluation.predictions.shape == (4, 98, 2)
    assert next(res.model.parameters()).device.type == "cpu"
    direct = nme(res.evaluation.predictions.astype(np.float64), res.evaluation.landmarks.astype(np.float64),
                 norm="bbox", layout=LAYOUT_98)
    np.testing.assert_allclose(res.evaluation.nmes, direct, rtol=1e-9)


def test_refinement_recipes_tag_their_ablations_and_decode_every_stage():
    assert set(recipes.recipe_names("04", loss_assignment="yan", gradient_path="both")) == {
        "n04_ffld", "n04_ffld_s1", "n04_ffld_s2"}
    assert {RECIPES[n].tags["gradient_path"] for n in recipes.recipe_names("04")} == set(recipes.GRADIENT_PATHS)
    assert {RECIPES[n].tags["loss_assignment"] for n in recipes.recipe_names("04")} == set(recipes.YAN_ASSIGNMENTS)
    assert sorted(RECIPES[n].tags["K"] for n in recipes.recipe_names("05")) == [1, 2, 4, 4, 4]
    ffld, ccnn = RECIPES["n04_ffld_grad_centers"].config("zoo"), recipes.mahpod(3).config("zoo")
    assert (ffld["model_args"]["grad_features"], ffld["model_args"]["grad_centers"]) == (False, True)
    assert recipes.decoders(ffld) == ("stage0", "stage1", "stage2", "stage3")
    assert recipes.decoders(ccnn) == ("argmax1", "argmax2", "argmax3", "unit1", "unit2", "unit3")
    assert recipes.main_decoder(ffld) == "stage3" and recipes.main_decoder(ccnn) == "unit3"
    assert recipes.main_decoder(RECIPES["n03_sdsd"].config("zoo")) == "dark"
    # the Align Loss needs the maps the stages crop from; only Yan's assignment uses it
    assert ffld["model_args"]["return_features"] and not RECIPES["n04_ffld_l2"].config("zoo")["model_args"]["return_features"]


def test_ffld_run_starts_the_baseline_at_the_training_mean_shape():
    from lmk.codecs import CoordinateCodec
    res = recipes.run(tiny(model="ffld"), "fast", device="cpu")
    start = CoordinateCodec(32).decode(res.model.baseline.init_points)
    np.testing.assert_allclose(start.numpy(), res.mean_shape, atol=1e-4)
    assert res.evaluation.predictions.shape == (8, 68, 2)


def test_recipe_constructors_reject_what_they_cannot_build():
    with pytest.raises(ValueError, match="assignment"):
        recipes.yan("align")
    with pytest.raises(ValueError, match="gradients"):
        recipes.yan(gradients="center")
    with pytest.raises(ValueError, match="trick"):
        recipes.earp("SDSD", trick="flip_augmentaton")
    with pytest.raises(ValueError, match="L/F"):
        recipes.yin("2d", 0.75)
    with pytest.raises(ValueError, match="kind"):
        recipes.yin("2D", 0.25)
    assert recipes.milestones({"train": {"epochs": 5, "milestones": [0.5, 0.75]}}) == [3, 4]


def test_verify_reports_recipes_without_an_entry(tiny_zoo):
    folder, e = tiny_zoo
    problems = zoo.verify(None, folder, log=lambda *a: None)
    assert any("n03_sdsd: recipe has no zoo entry" in p for p in problems)


@pytest.mark.heavy                       # re-evaluates every shipped model on test and validation faces
def test_shipped_zoo_verifies():
    """Every shipped model still gives its manifest's numbers with today's code (two processes)."""
    if not zoo.manifest():
        pytest.fail("data/zoo/manifest.json is missing: build the zoo with `make zoo`")
    assert zoo.verify(log=lambda *a: None, jobs=2) == []


def test_flip_scored_alongside_equals_the_flip_averaged_model():
    """score_dataset(flip_methods=...) reuses the plain pass; FlipAveraged is the independent path."""
    torch.manual_seed(0)
    cfg = recipes.configure("n03_sdsd", "zoo")
    model = recipes.build_model(cfg).eval()
    faces = zoo.validation_dataset(cfg, 8)
    shape = np.full((68, 2), 32.0)
    both = zoo.score_dataset(model, cfg, faces, shape, ("dark", "argmax"), flip_methods=("dark",))
    alone = zoo.score_dataset(model, cfg, faces, shape, ("dark",), flip=True)
    assert set(both["methods"]) == {"dark", "argmax", "dark+flip"}
    # the same sums in another float32 order; DARK on an untrained model's flat maps amplifies it to ~3e-6
    np.testing.assert_allclose(both["methods"]["dark+flip"]["nmes"], alone["methods"]["dark"]["nmes"], atol=1e-5)
    assert not np.allclose(both["methods"]["dark+flip"]["nmes"], both["methods"]["dark"]["nmes"])
