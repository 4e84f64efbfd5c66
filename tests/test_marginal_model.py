"""Yin et al. (2020) 1D heatmap detector: shapes, co-attention (Eqs. 9-10) by brute force, decoding."""

import math

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


def co_attention_by_loops(dx, dy, P, Q, gamma):
    """Yin et al. (2020) Eqs. 9-10 written out scalar by scalar (Python floats, double precision).

    For batch ``b`` and channel ``k``: ``Dx = D^x_k`` is ``(M_x, c)``, ``Dy = D^y_k`` is
    ``(c, M_y)``, ``P`` and ``Q`` are ``(c, c)`` and ``d`` is their column count::

        W^xy[i, j] = softmax_j(sum_{a, e} Dy[a, i] P[a, e] Dx[j, e] / sqrt(d))    (M_y, M_x)
        W^yx[i, j] = softmax_j(sum_{a, e} Dx[i, a] Q[a, e] Dy[e, j] / sqrt(d))    (M_x, M_y)
        Dx'[i, a] = Dx[i, a] + gamma sum_j W^yx[i, j] Dy[a, j]          (W^yx (D^y)^T)
        Dy'[a, j] = Dy[a, j] + gamma sum_i W^xy[j, i] Dx[i, a]          ((W^xy D^x)^T)
    """
    batch, channels, mx, c = len(dx), len(dx[0]), len(dx[0][0]), len(dx[0][0][0])
    my, d = len(dy[0][0][0]), len(P[0])

    def softmax(row):
        top = max(row)
        e = [math.exp(v - top) for v in row]
        return [v / sum(e) for v in e]

    out_x = [[[[0.0] * c for _ in range(mx)] for _ in range(channels)] for _ in range(batch)]
    out_y = [[[[0.0] * my for _ in range(c)] for _ in range(channels)] for _ in range(batch)]
    for b in range(batch):
        for k in range(channels):
            Dx, Dy = dx[b][k], dy[b][k]
            w_xy = [softmax([sum(Dy[a][i] * P[a][e] * Dx[j][e] for a in range(c) for e in range(c))
                             / math.sqrt(d) for j in range(mx)]) for i in range(my)]
            w_yx = [softmax([sum(Dx[i][a] * Q[a][e] * Dy[e][j] for a in range(c) for e in range(c))
                             / math.sqrt(d) for j in range(my)]) for i in range(mx)]
            for i in range(mx):
                for a in range(c):
                    out_x[b][k][i][a] = Dx[i][a] + gamma * sum(w_yx[i][j] * Dy[a][j] for j in range(my))
            for a in range(c):
                for j in range(my):
                    out_y[b][k][a][j] = Dy[a][j] + gamma * sum(w_xy[j][i] * Dx[i][a] for i in range(mx))
    return out_x, out_y


@pytest.mark.parametrize("gamma", [0.3, 0.0])
def test_co_attention_matches_equations_9_10_by_brute_force(gamma):
    g = torch.Generator().manual_seed(0)
    att = CoAttention(3, gamma=gamma).double()
    with torch.no_grad():                           # far from the identity init, not symmetric
        att.P.copy_(torch.randn(3, 3, generator=g, dtype=torch.float64))
        att.Q.copy_(torch.randn(3, 3, generator=g, dtype=torch.float64))
    # M_x = 4, c = 3, M_y = 5: every transpose mistake changes a shape or a value
    dx = torch.randn(2, 3, 4, 3, generator=g, dtype=torch.float64)
    dy = torch.randn(2, 3, 3, 5, generator=g, dtype=torch.float64)
    with torch.no_grad():
        out_x, out_y = att(dx, dy)
    ref_x, ref_y = co_attention_by_loops(dx.tolist(), dy.tolist(), att.P.tolist(), att.Q.tolist(),
                                         gamma)
    torch.testing.assert_close(out_x, torch.tensor(ref_x, dtype=torch.float64), rtol=0, atol=1e-10)
    torch.testing.assert_close(out_y, torch.tensor(ref_y, dtype=torch.float64), rtol=0, atol=1e-10)
    change = max((out_x - dx).abs().max().item(), (out_y - dy).abs().max().item())
    assert change > 0.05 if gamma else change == 0.0     # the check compares a real effect


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
    points = codec.decode(model(images))             # the same call as for every codec
    assert points.shape == (2, 5, 2) and torch.isfinite(points).all()
    torch.testing.assert_close(points, codec.to_input(decode_marginals(hx, hy, blur_sigma=2.0)))


def test_numpy_integer_sizes_are_ints():
    model = MarginalDetector(np.int64(5), input_size=np.int64(64), length=np.int32(96),
                             width_mult=0.25, channels=np.int64(8), compressed=np.int64(2),
                             feature_stride=np.int64(16))
    assert (model.input_size, model.length, model.num_landmarks) == (64, 96, 5)
    assert type(model.input_size) is int and type(model.length) is int
    assert MarginalDetector(5, (64, 64), width_mult=0.25, channels=8).input_size == 64
    assert CoAttention(np.int64(3)).P.shape == (3, 3)
    with pytest.raises(ValueError, match="length must be a positive int"):
        small(length=96.0)
    with pytest.raises(ValueError, match="input_size"):
        MarginalDetector(5, 64.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_size": 100}, "input_size"), ({"feature_stride": 3}, "feature_stride"),
    ({"compressed": 3}, "compressed"), ({"length": 0}, "length"), ({"gamma": -0.1}, "gamma"),
    ({"num_landmarks": 0}, "num_landmarks"), ({"input_size": (64, 96)}, "square"),
    ({"input_size": 5.9}, "input_size"), ({"feature_stride": 8.0}, "feature_stride")])
def test_bad_arguments(kwargs, match):
    args = {"num_landmarks": 5, "input_size": 64, "width_mult": 0.25, "channels": 8}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MarginalDetector(**args)


def test_bad_image_size():
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        small()(torch.zeros(1, 3, 96, 96))
