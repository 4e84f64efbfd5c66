"""Complexity tools: MAC counts in closed form, training-step memory by hand, BN folding."""

import copy

import pytest
import torch
from torch import nn

from lmk.deploy import fold_batchnorm, optimize_for_inference
from lmk.complexity import (count_parameters, latency, profile,
                            step_memory)
from lmk.models import HeatmapModel


def test_profile_conv_linear_closed_form():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    p = profile(conv, (2, 3, 10, 12))
    assert p["macs"] == 2 * 10 * 12 * 3 * 8 * 9             # B H W Cin Cout k^2
    assert p["flops"] == 2 * p["macs"]                       # FlopCounterMode counts 2 per MAC
    assert p["params"] == 3 * 8 * 9 + 8 == count_parameters(conv)
    assert p["size_mb"] == pytest.approx(4 * p["params"] / 1e6)
    assert p["output_mb"] == pytest.approx(2 * 8 * 10 * 12 * 4 / 1e6)
    deconv = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, bias=False)
    assert profile(deconv, (1, 4, 5, 5))["macs"] == 5 * 5 * 4 * 6 * 16
    assert profile(nn.Linear(7, 5), (3, 7))["macs"] == 3 * 7 * 5
    depthwise = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    assert profile(depthwise, (1, 6, 4, 4))["macs"] == 4 * 4 * 6 * 9


def test_profile_counts_bn_buffers_in_size_and_leaves_model_alone():
    model = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), nn.BatchNorm2d(4)).train()
    p = profile(model, (1, 2, 4, 4))
    assert p["params"] == 8 + 8
    assert p["size_mb"] == pytest.approx(4 * (16 + 8) / 1e6)    # running mean and var (not the int counter)
    assert model.training and next(model.parameters()).device.type == "cpu"


def test_profile_meta_equals_cpu():
    model = HeatmapModel(0.25, "SD", 16, 3)
    assert profile(model, (1, 3, 64, 64)) == profile(model, (1, 3, 64, 64), device="cpu")


@pytest.mark.parametrize("size", [(1, 3, 0, 4), "192", (3,), (1, 3, 2.0, 4)])
def test_profile_bad_input_size(size):
    with pytest.raises(ValueError, match="input_size"):
        profile(nn.Identity(), size)


class Exp(nn.Module):
    def forward(self, x):
        return x.exp()


def test_step_memory_by_hand():
    # x (n floats), y = exp(x) saved for backward, the scalar loss, the scalar gradient of sum,
    # then d loss / dx = y * 1 (n floats): peak = 3 n floats + 2 scalars.
    n = 1000
    batch = {"image": torch.zeros(1, 1, 10, 100, requires_grad=True)}
    mem = step_memory(Exp(), lambda out, b: out.sum(), batch)
    assert round(mem["peak_mb"] * 1e6) == 3 * 4 * n + 2 * 4
    assert round(mem["batch_mb"] * 1e6) == 4 * n and round(mem["output_mb"] * 1e6) == 4 * n


def test_step_memory_linear_by_hand():
    # W, b (4080 B), x (1600 B); y = xW^T + b (640 B, saved by square), y^2 freed after the sum,
    # loss + grad of sum (4 + 4 B), grad of y (640 B, plus a 640 B temporary for 2 y that is
    # freed), then grad W and grad b (4080 B).
    mem = step_memory(nn.Linear(50, 20), lambda out, b: out.square().sum(), {"image": torch.zeros(8, 50)})
    assert round(mem["peak_mb"] * 1e6) == 4080 + 1600 + 640 + 4 + 4 + 640 + 4080
    assert round(mem["grads_mb"] * 1e6) == 4080


def test_step_memory_meta_equals_cpu():
    torch.manual_seed(0)
    model = HeatmapModel(0.25, "SD", 16, 5)
    batch = {"image": torch.randn(2, 3, 64, 64), "target": torch.randn(2, 5, 8, 8)}

    def loss(out, b):
        return (out - b["target"]).square().mean()

    assert step_memory(model, loss, batch) == step_memory(model, loss, batch, device="cpu")
    with pytest.raises(ValueError, match="'image'"):
        step_memory(model, loss, {"images": batch["image"]})


def _randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model


