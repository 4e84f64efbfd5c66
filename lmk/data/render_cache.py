"""Rendered synthetic faces kept on disk: render once per data set, read back as memory maps.

At full scale a training run renders 10,000 faces of 256 px (about 1,150 faces/s at 128 px on
one core, four times slower at 256 px), every rank of a data-parallel run does it again, and so
does every recipe of a zoo build. :func:`cached_items` renders a source once into a folder
(``images.npy``: one ``(n, H, W, 3)`` uint8 array, plus one ``.npy`` per other field) and returns
its items as a list of dicts whose images are read-only views of the memory-mapped file: the
operating system shares the pages between processes and loads them on first use.

The folder's name is a digest of the source's ``repr`` (for :class:`lmk.data.SynthFaces`: ``n``,
``size``, ``seed``, difficulty) and of its first item, so another renderer or difficulty gets
another folder; the first and last items are rendered again and compared on every use. A cache
is written to a temporary folder and renamed, so a killed render leaves no half cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["cached_items", "cache_key"]

_DONE = "fields.json"


def cache_key(source) -> str:
    """The folder name of a source's cache: a digest of its ``repr`` and its first item."""
    digest = hashlib.sha256(f"{type(source).__name__}|{source!r}|{len(source)}".encode())
    for key, value in sorted(source[0].items()):
        digest.update(key.encode() + np.ascontiguousarray(value).tobytes())
    return f"{type(source).__name__.lower()}-{digest.hexdigest()[:16]}"


def _render_range(source, folder: str, start: int, stop: int) -> dict:
    """Render items ``start .. stop - 1`` into the memory map; return their other fields stacked."""
    images = np.load(Path(folder) / "images.npy", mmap_mode="r+")
    fields = []
    for i in range(start, stop):
        item = source[i]
        images[i] = item["image"]
        fields.append({k: np.asarray(v) for k, v in item.items() if k != "image"})
    images.flush()
    return {k: np.stack([f[k] for f in fields]) for k in fields[0]}


def _render(source, folder: Path, workers: int) -> None:
    """Render every item of ``source`` into the empty folder ``folder``."""
    n, first = len(source), source[0]
    np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8,
                              shape=(n, *np.asarray(first["image"]).shape))
    chunks = [(s, min(s + 256, n)) for s in range(0, n, 256)]
    if workers > 0:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_render_range, *zip(*[(source, str(folder), s, e) for s, e in chunks])))
    else:
        parts = [_render_range(source, str(folder), s, e) for s, e in chunks]
    names = [k for k in first if k != "image"]
    for key in names:
        np.save(folder / f"{key}.npy", np.concatenate([p[key] for p in parts]))
    (folder / _DONE).write_text(json.dumps({"n": n, "fields": names, "source": repr(source)}) + "\n")


def cached_items(source, cache_dir, workers: int = 0) -> list[dict]:
    """Every item of ``source`` as a list of dicts, rendered once into ``cache_dir``.

    Args:
        source: an indexable source of dicts whose ``image`` is an ``(H, W, 3)`` uint8 array and
            whose other values are fixed-shape arrays (e.g. :class:`lmk.data.SynthFaces`), item
            ``i`` a pure function of ``i``.
        cache_dir: the folder of caches (created); each source gets a folder of its own.
        workers: processes that render a new cache (0: this one).
    Returns:
        ``[{"image": read-only view of the memory map, other fields...}, ...]``, equal item by
        item to ``[source[i] for i in range(len(source))]``.
    """
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / cache_key(source)
    if not (folder / _DONE).is_file():
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".rendering-"))
        try:
            _render(source, tmp, workers)
            try:
                os.replace(tmp, folder)
            except OSError:           # another process finished the same cache first: keep its
                if not (folder / _DONE).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    fields = json.loads((folder / _DONE).read_text())["fields"]
    images = np.load(folder / "images.npy", mmap_mode="r")
    arrays = {k: np.load(folder / f"{k}.npy") for k in fields}
    items = [{"image": images[i], **{k: v[i] for k, v in arrays.items()}} for i in range(len(images))]
    for i in sorted({0, len(items) - 1}):        # the renderer may have changed since
        fresh = source[i]
        if any(not np.array_equal(np.asarray(fresh[k]), items[i][k]) for k in fresh):
            raise ValueError(f"render cache {folder} does not match {source!r} at item {i}: delete "
                             "the folder (the renderer changed since it was written)")
    return items
