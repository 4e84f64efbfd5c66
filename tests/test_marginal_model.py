"""Yin et al. (2020) 1D heatmap detector: shapes, co-attention (Eqs. 9-10) by brute force, decoding."""

import numpy as np
import pytest
import torch

from lmk.codecs import MarginalCodec, decode_marginals
from lmk.losses import MarginalLoss
from lmk.models import CoAttention, MarginalDetector


def small(**kwargs):
    kwargs.setdefault("width_mult", 0.25)
    kwargs.setdefault("channels", 8)
    return MarginalDetector(5, 64, **kwargs)


def test_output_shapes_default_length_is_three_times_input():
    model = small().eval()
    assert model.length == 192
    with torch.no_grad():
        hx, hy = model(torch.randn(2, 3, 64, 64))
    assert hx.shape == hy.shape == (2, 5, 192)


@pytest.mark.parametrize("length", [8, 64, 100, 256])
def test_any_length(length):
    with torch.no_grad():
        hx, hy = small(length=length, feature_stride=16, compressed=2).eval()(torch.zeros(1, 3, 64, 64))
    assert hx.shape == hy.shape == (1, 5, length)


def co_attention_by_hand(dx, dy, P, Q, gamma):
    """Eqs. 9-10 channel by channel with numpy, in float64."""
    dx2, dy2 = np.empty_like(dx), np.empty_like(dy)
    d = P.shape[1]

    def softmax_rows(a):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for b in range(dx.shape[0]):
        for k in range(dx.shape[1]):
            Dx, Dy = dx[b, k], dy[b, k]               # (M_x, c), (c, M_y)
            Wxy = softmax_rows(Dy.T @ P @ Dx.T / np.sqrt(d))
            Wyx = softmax_rows(Dx @ Q @ Dy / np.sqrt(d))
            dx2[b, k] = Dx + gamma * Wyx @ Dy.T
            dy2[b, k] = Dy + gamma * (Wxy @ Dx).T
    return dx2, dy2


def test_co_attention_matches_equations_9_10():
    torch.manual_seed(0)
    att = CoAttention(3, gamma=0.3).double()
    with torch.no_grad():
        att.P.copy_(torch.randn(3, 3))
        att.Q.copy_(torch.randn(3, 3))
    dx, dy = torch.randn(2, 4, 5, 3, dtype=torch.float64), torch.randn(2, 4, 3, 6, dtype=torch.float64)
    out_x, out_y = att(dx, dy)
    ref_x, ref_y = co_attention_by_hand(dx.numpy(), dy.numpy(), att.P.detach().numpy(),
                                        att.Q.detach().numpy(), 0.3)
    np.testing.assert_allclose(out_x.detach().numpy(), ref_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_y.detach().numpy(), ref_y, rtol=1e-12, atol=1e-12)


def test_co_attention_gamma_zero_is_identity_and_gradients_reach_p_q():
    dx, dy = torch.randn(1, 2, 4, 3), torch.randn(1, 2, 3, 4)
    off = CoAttention(3, gamma=0.0)
    assert all(a is b for a, b in zip(off(dx, dy), (dx, dy)))
    on = CoAttention(3, gamma=0.3)
    out_x, out_y = on(dx, dy)
    (out_x.square().sum() + out_y.square().sum()).backward()
    assert on.P.grad.abs().sum() > 0 and on.Q.grad.abs().sum() > 0


def test_axes_bookkeeping_transposed_features_swap_hx_and_hy():
    # Give the y branch the x branch's weights (kernels transposed for the squeeze): then the
    # x heatmaps of features F must equal the y heatmaps of F transposed.
    model = small(gamma=0.0).eval()
    model.branch_y.load_state_dict(model.branch_x.state_dict())
    model.squeeze_x.load_state_dict({k: v.transpose(-1, -2) if v.ndim == 4 else v
                                     for k, v in model.squeeze_y.state_dict().items()})
    feats = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        hx, hy_same = model.marginals(feats)
        hx_t, hy = model.marginals(feats.transpose(-1, -2))
    torch.testing.assert_close(hx, hy)
    torch.testing.assert_close(hx_t, hy_same)
    assert not torch.allclose(hx, hy_same)


def test_decoding_through_codecs_and_training_step():
    torch.manual_seed(0)
    model = small()
    codec = MarginalCodec(64, model.length, sigma=2.0)
    images = torch.randn(2, 3, 64, 64)
    landmarks = torch.rand(2, 5, 2) * 50 + 7
    batch = {"image": images, "landmarks": landmarks}
    loss_fn = MarginalLoss(codec)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = loss_fn(model(images), batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    with torch.no_grad():
        hx, hy = model(images)
    assert decode_marginals(hx, hy).shape == (2, 5, 2)
    assert codec.decode(hx, hy).shape == (2, 5, 2)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_size": 100}, "input_size"), ({"feature_stride": 3}, "feature_stride"),
    ({"compressed": 3}, "compressed"), ({"length": 0}, "length"), ({"gamma": -0.1}, "gamma"),
    ({"num_landmarks": 0}, "num_landmarks")])
def test_bad_arguments(kwargs, match):
    args = {"num_landmarks": 5, "input_size": 64, "width_mult": 0.25, "channels": 8}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MarginalDetector(**args)


def test_bad_image_size():
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        small()(torch.zeros(1, 3, 96, 96))