def test_fold_batchnorm_and_optimized_copy_match_eager():
    torch.manual_seed(0)
    model = _randomize_bn(HeatmapModel(0.25, "SD", 16, 4)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        folded = fold_batchnorm(copy.deepcopy(model))
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(x), ref, rtol=1e-4, atol=1e-4)
        fast = optimize_for_inference(model, compile=False)
        torch.testing.assert_close(fast(x), ref, rtol=1e-4, atol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())     # original untouched
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(copy.deepcopy(model).train())


@pytest.mark.heavy                       # ONNX export + onnxruntime: 5-10 s
def test_onnxruntime_path_matches_eager_and_checks_its_input():
    torch.manual_seed(0)
    model = _randomize_bn(HeatmapModel(0.25, "SD", 16, 4)).eval()
    x = torch.randn(2, 3, 64, 64)
    fast = optimize_for_inference(model, backend="onnxruntime", input_size=(2, 3, 64, 64), threads=1)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())     # original untouched
    with pytest.raises(ValueError, match=r"exported for inputs of shape \(2, 3, 64, 64\)"):
        fast(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="input_size"):
        optimize_for_inference(model, backend="onnxruntime")
    with pytest.raises(ValueError, match="backend"):
        optimize_for_inference(model, backend="tvm")


class _TwoOutputs(nn.Module):
    def forward(self, x):
        return x.sum(-1), x.amax(-2)


def test_onnxruntime_returns_a_tuple_for_several_outputs(tmp_path):
    from lmk.deploy import OnnxRuntimeModel, export_onnx

    path = tmp_path / "two.onnx"
    data = export_onnx(_TwoOutputs(), (1, 2, 3, 4), path=path)
    assert path.read_bytes() == data
    x = torch.randn(1, 2, 3, 4)
    rows, cols = OnnxRuntimeModel(data, (1, 2, 3, 4), threads=1)(x)
    torch.testing.assert_close(rows, x.sum(-1))
    torch.testing.assert_close(cols, x.amax(-2))


def test_latency_returns_milliseconds():
    out = latency(nn.Conv2d(3, 4, 3), (1, 3, 16, 16), warmup=1, repeats=3)
    assert set(out) == {"median_ms", "min_ms", "mean_ms"} and out["min_ms"] > 0
    with pytest.raises(ValueError, match="repeats"):
        latency(nn.Identity(), (1, 3), repeats=0)


def test_profile_chain_shapes_and_macs():
    from lmk.complexity import profile_chain

    chain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PixelShuffle(2), nn.Conv2d(2, 4, 1))
    rows = profile_chain(chain, (1, 3, 5, 5))
    assert [r["output_shape"] for r in rows] == [(1, 8, 5, 5), (1, 2, 10, 10), (1, 4, 10, 10)]
    assert [r["macs"] for r in rows] == [25 * 3 * 8 * 9, 0, 100 * 2 * 4]
    assert sum(r["macs"] for r in rows) == profile(chain, (1, 3, 5, 5))["macs"]


def test_compare_latency_interleaves_models():
    from lmk.complexity import compare_latency

    out = compare_latency({"a": nn.Conv2d(3, 4, 3), "b": nn.Identity()}, (1, 3, 8, 8), warmup=0, rounds=2)
    assert set(out) == {"a", "b"} and all(v["median_ms"] > 0 for v in out.values())
    with pytest.raises(ValueError, match="rounds"):
        compare_latency({"a": nn.Identity()}, (1, 3), rounds=0)


def test_trace_parts_records_calls_in_order_and_their_macs():
    from lmk.complexity import trace_parts
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    model.train()
    calls, macs = trace_parts(model, (1, 3, 8, 8), ["2", "0"])
    assert list(calls) == ["0", "2"] and model.training                  # the order they ran; mode kept
    assert calls["0"][1].shape == (1, 4, 8, 8) and calls["2"][0].shape == (1, 4, 8, 8)
    assert macs == {"0": 3 * 4 * 9 * 64, "2": 4 * 2 * 64}                # by hand: C_in C_out k^2 H W
    with pytest.raises(ValueError, match=r"has no submodule \['9'\]"):
        trace_parts(model, (1, 3, 8, 8), ["9"])
