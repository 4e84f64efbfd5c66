"""The codec contract, one class per output representation, and :func:`build_codec`.

Every codec maps landmarks in *input pixels* to the targets of one representation and the
matching model's outputs back, with the same two signatures::

    targets = codec.encode(batch["landmarks"])   # (B, N, 2) input px -> what the loss compares
    points = codec.decode(model(images))          # the model's outputs -> (B, N, 2) input px
    points, confidence = codec.decode(model(images), return_confidence=True)   # + (B, N)

so a training loop or a recipe never asks which codec it holds. Targets, model outputs and
the confidence that ``decode`` returns:

* :class:`HeatmapCodec` -- ``(B, N, H, W)`` 2D Gaussians; the peak value of each map.
* :class:`MarginalCodec` -- the pair ``(hx (B, N, W), hy (B, N, H))``; the lower of the peaks.
* :class:`CoordinateCodec` -- ``(B, N, 2)`` normalised to ``[-1, 1]``; NaN (a regression head
  states no confidence).

``codec.config()`` is a plain, JSON-ready dict (``{"type": "heatmap", "input_size": [256, 256],
...}``) that :func:`build_codec` turns back into an equal codec, so a recipe or a model manifest
can record the codec it trained with.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .._backend import as_float, check_size, from_torch, to_torch
from ..geometry import rescale_points, resize_points
from .decoders import decode_heatmaps, decode_marginals
from .targets import as_points, check_method, check_sigma, gaussian_heatmaps, gaussian_marginals


class Codec:
    """Base class: ``encode(landmarks) -> targets``, ``decode(outputs) -> landmarks``.

    A subclass names its config ``type`` in ``kind``, lists its constructor arguments in
    ``arguments`` (stored as attributes of the same names: ``config``, ``repr`` and equality
    come from them), and implements :meth:`encode` and :meth:`_decode`.

    Attributes:
        input_size: ``(H, W)`` of the network input, in pixels.
    """

    kind = ""
    arguments: tuple[str, ...] = ("input_size",)

    def __init__(self, input_size):
        self.input_size = check_size(input_size, "input_size")

    def encode(self, landmarks):
        """``(..., N, 2)`` landmarks in input pixels -> the targets the model should output."""
        raise NotImplementedError

    def decode(self, outputs, return_confidence: bool = False):
        """The model's outputs -> ``(..., N, 2)`` landmarks in input pixels.

        Args:
            outputs: what the matching model returns (one argument for every codec; for
                :class:`MarginalCodec` the pair ``(hx, hy)``), numpy or torch.
            return_confidence: also return a ``(..., N)`` confidence per landmark.
        Returns:
            Points of the same kind as ``outputs``, and optionally the confidences.
        """
        if not isinstance(return_confidence, (bool, np.bool_)):
            raise TypeError(f"return_confidence must be a bool, got {type(return_confidence).__name__}"
                            f": {type(self).__name__}.decode takes the model's outputs as one "
                            "argument (the pair (hx, hy) for 1D heatmaps)")
        points, confidence = self._decode(outputs)
        return (points, confidence) if return_confidence else points

    def _decode(self, outputs):
        """``(points (..., N, 2) in input pixels, confidence (..., N))``, same kind as ``outputs``."""
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments plus ``"type"``, with plain lists and numbers (JSON-ready)."""
        config = {"type": self.kind}
        for name in self.arguments:
            value = getattr(self, name)
            config[name] = list(value) if isinstance(value, tuple) else value
        return config

    def replace(self, **changes) -> Codec:
        """A copy with some constructor arguments changed, e.g. ``codec.replace(method="argmax")``."""
        return build_codec({**self.config(), **changes})

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.arguments)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(repr(self))


class _GaussianCodec(Codec):
    """What 2D and 1D heatmap codecs share: the grid of heatmap cells over the input."""

    arguments = ("input_size", "heatmap_size", "sigma", "method")

    def __init__(self, input_size, heatmap_size, sigma: float = 2.0, method: str = "dark"):
        super().__init__(input_size)
        self.heatmap_size = check_size(heatmap_size, "heatmap_size")
        self.sigma = check_sigma(sigma)
        check_method(method)
        self.method = method

    def to_heatmap(self, landmarks):
        """Input pixels -> heatmap cells (:func:`lmk.geometry.resize_points`)."""
        return resize_points(landmarks, self.input_size, self.heatmap_size)

    def to_input(self, points):
        """Heatmap cells -> input pixels."""
        return resize_points(points, self.heatmap_size, self.input_size)


