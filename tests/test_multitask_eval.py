"""lmk.multitask_eval, lmk.viz.multitask and lmk.viz.tracking (notebook 06), and notebook 06's parameters."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmk import complexity, params, viz  # noqa: E402
from lmk.lessons import n06_multitask as multitask_eval  # noqa: E402
from lmk.data import synth_video  # noqa: E402
from lmk.data.transforms import crop_matrix, normalize_image, warp_image  # noqa: E402
from lmk.models import ATPN  # noqa: E402
from lmk.ops import cheap_heatmap  # noqa: E402
from lmk.track import Tracker, atpn_predictor, summarize  # noqa: E402
from lmk.train import History  # noqa: E402


@pytest.fixture(scope="module")
def small_atpn():
    torch.manual_seed(0)
    return ATPN(68, 64, width=0.25).eval()


@pytest.fixture(scope="module")
def tracked(small_atpn):
    video = synth_video((3, 1), 5, 96)
    result = Tracker(atpn_predictor(small_atpn), 64).track(video)
    return video, result


# -------------------------------------------------------------------------------- shapes
def test_shape_table_covers_every_weight_and_mac(small_atpn):
    rows = multitask_eval.atpn_shape_table(small_atpn)
    parts = [r["part"] for r in rows]
    assert parts[0] == "backbone" and parts[-2:] == ["pose branch", "tracking branch"]
    assert parts.index("cheap heatmap") == parts.index("pose branch") - 1
    assert rows[0]["output"].count(",") == 2                     # three feature levels
    assert next(r for r in rows if r["part"] == "linear")["output"] == "136"
    assert next(r for r in rows if r["part"] == "cheap heatmap")["output"] == "1 x 16 x 16"
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in small_atpn.parameters())
    total = complexity.profile(small_atpn, (1, 3, 64, 64), device="cpu")["macs"]
    assert sum(r["macs"] for r in rows) == pytest.approx(total, rel=1e-6)


def test_shape_table_follows_the_ablations():
    rows = multitask_eval.atpn_shape_table(ATPN(68, 64, width=0.25, low_level=False, multiview=False))
    parts = [r["part"] for r in rows]
    assert "fusion" not in parts and not any(p.startswith("multiview") for p in parts)
    assert [p for p in parts if p.startswith("CoordConv down")] == ["CoordConv down 16"]
    rows = multitask_eval.atpn_shape_table(ATPN(68, 64, width=0.25, heatmap_fusion=False, shared_features=False))
    assert "cheap heatmap" not in [r["part"] for r in rows]
    assert rows[-1]["computes"] == "bnecks 4-8 on own stem + bnecks 1-3, F4, a logit"
    with pytest.raises(TypeError, match="needs an ATPN"):
        multitask_eval.atpn_shape_table(torch.nn.Linear(2, 2))


# ------------------------------------------------------------------------------- figures
class _Run:
    """What figures() reads from an lmk.recipes.Result."""

    def __init__(self):
        self.evaluation = type("Ev", (), {"nme": 0.07, "metrics": {"pose_mae": 5.0, "confidence_ap": 0.99,
                                                                    "ignored": 1.0}})()
        self.baseline_nmes = np.array([0.3, 0.32])
        self.config = {"model": "atpn"}


def test_figures_of_a_run_and_of_a_zoo_entry(monkeypatch, tracked):
    f = multitask_eval.figures(_Run())
    assert set(f) == set(multitask_eval.FIGURES)
    assert f["nme"] == 0.07 and f["baseline_nme"] == pytest.approx(0.31) and f["pose_mae"] == 5.0
    assert math.isnan(f["tracking_nme"]) and "ignored" not in f
    _, result = tracked
    run = _Run()
    run.config = {"model": "yin"}                       # a tracker's run evaluates its detector only
    assert math.isnan(multitask_eval.figures(run)["nme"])
    f = multitask_eval.figures(_Run(), tracks=[result])
    assert f["tracking_nme"] == pytest.approx(float(np.mean(result.nme)))
    assert f["last_frame_nme"] == pytest.approx(float(np.mean(result.baseline_nme)))

    tracking = {"mean_nme": 0.05, "failure_rate": 0.01, "lost_rate": 0.0, "detector_calls_saved": 0.98,
                "baseline_mean_nme": 0.06}
    entry = {"method": "regression", "metrics": {"regression": {"nme": 0.068}}, "baseline_nme": 0.31,
             "task_metrics": {"pose_mae": 5.4, "confidence_ap": 0.999, "tracking": tracking}}
    monkeypatch.setattr(multitask_eval.zoo, "entry", lambda name: entry)
    f = multitask_eval.figures("n06_atpn")
    assert (f["nme"], f["pose_mae"], f["tracking_nme"], f["calls_saved"]) == (0.068, 5.4, 0.05, 0.98)
    entry.update(method="tracking", metrics={"tracking": {"nme": 0.05}}, task_metrics={"tracking": tracking})
    f = multitask_eval.figures("n06_yin_l03")           # a tracker has no single-image NME
    assert math.isnan(f["nme"]) and f["tracking_nme"] == 0.05 and math.isnan(f["pose_mae"])


def test_group_rows_average_seeds_in_percent_and_degrees():
    a = {"nme": 0.06, "pose_mae": 5.0, "confidence_ap": 0.9}
    b = {"nme": 0.08, "pose_mae": 7.0, "confidence_ap": 1.0}
    rows = multitask_eval.group_rows({"full": [a, b], "one": [a]}, keys=("nme", "pose_mae", "confidence_ap"))
    assert rows[0] == {"model": "full", "seeds": 2, "nme": pytest.approx(7.0), "pose_mae": 6.0,
                       "confidence_ap": pytest.approx(95.0)}
    nan = multitask_eval.group_rows({"x": [{"nme": float("nan"), "pose_mae": 1.0, "confidence_ap": 1.0}]},
                                    keys=("nme",))
    assert math.isnan(nan[0]["nme"])


def test_budget_rows_follow_each_models_chain_of_init_from(monkeypatch):
    """A tracker's budget adds its detector's and the still-face model's; a margin left unset is 20 %."""
    entries = {
        "still": {"params": 200, "seconds": 120.0, "recipe": {
            "model": "marginal", "model_args": {"length_ratio": 3.0, "width_mult": 0.25},
            "data": {"input_size": 64, "n_train": 4000, "augment": {}}, "train": {"epochs": 15, "init_from": None}}},
        "det": {"params": 300, "seconds": 60.0, "recipe": {
            "model": "yin", "model_args": {}, "data": {"videos": 48, "frames": 64},
            "train": {"detector_epochs": 4, "refine_epochs": 0, "init_from": "still"}}},
        "tracker": {"params": 300, "seconds": 30.0, "recipe": {
            "model": "yin", "model_args": {}, "data": {"videos": 48, "frames": 64},
            "train": {"detector_epochs": 0, "refine_epochs": 4, "init_from": "det"}}},
        "atpn": {"params": 291, "seconds": 420.0, "recipe": {
            "model": "atpn", "model_args": {"width": 0.4},
            "data": {"input_size": 64, "margin": 0.25, "n_train": 2000, "augment": {"flip_prob": 0.5}},
            "train": {"stage_epochs": [12, 3, 5], "init_from": None}}},
    }
    monkeypatch.setattr(multitask_eval.zoo, "entry", entries.__getitem__)
    rows = {r[""]: r for r in multitask_eval.budget_rows({"A": "atpn", "Y": "tracker"})}
    assert rows["landmarks from"]["A"].startswith("coordinate regression; MobileNetV3-Small x0.4")
    assert rows["landmarks from"]["Y"].startswith("1D heatmaps, L = 3F; MobileNetV2 x0.25")
    assert (rows["input, crop margin"]["A"], rows["input, crop margin"]["Y"]) == ("64 px, 25 %", "64 px, 20 %")
    assert rows["still faces x epochs"]["A"] == "2,000 x 12 augmented"
    assert rows["still faces x epochs"]["Y"] == "4,000 x 15 not augmented"
    assert rows["video frames x epochs"]["A"] == "-"
    assert rows["video frames x epochs"]["Y"] == "3,072 x 4 (detector), 3,072 x 4 (refinement)"
    assert (rows["parameters"]["A"], rows["parameters"]["Y"]) == ("291", "300")
    assert rows["training minutes (whole chain)"]["Y"] == "3.5"             # 120 + 60 + 30 s


