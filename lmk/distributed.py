"""Training on several processes (``torchrun``): ranks, each rank's share of a batch, and BatchNorm
statistics taken across ranks.

Data-parallel training splits every *global* batch of ``B`` samples between the ``W`` processes
(ranks): rank ``r`` gets samples ``[r B // W, (r + 1) B // W)`` of it, so the shares differ by at
most one sample and the union is the batch one process would see (same shuffling, same
augmentation, which depends on ``(seed, epoch, index)`` only). One process minimises the batch
mean ``L = (1 / B) sum_i l_i``; with shares of ``n_r`` samples and rank losses
``L_r = (1 / n_r) sum_{i in r} l_i``,

    L = sum_r (n_r / B) L_r,

so each rank back-propagates ``(n_r W / B) L_r`` and DistributedDataParallel's *average* of the
gradients (a sum divided by ``W``) is exactly the gradient of ``L``, ragged shares included.

BatchNorm normalises with the mean and variance of the batch. A rank alone sees only its share,
so its statistics differ from one process's; :class:`AllReduceBatchNorm` sums the per-channel sums
over ranks (``torch.distributed.all_reduce``, differentiable: its backward sums the gradients of
every rank's outputs), which gives the statistics of the whole batch. On CUDA, torch's own
``SyncBatchNorm`` does the same (it refuses CPU tensors, hence this module for ``gloo``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["SYNCS", "Ranks", "share_bounds", "RankBatches", "sum_across_ranks", "batch_norm_across",
           "AllReduceBatchNorm", "batchnorm_across_ranks", "ranks_from_torchrun"]

SYNCS = ("gradients", "batchnorm")
"""What a data-parallel run all-reduces; leaving one out (``Ranks.synced``) is a negative control."""


@dataclass(frozen=True)
class Ranks:
    """The processes of one data-parallel run: this one is ``rank`` of ``world_size``.

    ``synced`` lists what is all-reduced: ``"gradients"`` (DistributedDataParallel's averaging)
    and ``"batchnorm"`` (statistics across ranks). Both by default; a test leaves one out to show
    that the run then differs from one process.
    """

    rank: int = 0
    world_size: int = 1
    synced: tuple = SYNCS

    def __post_init__(self):
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, world_size={self.world_size}), got {self.rank}")
        unknown = set(self.synced) - set(SYNCS)
        if unknown:
            raise ValueError(f"synced may hold {SYNCS}, got {sorted(unknown)}")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def writer(self) -> bool:
        """Whether this rank writes checkpoints, logs and results (rank 0 alone)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in a one-process run)."""
        if self.distributed:
            dist.barrier()


def share_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s share of a batch of ``size`` samples (sizes differ by <= 1)."""
    return size * rank // world_size, size * (rank + 1) // world_size


class RankBatches(torch.utils.data.Sampler):
    """This rank's share of every batch of ``batches`` (a batch sampler of the whole run).

    Give the DataLoader the same generator as the one-process loader: it draws its worker base
    seed from it before the shuffle, so both see the same permutation.
    """

    def __init__(self, batches, ranks: Ranks):
        self.batches, self.ranks = batches, ranks

    def __iter__(self):
        for batch in self.batches:
            if len(batch) < self.ranks.world_size:
                raise ValueError(f"a batch of {len(batch)} samples cannot be shared by "
                                 f"{self.ranks.world_size} ranks; use a batch size (and data) of at "
                                 f"least {self.ranks.world_size}")
            start, stop = share_bounds(len(batch), self.ranks.rank, self.ranks.world_size)
            yield batch[start:stop]

    def __len__(self) -> int:
        return len(self.batches)


class _SumAcrossRanks(torch.autograd.Function):
    """``y = sum_r x_r`` on every rank; so ``dL/dx_r = sum_s dL/dy_s``: the backward sums too."""

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone()
        dist.all_reduce(total)
        return total


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks, differentiable (every rank gets the sum)."""
    return _SumAcrossRanks.apply(tensor)


def batch_norm_across(x, weight, bias, eps: float, reduce=sum_across_ranks) -> tuple:
    """Training-mode BatchNorm of this rank's ``x`` with the statistics of every rank's samples.

    Args:
        x: ``(n, C, ...)`` this rank's share of the batch (any memory format).
        weight, bias: ``(C,)`` affine parameters, or None.
        reduce: sums a tensor over ranks (differentiably); the default all-reduces.
    Returns:
        ``(y, mean, var, count)``: the normalised ``x``, the batch's per-channel mean and biased
        variance ``(C,)`` and the number of values per channel over all ranks (a 0-d tensor).
    Two passes, as one process computes them: ``mean = sum x / N``, then
    ``var = sum (x - mean)^2 / N``; ``y = (x - mean) / sqrt(var + eps) * weight + bias``.
    """
    dims = [0, *range(2, x.ndim)]
    shape = [1, -1] + [1] * (x.ndim - 2)
    count = reduce(x.new_tensor(float(x.numel() // x.shape[1])))
    mean = reduce(x.sum(dims)) / count
    centered = x - mean.view(shape)
    var = reduce((centered * centered).sum(dims)) / count
    y = centered * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        y = y * weight.view(shape) + bias.view(shape)
    return y, mean, var, count


class AllReduceBatchNorm(nn.Module):
    """A BatchNorm layer whose training statistics span every rank (``gloo``, CPU tensors).

    It holds the very parameters and buffers of the layer it stands in for (same names, so
    state dicts and optimisers do not notice) and updates the running statistics as torch does:
    ``running = (1 - m) running + m stat``, the variance unbiased (``N / (N - 1)``).
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, reduce=sum_across_ranks):
        super().__init__()
        self.eps, self.momentum, self.reduce = bn.eps, bn.momentum, reduce
        self.weight, self.bias = bn.weight, bn.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(bn, name))
        self.train(bn.training)

    def forward(self, x):
        if not self.training and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                self.eps)
        y, mean, var, count = batch_norm_across(x, self.weight, self.bias, self.eps, self.reduce)
        if self.training and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * count / (count - 1), alpha=m)
        return y


def _synced_copy(bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    if bn.weight is not None and bn.weight.is_cuda or bn.running_mean is not None and bn.running_mean.is_cuda:
        synced = nn.SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        synced.weight, synced.bias = bn.weight, bn.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(synced, name, getattr(bn, name))
        return synced.train(bn.training)
    return AllReduceBatchNorm(bn)


@contextlib.contextmanager
def batchnorm_across_ranks(model: nn.Module):
    """Inside the block, every BatchNorm of ``model`` takes its statistics across ranks.

    Each layer is replaced by one that shares its parameters and buffers (torch's
    ``SyncBatchNorm`` on CUDA, :class:`AllReduceBatchNorm` otherwise); afterwards the original
    layers are back, holding the trained values, in the replacement's train/eval mode.
    """
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, nn.modules.batchnorm._BatchNorm)]
    for parent, name, child in swaps:
        parent._modules[name] = _synced_copy(child)
    try:
        yield model
    finally:
        for parent, name, child in swaps:
            child.train(parent._modules[name].training)
            parent._modules[name] = child


def ranks_from_torchrun(device: str = "auto", synced=SYNCS) -> tuple[Ranks, str]:
    """``(Ranks, device)`` of this process; under ``torchrun`` it also joins the process group.

    ``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them this is a one-process
    run. The backend is NCCL for CUDA (each process on GPU ``LOCAL_RANK``) and gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(0, 1, tuple(synced)), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    elif device == "auto":
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks(rank, world, tuple(synced)), device
