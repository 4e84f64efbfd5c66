"""lmk.losses on hand-computed values, gradients and bad inputs."""

import math

import pytest
import torch

from lmk.layouts import LAYOUT_68
from lmk.losses import (CoordinateLoss, ForegroundHeatmapLoss, HeatmapLoss, MarginalLoss, heatmap_mse,
                        inter_ocular_distance, iod_l2_loss, l1_loss, l2_loss, marginal_loss)


def _face(iod=10.0, batch=1):
    """68 points at zero except the outer eye corners, ``iod`` apart along x."""
    pts = torch.zeros(batch, 68, 2, dtype=torch.float64)
    pts[:, 36] = torch.tensor([0.0, 0.0], dtype=torch.float64)
    pts[:, 45] = torch.tensor([iod, 0.0], dtype=torch.float64)
    return pts


# ----------------------------------------------------------------------------- heatmap MSE
def test_heatmap_mse_hand_computed():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    pred[0, 0, 0, 0] = 2.0        # one squared error of 4 among 8 elements
    target[0, 1, 1, 1] = 1.0      # one squared error of 1
    assert heatmap_mse(pred, target).item() == pytest.approx(5 / 8, abs=1e-7)
    assert torch.allclose(heatmap_mse(pred, target), torch.nn.functional.mse_loss(pred, target))
    # weights (B, N): landmark 0 gets weight 0 -> only the 1/4 of landmark 1, averaged over N = 2
    w = torch.tensor([[0.0, 1.0]])
    assert heatmap_mse(pred, target, weights=w).item() == pytest.approx(1 / 8, abs=1e-7)


def test_heatmap_mse_reductions():
    pred = torch.zeros(2, 1, 1, 2)
    pred[1, 0, 0, 0] = 2.0   # image 0: 0, image 1: mean(4, 0) = 2
    target = torch.zeros_like(pred)
    assert heatmap_mse(pred, target, reduction="none").tolist() == [0.0, 2.0]
    assert heatmap_mse(pred, target, reduction="sum").item() == 2.0
    assert heatmap_mse(pred, target).item() == 1.0


def test_heatmap_mse_gradient():
    pred = torch.tensor([[[[1.0, 3.0]]]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    heatmap_mse(pred, target).backward()
    # d/dp mean((p - t)^2) = 2 (p - t) / 2 elements
    assert pred.grad.tolist() == [[[[1.0, 2.0]]]]


# ----------------------------------------------------------------------- 1D marginal loss
def test_marginal_loss_eq11_hand_computed():
    hx = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])      # (B=1, N=2, Lx=3)
    tx = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])
    hy = torch.tensor([[[0.5, 0.5], [0.0, 3.0]]])                # (1, 2, Ly=2)
    ty = torch.tensor([[[0.5, 0.0], [0.0, 0.0]]])
    # landmark 0: 1 + 0.25 ; landmark 1: 4 + 9 -> sum over n = 14.25 (Eq. 11 sums, no mean)
    assert marginal_loss(hx, hy, tx, ty).item() == pytest.approx(14.25)
    w = torch.tensor([[1.0, 0.0]])
    assert marginal_loss(hx, hy, tx, ty, weights=w).item() == pytest.approx(1.25)
    both = marginal_loss(hx.repeat(2, 1, 1), hy.repeat(2, 1, 1), tx.repeat(2, 1, 1), ty.repeat(2, 1, 1),
                         reduction="none")
    assert both.tolist() == pytest.approx([14.25, 14.25])


def test_marginal_loss_gradcheck():
    g = torch.Generator().manual_seed(0)
    args = [torch.rand(2, 3, n, dtype=torch.float64, generator=g) for n in (5, 4, 5, 4)]
    args[0].requires_grad_(True)
    args[1].requires_grad_(True)
    assert torch.autograd.gradcheck(lambda hx, hy: marginal_loss(hx, hy, args[2], args[3]),
                                    (args[0], args[1]))


def test_marginal_loss_matches_2d_marginals_of_heatmap_loss_sum():
    """With one-hot-free maps: Eq. 11 on row/column sums equals the squared error of those sums."""
    g = torch.Generator().manual_seed(1)
    heat, target = torch.rand(1, 1, 4, 6, generator=g), torch.rand(1, 1, 4, 6, generator=g)
    hx, hy = heat.sum(-2), heat.sum(-1)       # Eq. 12: h^x = sum_y H, h^y = sum_x H
    tx, ty = target.sum(-2), target.sum(-1)
    expected = ((hx - tx) ** 2).sum() + ((hy - ty) ** 2).sum()
    assert marginal_loss(hx, hy, tx, ty).item() == pytest.approx(expected.item(), rel=1e-6)


