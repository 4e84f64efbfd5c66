"""Notebook 06's recipes (Xia's ATPN, Yin's tracker), lmk.families and the zoo's partial entries."""

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest
import torch

from lmk import recipes, store, zoo
import lmk.families.base as families_base
import lmk.families.tracking as tracking
from lmk.data.frame_pairs import Frames
from lmk.losses import ClipMarginalLoss
from lmk.train import merge_histories
from lmk.codecs import MarginalCodec
from lmk.losses import MarginalLoss
from lmk.train import History, fit


# ------------------------------------------------------------------------------ the recipes
def test_xia_variants_switch_one_flag_each():
    full = recipes.xia().config("zoo")
    assert all(full["model_args"][f] for f in recipes.XIA_FLAGS)
    for variant, change in recipes.XIA_VARIANTS.items():
        cfg = recipes.xia(variant).config("zoo")
        differs = {f for f in recipes.XIA_FLAGS if cfg["model_args"][f] != full["model_args"][f]}
        assert differs == set(change)
        assert cfg["tags"]["variant"] == variant and cfg["tags"]["stage"] == 3
        json.dumps(cfg)                                  # recorded in the manifest as it is
    with pytest.raises(ValueError, match="variant must be one of"):
        recipes.xia("no_pose")


def test_branch_ablations_start_from_the_same_seed_and_only_at_zoo_scale():
    for variant in ("no_fusion", "separate"):
        for seed in (0, 1):
            t = recipes.xia(variant, seed).config("zoo")["train"]
            assert t["init_from"] == ("n06_atpn" if seed == 0 else f"n06_atpn_s{seed}")
            assert t["stored"] == ["pose.", "tracking."] and t["stage_epochs"][0] == 0
            for scale in ("fast", "full"):           # no zoo model of that scale to start from
                other = recipes.xia(variant, seed).config(scale)["train"]
                assert other["init_from"] is None and other["stage_epochs"][0] > 0
    assert recipes.xia("no_coordconv").config("zoo")["train"]["init_from"] is None


def test_yin_trackers_share_the_detector_entry():
    detector = recipes.yin_tracker(None).config("zoo")
    assert detector["name"] == "n06_yin_detector" and detector["train"]["refine_epochs"] == 0
    assert detector["train"]["init_from"] == "n02_1d_r3"
    for lam, name in ((0.0, "n06_yin_l0_s2"), (0.3, "n06_yin_l03_s2")):
        cfg = recipes.yin_tracker(lam, 2).config("zoo")
        assert cfg["name"] == name and cfg["model_args"]["lam"] == lam
        assert cfg["train"]["init_from"] == "n06_yin_detector" and cfg["train"]["detector_epochs"] == 0
        assert cfg["train"]["stored"] == ["refinement."]
    model = recipes.build_model(recipes.yin_tracker(0.3).config("zoo"))
    assert recipes.heatmap_size(recipes.yin_tracker(0.3).config("zoo")) == 192
    assert model.lam == 0.3
    assert recipes.decoders(detector) == ("tracking",) == (recipes.main_decoder(detector),)


def test_every_notebook_06_recipe_is_in_the_table():
    names = recipes.recipe_names("06")
    assert {"n06_atpn", "n06_atpn_s2", "n06_atpn_no_fusion_s2", "n06_atpn_separate",
            "n06_atpn_no_low_level", "n06_atpn_no_multiview", "n06_atpn_no_coordconv",
            "n06_yin_detector", "n06_yin_l0_s2", "n06_yin_l03_s2"} <= set(names)
    assert len(recipes.recipe_names("06", heatmap_fusion=False)) == 3
    assert len(recipes.recipe_names("06", lam=0.3)) == 3


# ------------------------------------------------------------------------------ small parts
def test_pack_round_trip_is_exact_and_plain_state_dicts_pass():
    state = {"a.weight": torch.randn(3, 4).half(), "a.bias": torch.randn(4).half(),
             "bn.num_batches_tracked": torch.tensor(7), "empty": torch.zeros(0, 2).half()}
    out = store.unpack(store.pack(state))
    assert out.keys() == state.keys()
    for k, v in state.items():
        assert out[k].dtype == v.dtype and torch.equal(out[k], v)
    assert store.unpack(state) is state
    broken = store.pack(state)
    broken["float16"] = broken["float16"][:-1]
    with pytest.raises(ValueError, match="packed weights hold 15 values, the shapes 16"):
        store.unpack(broken)