def test_tracking_rows_average_seeds_and_end_with_the_last_frame(tracked):
    _, result = tracked
    s = summarize([result])
    other = {**s, "mean_nme": s["mean_nme"] + 0.02, "detector_calls": s["detector_calls"] + 1}
    rows = multitask_eval.tracking_rows({"ATPN": [s, other], "one": [s]})
    assert [r["tracker"] for r in rows] == ["ATPN", "one", "last frame's truth (no motion)"]
    assert rows[0]["seeds"] == 2 and rows[0]["NME %"] == round(100 * (s["mean_nme"] + 0.01), 2)
    assert rows[0]["detector calls"] == s["detector_calls"] + 0.5
    assert rows[2]["frames"] == 4 and rows[2]["NME %"] == round(100 * float(np.mean(result.baseline_nme)), 2)
    assert s["frames"] == 5


def test_pose_along_reads_the_trackers_own_crops(small_atpn, tracked):
    video, result = tracked
    pose = multitask_eval.pose_along(small_atpn, video, result)
    assert pose.shape == (5, 3)
    t = 3                                               # by hand: the crop of frame t, one image
    crop = normalize_image(warp_image(video["frames"][t], result.transforms[t], (64, 64)))[None]
    with torch.no_grad():
        expected = torch.rad2deg(small_atpn(crop)["pose"])[0].numpy()
    np.testing.assert_allclose(pose[t], expected, atol=1e-4)


