"""Model benchmarks: 2D vs 1D heatmap training memory, eager vs optimized CPU latency, Earp costs.

* Training-step peak memory (forward + loss + backward, ``lmk.complexity.step_memory`` on the
  meta device) of a 2D heatmap model and the 1D marginal detector at output resolution
  ``L = 64, 256, 768`` for 68 landmarks, a batch of 10 and 256 x 256 inputs (Yin et al. (2020),
  Table 1 settings). Both use a MobileNetV2 1.0 backbone and 64-filter deconvolutions that
  double the resolution while it stays <= L, then a linear resize to exactly L.
* Batch-1, single-thread CPU latency of MobileNetV2 1.0 + SDD (128 filters, 106 landmarks,
  192 x 192; Earp et al. (2021), Sec. 5.3 and Table 6): eager and three ``optimize_for_inference``
  paths: BN folding + channels-last, the same plus ``torch.compile``, and the folded model in
  ONNX Runtime (the "optimized" figure), timed call by call in alternation
  (``lmk.complexity.compare_latency``) so that load on a shared machine hits all alike.
"""

from __future__ import annotations

import math

import torch

from ..complexity import compare_latency, profile, step_memory
from ..deploy import optimize_for_inference
from ..losses import heatmap_mse, marginal_loss
from ..models import HeatmapModel, MarginalDetector
from ..models.earp_tables import earp_cost_table, spearman

LENGTHS = (64, 256, 768)
INPUT, LANDMARKS, BATCH, FILTERS = 256, 68, 10, 64


def _loss_2d(out, batch):
    return heatmap_mse(out, batch["target"])


def _loss_1d(out, batch):
    return marginal_loss(out[0], out[1], batch["tx"], batch["ty"])


def memory_2d_vs_1d(length: int) -> tuple[float, float]:
    """Peak training-step megabytes ``(2D, 1D)`` at heatmap resolution ``length``."""
    doublings = int(math.log2(length / (INPUT // 32)))
    with torch.device("meta"):
        model_2d = HeatmapModel(1.0, "D" * doublings, FILTERS, LANDMARKS, output_size=length)
        model_1d = MarginalDetector(LANDMARKS, INPUT, length, width_mult=1.0, channels=FILTERS)
        image = torch.zeros(BATCH, 3, INPUT, INPUT)
        batch_2d = {"image": image, "target": torch.zeros(BATCH, LANDMARKS, length, length)}
        batch_1d = {"image": image, "tx": torch.zeros(BATCH, LANDMARKS, length),
                    "ty": torch.zeros(BATCH, LANDMARKS, length)}
    peak_2d = step_memory(model_2d, _loss_2d, batch_2d)["peak_mb"]
    peak_1d = step_memory(model_1d, _loss_1d, batch_1d)["peak_mb"]
    return peak_2d, peak_1d


def run(quick: bool = False) -> dict[str, float]:
    results: dict[str, float] = {}
    for length in LENGTHS:
        peak_2d, peak_1d = memory_2d_vs_1d(length)
        results[f"step_memory_2d_L{length}_mb"] = peak_2d
        results[f"step_memory_1d_L{length}_mb"] = peak_1d
        results[f"step_memory_ratio_2d_over_1d_L{length}"] = peak_2d / peak_1d

    rows = earp_cost_table(3)
    results["earp_table3_spearman_macs_vs_paper"] = spearman(
        [r["paper_gflops"] for r in rows], [r["our_gmacs"] for r in rows])
    results["earp_dddd_gmacs"] = rows[-1]["our_gmacs"]

    torch.manual_seed(0)
    model = HeatmapModel(1.0, "SDD", 128, 106).eval()
    size = (1, 3, 192, 192)
    results["sdd_192_gmacs"] = profile(model, size)["gmacs"]
    rounds = 10 if quick else 40
    folded = optimize_for_inference(model)                              # BN folded + channels-last
    compiled = optimize_for_inference(model, compile=True)
    onnx = optimize_for_inference(model, backend="onnxruntime", input_size=size, threads=1)
    with torch.inference_mode():
        compiled(torch.zeros(size))                                     # compile outside the timing
    times = compare_latency({"eager": model, "folded": folded, "compiled": compiled,
                             "onnxruntime": onnx}, size, rounds=rounds)
    ms = {name: t["median_ms"] for name, t in times.items()}
    results["latency_eager_ms"] = ms["eager"]
    results["latency_folded_ms"] = ms["folded"]
    results["latency_compiled_ms"] = ms["compiled"]
    results["latency_optimized_ms"] = ms["onnxruntime"]
    results["latency_speedup_folded_vs_eager"] = ms["eager"] / ms["folded"]
    results["latency_speedup_compiled_vs_eager"] = ms["eager"] / ms["compiled"]
    results["latency_speedup_optimized_vs_eager"] = ms["eager"] / ms["onnxruntime"]
    return results


def describe() -> dict[str, str]:
    labels = {}
    for length in LENGTHS:
        labels[f"step_memory_2d_L{length}_mb"] = f"2D heatmaps, L={length}: train-step peak (MB)"
        labels[f"step_memory_1d_L{length}_mb"] = f"1D heatmaps, L={length}: train-step peak (MB)"
        labels[f"step_memory_ratio_2d_over_1d_L{length}"] = f"2D / 1D train-step peak, L={length} (x)"
    labels.update({
        "earp_table3_spearman_macs_vs_paper": "Earp Table 3: Spearman rho, our MACs vs paper GFLOPS",
        "earp_dddd_gmacs": "Earp DDDD (MNetV2 0.25, 192 px): our GMACs (paper 3.50)",
        "sdd_192_gmacs": "MNetV2 1.0 + SDD, 192 px: GMACs (paper 0.43)",
        "latency_eager_ms": "MNetV2 1.0 + SDD, 192 px, 1 thread: eager (ms)",
        "latency_folded_ms": "  BN folded + channels-last (ms)",
        "latency_compiled_ms": "  BN folded + channels-last + torch.compile (ms)",
        "latency_optimized_ms": "  optimized: BN folded, ONNX Runtime (ms)",
        "latency_speedup_folded_vs_eager": "  speed-up folded + channels-last vs eager (x)",
        "latency_speedup_compiled_vs_eager": "  speed-up folded + compile vs eager (x)",
        "latency_speedup_optimized_vs_eager": "  speed-up optimized (ONNX Runtime) vs eager (x)",
    })
    return labels
