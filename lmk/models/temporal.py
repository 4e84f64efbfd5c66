"""Yin et al. (2020), Sec. 4.2: the tracker, a 1D heatmap detector with temporal refinement.

The tracker runs the detector of Sec. 4.1 (:class:`lmk.models.MarginalDetector`) on every
frame and refines its 1D heatmaps with features of the past frames. For frame ``t``, with
``E^x_t`` the detector's ``N`` heatmaps on the x axis stacked as an ``(N, L)`` matrix (likewise
``E^y_t``; everything below is done once per axis, with separate networks)::

    U^x_t  = CNN3^x(E^x_t)                                          encode      (C, L)
    V^x_t  = U^x_t + sum_{tau=1}^{t-1} lambda^(t - tau) U^x_tau     Eq. 13      (C, L)
    E^x'_t = CNN4^x(V^x_t)                                          decode      (N, L)
    h^x_t  = E^x_t + E^x'_t                                         the tracking result

The subtle point: the sum over the whole past is one running state per axis. Because
``lambda V_{t-1} = sum_{tau<t} lambda^(t - tau) U_tau``, Eq. 13 is ``V_t = U_t + lambda V_{t-1}``
with ``V_0 = 0``; a tracker keeps the last ``V`` and nothing else. The sum runs over the
encoded *detections* ``U``, never over the refined outputs. :func:`temporal_fusion_sequence`
writes the sum as printed, :func:`temporal_fusion` the recursion; the tests hold them equal.

``lambda`` (Yin: 0.3, by cross-validation over 0.1 .. 1.0) weighs the past: the weights sum to
``(1 - lambda^t) / (1 - lambda) < 1 / (1 - lambda)`` (1.43 at 0.3); ``lambda = 1`` is a plain
running sum that grows with ``t``. ``lambda = 0`` gives ``V_t = U_t``: frame ``t``'s output depends
on frame ``t`` alone, which is how Yin switch the temporal refinement off (Table 2, left of the
slash). It is *not* then literally the detector: ``CNN4(CNN3(E_t))`` is still added, a per-frame
refinement with the same parameters as the temporal one, so Yin's ablation compares equal
capacity. The last layer of each ``CNN4`` starts at zero, so a new tracker outputs exactly its
detector's heatmaps, at any ``lambda``, until it is trained.

What the paper leaves open, and our choice:

* ``CNN3`` and ``CNN4`` are not specified. Ours are two 1D convolutions each (kernel 5, ``C``
  channels, ReLU between; ``CNN3`` ends with a ReLU, ``CNN4`` linearly), sliding along the
  heatmap axis, so one module works for any ``L``; the ``N`` landmarks are the input channels
  of ``CNN3`` and the output channels of ``CNN4``.
* Past features are added position by position, so they assume the face sits at about the same
  place in consecutive crops. Crops that follow the face (a tracker's region of interest, or
  Yin's per-frame face box) keep it so; the fusion does not align frames itself.
* Training (Eq. 14) sums the 1D heatmap loss over the frames of a sequence.
  :meth:`YinTracker.forward` takes clips ``(B, T, 3, F, F)`` and starts every clip from
  ``V_0 = 0``: the clip's ``k``-th frame sees ``k - 1`` past frames, its first none, like a
  video's first frame. At ``lambda = 0.3`` the third frame back weighs 0.027, so clips of 3
  or 4 frames see nearly all the past that matters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._backend import check_positive_int


def check_lambda(lam) -> float:
    """``lam`` as a float if it is a real number in ``[0, 1]`` (Yin Eq. 13), else ``ValueError``."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam (lambda of Yin Eq. 13) must be a number in [0, 1], got {lam!r}")
    return float(lam)


def temporal_fusion(u: Tensor, previous: Tensor | None = None, lam: float = 0.3) -> Tensor:
    """One frame of Eq. 13 as a recursion: ``V_t = U_t + lam * V_{t-1}`` (``V_0 = 0``).

    Args:
        u: ``U_t``, features of the current frame, any shape.
        previous: ``V_{t-1}`` (same shape as ``u``), or None at the first frame.
        lam: ``lambda`` in ``[0, 1]``.
    Returns:
        ``V_t``, the shape of ``u``; also the ``previous`` of the next frame.
    """
    lam = check_lambda(lam)
    if previous is None:
        return u
    if previous.shape != u.shape:
        raise ValueError(f"previous (V_t-1) must have the shape of u (U_t), got "
                         f"{tuple(previous.shape)} and {tuple(u.shape)}")
    return u + lam * previous


