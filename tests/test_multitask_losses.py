"""Xia et al.'s (2022) multitask losses: Eqs. 3, 5, 7 by hand, masks that never give NaN, units."""

import math

import numpy as np
import pytest
import torch

from lmk.data import synth_multitask
from lmk.evaluation import collate
from lmk.losses import MultitaskLoss, alignment_loss, confidence_loss, pose_loss
from lmk.metrics import nme
from lmk.models.atpn import ATPN


def eyes_60px(batch=1, dtype=torch.float64):
    """68 points at 20..80 px, outer eye corners (36, 45) 60 px apart."""
    g = torch.Generator().manual_seed(0)
    gt = 20 + 60 * torch.rand(batch, 68, 2, generator=g, dtype=dtype)
    gt[:, 36], gt[:, 45] = torch.tensor([10.0, 50.0], dtype=dtype), torch.tensor([70.0, 50.0], dtype=dtype)
    return gt


# ------------------------------------------------------------------------------ Eq. 3
def test_alignment_loss_by_hand_is_the_inter_ocular_nme():
    gt = eyes_60px()
    pred = gt.clone()
    pred[0, 0] += torch.tensor([3.0, 4.0], dtype=pred.dtype)      # one point 5 px off
    pred[0, 10] += torch.tensor([0.0, 12.0], dtype=pred.dtype)    # one 12 px off
    assert alignment_loss(pred, gt).item() == pytest.approx((5 + 12) / 68 / 60)
    np.testing.assert_allclose(alignment_loss(pred, gt).item(), nme(pred, gt).item(), rtol=1e-12)


def test_alignment_loss_gradient():
    gt = eyes_60px(2)
    pred = (gt + torch.randn(gt.shape, generator=torch.Generator().manual_seed(1), dtype=gt.dtype)
            ).requires_grad_(True)
    mask = torch.tensor([True, False])
    assert torch.autograd.gradcheck(lambda p: alignment_loss(p, gt, mask), (pred,))
    assert torch.autograd.gradcheck(lambda p: alignment_loss(p, gt), (pred,))


def test_alignment_loss_with_a_point_exactly_right_has_a_finite_gradient():
    gt = eyes_60px()
    pred = gt.clone()
    pred[0, 5] += 1.0
    pred.requires_grad_(True)
    alignment_loss(pred, gt).backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[0, 5].abs().sum() > 0 and pred.grad[0, 0].abs().sum() == 0


def test_masked_out_samples_do_not_count_and_never_give_nan():
    gt = eyes_60px(3)
    pred = (gt + 2.0).requires_grad_(True)
    gt_neg = gt.clone()
    gt_neg[1] = 0.0                      # a negative: zero landmarks, zero inter-ocular distance
    gt_neg[2] = float("nan")             # even NaN in a masked-out row stays out of the arithmetic
    mask = torch.tensor([True, False, False])
    loss = alignment_loss(pred, gt_neg, mask)
    assert loss.item() == pytest.approx(alignment_loss(pred[:1], gt[:1]).item())
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[1:].abs().sum() == 0
    per_image = alignment_loss(pred.detach(), gt_neg, mask, reduction="none")
    assert per_image.shape == (3,) and per_image[1:].tolist() == [0.0, 0.0]
    assert alignment_loss(pred.detach(), gt_neg, mask, reduction="sum").item() == pytest.approx(loss.item())


def test_no_sample_with_landmarks_gives_an_exact_zero_in_the_graph():
    gt = torch.zeros(2, 68, 2)
    pred = torch.randn(2, 68, 2, requires_grad=True)
    loss = alignment_loss(pred, gt, torch.tensor([False, False]))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert (pred.grad == 0).all()


def test_alignment_loss_bad_input():
    gt = eyes_60px(2)
    with pytest.raises(ValueError, match="inter-ocular distance must be positive"):
        alignment_loss(gt, torch.zeros_like(gt))
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        alignment_loss(gt, gt, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        alignment_loss(gt, gt, torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="same shape"):
        alignment_loss(gt, gt[:1])


# ------------------------------------------------------------------------------ Eq. 5
def test_confidence_loss_is_binary_cross_entropy():
    logits = torch.tensor([0.0, 0.0, 2.0, -1.5, 3.0], dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.25], dtype=torch.float64)
    p = 1 / (1 + np.exp(-logits.numpy()))
    y = labels.numpy()
    by_hand = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(confidence_loss(logits, labels, reduction="none").numpy(), by_hand, rtol=1e-12)
    assert by_hand[0] == pytest.approx(math.log(2))
    assert confidence_loss(logits, labels).item() == pytest.approx(by_hand.mean())


