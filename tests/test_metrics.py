"""Tests of lmk.metrics: NME variants, CED, AUC, failure rate, pose MAE."""

import numpy as np
import pytest
import torch

from lmk.layouts import LAYOUT_68
from lmk.metrics import auc, ced, failure_rate, nme, pose_mae


def face(seed=0, batch=()):
    """Random 68-point sets with the eye points placed so the distances are known."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(20, 80, batch + (68, 2))
    return gt


def test_nme_inter_ocular_by_hand():
    gt = np.zeros((68, 2))
    gt[36], gt[45] = [10.0, 50.0], [70.0, 50.0]           # outer eye corners 60 px apart
    pred = gt.copy()
    pred[0] += [3.0, 4.0]                                   # one landmark 5 px off
    assert nme(pred, gt) == pytest.approx(5.0 / 68 / 60.0)


def test_nme_inter_pupil_by_hand():
    gt = np.zeros((68, 2))
    gt[36:42] = [20.0, 40.0]                                # image-left eye points
    gt[42:48] = [60.0, 40.0]
    gt[36] += [-4.0, 0.0]
    gt[39] += [4.0, 0.0]                                    # pupil still the mean (20, 40)
    pred = gt + np.array([0.0, 2.0])                        # everything 2 px down
    assert nme(pred, gt, "inter_pupil") == pytest.approx(2.0 / 40.0)
    # the same through the layout's definition of the pupils
    pupils = LAYOUT_68.pupils(gt)
    np.testing.assert_allclose(pupils, [[20.0, 40.0], [60.0, 40.0]])


def test_nme_bbox_from_landmarks_and_explicit_box():
    gt = face(1)
    pred = gt + np.array([1.0, 0.0])
    w, h = np.ptp(gt[:, 0]), np.ptp(gt[:, 1])
    assert nme(pred, gt, "bbox") == pytest.approx(1.0 / np.sqrt(w * h))
    box = np.array([0.0, 0.0, 50.0, 200.0])                 # sqrt(50 * 200) = 100
    assert nme(pred, gt, "bbox", box=box) == pytest.approx(0.01)


def test_nme_explicit_distances_and_batches():
    gt = face(2, (3, 4))
    pred = gt + np.array([0.0, 3.0])
    d = np.arange(1.0, 13.0).reshape(3, 4)
    np.testing.assert_allclose(nme(pred, gt, d), 3.0 / d)
    np.testing.assert_allclose(nme(pred, gt, 6.0), np.full((3, 4), 0.5))
    np.testing.assert_allclose(nme(pred, gt, np.array([1.0, 2.0, 3.0, 6.0])),
                               3.0 / np.array([1.0, 2.0, 3.0, 6.0])[None].repeat(3, 0))
    assert nme(pred, gt).shape == (3, 4)


def test_nme_torch_in_torch_out_and_matches_numpy():
    gt = face(3, (5,))
    pred = gt + np.random.default_rng(4).normal(0, 1, gt.shape)
    for norm in ("inter_ocular", "inter_pupil", "bbox"):
        a = nme(pred, gt, norm)
        b = nme(torch.tensor(pred), torch.tensor(gt), norm)
        assert isinstance(b, torch.Tensor) and b.shape == (5,)
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12)
    # brute force inter-ocular
    io = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    brute = np.array([np.mean([np.linalg.norm(pred[i, k] - gt[i, k]) for k in range(68)])
                      for i in range(5)]) / io
    np.testing.assert_allclose(nme(pred, gt), brute, rtol=1e-12)


def test_nme_nan_prediction_propagates():
    gt = face(5, (2,))
    pred = gt.copy()
    pred[1, 7] = np.nan
    out = nme(pred, gt)
    assert out[0] == 0.0 and np.isnan(out[1])


def test_nme_errors():
    gt = face(6)
    with pytest.raises(ValueError, match=r"pred and gt must both have shape \(\.\.\., N, 2\)"):
        nme(gt[:60], gt)
    with pytest.raises(ValueError, match="norm must be one of"):
        nme(gt, gt, "inter_eye")
    with pytest.raises(ValueError, match=r"needs landmarks of layout ibug68 \(\.\.\., 68, 2\)"):
        nme(gt[:5], gt[:5], "inter_ocular")
    same = np.zeros((68, 2))
    with pytest.raises(ValueError, match="normalising distance .* positive and finite"):
        nme(same, same)
    with pytest.raises(ValueError, match="normalising distance"):
        nme(gt, gt, -1.0)
    with pytest.raises(ValueError, match=r"box must have shape \(\.\.\., 4\)"):
        nme(gt, gt, "bbox", box=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="box is only used with norm='bbox'"):
        nme(gt, gt, "inter_ocular", box=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="batch shape"):
        nme(face(7, (3,)), face(7, (3,)), np.ones(4))
    with pytest.raises(ValueError, match="N = 0"):
        nme(np.zeros((2, 0, 2)), np.zeros((2, 0, 2)), 1.0)


def test_auc_failure_rate_ced_by_hand():
    e = np.array([0.0, 0.02, 0.04, 0.1])
    # CED area on [0, 0.08]: per image max(0, 0.08 - e) = 0.08, 0.06, 0.04, 0
    assert auc(e, 0.08) == pytest.approx((0.08 + 0.06 + 0.04 + 0.0) / 4 / 0.08)
    assert failure_rate(e, 0.08) == 0.25
    assert failure_rate(e, 0.04) == 0.25   # "above the threshold": 0.04 is not a failure
    grid, frac = ced(e, 0.08, steps=5)
    np.testing.assert_allclose(grid, [0.0, 0.02, 0.04, 0.06, 0.08])
    np.testing.assert_allclose(frac, [0.25, 0.5, 0.75, 0.75, 0.75])


def test_auc_equals_fine_trapezoid_of_ced():
    e = np.random.default_rng(8).gamma(2.0, 0.02, 500)
    grid, frac = ced(e, 0.08, steps=20001)
    assert auc(e, 0.08) == pytest.approx(np.trapezoid(frac, grid) / 0.08, abs=1e-4)


def test_perfect_and_hopeless():
    assert auc(np.zeros(10)) == 1.0 and failure_rate(np.zeros(10)) == 0.0
    assert auc(np.full(10, 0.5)) == 0.0 and failure_rate(np.full(10, 0.5)) == 1.0


def test_nan_nmes_count_as_failures():
    e = np.array([0.01, np.nan])
    assert failure_rate(e) == 0.5
    assert auc(e, 0.08) == pytest.approx((1 - 0.01 / 0.08) / 2)
    assert ced(e, 0.08, steps=3)[1][-1] == 0.5


def test_curve_metrics_kinds():
    e = torch.tensor([0.01, 0.03, 0.09])
    a, f = auc(e), failure_rate(e)
    assert isinstance(a, torch.Tensor) and a.ndim == 0 and isinstance(f, torch.Tensor)
    grid, frac = ced(e)
    assert isinstance(frac, torch.Tensor) and frac.shape == (100,)
    assert isinstance(auc(e.numpy()), float)


def test_curve_metric_errors():
    with pytest.raises(ValueError, match="nmes is empty"):
        auc(np.array([]))
    with pytest.raises(ValueError, match="threshold must be a positive number"):
        failure_rate(np.array([0.1]), 0.0)
    with pytest.raises(ValueError, match="nmes must be >= 0"):
        auc(np.array([-0.1, 0.2]))
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        ced(np.array([0.1]), 0.08, steps=1)


def test_pose_mae():
    pred = np.array([[10.0, 0.0, 5.0], [20.0, -4.0, 5.0]])
    gt = np.array([[12.0, 1.0, 5.0], [20.0, 0.0, 0.0]])
    np.testing.assert_allclose(pose_mae(pred, gt), [1.0, 2.5, 2.5])
    wrapped = pose_mae(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]]))
    np.testing.assert_allclose(wrapped, [2.0, 0.0, 0.0])
    np.testing.assert_allclose(pose_mae(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]]),
                                        wrap=False), [358.0, 0.0, 0.0])
    t = pose_mae(torch.tensor(pred), torch.tensor(gt))
    assert isinstance(t, torch.Tensor) and t.shape == (3,)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\) of \(yaw, pitch, roll\)"):
        pose_mae(pred[:, :2], gt[:, :2])
    with pytest.raises(ValueError, match="empty"):
        pose_mae(np.zeros((0, 3)), np.zeros((0, 3)))