class HeatmapCodec(_GaussianCodec):
    """Landmarks in input pixels <-> 2D Gaussian heatmaps (Earp et al. (2021), Sec. 2).

    Args:
        input_size: ``(H, W)`` of the network input image (or an int).
        heatmap_size: ``(H, W)`` of the heatmaps (or an int), e.g. a quarter of the input.
        sigma: Gaussian std in heatmap cells.
        method: decoder, one of :data:`lmk.codecs.METHODS`. DARK blurs with ``sigma``.

    Example::

        codec = HeatmapCodec(256, 64, sigma=2.0)
        targets = codec.encode(landmarks)        # (B, N, 2) input px -> (B, N, 64, 64)
        points = codec.decode(model(images))     # (B, N, 64, 64) -> (B, N, 2) input px
    """

    kind = "heatmap"

    def encode(self, landmarks):
        """``(..., N, 2)`` input pixels -> ``(..., N, H, W)`` target heatmaps."""
        p, was_numpy = as_points(landmarks)
        return from_torch(gaussian_heatmaps(self.to_heatmap(p), self.heatmap_size, self.sigma),
                          was_numpy)

    def _decode(self, heatmaps):
        h, was_numpy = to_torch(heatmaps)
        if h.ndim < 3 or tuple(h.shape[-2:]) != self.heatmap_size:
            raise ValueError(f"heatmaps must have shape (..., N, {self.heatmap_size[0]}, "
                             f"{self.heatmap_size[1]}), got {tuple(h.shape)}")
        points, peak = decode_heatmaps(h, self.method, blur_sigma=self.sigma,
                                       return_confidence=True)
        return from_torch(self.to_input(points), was_numpy), from_torch(peak, was_numpy)


class MarginalCodec(_GaussianCodec):
    """Landmarks in input pixels <-> 1D marginal heatmaps ``(hx, hy)`` (Yin et al. (2020)).

    ``O(N L)`` numbers instead of ``O(N L^2)``: the marginals of the 2D Gaussian on the x and y
    axes (Eq. 12). Same arguments as :class:`HeatmapCodec`; ``heatmap_size = (H, W)`` gives the
    lengths of ``hy`` and ``hx``. Yin et al. use 1D maps three times longer than the input side.
    The targets and the outputs are one pair ``(hx, hy)``, as a 1D model returns them.
    """

    kind = "marginal"

    def encode(self, landmarks):
        """``(..., N, 2)`` input pixels -> the pair ``(hx (..., N, W), hy (..., N, H))``."""
        p, was_numpy = as_points(landmarks)
        hx, hy = gaussian_marginals(self.to_heatmap(p), self.heatmap_size, self.sigma)
        return from_torch(hx, was_numpy), from_torch(hy, was_numpy)

    def _decode(self, outputs):
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            got = f"{type(outputs).__name__}" + (f" of shape {tuple(outputs.shape)}"
                                                 if hasattr(outputs, "shape") else "")
            raise ValueError(f"MarginalCodec.decode takes the pair (hx, hy) that a 1D model "
                             f"returns, got {got}")
        tx, was_numpy = to_torch(outputs[0])
        ty, _ = to_torch(outputs[1])
        (H, W) = self.heatmap_size
        if tx.ndim < 2 or tx.shape[-1] != W or ty.ndim < 2 or ty.shape[-1] != H:
            raise ValueError(f"expected hx (..., N, {W}) and hy (..., N, {H}), got "
                             f"{tuple(tx.shape)} and {tuple(ty.shape)}")
        points, peak = decode_marginals(tx, ty, self.method, blur_sigma=self.sigma,
                                        return_confidence=True)
        return from_torch(self.to_input(points), was_numpy), from_torch(peak, was_numpy)


class CoordinateCodec(Codec):
    """Landmarks in input pixels <-> normalised coordinates for regression heads.

    The normalised coordinate is ``u = 2 (x + 0.5) / W - 1``: ``-1`` and ``+1`` are the outer
    edges of the image, ``0`` its centre -- the convention of
    ``torch.nn.functional.grid_sample(..., align_corners=False)``.

    A regression head states no confidence, so ``decode(..., return_confidence=True)`` gives NaN
    for every landmark (not ones: nothing downstream should mistake it for certainty).

    Args:
        input_size: ``(H, W)`` of the input image, or an int.
    """

    kind = "coordinate"

    def encode(self, landmarks):
        """``(..., N, 2)`` input pixels -> ``(..., N, 2)`` normalised to ``[-1, 1]`` inside."""
        p, was_numpy = as_points(landmarks)
        h, w = self.input_size
        return from_torch(rescale_points(p, (2.0 / w, 2.0 / h)) - 0.5, was_numpy)

    def _decode(self, outputs):
        u, was_numpy = to_torch(outputs)
        u = as_float(u)
        if u.ndim < 2 or u.shape[-1] != 2:
            raise ValueError(f"outputs must have shape (..., N, 2), got {tuple(u.shape)}")
        h, w = self.input_size
        points = rescale_points(u + 0.5, (w / 2.0, h / 2.0))  # NaN stays NaN
        confidence = torch.full(u.shape[:-1], float("nan"), dtype=u.dtype, device=u.device)
        return from_torch(points, was_numpy), from_torch(confidence, was_numpy)


