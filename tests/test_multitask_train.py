"""lmk.train for several tasks: masked landmark metrics, named metrics, History, monitor, weight decay;
the pose and confidence metrics (Xia et al. 2022, Sec. 4.3) against brute-force computations."""

import math
import operator

import numpy as np
import pytest
import torch
from torch import nn

from lmk.losses import MultitaskLoss
from lmk.metrics import average_precision, failure_rate, nme, pose_error, pose_mae
from lmk.multitask_metrics import (ConfidenceAP, PoseFailureRate, PoseMAE, atpn_metrics, mean_pose,
                                   pose_degrees)
from lmk.train import History, evaluate, fit

N = 68


# ------------------------------------------------------------------ average precision
def brute_force_ap(scores, labels):
    """Step-wise PR area over the distinct thresholds, counted with Python loops."""
    total = 0.0
    recall_before = 0.0
    positives = sum(labels)
    for t in sorted(set(scores), reverse=True):
        called = [y for s, y in zip(scores, labels) if s >= t]
        precision, recall = sum(called) / len(called), sum(called) / positives
        total += (recall - recall_before) * precision
        recall_before = recall
    return total


def test_average_precision_by_hand():
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) \
        == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert average_precision(np.array([3.0, 2.0, 1.0]), np.array([1, 1, 0])) == pytest.approx(1.0)
    # one threshold for tied scores: a constant score gives the share of faces
    assert average_precision(np.zeros(5), np.array([1, 0, 0, 1, 0])) == pytest.approx(0.4)
    out = average_precision(torch.tensor([0.2, 0.1]), torch.tensor([False, True]))
    assert isinstance(out, torch.Tensor) and out.item() == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 40).astype(float)                 # many ties
    labels = (rng.random(40) < 0.4).astype(int)
    labels[0] = 1
    expected = brute_force_ap(scores.tolist(), labels.tolist())
    assert average_precision(scores, labels) == pytest.approx(expected)
    distinct = rng.normal(size=40)                                  # no ties: mean precision at each positive
    order = np.argsort(-distinct)
    hits = np.cumsum(labels[order])
    classic = np.mean([hits[k] / (k + 1) for k in range(40) if labels[order][k]])
    assert average_precision(distinct, labels) == pytest.approx(classic)


