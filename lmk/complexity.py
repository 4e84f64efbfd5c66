"""What a model costs: parameters, multiply-accumulates, size, training memory, latency.

* :func:`profile` counts with ``torch.utils.flop_counter.FlopCounterMode``, which reports
  FLOPs as ``2 x`` multiply-accumulates (one multiply + one add per MAC) for convolutions,
  transposed convolutions and matrix products, and nothing for BN, ReLU or pixel shuffle.
  ``macs = flops / 2``. Earp et al. (2021) report "GFLOPS" that match our MACs (within 4 %
  over all of their Tables 3 and 4, see ``lmk.models.earp_tables``), so their unit is MACs.
* :func:`step_memory` measures the peak of live tensor memory during one training step
  (forward + loss + backward), by watching every tensor that an operator creates and
  every storage that is freed (a ``TorchDispatchMode``). It runs on the ``meta`` device by
  default: the same autograd graph, no memory actually allocated, so a 2D heatmap model at
  ``L = 768`` can be measured on a laptop.
* :func:`latency` times batch-1 inference on one CPU thread (faster inference paths, BatchNorm
  folding, ``torch.compile`` and ONNX Runtime, are :mod:`lmk.deploy`).
"""

from __future__ import annotations

import copy
import statistics
import time
import weakref
from contextlib import ExitStack, contextmanager

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.flop_counter import FlopCounterMode

MB = 1e6   # sizes are reported in megabytes of 10^6 bytes