class StageCodec(Codec):
    """The estimates of a multi-stage refinement model, in input pixels; ``method`` picks one.

    A refinement model returns one estimate per stage, so "decoding" means choosing the stage:

    * FFLD (Yan et al. 2020) returns ``[S_0, S_1, ..., S_K]`` (or ``{"points": that list,
      "features": ...}`` when trained with the Align Loss): ``"stage0"`` is the baseline
      regression, ``"stageK"`` the estimate after ``K`` CropNet corrections.
    * CCNN (Mahpod et al. 2018) returns a dict: ``"unitK"`` is ``P_K``, the ``K``-th regression
      unit's refined estimate (units numbered from 1), ``"argmaxK"`` the maxima of the ``K``-th
      heatmap unit before refinement (``P^_K``).
    * ``"last"`` is the model's answer: the last stage or unit.

    ``encode`` returns the landmarks themselves: these models are trained on coordinates (and
    their own heatmaps, see :class:`lmk.losses.CascadeLoss`). No confidence is stated (NaN).

    Args:
        input_size: ``(H, W)`` of the input image, or an int.
        method: ``"last"``, ``"stageK"``, ``"unitK"`` or ``"argmaxK"``.
    """

    kind = "stages"
    arguments = ("input_size", "method")

    def __init__(self, input_size, method: str = "last"):
        super().__init__(input_size)
        self.method = method
        self._kind, self._index = self._parse(method)

    @staticmethod
    def _parse(method) -> tuple[str, int]:
        if method == "last":
            return "last", -1
        for kind in ("stage", "unit", "argmax"):
            if isinstance(method, str) and method.startswith(kind) and method[len(kind):].isdigit():
                return kind, int(method[len(kind):])
        raise ValueError(f"method must be 'last', 'stageK', 'unitK' or 'argmaxK' (K a number), "
                         f"got {method!r}")

    def encode(self, landmarks):
        p, was_numpy = as_points(landmarks)
        return from_torch(p, was_numpy)

    def _estimates(self, outputs) -> list:
        if isinstance(outputs, Mapping):
            key = {"stage": "points", "unit": "coordinates", "argmax": "maxima"}.get(self._kind)
            if key is None:                                       # "last"
                key = "points" if "points" in outputs else "coordinates"
            if key not in outputs:
                raise ValueError(f"method {self.method!r} reads outputs[{key!r}], but the model's "
                                 f"outputs have keys {sorted(outputs)}")
            return list(outputs[key])
        if isinstance(outputs, (list, tuple)) and self._kind in ("stage", "last"):
            return list(outputs)
        raise ValueError(f"method {self.method!r} needs a list of per-stage estimates (FFLD) or a "
                         f"dict of them (CCNN), got {type(outputs).__name__}")

    def _decode(self, outputs):
        estimates = self._estimates(outputs)
        first = 1 if self._kind in ("unit", "argmax") else 0         # CCNN units count from 1
        index = self._index - first if self._kind != "last" else len(estimates) - 1
        if not 0 <= index < len(estimates):
            names = [f"{self._kind}{i + first}" for i in range(len(estimates))]
            raise ValueError(f"method {self.method!r}: the model returned {len(estimates)} "
                             f"estimates ({', '.join(names)})")
        points, was_numpy = to_torch(estimates[index])
        points = as_float(points)
        if points.ndim < 2 or points.shape[-1] != 2:
            raise ValueError(f"estimates must have shape (..., N, 2), got {tuple(points.shape)}")
        confidence = torch.full(points.shape[:-1], float("nan"), dtype=points.dtype,
                                device=points.device)
        return from_torch(points, was_numpy), from_torch(confidence, was_numpy)


class LandmarksOutput:
    """The decoder of a model that regresses landmarks into a dict: ``outputs["landmarks"]``.

    Xia et al.'s ATPN returns ``{"landmarks": (B, N, 2), "pose": ..., "confidence": ...}`` with the
    landmarks already in input pixels, so decoding only picks them out (``method`` "regression").
    """

    method = "regression"

    def __init__(self, input_size):
        self.input_size = check_size(input_size, "input_size")

    def decode(self, outputs: dict) -> torch.Tensor:
        if not isinstance(outputs, dict) or "landmarks" not in outputs:
            raise ValueError("expected the model's output dict with a 'landmarks' (B, N, 2) entry")
        return outputs["landmarks"]


CODECS = {cls.kind: cls for cls in (HeatmapCodec, MarginalCodec, CoordinateCodec, StageCodec)}


def build_codec(config: Mapping) -> Codec:
    """Rebuild a codec from its :meth:`Codec.config` (e.g. read back from a JSON manifest).

    Args:
        config: ``{"type": one of CODECS, **constructor arguments}``.
    Raises:
        ValueError: no or an unknown ``"type"``, or an argument the codec does not take.
    """
    if not isinstance(config, Mapping) or "type" not in config:
        raise ValueError(f"a codec config is a dict with a 'type' ({', '.join(CODECS)}), "
                         f"got {config!r}")
    cls = CODECS.get(config["type"])
    if cls is None:
        raise ValueError(f"unknown codec type {config['type']!r}; expected one of {tuple(CODECS)}")
    args = {k: v for k, v in config.items() if k != "type"}
    unknown = sorted(set(args) - set(cls.arguments))
    if unknown:
        raise ValueError(f"{cls.__name__} takes {cls.arguments}, got unknown {unknown}")
    return cls(**args)
