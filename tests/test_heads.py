"""S/D upsampling heads, Earp's HeatmapModel, the regression baseline, and the Earp cost tables."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from lmk.complexity import profile
from lmk.models import HeatmapModel, RegressionModel, UpsampleHead
from lmk.models.earp_tables import EARP_TABLE_3, EARP_TABLE_4, earp_cost_table, spearman
from lmk.models.heads import deconv_block, shuffle_block


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread avoids OpenMP spin-waiting when the cores are shared."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_block_shapes_and_channel_arithmetic():
    x = torch.randn(2, 10, 5, 7)
    assert deconv_block(10, 12)(x).shape == (2, 12, 10, 14)
    assert shuffle_block(10, 12)(x).shape == (2, 3, 10, 14)       # F/4 channels after the shuffle


def test_block_macs_closed_form():
    h, w, cin, f = 6, 6, 80, 256
    d = profile(deconv_block(cin, f), (1, cin, h, w))
    s = profile(shuffle_block(cin, f), (1, cin, h, w))
    assert d["macs"] == h * w * cin * f * 16            # every input pixel meets a 4x4 kernel
    assert s["macs"] == h * w * cin * f * 9             # 3x3 conv at the low resolution
    assert d["flops"] == 2 * d["macs"]


def test_head_macs_closed_form_sdsd():
    cin, f, n = 80, 256, 106
    head = UpsampleHead(cin, "SDSD", f, n)
    expected = (6 * 6 * cin * f * 9            # S  6 -> 12, leaves f/4 channels
                + 12 * 12 * (f // 4) * f * 16  # D 12 -> 24
                + 24 * 24 * f * f * 9          # S 24 -> 48, leaves f/4
                + 48 * 48 * (f // 4) * f * 16  # D 48 -> 96
                + 96 * 96 * f * n)             # 1x1 conv to the heatmaps
    assert profile(head, (1, cin, 6, 6))["macs"] == expected


@pytest.mark.parametrize("strategy", ["S", "D", "SDSD", "dds", "SSSS"])
def test_head_output_shape(strategy):
    head = UpsampleHead(16, strategy, 32, 5).eval()
    k = 2 ** len(strategy)
    with torch.no_grad():
        assert head(torch.randn(1, 16, 3, 4)).shape == (1, 5, 3 * k, 4 * k)
    assert head.strategy == strategy.upper()


@pytest.mark.parametrize("args, match", [
    ((16, "", 32, 5), "strategy"), ((16, "SXD", 32, 5), "strategy"), ((16, 12, 32, 5), "strategy"),
    ((16, "SD", 30, 5), "multiple of 4"), ((16, "DD", 0, 5), "filters"), ((0, "D", 8, 5), "in_channels"),
    ((16, "D", 8, 2.0), "num_landmarks")])
def test_head_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        UpsampleHead(*args)


def test_head_and_regression_take_numpy_integers():
    head = UpsampleHead(np.int64(16), "SD", np.int64(32), np.int32(5))
    assert (head.in_channels, head.filters, head.num_landmarks) == (16, 32, 5)
    assert type(head.filters) is int
    model = RegressionModel(np.int64(5), channel_ratio=0.25, hidden=np.int64(8)).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5, 2)
    with pytest.raises(ValueError, match="filters must be a positive int"):
        UpsampleHead(16, "D", 8.0, 5)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        RegressionModel(5, hidden=0)


def test_head_bad_features():
    with pytest.raises(ValueError, match=r"\(B, 16, h, w\)"):
        UpsampleHead(16, "D", 8, 5)(torch.zeros(1, 15, 3, 3))


def test_heatmap_model_shapes():
    model = HeatmapModel(0.25, "SDD", 32, 68).eval()
    assert model.stride == 4.0 and model.heatmap_size(64) == (16, 16)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 96)).shape == (2, 68, 16, 24)
    resized = HeatmapModel(0.25, "DD", 16, 3, output_size=(40, 50)).eval()
    with torch.no_grad():
        assert resized(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 40, 50)
    assert resized.heatmap_size(64) == (40, 50)
    res = HeatmapModel(strategy="SDD", filters=16, num_landmarks=4, backbone="resnet18", channel_ratio=0.25)
    with torch.no_grad():
        assert res.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match="output_size"):
        HeatmapModel(0.25, "D", 8, 3, output_size=(0, 4))
    with pytest.raises(ValueError, match="backbone"):
        HeatmapModel(0.25, "D", 8, 3, backbone="vgg")


@pytest.mark.heavy                       # profiles every EARP table-3 model: 4-8 s
def test_earp_table_3_costs_rank_like_the_paper():
    rows = earp_cost_table(3)
    assert [r["strategy"] for r in rows] == list(EARP_TABLE_3)
    paper = [r["paper_gflops"] for r in rows]
    ours = [r["our_gmacs"] for r in rows]
    assert spearman(paper, ours) >= 0.9
    dddd = rows[-1]
    assert dddd["strategy"] == "DDDD" and abs(dddd["our_gmacs"] / 3.50 - 1) < 0.2
    # the paper's "GFLOPS" are MACs: every strategy within 6 %, none near 2x
    assert all(0.94 <= r["ratio"] <= 1.0 for r in rows)


def test_earp_table_4_costs():
    rows = earp_cost_table(4)
    assert [r["strategy"] for r in rows] == list(EARP_TABLE_4)
    assert spearman([r["paper_gflops"] for r in rows], [r["our_gmacs"] for r in rows]) == 1.0
    assert all(0.9 <= r["ratio"] <= 1.0 for r in rows)


def test_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 5, 9), rng.normal(size=9)
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="table"):
        earp_cost_table(5)


def test_regression_model_starts_at_init_points():
    init = torch.rand(68, 2)
    model = RegressionModel(68, backbone="mobilenet_v2", width_mult=0.25, init_points=init).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 68, 2)
    assert torch.equal(out, init.expand(3, 68, 2))
    hidden = RegressionModel(5, channel_ratio=0.25, hidden=32).eval()
    with torch.no_grad():
        assert hidden(torch.zeros(1, 3, 32, 32)).shape == (1, 5, 2)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        RegressionModel(5, init_points=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="num_landmarks"):
        RegressionModel(0)


def test_unflip_heatmaps_is_exact_under_the_pixel_centre_convention():
    from lmk.codecs import gaussian_heatmaps
    from lmk.data.transforms import flip_landmarks
    from lmk.layouts import LAYOUT_68
    from lmk.models import unflip_heatmaps

    rng = np.random.default_rng(0)
    points = rng.uniform(4, 27, size=(2, 68, 2))                     # heatmap pixels, W = 32
    flipped = flip_landmarks(points, 32, LAYOUT_68.flip_perm)         # x -> W - 1 - x, re-indexed
    h_flipped = gaussian_heatmaps(torch.from_numpy(flipped), (24, 32), 1.5)
    h_direct = gaussian_heatmaps(torch.from_numpy(points), (24, 32), 1.5)
    torch.testing.assert_close(unflip_heatmaps(h_flipped, LAYOUT_68.flip_perm), h_direct,
                               rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="flip_perm"):
        unflip_heatmaps(h_direct[:, :5], LAYOUT_68.flip_perm)


def test_flip_test_heatmaps_averages_both_views():
    from lmk.layouts import LAYOUT_68
    from lmk.models import FlipAveraged, flip_test_heatmaps, unflip_heatmaps

    model = HeatmapModel(0.25, "SD", 16, 68).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = 0.5 * (model(x) + unflip_heatmaps(model(x.flip(-1)), LAYOUT_68.flip_perm))
        torch.testing.assert_close(flip_test_heatmaps(model, x, LAYOUT_68.flip_perm), expected)
        torch.testing.assert_close(FlipAveraged(model, LAYOUT_68.flip_perm)(x), expected)


def test_heatmap_model_initialisation_for_training():
    """Heatmaps start near zero and every MobileNetV2 skip block starts as the identity."""
    torch.manual_seed(0)
    model = HeatmapModel(0.25, "SDSD", 16, 68)
    last = model.head.to_heatmaps
    assert torch.count_nonzero(last.bias) == 0 and last.weight.std().item() < 2e-3
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).abs().max().item() < 0.1   # default init: ~3
    skips = [b for b in model.backbone.modules() if getattr(b, "use_skip", False)]
    assert len(skips) == 11    # 10 of MobileNetV2; at width 0.25 the first block (8 -> 8 channels) has one too
    for block in skips:
        block.eval()
        cin = next(m for m in block.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
        x = torch.randn(1, cin, 8, 8)
        with torch.no_grad():
            torch.testing.assert_close(block(x), x, rtol=0, atol=0)