def temporal_fusion_sequence(u: Tensor, lam: float = 0.3) -> Tensor:
    """Eq. 13 as printed, for every frame of a sequence: ``V_t = sum_{tau<=t} lam^(t-tau) U_tau``.

    Args:
        u: ``(B, T, ...)``, ``U_1 .. U_T`` along dimension 1.
        lam: ``lambda`` in ``[0, 1]``.
    Returns:
        ``(B, T, ...)``: ``V_1 .. V_T``. The weights form a lower-triangular ``(T, T)`` matrix
        ``W[t, tau] = lam^(t - tau)``, whose diagonal is 1 for every ``lam`` (also 0).
    """
    lam = check_lambda(lam)
    if u.ndim < 2:
        raise ValueError(f"u must have shape (B, T, ...), got {tuple(u.shape)}")
    steps = torch.arange(u.shape[1], device=u.device)
    age = (steps[:, None] - steps[None, :]).to(u.dtype)          # t - tau
    weights = torch.where(age >= 0, torch.full_like(age, lam) ** age.clamp_min(0),
                          torch.zeros_like(age))                 # (T, T)
    flat = u.reshape(u.shape[0], u.shape[1], -1)                 # (B, T, D)
    return (weights @ flat).reshape(u.shape)


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv1d:
    return nn.Conv1d(cin, cout, kernel, padding=kernel // 2)


class TemporalRefinement(nn.Module):
    """``CNN3``, Eq. 13 and ``CNN4`` on both axes: detected 1D heatmaps -> refined ones.

    Args:
        num_landmarks: ``N``.
        channels: ``C``, channels of the features ``U`` and ``V``.
        lam: ``lambda`` of Eq. 13, a fixed hyper-parameter in ``[0, 1]`` (Yin: 0.3).
        kernel_size: odd kernel of the 1D convolutions along the heatmap axis.
    """

    def __init__(self, num_landmarks: int = 68, channels: int = 32, lam: float = 0.3,
                 kernel_size: int = 5):
        super().__init__()
        n = check_positive_int(num_landmarks, "num_landmarks")
        c = check_positive_int(channels, "channels")
        k = check_positive_int(kernel_size, "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the heatmap length is kept), got {k}")
        self.encoders = nn.ModuleDict({axis: nn.Sequential(
            _conv(n, c, k), nn.ReLU(inplace=True), _conv(c, c, k), nn.ReLU(inplace=True))
            for axis in "xy"})                                   # CNN3^x, CNN3^y
        self.decoders = nn.ModuleDict({axis: nn.Sequential(
            _conv(c, c, k), nn.ReLU(inplace=True), _conv(c, n, k)) for axis in "xy"})  # CNN4
        for decoder in self.decoders.values():                   # a new tracker = its detector
            nn.init.zeros_(decoder[-1].weight)
            nn.init.zeros_(decoder[-1].bias)
        self.num_landmarks, self.channels = n, c
        self.lam = check_lambda(lam)

    def _check(self, hx: Tensor, hy: Tensor, lead: int) -> None:
        shape = "(B, T, N, L)" if lead == 2 else "(B, N, L)"
        for name, h in (("hx", hx), ("hy", hy)):
            if not isinstance(h, Tensor) or h.ndim != lead + 2 \
                    or h.shape[-2] != self.num_landmarks:
                got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
                raise ValueError(f"{name} must have shape {shape} with N = {self.num_landmarks}, "
                                 f"got {got}")
        if hx.shape[:lead] != hy.shape[:lead]:
            raise ValueError(f"hx and hy must share their leading dims, got {tuple(hx.shape)} "
                             f"and {tuple(hy.shape)}")

    def encode(self, h: Tensor, axis: str) -> Tensor:
        """``CNN3``: ``E`` ``(B, N, L)`` -> ``U`` ``(B, C, L)``."""
        return self.encoders[axis](h)

    def decode(self, v: Tensor, axis: str) -> Tensor:
        """``CNN4``: ``V`` ``(B, C, L)`` -> the refinement ``E'`` ``(B, N, L)``."""
        return self.decoders[axis](v)

    def step(self, hx: Tensor, hy: Tensor, state: tuple | None = None):
        """One frame: ``(hx, hy)`` each ``(B, N, L)`` and the last state -> refined pair, state.

        Args:
            hx, hy: the detector's heatmaps ``E^x_t``, ``E^y_t`` of the current frame.
            state: ``(V^x_{t-1}, V^y_{t-1})``, each ``(B, C, L)``, or None at the first frame.
        Returns:
            ``((h^x_t, h^y_t), (V^x_t, V^y_t))``.
        """
        self._check(hx, hy, 1)
        if state is not None and (not isinstance(state, (tuple, list)) or len(state) != 2):
            raise ValueError("state must be the pair (V^x, V^y) that step returned, or None")
        refined, fused = [], []
        for i, (axis, h) in enumerate((("x", hx), ("y", hy))):
            v = temporal_fusion(self.encode(h, axis), None if state is None else state[i], self.lam)
            fused.append(v)
            refined.append(h + self.decode(v, axis))
        return tuple(refined), tuple(fused)

    def forward(self, hx: Tensor, hy: Tensor) -> tuple[Tensor, Tensor]:
        """Clips: ``hx`` ``(B, T, N, Lx)``, ``hy`` ``(B, T, N, Ly)`` -> refined, same shapes.

        Every clip starts from ``V_0 = 0`` (its first frame has no past).
        """
        self._check(hx, hy, 2)
        out = []
        for axis, h in (("x", hx), ("y", hy)):
            b, t, n, length = h.shape
            u = self.encode(h.reshape(b * t, n, length), axis).view(b, t, self.channels, length)
            v = temporal_fusion_sequence(u, self.lam).reshape(b * t, self.channels, length)
            out.append(h + self.decode(v, axis).view(b, t, n, length))
        return out[0], out[1]


class YinTracker(nn.Module):
    """Yin et al. (2020) Fig. 2b: a 1D heatmap detector plus :class:`TemporalRefinement`.

    Args:
        detector: a :class:`lmk.models.MarginalDetector` (or any module mapping ``(B, 3, F, F)``
            images to the pair ``(hx, hy)``, each ``(B, N, L)``), trained or not.
        lam: ``lambda`` of Eq. 13 (Yin: 0.3; 0 switches the temporal part off).
        channels, kernel_size: of :class:`TemporalRefinement`.

    ``forward`` takes clips for training (Eq. 14 is then the 1D heatmap loss summed over the
    clip's frames), :meth:`step` one frame at a time for tracking. Both return heatmaps that
    ``lmk.codecs.MarginalCodec`` decodes, as the detector's.
    """

    def __init__(self, detector: nn.Module, lam: float = 0.3, *, channels: int = 32,
                 kernel_size: int = 5):
        super().__init__()
        n = getattr(detector, "num_landmarks", None)
        if not isinstance(detector, nn.Module) or not isinstance(n, int):
            raise ValueError("detector must be an nn.Module with an int num_landmarks (a "
                             f"MarginalDetector), got {type(detector).__name__}")
        self.detector = detector
        self.refinement = TemporalRefinement(n, channels, lam, kernel_size)
        self.num_landmarks = n

    @property
    def lam(self) -> float:
        return self.refinement.lam

    def forward(self, clips: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, T, 3, F, F)`` clips -> ``(hx, hy)``, each ``(B, T, N, L)``."""
        if not isinstance(clips, Tensor) or clips.ndim != 5:
            got = tuple(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__
            raise ValueError(f"clips must have shape (B, T, 3, F, F), got {got}; "
                             "use step() for one frame at a time")
        b, t = clips.shape[:2]
        hx, hy = self.detector(clips.flatten(0, 1))
        return self.refinement(hx.unflatten(0, (b, t)), hy.unflatten(0, (b, t)))

    def step(self, images: Tensor, state: tuple | None = None):
        """One frame ``(B, 3, F, F)`` and the last state -> ``((hx, hy), state)`` (see
        :meth:`TemporalRefinement.step`); pass None as the state at a video's first frame."""
        hx, hy = self.detector(images)
        return self.refinement.step(hx, hy, state)

