"""lmk.models.temporal: Yin et al. (2020) Eq. 13 and the tracker around a 1D heatmap detector."""

import pytest
import torch
from torch import nn

from lmk.models import MarginalDetector
from lmk.models.temporal import (TemporalRefinement, YinTracker, temporal_fusion,
                                 temporal_fusion_sequence)

N, L, C = 3, 12, 4


def _heatmaps(b=2, t=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, N, L, generator=g, dtype=torch.float64),
            torch.rand(b, t, N, L + 4, generator=g, dtype=torch.float64))


def _trained(lam, seed=1):
    """A refinement whose zero-initialised last layers got non-zero weights, as after training."""
    torch.manual_seed(seed)
    module = TemporalRefinement(N, C, lam).double()
    with torch.no_grad():
        for decoder in module.decoders.values():
            decoder[-1].weight.normal_(0.0, 0.3)
            decoder[-1].bias.normal_(0.0, 0.1)
    return module


# ----------------------------------------------------------------------- Eq. 13 by hand
def test_eq13_by_hand():
    u = torch.tensor([[1.0, 2.0, 4.0, -8.0]])[..., None]          # (B=1, T=4, 1)
    v = temporal_fusion_sequence(u, 0.5)[0, :, 0]
    # V_1 = U_1; V_2 = U_2 + 0.5 U_1; V_3 = U_3 + 0.5 U_2 + 0.25 U_1; V_4 = ... + 0.125 U_1
    expected = torch.tensor([1.0, 2.0 + 0.5, 4.0 + 1.0 + 0.25, -8.0 + 2.0 + 0.5 + 0.125])
    torch.testing.assert_close(v, expected)


def test_eq13_at_the_ends_of_lambda():
    u = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(temporal_fusion_sequence(u, 0.0), u)             # V_t = U_t
    torch.testing.assert_close(temporal_fusion_sequence(u, 1.0), u.cumsum(1))   # running sum


def test_the_recursion_is_the_printed_sum():
    u = torch.randn(3, 6, 2, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    v, steps = None, []
    for t in range(u.shape[1]):
        v = temporal_fusion(u[:, t], v, 0.3)
        steps.append(v)
    torch.testing.assert_close(torch.stack(steps, 1), temporal_fusion_sequence(u, 0.3))


# ----------------------------------------------------------------- the refinement module
def test_clip_forward_is_eq13_on_the_encoded_detections():
    module = _trained(0.3)
    hx, hy = _heatmaps()
    out = module(hx, hy)
    for axis, h, refined in (("x", hx, out[0]), ("y", hy, out[1])):
        for t in range(h.shape[1]):             # direct: V_t = sum_tau 0.3^(t - tau) CNN3(E_tau)
            v = sum(0.3 ** (t - tau) * module.encode(h[:, tau], axis) for tau in range(t + 1))
            torch.testing.assert_close(refined[:, t], h[:, t] + module.decode(v, axis))


def test_stepping_frame_by_frame_equals_the_clip():
    module = _trained(0.3)
    hx, hy = _heatmaps()
    clip = module(hx, hy)
    state = None
    for t in range(hx.shape[1]):
        (rx, ry), state = module.step(hx[:, t], hy[:, t], state)
        torch.testing.assert_close(rx, clip[0][:, t])
        torch.testing.assert_close(ry, clip[1][:, t])


@pytest.mark.parametrize("lam, independent", [(0.0, True), (0.3, False)])
def test_lambda_zero_forgets_the_past(lam, independent):
    # lambda 0: frame t's output is a function of frame t alone (Yin Table 2, "without")
    module = _trained(lam)
    hx, hy = _heatmaps()
    clip = module(hx, hy)
    alone = module(hx[:, -1:], hy[:, -1:])
    same = torch.allclose(clip[0][:, -1], alone[0][:, 0]) and \
        torch.allclose(clip[1][:, -1], alone[1][:, 0])
    assert same == independent


def test_a_new_tracker_is_its_detector_at_any_lambda():
    torch.manual_seed(0)
    detector = MarginalDetector(N, 32, width_mult=0.25, channels=8, compressed=2).eval()
    images = torch.randn(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    plain = detector(images.flatten(0, 1))
    for lam in (0.0, 0.3, 1.0):
        tracker = YinTracker(detector, lam, channels=C).eval()
        hx, hy = tracker(images)
        torch.testing.assert_close(hx.flatten(0, 1), plain[0], rtol=0, atol=0)
        torch.testing.assert_close(hy.flatten(0, 1), plain[1], rtol=0, atol=0)
        (sx, sy), state = tracker.step(images[:, 0])
        torch.testing.assert_close(sx, plain[0].unflatten(0, (2, 3))[:, 0], rtol=0, atol=0)
        assert state[0].shape == (2, C, plain[0].shape[-1])


def test_the_tracker_trains_end_to_end():
    torch.manual_seed(0)
    detector = MarginalDetector(N, 32, width_mult=0.25, channels=8, compressed=2)
    tracker = YinTracker(detector, 0.3, channels=C)
    with torch.no_grad():                                  # as after some training
        for decoder in tracker.refinement.decoders.values():
            decoder[-1].weight.normal_(0.0, 0.1)
    hx, hy = tracker(torch.randn(2, 2, 3, 32, 32))
    (hx.square().sum() + hy.square().sum()).backward()
    for part in (tracker.detector.backbone, tracker.refinement.encoders, tracker.refinement.decoders):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan"), True, "0.3", None])
def test_lambda_outside_0_1_is_refused(lam):
    with pytest.raises(ValueError, match="lam"):
        TemporalRefinement(N, C, lam)
    with pytest.raises(ValueError, match="lam"):
        temporal_fusion_sequence(torch.zeros(1, 2, 3), lam)


def test_bad_shapes_name_the_argument():
    module = TemporalRefinement(N, C)
    hx, hy = _heatmaps()
    with pytest.raises(ValueError, match=r"hx must have shape \(B, N, L\)"):
        module.step(hx, hy[:, 0])
    with pytest.raises(ValueError, match="hy must have shape .* N = 3"):
        module.step(hx[:, 0].float(), torch.zeros(2, N + 1, L))
    with pytest.raises(ValueError, match="leading dims"):
        module(hx, hy[:1])
    with pytest.raises(ValueError, match="state must be the pair"):
        module.step(hx[:, 0].float(), hy[:, 0].float(), torch.zeros(2, C, L))
    with pytest.raises(ValueError, match="previous .* shape of u"):
        temporal_fusion(torch.zeros(2, C, L), torch.zeros(1, C, L))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        TemporalRefinement(N, C, kernel_size=4)


def test_the_tracker_wants_clips_and_a_detector():
    torch.manual_seed(0)
    tracker = YinTracker(MarginalDetector(N, 32, width_mult=0.25, channels=8, compressed=2))
    with pytest.raises(ValueError, match=r"clips must have shape \(B, T, 3, F, F\).*step\(\)"):
        tracker(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="num_landmarks"):
        YinTracker(nn.Conv2d(3, 3, 1))