def test_build_waves_put_bases_first():
    names = ["n06_yin_l03", "n06_atpn_no_fusion", "n06_atpn", "n06_yin_detector", "n03_sdsd"]
    waves = zoo._waves(names)
    assert waves == [["n06_atpn", "n06_yin_detector", "n03_sdsd"], ["n06_yin_l03", "n06_atpn_no_fusion"]]
    assert zoo._waves(["n06_yin_l03"]) == [["n06_yin_l03"]]     # a base already built


def test_merge_histories_numbers_epochs_on_and_pads_metrics():
    a, b = History(), History()
    for h, values, extra in ((a, [1.0, 2.0], {}), (b, [3.0], {"pose_mae": 5.0})):
        for v in values:
            ev = type("Ev", (), {"nme": v, "auc": 0.5, "failure_rate": 0.0, "metrics": extra})()
            h.record(len(h.epoch) + 1, [v], 1e-3, ev, 1.0)
    b.best_epoch = 1
    m = merge_histories([a, b])
    assert m.epoch == [1, 2, 3] and m.val_nme == [1.0, 2.0, 3.0] and m.best_epoch == 3
    assert math.isnan(m.val_metrics["pose_mae"][0]) and m.val_metrics["pose_mae"][2] == 5.0


def test_clip_loss_is_the_frame_loss_averaged_over_every_frame():
    codec = MarginalCodec(64, 64, 2.0, "argmax")
    torch.manual_seed(0)
    hx, hy = torch.randn(2, 3, 5, 64), torch.randn(2, 3, 5, 64)
    points = torch.rand(2, 3, 5, 2) * 60
    clip = ClipMarginalLoss(codec)((hx, hy), {"landmarks": points})
    frame = MarginalLoss(codec)
    each = [frame((hx[b, t, None], hy[b, t, None]), {"landmarks": points[b, t, None]})
            for b in range(2) for t in range(3)]
    assert clip.item() == pytest.approx(torch.stack(each).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"\(B, T, N, L\)"):
        ClipMarginalLoss(codec)((hx[0], hy[0]), {"landmarks": points[0]})


def test_fit_trains_on_clips_and_checks_their_shapes():
    class Clips(torch.utils.data.Dataset):
        def __init__(self, t_landmarks=3):
            self.t = t_landmarks

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"image": torch.randn(3, 3, 8, 8), "landmarks": torch.rand(self.t, 2, 2) * 8}

    class PerFrame(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3 * 8 * 8, 4)

        def forward(self, clips):
            return self.linear(clips.flatten(2)).unflatten(-1, (2, 2))

    def loss(out, batch):
        return ((out - batch["landmarks"]) ** 2).mean()

    h = fit(PerFrame(), Clips(), None, loss_fn=loss, decode_fn=lambda o: o, epochs=2, batch_size=2,
            device="cpu", show_progress=False)
    assert len(h.train_loss) == 2
    with pytest.raises(ValueError, match=r"must have shape \(T, N, 2\) like its \(T, 3, H, W\) image"):
        fit(PerFrame(), Clips(2), None, loss_fn=loss, decode_fn=lambda o: o, epochs=1, device="cpu",
            show_progress=False)
    with pytest.raises(ValueError, match=r"val_data\[0\]\['image'\] must have shape \(3, H, W\) \(clips only"):
        fit(PerFrame(), Clips(), Clips(), loss_fn=loss, decode_fn=lambda o: o, epochs=1, device="cpu",
            show_progress=False)


def test_close_treats_nan_as_a_value():
    assert zoo._close(0.1, 0.1001, 2e-4) and not zoo._close(0.1, 0.1003, 2e-4)
    assert zoo._close(float("nan"), float("nan"), 1e-6)
    assert not zoo._close(float("nan"), 0.1, 1.0) and not zoo._close(0.1, float("nan"), 1.0)


def test_frames_take_clips_of_one_frame():
    from lmk.data import synth_video
    from lmk.data.frame_pairs import FramePairs
    videos = [synth_video((0, 0), 4, 64)]
    with pytest.raises(ValueError, match="length 1, got length 2"):
        Frames(FramePairs(videos, 2, 32))
    frames = Frames(FramePairs(videos, 1, 32))
    assert len(frames) == 3 and frames[0]["image"].shape == (3, 32, 32)
    assert frames[0]["landmarks"].shape == (68, 2)


