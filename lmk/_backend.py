"""The one numpy/torch adapter and the one checking layer.

Codecs and metrics accept numpy arrays or torch tensors and return the kind they were given.
They call :func:`to_torch` on the way in and :func:`from_torch` on the way out, so the
arithmetic is written once, in torch.

Every module checks sizes, counts and float conversions with the functions here, so the same
input gets the same answer everywhere:

* **Sizes and counts** (:func:`check_size`, :func:`check_positive_int`): a Python int or a
  numpy integer scalar (``np.int64(8)``, as ``image.shape`` arithmetic produces), or for a size
  a pair ``(H, W)`` of those (tuple, list, ``torch.Size`` or integer array). Floats are refused
  even when integral (``64.0`` and ``5.9`` alike: a pixel count that went through a division
  is a bug to fix, not to round), and so are bools and values <= 0. Every refusal is a
  ``ValueError`` naming the argument and showing the value.
* **Floats** (:func:`as_float`): floating tensors keep their dtype (float64 stays float64,
  float16 stays float16); integer and bool tensors become torch's default dtype (float32), the
  dtype torch itself gives ``int_tensor * 0.5``. So integer landmarks give float32 from
  ``gaussian_heatmaps``, ``rescale_points`` and ``nme`` alike.
"""

from __future__ import annotations

import numbers

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


def as_float(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself if floating, else ``t`` in torch's default dtype (float32).

    The project's one float conversion rule (see the module docstring).
    """
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def _is_int(value) -> bool:
    """A Python or numpy integer, not a bool (``True`` is an ``int`` to Python, not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value, name: str) -> int:
    """``value`` as a Python int if it is a positive (numpy) integer, else ``ValueError``.

    Args:
        value: the argument to check.
        name: the argument's name, shown in the error.
    """
    number = value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if not _is_int(number) or number <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(number)


def check_size(size, name: str = "size") -> tuple[int, int]:
    """An image or map size as ``(H, W)`` Python ints; an int ``n`` means ``(n, n)``.

    Args:
        size: a positive (numpy) integer, or a pair ``(H, W)`` of them.
        name: the argument's name, shown in the error.
    Returns:
        ``(H, W)``.
    Raises:
        ValueError: a float (even ``64.0``), a bool, a value <= 0 or not two values.
    """
    given = size
    if isinstance(size, np.ndarray):
        size = size.tolist() if size.dtype.kind in "iu" else None   # int, list or nested list
    if _is_int(size):
        size = (size, size)
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(_is_int(v) and v > 0 for v in size)):
        raise ValueError(f"{name} must be a positive int or a pair (H, W) of positive ints, "
                         f"got {given!r}")
    return int(size[0]), int(size[1])