# ------------------------------------------------------------------------- coordinates
def test_inter_ocular_distance():
    pts = _face(iod=5.0, batch=2)
    pts[1, 45] = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert inter_ocular_distance(pts).tolist() == [5.0, 5.0]
    assert LAYOUT_68.outer_eye_corners == (36, 45)


def test_iod_l2_loss_eq1_hand_computed():
    gt = _face(iod=10.0)
    pred = gt.clone()
    pred[0, 0] += torch.tensor([3.0, 4.0], dtype=torch.float64)   # squared error 25
    pred[0, 1] += torch.tensor([1.0, 0.0], dtype=torch.float64)   # squared error 1
    # Eq. 1: ||S_gt - S_pred||^2 / d = 26 / 10
    assert iod_l2_loss(pred, gt).item() == pytest.approx(2.6)
    assert iod_l2_loss(pred, gt, iod=torch.tensor([2.0], dtype=torch.float64)).item() == pytest.approx(13.0)


def test_l2_and_l1_hand_computed():
    gt = torch.zeros(2, 2, 2)
    pred = torch.tensor([[[3.0, -4.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert l2_loss(pred, gt, reduction="none").tolist() == [26.0, 0.0]
    assert l1_loss(pred, gt, reduction="none").tolist() == [8.0, 0.0]
    assert l2_loss(pred, gt).item() == 13.0
    assert l1_loss(pred, gt, reduction="sum").item() == 8.0


def test_coordinate_loss_gradients_against_finite_differences():
    gt = _face(iod=10.0)
    g = torch.Generator().manual_seed(2)
    pred = (gt + torch.randn(gt.shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    for fn in (iod_l2_loss, l2_loss):
        assert torch.autograd.gradcheck(lambda p: fn(p, gt), (pred,))
    iod_l2_loss(pred, gt).backward()
    # closed form: d/dp ||p - g||^2 / d = 2 (p - g) / d
    assert torch.allclose(pred.grad, 2 * (pred.detach() - gt) / 10.0)


# ------------------------------------------------------------------------ wrappers
class _ShiftCodec:
    """A stand-in 2D codec: (B, N, 2) -> (B, N, 2, 1) "heatmaps" holding the landmarks plus one."""

    def encode(self, landmarks):
        return (landmarks + 1.0)[..., None]


class _PairCodec:
    """A stand-in marginal codec: x and y of each landmark as 1D "heatmaps" of length 1."""

    def encode(self, landmarks):
        return landmarks[..., :1], landmarks[..., 1:]


class _HalfCodec:
    """A stand-in coordinate codec: outputs are the landmarks halved."""

    def decode(self, outputs):
        return 2.0 * outputs


def test_wrappers_encode_targets_from_batch():
    lm = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    batch = {"landmarks": lm}
    assert HeatmapLoss(_ShiftCodec())(lm[..., None], batch).item() == pytest.approx(1.0)
    assert HeatmapLoss(_ShiftCodec(), scale=10.0)(lm[..., None], batch).item() == pytest.approx(10.0)
    zeros = torch.zeros(1, 2, 1)
    assert MarginalLoss(_PairCodec())((zeros, zeros), batch).item() == pytest.approx(1 + 4 + 9 + 16)
    # decoded (2 * outputs) - landmarks = landmarks: L1 sum 10, L2 sum 30
    assert CoordinateLoss(_HalfCodec(), "l1")(lm, batch).item() == pytest.approx(10.0)
    assert CoordinateLoss(_HalfCodec(), "l2")(lm, batch).item() == pytest.approx(30.0)
    assert CoordinateLoss(_HalfCodec(), "l2")(lm / 2, batch).item() == 0.0


def _every_codec_and_its_loss():
    from lmk.codecs import CoordinateCodec, HeatmapCodec, MarginalCodec

    return [(HeatmapCodec(64, 16, 1.5), HeatmapLoss),
            (HeatmapCodec(64, 16, 1.5), ForegroundHeatmapLoss),
            (MarginalCodec(64, 96, 1.5), MarginalLoss),
            (CoordinateCodec(64), lambda codec: CoordinateLoss(codec, "iod_l2"))]


@pytest.mark.parametrize("codec, make_loss", _every_codec_and_its_loss())
def test_every_loss_takes_its_codec_and_is_zero_at_the_encoded_targets(codec, make_loss):
    """One code path: targets = codec.encode(landmarks) are what the model should output."""
    g = torch.Generator().manual_seed(3)
    lm = 8 + 48 * torch.rand(2, 68, 2, generator=g, dtype=torch.float64)
    batch = {"landmarks": lm}
    loss = make_loss(codec)
    targets = codec.encode(lm)
    assert loss(targets, batch).item() == pytest.approx(0.0, abs=1e-12)
    noisy = (tuple(t + 0.1 for t in targets) if isinstance(targets, tuple) else targets + 0.1)
    assert loss(noisy, batch).item() > 1e-4
    with pytest.raises(KeyError, match="no 'landmarks'"):
        loss(targets, {"image": None})


def test_coordinate_loss_gradients_reach_the_outputs_through_the_codec():
    from lmk.codecs import CoordinateCodec

    gt = _face(iod=10.0) + 20.0
    codec = CoordinateCodec(64)
    outputs = (codec.encode(gt) + 0.01).requires_grad_(True)
    CoordinateLoss(codec, "l2")(outputs, {"landmarks": gt}).backward()
    # l2 = sum (32 u + 31.5 - x)^2 -> d/du = 2 * 32 * (32 * 0.01) per coordinate
    torch.testing.assert_close(outputs.grad, torch.full_like(outputs, 2 * 32 * 0.32))


class FixedCodec:
    def __init__(self, target):
        self.target = target

    def encode(self, landmarks):
        return self.target


def test_foreground_heatmap_loss_by_hand():
    target = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    loss = ForegroundHeatmapLoss(FixedCodec(target), foreground_weight=3.0)
    batch = {"landmarks": torch.zeros(1, 1, 2)}
    assert loss(torch.ones(1, 1, 1, 2), batch).item() == pytest.approx(0.5)        # (1 * 1 + 4 * 0) / 2
    assert loss(torch.zeros(1, 1, 1, 2), batch).item() == pytest.approx(2.0)       # (1 * 0 + 4 * 1) / 2
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(1, 1, 2, 2), batch)
    with pytest.raises(ValueError, match="foreground_weight"):
        ForegroundHeatmapLoss(FixedCodec(target), -1.0)


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_argument():
    a = torch.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"pred and target must have the same shape"):
        heatmap_mse(a, torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"pred must have shape \(B, N, H, W\)"):
        heatmap_mse(torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        heatmap_mse(a, a.numpy())
    with pytest.raises(ValueError, match=r"weights must have shape \(B, N\)"):
        heatmap_mse(a, a, weights=torch.ones(2))
    with pytest.raises(ValueError, match="reduction must be one of"):
        heatmap_mse(a, a, reduction="avg")
    h = torch.zeros(1, 2, 5)
    with pytest.raises(ValueError, match="hx and hy must share"):
        marginal_loss(h, torch.zeros(1, 3, 4), h, torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="hy and ty must have the same shape"):
        marginal_loss(h, torch.zeros(1, 2, 4), h, torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match=r"pred and gt must have shape \(B, N, 2\)"):
        l2_loss(torch.zeros(1, 68, 3), torch.zeros(1, 68, 3))
    with pytest.raises(ValueError, match=r"landmarks must have shape \(B, 68, 2\)"):
        iod_l2_loss(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="inter-ocular distance must be positive"):
        iod_l2_loss(torch.zeros(1, 68, 2), torch.zeros(1, 68, 2))
    with pytest.raises(ValueError, match=r"iod must have shape \(B,\)"):
        iod_l2_loss(_face(), _face(), iod=torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="kind must be one of"):
        CoordinateLoss(_HalfCodec(), "l3")
    with pytest.raises(TypeError, match="codec must be a codec"):
        CoordinateLoss("l1")
    with pytest.raises(ValueError, match=r"MarginalLoss takes the pair \(hx, hy\)"):
        MarginalLoss(_PairCodec())(torch.zeros(1, 2, 1), {"landmarks": torch.zeros(1, 2, 2)})
    assert math.isfinite(iod_l2_loss(_face(), _face()).item())
