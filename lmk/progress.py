"""The one progress-bar wrapper of the project.

Notebooks pass their ``SHOW_PROGRESS`` parameter as ``disable=not SHOW_PROGRESS``: the
``TQDM_DISABLE`` environment variable does not reach bars drawn inside a kernel. ``tqdm.auto``
draws a widget in JupyterLab and a plain text bar elsewhere; ``mininterval`` keeps logs short.
"""

from __future__ import annotations

from tqdm.auto import tqdm


def progress(iterable=None, *, disable: bool = False, desc: str | None = None,
             total: int | None = None, leave: bool = True, **kwargs):
    """Wrap ``iterable`` in a tqdm bar (one bar per loop)."""
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=disable, desc=desc, total=total, leave=leave, **kwargs)