def _check_input_size(input_size) -> tuple[int, ...]:
    size = tuple(input_size) if isinstance(input_size, (tuple, list, torch.Size)) else None
    if size is None or len(size) < 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"input_size must be a tuple of positive ints like (1, 3, H, W), got {input_size!r}")
    return size


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (each shared parameter once)."""
    return sum(p.numel() for p in model.parameters())


def _outputs_bytes(out) -> int:
    return sum(t.numel() * t.element_size() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))


@contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def profile(model: nn.Module, input_size=(1, 3, 192, 192), *, device: str = "meta") -> dict:
    """Cost of one inference of ``model`` on a zero input of shape ``input_size``.

    Args:
        model: any module taking one ``(B, C, H, W)`` tensor.
        input_size: input shape; MACs scale with the batch size ``B``.
        device: ``"meta"`` (default: shapes only, nothing allocated, the model is not changed) or
            ``"cpu"``/``"cuda"`` to run on a copy there.

    Returns:
        dict with ``params`` (count), ``macs`` (multiply-accumulates), ``flops`` (= 2 macs, as
        ``FlopCounterMode`` counts), ``gmacs``, ``size_mb`` (fp32 parameters and floating-point
        buffers, 10^6 bytes), ``output_mb`` (fp32 outputs), ``output_shape`` (None unless the
        output is one tensor).
    """
    size = _check_input_size(input_size)
    net = copy.deepcopy(model).to(device)
    x = torch.zeros(size, device=device)
    counter = FlopCounterMode(display=False)
    with _eval_mode(net), torch.no_grad(), counter:
        out = net(x)
    flops = int(counter.get_total_flops())
    params = count_parameters(model)
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    return {"params": params, "macs": flops // 2, "flops": flops, "gmacs": flops / 2e9,
            "size_mb": 4 * (params + buffers) / MB, "output_mb": _outputs_bytes(out) / MB,
            "output_shape": shape}


def trace_parts(model: nn.Module, input_size, paths) -> tuple[dict, dict]:
    """One forward pass of a zero input through ``model``, watching the submodules ``paths``.

    Args:
        model: any module (its train/eval mode is restored afterwards; nothing else changes).
        input_size: the input's shape, e.g. ``(1, 3, 64, 64)``.
        paths: names of submodules (``model.named_modules()``) to watch.
    Returns:
        ``(calls, macs)``: ``calls[path] = (input, output)`` of each watched module that ran, in
        the order they ran (the first positional argument and the output, as they were);
        ``macs[path]`` its multiply-accumulates (``torch.utils.flop_counter``, as :func:`profile`).
    """
    modules = dict(model.named_modules())
    missing = [p for p in paths if p not in modules]
    if missing:
        raise ValueError(f"trace_parts: {type(model).__name__} has no submodule {missing}")
    calls, hooks = {}, []
    for path in paths:
        def record(module, args, output, path=path):
            calls[path] = (args[0] if args else None, output)
        hooks.append(modules[path].register_forward_hook(record))
    counter = FlopCounterMode(display=False)
    was_training = model.training
    try:
        model.eval()
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.no_grad(), counter:
            model(torch.zeros(_check_input_size(input_size), device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    flops, root = counter.get_flop_counts(), type(model).__name__
    return calls, {p: int(sum(flops.get(f"{root}.{p}", {}).values())) // 2 for p in calls}



def shape_table(model: nn.Module, input_size, parts: dict) -> list[dict]:
    """A paper's layer table of ``model``, from one forward pass of a zero input.

    Args:
        model: any module (its mode is restored afterwards; nothing else changes).
        input_size: the input's shape, e.g. ``(1, 3, 64, 64)``.
        parts: ``{submodule path: (the paper's name of the part, what it computes)}`` (e.g.
            :func:`lmk.models.ccnn.paper_layers`, :func:`lmk.models.atpn.paper_layers`).
    Returns:
        one row per part that ran, in the order it ran: ``path``, ``part``, ``computes``,
        ``input`` and ``output`` (the tensors of one zero input, as the module saw them),
        ``params`` and ``macs`` (multiply-accumulates, as :func:`profile` counts them).
    """
    modules = dict(model.named_modules())
    calls, macs = trace_parts(model, input_size, parts)
    return [{"path": p, "part": parts[p][0], "computes": parts[p][1], "input": i, "output": o,
             "params": count_parameters(modules[p]), "macs": macs[p]} for p, (i, o) in calls.items()]

def profile_chain(stages, input_size) -> list[dict]:
    """:func:`profile` of modules applied one after the other, e.g. the blocks of a head.

    Args:
        stages: ``[(name, module), ...]`` (or an ``nn.Sequential``); each takes the previous output.
        input_size: shape of the first input.
    Returns:
        one row per stage: ``name``, ``input_shape``, ``output_shape``, ``macs``, ``params``.
    """
    items = list(stages.named_children()) if isinstance(stages, nn.Sequential) else list(stages)
    shape, rows = _check_input_size(input_size), []
    for name, module in items:
        cost = profile(module, shape)
        if cost["output_shape"] is None:
            raise ValueError(f"stage {name!r} must return one tensor to chain the next stage")
        rows.append({"name": name, "input_shape": shape, "output_shape": cost["output_shape"],
                     "macs": cost["macs"], "params": cost["params"]})
        shape = cost["output_shape"]
    return rows


# ------------------------------------------------------------------------- training memory

class LiveTensorMemory(TorchDispatchMode):
    """Track the bytes of live tensor storages created under this mode, and their peak.

    Every operator output registers its storage once (views and in-place results share it);
    a ``weakref.finalize`` on the storage subtracts it when the storage is freed. Tensors
    alive before the mode (parameters, inputs) are added with :meth:`track`. Scratch buffers
    that a kernel allocates and frees internally (e.g. oneDNN workspaces) are not seen.
    """

    def __init__(self):
        super().__init__()
        self.sizes: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.sizes:
            return
        nbytes = storage.nbytes()
        self.sizes[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        self.current -= self.sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.track(t)
        return out


def step_memory(model: nn.Module, loss_fn, batch, *, device: str = "meta") -> dict:
    """Peak memory of one training step: forward, loss, backward (no optimizer state).

    Args:
        model: the model; a copy is moved to ``device`` and put in training mode.
        loss_fn: ``loss_fn(outputs, batch) -> scalar`` (the training loop's contract).
        batch: dict with ``"image"`` ``(B, 3, H, W)`` and whatever ``loss_fn`` reads (e.g.
            ``"landmarks"``); tensors are moved to ``device``.
        device: ``"meta"`` (default; nothing is allocated) or a real device.

    Returns:
        dict of megabytes (10^6 bytes): ``peak_mb`` (parameters, batch, activations, targets,
        gradients: the maximum of their sum over the step), ``params_mb``, ``batch_mb``,
        ``output_mb`` (model outputs), ``grads_mb`` (parameter gradients held at the end).
    """
    if not isinstance(batch, dict) or "image" not in batch:
        raise ValueError("batch must be a dict with an 'image' tensor (B, 3, H, W)")
    net = copy.deepcopy(model).to(device).train()
    moved = tree_map(lambda t: t.detach().to(device).requires_grad_(t.requires_grad)
                     if isinstance(t, torch.Tensor) else t, batch)
    tracker = LiveTensorMemory()
    for t in list(net.parameters()) + list(net.buffers()):
        tracker.track(t)
    params_bytes = tracker.current
    for t in tree_flatten(moved)[0]:
        if isinstance(t, torch.Tensor):
            tracker.track(t)
    batch_bytes = tracker.current - params_bytes
    with tracker:
        outputs = net(moved["image"])
        output_bytes = _outputs_bytes(outputs)
        loss = loss_fn(outputs, moved)
        loss.backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in net.parameters() if p.grad is not None)
    return {"peak_mb": tracker.peak / MB, "params_mb": params_bytes / MB, "batch_mb": batch_bytes / MB,
            "output_mb": output_bytes / MB, "grads_mb": grads / MB}


# ---------------------------------------------------------------------------------- latency

@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def latency(model: nn.Module, input_size=(1, 3, 192, 192), *, threads: int | None = 1,
            warmup: int = 5, repeats: int = 30) -> dict:
    """Wall-clock inference time on CPU (``torch.inference_mode``), in milliseconds.

    Returns ``{"median_ms", "min_ms", "mean_ms"}`` over ``repeats`` timed calls after ``warmup``.
    Run the compared models in the same process, one after the other (timings from different
    machines or runs are not comparable).
    """
    size = _check_input_size(input_size)
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    x = torch.randn(size, generator=torch.Generator().manual_seed(0))
    times = []
    with _threads(threads), _eval_mode(model), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "mean_ms": statistics.fmean(times)}


def compare_latency(models: dict, input_size=(1, 3, 192, 192), *, threads: int | None = 1,
                    warmup: int = 3, rounds: int = 30) -> dict:
    """Time several models on the same input, alternating between them call by call.

    Interleaving spreads any slow phase of a shared machine over all models alike, so the
    ratio of two medians is fairer than timing one model after the other.

    Args:
        models: ``{name: module}``.
    Returns:
        ``{name: {"median_ms", "min_ms", "mean_ms"}}``.
    """
    size = _check_input_size(input_size)
    if warmup < 0 or rounds < 1:
        raise ValueError(f"need warmup >= 0 and rounds >= 1, got {warmup}, {rounds}")
    x = torch.randn(size, generator=torch.Generator().manual_seed(0))
    times = {name: [] for name in models}
    with ExitStack() as stack:
        stack.enter_context(_threads(threads))
        stack.enter_context(torch.inference_mode())
        for model in models.values():
            stack.enter_context(_eval_mode(model))
        for model in models.values():
            for _ in range(warmup):
                model(x)
        for _ in range(rounds):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "mean_ms": statistics.fmean(t)}
            for name, t in times.items()}
