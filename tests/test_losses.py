"""lmk.losses on hand-computed values, gradients and bad inputs."""

import math

import pytest
import torch

from lmk.layouts import LAYOUT_68
from lmk.losses import (YAN_ASSIGNMENT, AlignLoss, CoordinateLoss, ForegroundHeatmapLoss, HeatmapLoss,
                        MarginalLoss, StagedLoss, align_loss, gaussian_kernel, heatmap_mse,
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


# ------------------------------------------------------------------ Align Loss (Yan Eq. 2)
def _ramp(height=3, width=6, channels=1):
    """A feature map whose value is its x coordinate: a crop shifted by dx differs by dx."""
    x = torch.arange(width, dtype=torch.float64)
    return x.expand(1, channels, height, width).clone()


def _pt(x, y):
    return torch.tensor([[[x, y]]], dtype=torch.float64)


def test_align_loss_hand_computed_without_prefilter():
    ramp = _ramp()
    # one-pixel patch: 2.25 vs 2 on the ramp -> (0.25)^2
    assert align_loss(ramp, _pt(2.25, 1), _pt(2, 1), patch_size=1, blur_sigma=0).item() == pytest.approx(0.0625)
    # 2 x 2 patch: four samples, each 0.25 apart -> 4 * 0.0625
    assert align_loss(ramp, _pt(2.25, 1), _pt(2, 1), patch_size=2, blur_sigma=0).item() == pytest.approx(0.25)
    # channels add: three identical channels give three times the loss
    assert align_loss(_ramp(channels=3), _pt(2.25, 1), _pt(2, 1), patch_size=2,
                      blur_sigma=0).item() == pytest.approx(0.75)
    # a vertical step edge at x = 3: across the edge costs, along it is free (Yan Fig. 6 (e))
    edge = (torch.arange(6, dtype=torch.float64) >= 3).double().expand(1, 1, 4, 6)
    assert align_loss(edge, _pt(2.5, 1.5), _pt(3, 1.5), patch_size=1, blur_sigma=0).item() == pytest.approx(0.25)
    assert align_loss(edge, _pt(3, 1.0), _pt(3, 1.5), patch_size=1, blur_sigma=0).item() == 0.0
    # landmarks add per image; reduction over the batch
    two = torch.cat([_pt(2.25, 1), _pt(2.5, 1)], dim=1)
    gt = torch.cat([_pt(2, 1), _pt(2, 1)], dim=1)
    per_image = align_loss(ramp.repeat(2, 1, 1, 1), two.repeat(2, 1, 1), gt.repeat(2, 1, 1),
                           patch_size=1, blur_sigma=0, reduction="none")
    assert per_image.tolist() == pytest.approx([0.0625 + 0.25] * 2)


def test_align_loss_prefilter_hand_computed():
    """A one-pixel patch keeps only the centre tap of the zero-padded 3 x 3 Gaussian of std 1."""
    centre = (1 / (1 + 2 * math.exp(-0.5))) ** 2          # normalised 2D weight at the centre
    kernel = gaussian_kernel(1.0, 3, torch.float64)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert kernel[1, 1].item() == pytest.approx(centre)
    assert kernel[0, 0].item() == pytest.approx(centre * math.exp(-1.0))
    value = align_loss(_ramp(), _pt(2.25, 1), _pt(2, 1), patch_size=1, blur_sigma=1.0)
    assert value.item() == pytest.approx(0.0625 * centre ** 2)


def test_align_loss_matches_an_independent_computation():
    """grid_sample crops, then the filter as an explicit sum of shifted, zero-padded copies."""
    from lmk.ops import crop_patches_grid_sample

    g = torch.Generator().manual_seed(4)
    features = torch.randn(2, 3, 12, 14, generator=g, dtype=torch.float64)
    pred = 2 + 9 * torch.rand(2, 4, 2, generator=g, dtype=torch.float64)
    gt = 2 + 9 * torch.rand(2, 4, 2, generator=g, dtype=torch.float64)
    size, sigma = 5, 0.8
    diff = crop_patches_grid_sample(features, pred, size) - crop_patches_grid_sample(features, gt, size)
    padded = torch.nn.functional.pad(diff, (1, 1, 1, 1))
    blurred = torch.zeros_like(diff)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            weight = math.exp(-(dx * dx + dy * dy) / (2 * sigma ** 2))
            blurred += weight * padded[..., 1 + dy:1 + dy + size, 1 + dx:1 + dx + size]
    blurred /= (1 + 2 * math.exp(-1 / (2 * sigma ** 2))) ** 2
    expected = blurred.square().sum(dim=(1, 2, 3, 4))
    got = align_loss(features, pred, gt, patch_size=size, blur_sigma=sigma, reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    plain = align_loss(features, pred, gt, patch_size=size, blur_sigma=0, reduction="none")
    torch.testing.assert_close(plain, diff.square().sum(dim=(1, 2, 3, 4)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("blur_sigma", [0.0, 1.0])
def test_align_loss_gradients(blur_sigma):
    g = torch.Generator().manual_seed(5)
    features = torch.randn(1, 2, 10, 10, generator=g, dtype=torch.float64)
    gt = torch.tensor([[[4.3, 5.2], [6.6, 3.7]]], dtype=torch.float64)    # away from the kinks
    pred = (gt + torch.tensor([[0.21, -0.33], [-0.12, 0.41]], dtype=torch.float64)).requires_grad_(True)
    kwargs = dict(patch_size=4, blur_sigma=blur_sigma)
    assert torch.autograd.gradcheck(lambda p: align_loss(features, p, gt, **kwargs), (pred,))
    maps = features.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: align_loss(f, pred.detach(), gt, feature_grad=True, **kwargs),
                                    (maps,))
    # default: the features get no gradient, the prediction does
    align_loss(maps, pred, gt, **kwargs).backward()
    assert maps.grad is None and pred.grad.abs().sum() > 0
    # at the ground truth the loss and its gradient vanish
    at_gt = gt.clone().requires_grad_(True)
    align_loss(features, at_gt, gt, **kwargs).backward()
    assert at_gt.grad.abs().max().item() < 1e-12


def _landscape(features, gt, offsets, blur_sigma):
    return torch.stack([align_loss(features, gt + torch.tensor([dx, 0.0], dtype=torch.float64), gt,
                                   blur_sigma=blur_sigma) for dx in offsets])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_align_loss_prefilter_widens_the_basin_on_fine_texture(seed):
    """White-noise features, 8 x 8 patches: without the pre-filter the loss stops rising within
    about 1 px of the ground truth (a local minimum a gradient step can fall into); with Yan's
    3 x 3, std 1 filter it rises monotonically over 2 px on both sides."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(1, 4, 40, 40, generator=g, dtype=torch.float64)
    gt = torch.tensor([[[20.3, 19.6]]], dtype=torch.float64)
    steps = torch.arange(0.25, 2.01, 0.25, dtype=torch.float64)
    for side in (1.0, -1.0):
        smooth = _landscape(features, gt, side * steps, 1.0)
        sharp = _landscape(features, gt, side * steps, 0.0)
        assert bool((smooth.diff() > 0).all()), smooth
        assert not bool((sharp.diff() > 0).all()), sharp


# -------------------------------------------------------- multi-loss scheme (Yan Sec. 4)
def _stages():
    """Ground truth and four estimates whose losses are easy by hand (68 points, IOD 10)."""
    gt = _face(iod=10.0) + 20.0
    s0, s1, s2, s3 = (gt.clone() for _ in range(4))
    s0[0, 0] += torch.tensor([3.0, 4.0], dtype=torch.float64)      # IOD-L2: 25 / 10
    s1[0, 1] += torch.tensor([1.0, 0.0], dtype=torch.float64)      # L2: 1
    s2[0, 2] += torch.tensor([-2.0, 1.0], dtype=torch.float64)     # L1: 3
    s3[0, 3] += torch.tensor([2.0, 0.0], dtype=torch.float64)      # 2 input px = 1 feature px
    batch = {"landmarks": gt, "image": torch.zeros(1, 3, 64, 64)}
    features = [None, None, None, _ramp(32, 32)]                    # stride 2: 64 -> 32
    return [s0, s1, s2, s3], features, batch


def test_staged_loss_yan_assignment_by_hand():
    points, features, batch = _stages()
    loss = StagedLoss(YAN_ASSIGNMENT, align=AlignLoss(patch_size=1, blur_sigma=0))
    outputs = {"points": points, "features": features}
    terms = loss.stage_losses(outputs, batch)
    assert [t.item() for t in terms] == pytest.approx([2.5, 1.0, 3.0, 1.0])
    assert loss(outputs, batch).item() == pytest.approx(7.5)
    weighted = StagedLoss(YAN_ASSIGNMENT, [1.0, 2.0, 0.5, 10.0], align=AlignLoss(patch_size=1, blur_sigma=0))
    assert weighted(outputs, batch).item() == pytest.approx(2.5 + 2.0 + 1.5 + 10.0)
    # the default AlignLoss (8 x 8 patches, filtered) after the pixel-centre mapping to the map
    to_map = lambda p: (p + 0.5) * 0.5 - 0.5                       # 64 -> 32, by hand
    expected = align_loss(features[3], to_map(points[3]), to_map(batch["landmarks"]))
    assert StagedLoss()(outputs, batch).item() == pytest.approx(6.5 + expected.item())
    assert 0 < expected.item() < 64                                # 64 samples 1 apart, through G


def test_staged_loss_ablations_take_plain_lists():
    points, _, batch = _stages()
    # Yan Table 5 columns as name lists; no feature maps needed without "align"
    assert StagedLoss(["iod_l2", "l2", "l2", "l2"])(points, batch).item() == pytest.approx(2.5 + 1 + 5 + 4)
    assert StagedLoss(["iod_l2", "l1", "l1", "l1"])(points, batch).item() == pytest.approx(2.5 + 1 + 3 + 2)
    assert StagedLoss(["iod_l2", "none", "none", "l1"])(points, batch).item() == pytest.approx(2.5 + 2)
    assert StagedLoss(["l2"])(points[:1], batch).item() == pytest.approx(25.0)


def test_staged_loss_gradients_reach_every_stage():
    points, features, batch = _stages()
    leaves = [p.clone().requires_grad_(True) for p in points]
    loss = StagedLoss(align=AlignLoss(patch_size=2))
    loss({"points": leaves, "features": features}, batch).backward()
    gt = batch["landmarks"]
    torch.testing.assert_close(leaves[0].grad, 2 * (points[0] - gt) / 10.0)          # Eq. 1
    torch.testing.assert_close(leaves[1].grad, 2 * (points[1] - gt))
    torch.testing.assert_close(leaves[2].grad, torch.sign(points[2] - gt))
    moved = leaves[3].grad[0, 3]
    assert moved[0] > 0 and moved[1].abs() < 1e-12      # back towards the truth along x only
    assert leaves[3].grad[0, :3].abs().max() == 0


def test_staged_loss_bad_inputs_name_the_problem():
    points, features, batch = _stages()
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['l3'\]"):
        StagedLoss(["iod_l2", "l3"])
    with pytest.raises(ValueError, match="non-empty list of names"):
        StagedLoss("l2")
    with pytest.raises(ValueError, match="non-empty list of names"):
        StagedLoss([])
    with pytest.raises(ValueError, match="weights must have one value per stage"):
        StagedLoss(["l2", "l1"], [1.0])
    with pytest.raises(TypeError, match="align must be an lmk.losses.AlignLoss"):
        StagedLoss(align="align")
    with pytest.raises(ValueError, match=r"losses names 4 stages .* returned 3 estimates"):
        StagedLoss()(points[:3], batch)
    with pytest.raises(TypeError, match="outputs must be a list of per-stage"):
        StagedLoss(["l2"])(points[0], batch)
    with pytest.raises(ValueError, match=r"stage 3 uses 'align'.*features\[3\]"):
        StagedLoss()(points, batch)
    with pytest.raises(KeyError, match="without 'points'"):
        StagedLoss()({"stages": points}, batch)
    with pytest.raises(ValueError, match=r"outputs\['features'\] must have one entry per stage"):
        StagedLoss()({"points": points, "features": features[:2]}, batch)
    with pytest.raises(KeyError, match="no 'image'"):
        StagedLoss()({"points": points, "features": features}, {"landmarks": batch["landmarks"]})
    with pytest.raises(ValueError, match=r"pred and gt must have the same shape \(B, N, 2\)"):
        StagedLoss(["l2"])([torch.zeros(1, 68, 3)], batch)


def test_align_loss_bad_arguments():
    f, p = _ramp(), _pt(2, 1)
    with pytest.raises(ValueError, match=r"features must have shape \(B, C, H, W\) with B = 1"):
        align_loss(f[0], p, p)
    with pytest.raises(ValueError, match=r"features must have shape \(B, C, H, W\) with B = 2"):
        align_loss(f, p.repeat(2, 1, 1), p.repeat(2, 1, 1))
    with pytest.raises(ValueError, match="blur_size must be odd"):
        align_loss(f, p, p, blur_size=4)
    with pytest.raises(ValueError, match="blur_sigma must be a number >= 0"):
        AlignLoss(blur_sigma=-1.0)
    with pytest.raises(ValueError, match="patch_size must be a positive int"):
        AlignLoss(patch_size=0)
    with pytest.raises(ValueError, match="pred and gt must have the same shape"):
        align_loss(f, p, torch.zeros(1, 2, 2, dtype=torch.float64))