# ---------------------------------------------------------------------------------- plots
def test_crop_outline_is_the_crop_square_in_frame_pixels():
    box = np.array([10.0, 20.0, 50.0, 60.0])
    m = crop_matrix(box, 64, 0.25)
    outline = viz.crop_outline(m, 64)
    assert outline.shape == (5, 2) and np.allclose(outline[0], outline[-1])
    side = np.ptp(outline[:, 0])
    assert side == pytest.approx(40 * 1.5, rel=1e-6)              # the box widened by 25 % a side
    assert outline[:, 0].min() < box[0] and outline[:, 0].max() > box[2]


def test_tracking_plots_draw(tracked, small_atpn):
    video, result = tracked
    fig = plt.figure()
    axes = viz.show_track_strip(fig, video, result, [0, 2, 4], pose=np.zeros((5, 3)), input_size=64)
    assert len(axes) == 3 and axes[1].get_title().startswith("t=2")
    plt.close(fig)
    fig = plt.figure()
    left, right = viz.show_track_frame(fig, video, {"ATPN": result}, 1, input_size=64)
    labels = [line.get_label() for line in right.get_lines()]
    assert "ATPN" in labels and "last frame" in labels
    assert right.get_lines()[labels.index("last frame")].get_xdata()[0] == 1   # frames 1 .. T-1
    plt.close(fig)


def test_cheap_heatmap_panel_is_eq_1(ax):
    fig, axes = plt.subplots(1, 3)
    image = torch.zeros(3, 64, 64)
    points = np.array([[10.0, 20.0], [40.5, 33.0]])
    heat = viz.show_cheap_heatmap(axes, image, points, floor=0.3)
    on_map = (points + 0.5) / 4 - 0.5                  # input pixels -> stride-4 map pixels (centres)
    expected = cheap_heatmap(torch.as_tensor(on_map)[None], (16, 16), floor=0.3)[0, 0].numpy()
    np.testing.assert_allclose(heat, expected)
    plt.close(fig)


def test_plot_stages_draws_each_stage_with_its_baseline():
    histories = {}
    for stage, key in ((1, None), (2, "confidence_ap"), (3, "pose_mae")):
        h = History()
        for e in range(2):
            metrics = {} if key is None else {key: 0.5 + e, f"{key}_baseline": 0.25}
            ev = type("Ev", (), {"nme": 0.1 / (e + 1), "auc": 0.5, "failure_rate": 0.0, "metrics": metrics})()
            h.record(e + 1, [1.0], 1e-3, ev, 1.0)
        histories[stage] = h
    fig, axes = plt.subplots(1, 3)
    viz.plot_stages(axes, histories, {1: 0.3})
    assert list(axes[0].get_lines()[0].get_ydata()) == pytest.approx([10.0, 5.0])
    assert axes[0].get_lines()[1].get_ydata()[0] == pytest.approx(30.0)         # the mean shape, %
    assert axes[2].get_lines()[1].get_ydata()[0] == pytest.approx(0.25)        # the mean pose, degrees
    plt.close(fig)


# ----------------------------------------------------------------------------- parameters
def _namespace(**changes):
    ns = {"SCALE": "fast", "SEED": 0, "DEVICE": "cpu", "DATA": "synthetic", "DATA_ROOT": None,
          "ON_ERROR": "raise", "RESULTS": None, "SHOW_PROGRESS": False, "USE_ZOO": True, "INPUT_SIZE": None,
          "N_TRAIN": None, "N_VAL": None, "STAGE_EPOCHS": None, "LR": None, "BATCH_SIZE": None,
          "N_VIDEOS": None, "VIDEO": 0, "VIDEO_ROOT": None, "ZOO_DIR": None, "RUN_DIR": None,
          "N_SEEDS": None, "YIN_EPOCHS": None, "YIN_VIDEOS": None}
    return {**ns, **changes}


def test_notebook_06_parameters(tmp_path):
    assert params.validate("06", _namespace())["VIDEO"] == 0
    assert params.validate("06", _namespace(INPUT_SIZE=112, STAGE_EPOCHS=[4, 0, 2]))["INPUT_SIZE"] == 112
    for changes, message in (({"INPUT_SIZE": 100}, "multiple of 16"),
                             ({"STAGE_EPOCHS": [4, 1]}, "three epoch counts"),
                             ({"STAGE_EPOCHS": [0, 0, 0]}, "trains nothing"),
                             ({"STAGE_EPOCHS": [4, -1, 2]}, ">= 0"),
                             ({"VIDEO_ROOT": str(tmp_path)}, "holds no video folder"),
                             ({"VIDEO_ROOT": str(tmp_path / "none")}, "is not a folder"),
                             ({"EPOCHS": 3}, "EPOCHS")):
        with pytest.raises(params.ParameterError, match=message):
            params.validate("06", _namespace(**changes))
    video = tmp_path / "001"
    (video / "annot").mkdir(parents=True)
    (video / "vid.avi").write_bytes(b"")
    with pytest.raises(params.ParameterError, match="000001.pts"):     # the reader's own rules
        params.validate("06", _namespace(VIDEO_ROOT=str(tmp_path)))
