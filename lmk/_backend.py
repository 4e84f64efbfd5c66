"""The one numpy/torch adapter.

Codecs and metrics accept numpy arrays or torch tensors and return the kind they were given.
They call :func:`to_torch` on the way in and :func:`from_torch` on the way out, so the
arithmetic is written once, in torch.
"""

from __future__ import annotations

import numpy as np
import torch


def to_torch(x, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)`` for a numpy array, tensor, list or scalar.

    Numpy float64 stays float64 (no silent precision loss); pass ``dtype`` to force one.
    Tensors keep their device. Non-numeric input raises ``TypeError``.
    """
    if isinstance(x, torch.Tensor):
        return (x if dtype is None else x.to(dtype)), False
    try:
        array = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"expected an array or tensor, got {type(x).__name__}: {exc}") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"expected a numeric array or tensor, got dtype {array.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return (tensor if dtype is None else tensor.to(dtype)), True


def from_torch(t: torch.Tensor, was_numpy: bool):
    """Give back a numpy array if the caller passed numpy, else the tensor unchanged."""
    if was_numpy:
        return t.detach().cpu().numpy()
    return t