# ------------------------------------------------------------------ a tiny zoo, end to end
TINY = {"n06_atpn": {"data": {"n_train": 24, "n_val": 8}, "train": {"stage_epochs": [1, 1, 1]}},
        "n06_atpn_no_fusion": {"data": {"n_train": 24, "n_val": 8}, "train": {"stage_epochs": [0, 1, 1]}},
        "n06_yin_detector": {"data": {"videos": 1, "frames": 6, "val_videos": 1},
                             "train": {"detector_epochs": 1}},
        "n06_yin_l03": {"data": {"videos": 1, "frames": 6, "val_videos": 1}, "train": {"refine_epochs": 1}}}


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """A zoo directory holding the shipped notebook-02 detector and tiny notebook-06 recipes."""
    detector = zoo.entry("n02_1d_r3")
    shutil.copy(store.zoo_dir() / detector["file"], tmp_path / detector["file"])
    store.write_manifest({"n02_1d_r3": detector}, tmp_path)
    monkeypatch.setenv("LMK_ZOO_DIR", str(tmp_path))
    monkeypatch.setattr(tracking, "VIDEO_VAL_T", 6)       # short validation and test videos
    monkeypatch.setattr(tracking, "VIDEO_TEST_N", 8)
    table = dict(recipes.RECIPES)
    for name, zoo_scale in TINY.items():
        table[name] = dataclasses.replace(table[name], scales={**table[name].scales, "zoo": zoo_scale})
    monkeypatch.setattr(recipes, "RECIPES", table)
    return tmp_path


@pytest.mark.heavy                       # builds tiny notebook-06 zoo entries: 18 s
def test_partial_entries_ship_their_parts_and_load_on_their_base(tiny_zoo):
    torch.set_num_threads(1)
    entries = {"n02_1d_r3": zoo.entry("n02_1d_r3")}
    for name in TINY:
        entries[name] = zoo.build_one(name, tiny_zoo, 1, "test")
        store.write_manifest(entries, tiny_zoo)
    part = entries["n06_atpn_no_fusion"]
    assert part["base"] == "n06_atpn" and part["base_sha256"] == entries["n06_atpn"]["sha256"]
    assert part["bytes"] < entries["n06_atpn"]["bytes"] / 2
    shipped = store.unpack(torch.load(tiny_zoo / part["file"], weights_only=True))
    assert shipped and all(k.startswith(("pose.", "tracking.")) for k in shipped)
    assert set(entries["n06_atpn"]["task_metrics"]) >= {"pose_mae", "pose_mae_baseline", "confidence_ap",
                                                        "confidence_ap_baseline", "tracking"}
    assert entries["n06_yin_l03"]["metrics"]["tracking"]["nme"] == pytest.approx(
        entries["n06_yin_l03"]["task_metrics"]["tracking"]["mean_nme"])

    full, _ = zoo.load("n06_atpn", tiny_zoo)
    variant, _ = zoo.load("n06_atpn_no_fusion", tiny_zoo)
    for k, v in variant.state_dict().items():          # stage 1 is the base's, bit for bit
        if k.startswith(("backbone.", "alignment.")):
            assert torch.equal(v, full.state_dict()[k])
    assert not variant.flags["heatmap_fusion"]
    assert zoo.verify(list(TINY), tiny_zoo) == []

    # the base rebuilt under it: the partial entry says so
    m = zoo.manifest(tiny_zoo)
    m["n06_atpn_no_fusion"]["base_sha256"] = "0" * 64
    store.write_manifest(m, tiny_zoo)
    with pytest.raises(zoo.ZooError, match="built on other weights of n06_atpn than the shipped"):
        zoo.load("n06_atpn_no_fusion", tiny_zoo)
    (tiny_zoo / entries["n06_atpn"]["file"]).rename(tiny_zoo / "moved.pt")   # the base's own message
    with pytest.raises(zoo.ZooError, match=r"n06_atpn\.pt are missing; rebuild it with `python -m lmk.zoo build n06_atpn`"):
        zoo.load("n06_atpn_no_fusion", tiny_zoo)
    (tiny_zoo / "moved.pt").rename(tiny_zoo / entries["n06_atpn"]["file"])

    # a drifted pose figure is a verify problem
    m["n06_atpn_no_fusion"]["base_sha256"] = entries["n06_atpn"]["sha256"]
    m["n06_atpn"]["task_metrics"]["pose_mae"] += 1.0
    store.write_manifest(m, tiny_zoo)
    problems = zoo.verify(["n06_atpn"], tiny_zoo)
    assert len(problems) == 1 and "pose_mae" in problems[0]
