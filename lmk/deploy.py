"""Faster inference of a trained model: BatchNorm folded, channels-last, ``torch.compile``, ONNX Runtime.

:func:`optimize_for_inference` folds every BatchNorm into the convolution before it
(:func:`fold_batchnorm`), then either keeps torch with channels-last memory (and optionally
``torch.compile``) or exports to ONNX (:func:`export_onnx`) and runs ONNX Runtime
(:class:`OnnxRuntimeModel`). :func:`lmk.complexity.compare_latency` times the results.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .complexity import _check_input_size, _eval_mode, _threads


_CONV_BN = ((nn.Conv2d, nn.BatchNorm2d, False), (nn.ConvTranspose2d, nn.BatchNorm2d, True),
            (nn.Conv1d, nn.BatchNorm1d, False), (nn.ConvTranspose1d, nn.BatchNorm1d, True))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution inside an ``nn.Sequential``.

    In evaluation mode ``BN(conv(x)) = conv'(x)`` with weights ``w gamma / sigma`` and bias
    ``beta + (b - mu) gamma / sigma``, so the BN layer is replaced by ``nn.Identity``. Works in
    place on ``model`` (pass a copy) and returns it; the model must be in eval mode.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (BN uses running statistics)")
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            for conv_type, bn_type, transposed in _CONV_BN:
                if type(conv) is conv_type and type(bn) is bn_type and bn.track_running_stats:
                    module._modules[first] = fuse_conv_bn_eval(conv, bn, transpose=transposed)
                    module._modules[second] = nn.Identity()
                    break
    return model


class ChannelsLast(nn.Module):
    """Run ``model`` with channels-last (NHWC) activations, which oneDNN convolutions prefer."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x):
        return self.model(x.contiguous(memory_format=torch.channels_last))


def optimize_for_inference(model: nn.Module, *, backend: str = "torch", channels_last: bool = True,
                           compile: bool = False, input_size=None, threads: int | None = None) -> nn.Module:
    """A copy of ``model`` prepared for CPU inference; the original is untouched.

    Args:
        backend: ``"torch"``: eval mode, BatchNorm folding (:func:`fold_batchnorm`: one conv
            instead of conv + BN), channels-last memory (oneDNN's preferred layout) and, with
            ``compile=True``, ``torch.compile`` (Inductor fuses the element-wise parts; the first
            call compiles, which takes about a minute on 2 cores). ``"onnxruntime"``: the folded
            model exported to ONNX (:func:`export_onnx`) and run by ONNX Runtime, whose CPU kernels
            fuse each convolution with its activation and pre-pack the weights once.
        input_size: the one input shape of the ONNX graph (``backend="onnxruntime"`` only).
        threads: ONNX Runtime's intra-op threads; None takes ``torch.get_num_threads()`` now.

    On one thread, for MobileNetV2 1.0 + SDD at 192 px, folding + channels-last gives about 1.3x
    over eager, compiling a little more, and ONNX Runtime about 1.6x (``python -m lmk.bench
    --only models`` times them side by side). Outputs equal the eager model's to float rounding.
    """
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    net = fold_batchnorm(copy.deepcopy(model).eval())
    for p in net.parameters():
        p.requires_grad_(False)
    if backend == "onnxruntime":
        if input_size is None:
            raise ValueError("backend='onnxruntime' needs input_size=(B, C, H, W): the exported graph "
                             "has one fixed input shape")
        return OnnxRuntimeModel(export_onnx(net.cpu(), input_size), _check_input_size(input_size),
                                threads)
    if channels_last:
        net = ChannelsLast(net)
    if compile:
        net = torch.compile(net)
    return net


def export_onnx(model: nn.Module, input_size=(1, 3, 192, 192), path=None) -> bytes:
    """Export ``model`` (eval mode) to ONNX with ``torch.onnx.export(..., dynamo=True)``.

    Args:
        input_size: the input shape the graph is traced at (fixed).
        path: if given, the model is also written there (a ``.onnx`` file).
    Returns:
        The serialized ONNX model (``bytes``), ready for ``onnxruntime.InferenceSession``.
    """
    import logging
    import warnings

    size = _check_input_size(input_size)
    # The exporter logs one warning per torchvision operator it cannot register (torchvision is
    # not a dependency here); they say nothing about this model.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with _eval_mode(model), torch.no_grad(), warnings.catch_warnings():
            # torch.export's own use of a deprecated pytree name (an internal matter of torch)
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)",
                                    category=FutureWarning)
            program = torch.onnx.export(model, (torch.zeros(size),), dynamo=True, verbose=False,
                                        input_names=["input"])
    finally:
        registration.setLevel(level)
    data = program.model_proto.SerializeToString()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data


class OnnxRuntimeModel(nn.Module):
    """An ONNX model run by ONNX Runtime on the CPU, called like the module it came from.

    Takes a float tensor of exactly the exported shape and returns a tensor (or a tuple of
    tensors, one per graph output). Made by ``optimize_for_inference(..., backend="onnxruntime")``.
    """

    def __init__(self, onnx_model: bytes, input_size: tuple, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime
        except ImportError as e:      # a requirement of the project; a user's env may lack it
            raise ImportError("backend='onnxruntime' needs the onnxruntime package "
                              "(pip install onnxruntime)") from e
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads() if threads is None else int(threads)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(onnx_model, options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_size = tuple(input_size)

    def forward(self, x: torch.Tensor):
        if tuple(x.shape) != self.input_size:
            raise ValueError(f"this ONNX model was exported for inputs of shape {self.input_size}, "
                             f"got {tuple(x.shape)}")
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        outputs = [torch.from_numpy(o) for o in self.session.run(None, {self.input_name: array})]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
