"""What every loss in :mod:`lmk.losses` shares: the batch reduction, the shape checks, the batch.

A loss first computes **one value per image** and then reduces over the batch with
:func:`_reduce`: ``"mean"`` averages the per-image values, ``"sum"`` adds them, ``"none"``
returns them as a ``(B,)`` tensor. The ``loss_fn(outputs, batch)`` wrappers read the
ground truth from the training batch with :func:`_landmarks` and make their targets from it
with :func:`_encode`, so datasets never store targets.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_pair(pred: torch.Tensor, target: torch.Tensor, names: tuple[str, str],
                min_ndim: int, shape_doc: str) -> None:
    for name, t in zip(names, (pred, target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor {shape_doc}, got {type(t).__name__}")
        if t.ndim < min_ndim:
            raise ValueError(f"{name} must have shape {shape_doc}, got {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape {shape_doc}, "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")


def _check_points(pred: torch.Tensor, gt: torch.Tensor) -> None:
    _check_pair(pred, gt, ("pred", "gt"), 3, "(B, N, 2)")
    if pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must have shape (B, N, 2), got {tuple(pred.shape)}")


def _check_weights(weights, shape: tuple[int, int]) -> torch.Tensor | None:
    if weights is None:
        return None
    if tuple(weights.shape) != tuple(shape):
        raise ValueError(f"weights must have shape (B, N) = {tuple(shape)}, got {tuple(weights.shape)}")
    return weights


def _landmarks(batch: dict) -> torch.Tensor:
    if "landmarks" not in batch:
        raise KeyError(f"the batch has no 'landmarks' (B, N, 2) to make targets from; "
                       f"its keys are {sorted(batch)}")
    return batch["landmarks"]


def _encode(codec, batch: dict):
    """``codec.encode(batch["landmarks"])`` without gradients (targets are constants)."""
    with torch.no_grad():
        return codec.encode(_landmarks(batch))