def test_confidence_loss_stays_finite_for_confident_mistakes():
    logits = torch.tensor([200.0, -200.0], requires_grad=True)      # sigmoid rounds to 1 and 0
    loss = confidence_loss(logits, torch.tensor([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [200.0, 200.0], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), [1.0, -1.0])


def test_confidence_loss_bad_input():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        confidence_loss(torch.zeros(2), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="logits must be a"):
        confidence_loss(torch.zeros(2, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        confidence_loss(torch.zeros(2), torch.zeros(3))


# ------------------------------------------------------------------------------ Eq. 7
def test_pose_loss_by_hand_and_gradient():
    pred = torch.tensor([[0.3, 0.4, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    gt = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, -1.0]], dtype=torch.float64)
    np.testing.assert_allclose(pose_loss(pred, gt, reduction="none").numpy(), [0.5 / 3, 2.0 / 3])
    assert pose_loss(pred, gt, torch.tensor([False, True])).item() == pytest.approx(2.0 / 3)
    assert torch.autograd.gradcheck(lambda p: pose_loss(p, gt), (pred.clone().requires_grad_(True),))


def test_pose_loss_bad_input():
    with pytest.raises(ValueError, match=r"pred must be a \(B, 3\)"):
        pose_loss(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same shape"):
        pose_loss(torch.zeros(2, 3), torch.zeros(1, 3))


# ----------------------------------------------------------------------- MultitaskLoss
def outputs_and_batch():
    gt = eyes_60px(3, torch.float32)
    outputs = {"landmarks": gt + torch.tensor([3.0, 4.0]),            # every point 5 px off
               "pose": torch.zeros(3, 3), "confidence": torch.tensor([0.0, 0.0, 0.0])}
    landmarks = gt.clone()
    landmarks[2] = 0.0                                                  # sample 2 is a negative
    batch = {"landmarks": landmarks, "has_landmarks": torch.tensor([True, True, False]),
             "pose": torch.tensor([[30.0, 0.0, 0.0], [0.0, -30.0, 0.0], [0.0, 0.0, 0.0]]),
             "face": torch.tensor([1.0, 1.0, 0.0])}
    return outputs, batch


def test_multitask_loss_terms_units_and_mask():
    outputs, batch = outputs_and_batch()
    loss = MultitaskLoss(alignment=1.0, confidence=2.0, pose=0.5)
    terms = loss.terms(outputs, batch)
    assert terms["alignment"].item() == pytest.approx(5 / 60)          # the negative is left out
    assert terms["confidence"].item() == pytest.approx(math.log(2))    # every sample counts
    # labels in degrees become radians: 30 deg off in one angle is (pi / 6) / 3, not 30 / 3
    assert terms["pose"].item() == pytest.approx(math.pi / 6 / 3, rel=1e-6)
    total = loss(outputs, batch)
    assert total.item() == pytest.approx(5 / 60 + 2 * math.log(2) + 0.5 * math.pi / 18, rel=1e-6)


def test_multitask_loss_pose_in_model_units_is_exact():
    outputs, batch = outputs_and_batch()
    outputs["pose"] = torch.deg2rad(batch["pose"])
    assert MultitaskLoss.stage(3).terms(outputs, batch)["pose"].item() == pytest.approx(0.0, abs=1e-7)


def test_stage_losses_need_only_their_labels():
    outputs, batch = outputs_and_batch()
    faces_only = {k: v[:2] for k, v in outputs.items()}
    stage1 = MultitaskLoss.stage(1).terms(faces_only, {"landmarks": batch["landmarks"][:2]})
    assert set(stage1) == {"alignment"}
    assert set(MultitaskLoss.stage(2).terms(outputs, {"landmarks": batch["landmarks"],
                                                      "face": batch["face"]})) == {"confidence"}
    with pytest.raises(KeyError, match=r"pose term needs batch\['pose'\]"):
        MultitaskLoss.stage(3)(outputs, {"landmarks": batch["landmarks"]})
    with pytest.raises(KeyError, match=r"confidence term needs batch\['face'\]"):
        MultitaskLoss()(outputs, {k: v for k, v in batch.items() if k != "face"})


def test_multitask_loss_bad_arguments():
    with pytest.raises(ValueError, match="weight pose must be a finite number >= 0"):
        MultitaskLoss(pose=-1.0)
    with pytest.raises(ValueError, match="every weight is 0"):
        MultitaskLoss(0, 0, 0)
    with pytest.raises(ValueError, match="stage must be one of"):
        MultitaskLoss.stage(4)
    with pytest.raises(TypeError, match="outputs must be ATPN's dict"):
        MultitaskLoss()(torch.zeros(3, 68, 2), outputs_and_batch()[1])


def test_atpn_on_a_mixed_batch_trains_every_branch_without_nan():
    torch.manual_seed(0)
    data = synth_multitask(2, n=2, input_size=64, size=64, seed=3, negatives_per_face=1.0)
    batch = collate([data[i] for i in range(len(data))])
    assert batch["has_landmarks"].tolist() == [True, True, False, False]
    model = ATPN(68, input_size=64, width=0.25)
    outputs = model(batch["image"])
    loss = MultitaskLoss()(outputs, batch)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
    for branch in (model.alignment, model.pose, model.tracking):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in branch.parameters())
    # the negatives' landmarks and poses are never read: garbage there changes nothing
    garbage = dict(batch, landmarks=batch["landmarks"].clone(), pose=batch["pose"].clone())
    garbage["landmarks"][2:] = float("nan")
    garbage["pose"][2:] = 1e6
    again = MultitaskLoss()({k: v.detach() for k, v in outputs.items()}, garbage)
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)