def test_average_precision_bad_input():
    with pytest.raises(ValueError, match="no positive"):
        average_precision(np.array([0.3, 0.2]), np.array([0, 0]))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        average_precision(np.array([0.3, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="finite"):
        average_precision(np.array([np.nan, 0.2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="same number of samples"):
        average_precision(np.array([0.3, 0.2]), np.array([0, 1, 1]))


def test_pose_error_and_fr10_by_hand():
    pred = np.array([[10.0, 0.0, 0.0], [40.0, -30.0, 5.0], [179.0, 0.0, 0.0]])
    gt = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 5.0], [-179.0, 0.0, 0.0]])
    err = pose_error(pred, gt)
    np.testing.assert_allclose(err, [10 / 3, 60 / 3, 2 / 3])             # 179 vs -179: 2 deg apart
    assert err.mean() == pytest.approx(pose_mae(pred, gt).mean())          # Eq. 9 both ways
    assert failure_rate(err, 10.0) == pytest.approx(1 / 3)


# ---------------------------------------------------------------- a tiny multitask world
class TinyMultitask:
    """Item ``i``: a 3x16x16 image; faces (even ``i`` below ``2 * faces``) encode a landmark shift
    and a yaw, negatives carry zero landmarks and ``has_landmarks`` False."""

    def __init__(self, n, seed=0, negatives=0):
        self.n, self.seed, self.negatives = n, seed, negatives
        g = np.random.default_rng(1234)
        self.template = g.uniform(4, 12, size=(N, 2)).astype(np.float32)
        self.template[36], self.template[45] = (4.0, 6.0), (12.0, 6.0)

    def __len__(self):
        return self.n + self.negatives

    def __getitem__(self, i):
        g = np.random.default_rng([self.seed, i])
        image = g.normal(0, 0.1, size=(3, 16, 16)).astype(np.float32)
        if i >= self.n:
            return {"image": torch.from_numpy(image), "landmarks": torch.zeros(N, 2),
                    "has_landmarks": torch.tensor(False), "face": torch.tensor(0.0),
                    "pose": torch.zeros(3)}
        shift = g.uniform(-1, 1, size=2).astype(np.float32)
        yaw = float(g.uniform(-40, 40))
        image[0] += shift[0]
        image[1] += shift[1]
        image[2] += 1.0 + yaw / 40
        return {"image": torch.from_numpy(image), "landmarks": torch.from_numpy(self.template + 2 * shift),
                "has_landmarks": torch.tensor(True), "face": torch.tensor(1.0),
                "pose": torch.tensor([yaw, 0.0, 0.0])}


class TinyATPN(nn.Module):
    """ATPN's outputs from a 16x16 image: landmarks px, pose radians (tanh * pi), a logit."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.landmarks = nn.Linear(8, N * 2)
        self.pose = nn.Linear(8, 3)
        self.confidence = nn.Linear(8, 1)

    def forward(self, x):
        f = self.conv(x).mean(dim=(-2, -1))
        return {"landmarks": self.landmarks(f).view(-1, N, 2) + 8.0,
                "pose": torch.pi * torch.tanh(self.pose(f)),
                "confidence": self.confidence(f).squeeze(1)}


class Fixed(nn.Module):
    """Returns the given outputs for the batch's item indices (positional, in order)."""

    def __init__(self, landmarks, pose_rad, logits):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.outputs, self.start = (landmarks, pose_rad, logits), 0

    def forward(self, x):
        b = x.shape[0]
        sl = slice(self.start, self.start + b)
        self.start += b
        lm, pose, logit = (t[sl] for t in self.outputs)
        return {"landmarks": lm, "pose": pose, "confidence": logit}


decode = operator.itemgetter("landmarks")
KW = dict(decode_fn=decode, lr=0.05, batch_size=8, device="cpu", seed=0, show_progress=False)


def test_evaluate_scores_landmarks_of_faces_only_and_the_named_metrics():
    data = TinyMultitask(6, seed=1, negatives=4)
    items = [data[i] for i in range(len(data))]
    gt = torch.stack([it["landmarks"] for it in items])
    pose_deg = torch.stack([it["pose"] for it in items])
    face = torch.stack([it["face"] for it in items])
    g = torch.Generator().manual_seed(0)
    landmarks = gt + torch.randn(gt.shape, generator=g)
    landmarks[6:] = 8.0                                              # predictions for negatives exist
    pred_deg = pose_deg + torch.tensor([4.0, -2.0, 12.0]) * torch.randn(10, 3, generator=g)
    logits = torch.randn(10, generator=g)
    ev = evaluate(Fixed(landmarks, torch.deg2rad(pred_deg), logits), data, decode, batch_size=4,
                  device="cpu", metrics={**atpn_metrics(mean_pose(data)), "nothing": lambda o, b: 0})
    faces = slice(0, 6)
    np.testing.assert_allclose(ev.nmes, nme(landmarks[faces].double(), gt[faces].double()).numpy(), rtol=1e-5)
    assert ev.has_landmarks.tolist() == [True] * 6 + [False] * 4
    assert ev.predictions.shape == (6, N, 2)
    errors = (pred_deg[faces] - pose_deg[faces]).abs().mean(1).double()
    assert ev.metrics["pose_mae"] == pytest.approx(errors.mean().item(), rel=1e-5)
    assert ev.metrics["pose_fr"] == pytest.approx((errors > 10).double().mean().item())
    mean = pose_deg[faces].double().mean(0)
    assert ev.metrics["pose_mae_baseline"] == pytest.approx(
        (pose_deg[faces].double() - mean).abs().mean().item(), rel=1e-6)
    assert ev.metrics["confidence_ap"] == pytest.approx(brute_force_ap(logits.tolist(), face.int().tolist()))
    assert ev.metrics["confidence_ap_baseline"] == pytest.approx(0.6)
    assert ev.metrics["nothing"] == 0.0


def test_evaluate_without_masks_or_metrics_equals_the_landmark_evaluation():
    data = TinyMultitask(12, seed=2)
    a = evaluate(TinyATPN(), data, decode, batch_size=5, device="cpu")
    model = TinyATPN().eval()
    with torch.no_grad():                       # the same figures computed directly, item by item
        pred = np.stack([decode(model(data[i]["image"][None]))[0].numpy() for i in range(len(data))])
    truth = np.stack([np.asarray(data[i]["landmarks"]) for i in range(len(data))])
    direct = nme(pred.astype(np.float64), truth.astype(np.float64), norm="inter_ocular")
    np.testing.assert_allclose(a.nmes, direct, rtol=1e-5)
    assert a.failure_rate == failure_rate(direct, 0.08)
    assert a.metrics == {}


def test_evaluate_without_any_landmarks_gives_nan_landmark_figures():
    data = TinyMultitask(0, negatives=3)
    ev = evaluate(TinyATPN(), data, decode, device="cpu", metrics={"pose_mae": PoseMAE()})
    assert math.isnan(ev.nme) and math.isnan(ev.auc) and len(ev.nmes) == 0
    assert math.isnan(ev.metrics["pose_mae"])


def test_pose_degrees_and_metric_arguments():
    assert pose_degrees({"pose": torch.tensor([[math.pi / 2, 0.0, -math.pi]])})[0].tolist() == \
        pytest.approx([90.0, 0.0, -180.0])
    with pytest.raises(ValueError, match="finite \\(3,\\) pose in degrees"):
        PoseMAE(constant=[1.0, 2.0])
    with pytest.raises(ValueError, match="positive number of degrees"):
        PoseFailureRate(threshold=0)
    with pytest.raises(KeyError, match=r"batch\['face'\]"):
        ConfidenceAP()([{"confidence": torch.zeros(2)}], [{"landmarks": torch.zeros(2, N, 2)}])


def test_fit_records_metrics_and_monitors_the_chosen_one(tmp_path):
    train, val = TinyMultitask(24, seed=0, negatives=8), TinyMultitask(8, seed=1, negatives=4)
    h = fit(TinyATPN(), train, val, loss_fn=MultitaskLoss(), epochs=4, eval_every=2,
            metrics=atpn_metrics(mean_pose(train)), monitor="pose_mae", checkpoint_dir=tmp_path, **KW)
    assert set(h.val_metrics) == {"pose_mae", "pose_fr", "pose_mae_baseline", "pose_fr_baseline",
                                  "confidence_ap", "confidence_ap_baseline"}
    for values in h.val_metrics.values():
        assert len(values) == 4 and math.isnan(values[0]) and math.isnan(values[2])
    assert h.val_metrics["pose_mae"][3] < h.val_metrics["pose_mae"][1]          # the pose trains
    assert h.val_metrics["confidence_ap"][3] > h.val_metrics["confidence_ap_baseline"][3]
    assert h.best_epoch == 2 + 2 * int(np.nanargmin(h.val_metrics["pose_mae"][1::2]))
    np.testing.assert_equal(History.from_dict(h.to_dict()).to_dict(), h.to_dict())   # NaN == NaN here
    # the checkpoint holds it, and a resumed finished run gives it back
    again = fit(TinyATPN(), train, val, loss_fn=MultitaskLoss(), epochs=4, eval_every=2, resume=True,
                metrics=atpn_metrics(mean_pose(train)), monitor="pose_mae", checkpoint_dir=tmp_path, **KW)
    np.testing.assert_equal(again.to_dict(), h.to_dict())
    with pytest.raises(ValueError, match="monitor"):
        fit(TinyATPN(), train, val, loss_fn=MultitaskLoss(), epochs=4, eval_every=2, resume=True,
            metrics=atpn_metrics(), monitor="pose_fr", checkpoint_dir=tmp_path, **KW)


@pytest.mark.parametrize("mode, best", [("max", 2), ("min", 3)])
def test_monitor_mode_picks_the_best_value_of_the_named_metric(mode, best):
    data = TinyMultitask(8, seed=0, negatives=4)
    scripted = iter([0.3, 0.9, 0.1, 0.5])

    def metric(outputs_list, batches):
        return next(scripted)
    h = fit(TinyATPN(), data, data, loss_fn=MultitaskLoss.stage(2), epochs=4,
            metrics={"scripted": metric}, monitor="scripted", monitor_mode=mode, **KW)
    assert h.val_metrics["scripted"] == [0.3, 0.9, 0.1, 0.5]
    assert h.best_epoch == best


def test_history_pads_metrics_that_appear_later_and_reads_old_records():
    h = History()
    h.record(1, [1.0], 0.1, None, 0.0)

    class Ev:
        nme, auc, failure_rate, metrics = 0.1, 0.5, 0.0, {"ap": 0.7}
    h.record(2, [1.0], 0.1, Ev, 0.0)
    assert h.val_metrics["ap"][0] != h.val_metrics["ap"][0] and h.val_metrics["ap"][1] == 0.7
    old = h.to_dict()
    del old["val_metrics"]                                  # a checkpoint written before metrics existed
    assert History.from_dict(old).val_metrics == {}


def test_weight_decay_shrinks_trained_weights_only():
    """With a loss that has no gradient, only Adam's L2 term moves the weights: towards zero,
    and not in frozen parts."""
    data = TinyMultitask(16, seed=0)

    def no_gradient(outputs, batch):
        return 0.0 * outputs["landmarks"].sum()

    model = TinyATPN()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, data, loss_fn=no_gradient, epochs=2, weight_decay=0.1, freeze=["pose."], **KW)
    after = dict(model.named_parameters())
    assert after["conv.weight"].abs().sum() < before["conv.weight"].abs().sum()
    assert torch.equal(after["pose.weight"], before["pose.weight"])
    model = TinyATPN()
    fit(model, data, loss_fn=no_gradient, epochs=2, **KW)
    assert torch.equal(model.conv.weight, before["conv.weight"])


@pytest.mark.parametrize("override, message", [
    ({"metrics": {"pose": 3}}, "metric 'pose' must be callable"),
    ({"metrics": [PoseMAE()]}, "metrics must be a dict"),
    ({"metrics": {"nme": PoseMAE()}}, "metric names must be"),
    ({"monitor": "pose_mae"}, "monitor must be one of"),
    ({"monitor_mode": "lowest"}, "monitor_mode must be 'min' or 'max'"),
    ({"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
])
def test_bad_arguments(override, message):
    data = TinyMultitask(8)
    with pytest.raises(ValueError, match=message):
        fit(TinyATPN(), data, data, loss_fn=MultitaskLoss(), epochs=1, **{**KW, **override})
    with pytest.raises(ValueError, match="computed on val_data"):
        fit(TinyATPN(), data, None, loss_fn=MultitaskLoss(), epochs=1, metrics={"ap": ConfidenceAP()}, **KW)
