"""How far each zoo model's figure moves from the validation faces to the held-out test faces.

For every manifest entry, scores the shipped weights on both sets and prints the shift of the main
figure (test - validation, NME points) in units of its standard error over the faces
(``sqrt(s_val^2 / n_val + s_test^2 / n_test)``; a tracker: over per-video means, since frames of one
video are not independent), then the largest shift per notebook. Not run by CI::

    python tools/val_test_shift.py            # about 10 minutes on 2 cores
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch

from lmk import store, zoo


def _units(s: dict, method: str) -> np.ndarray:
    """Independent units of a score: faces, or one mean per tracked video."""
    if "tracks" in s:
        return np.array([float(np.mean(r.nme)) for r in s["tracks"]])
    return np.asarray(s["methods"][method]["nmes"], np.float64)


def shift(name: str) -> tuple:
    torch.set_num_threads(1)
    model, e = zoo.load(name)
    out = {}
    for split in ("val", "test"):
        s = zoo.score(model, e["recipe"], e["mean_shape"], methods=(e["method"],), split=split)
        out[split] = _units(s, e["method"])
    v, t = out["val"], out["test"]
    se = math.sqrt(v.var(ddof=1) / v.size + t.var(ddof=1) / t.size)
    return name, e["notebook"], 100 * v.mean(), 100 * t.mean(), (t.mean() - v.mean()) / se


def main() -> int:
    names = list(store.manifest())
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        rows = list(pool.map(shift, names))
    print(f"{'entry':28s} {'val %':>7s} {'test %':>7s} {'shift / SE':>10s}")
    for name, _, v, t, z in rows:
        print(f"{name:28s} {v:7.2f} {t:7.2f} {z:+10.2f}")
    print("\nlargest shift per notebook (test - validation, in standard errors over faces or videos):")
    for nb in sorted({r[1] for r in rows}):
        name, _, v, t, z = max((r for r in rows if r[1] == nb), key=lambda r: abs(r[4]))
        print(f"  {nb}: {name} {v:.2f} % -> {t:.2f} % ({z:+.2f} SE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
