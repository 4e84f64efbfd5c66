"""The one progress wrapper of the project: a tqdm bar, or one compact line per epoch.

Notebooks pass their ``SHOW_PROGRESS`` parameter as ``disable=not SHOW_PROGRESS``: the
``TQDM_DISABLE`` environment variable does not reach bars drawn inside a kernel. ``tqdm.auto``
draws a widget in JupyterLab and a plain text bar elsewhere; ``mininterval`` keeps logs short.

Training takes ``show_progress`` as ``True`` (a bar), ``False`` (silent) or :data:`EPOCH_LINES`
(one line per epoch, printed as it ends, so a live-training cell is never silent for long and
its saved output reads the same in a browser, on a code host and in a log). Such a line is::

    epoch  3/8  loss 0.01234  val NME 7.41 %  4.2 s

Its duration is the only part that changes between identical runs; ``notebooks/nbval.cfg``
replaces durations such as ``4.2 s`` before comparing outputs.
"""

from __future__ import annotations

import math

EPOCH_LINES = "epochs"
SHOW_PROGRESS_VALUES = (True, False, EPOCH_LINES)


def progress(iterable=None, *, disable: bool = False, desc: str | None = None,
             total: int | None = None, leave: bool = True, **kwargs):
    """Wrap ``iterable`` in a tqdm bar (one bar per loop); a disabled bar is ``iterable`` itself,
    so that training without bars needs no tqdm (a bare GPU machine, ``python -m lmk.bench --gpu``)."""
    if disable and iterable is not None:
        return iterable
    from tqdm.auto import tqdm

    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=disable, desc=desc, total=total, leave=leave, **kwargs)


def check_show_progress(value, where: str = "show_progress") -> None:
    """Raise ``ValueError`` unless ``value`` is ``True``, ``False`` or :data:`EPOCH_LINES`."""
    if not (isinstance(value, bool) or value == EPOCH_LINES):
        raise ValueError(f"{where} must be True (a progress bar), False (silent) or "
                         f"{EPOCH_LINES!r} (one line per epoch), got {value!r}")


def epoch_line(epoch: int, epochs: int, loss: float, val_nme: float = math.nan,
               seconds: float = math.nan) -> str:
    """One compact line for a finished epoch; ``val_nme`` is a fraction (NaN: not evaluated)."""
    width = len(str(epochs))
    parts = [f"epoch {epoch:>{width}}/{epochs}", f"loss {loss:.4g}"]
    if not math.isnan(val_nme):
        parts.append(f"val NME {100 * val_nme:.2f} %")
    if not math.isnan(seconds):
        parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)
