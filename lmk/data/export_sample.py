"""Export synthetic faces in the 300W format (PNG + 1-based ``.pts``), e.g. ``data/sample``.

Usage::

    python -m lmk.data.export_sample data/sample            # the committed sample set
    python -m lmk.data.export_sample /tmp/faces --n 200 --size 192 --difficulty hard

The files read back with :class:`lmk.data.PtsFolder` (``DATA="sample"`` in the notebooks), so
the real-data path of the course runs end to end with no download.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .formats import read_pts, write_image, write_pts
from .synth import DIFFICULTIES, SynthFaces

SAMPLE_MIX = (("easy", 8), ("default", 8), ("hard", 4))
"""The committed sample: 20 faces, 8 easy, 8 default, 4 hard."""


def export_sample(folder, mix=SAMPLE_MIX, size: int = 160, seed: int = 2024) -> list[Path]:
    """Write ``{difficulty}_{k:03d}.png`` / ``.pts`` pairs for each ``(difficulty, count)``.

    Every written file is read back and checked against the source landmarks (to the 3
    decimals a ``.pts`` file stores). Returns the ``.pts`` paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for difficulty, count in mix:
        faces = SynthFaces(count, size=size, seed=seed, difficulty=difficulty)
        for k in range(count):
            item = faces[k]
            stem = folder / f"{difficulty}_{k:03d}"
            write_image(stem.with_suffix(".png"), item["image"])
            write_pts(stem.with_suffix(".pts"), item["landmarks"])
            back = read_pts(stem.with_suffix(".pts"), num_points=68)
            if np.abs(back - item["landmarks"]).max() > 6e-4:
                raise RuntimeError(f"{stem}.pts does not read back to the exported landmarks")
            written.append(stem.with_suffix(".pts"))
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="output folder (created if needed)")
    parser.add_argument("--n", type=int, default=None,
                        help="number of faces of one difficulty (default: the 20-face sample mix)")
    parser.add_argument("--difficulty", default="default", choices=sorted(DIFFICULTIES))
    parser.add_argument("--size", type=int, default=160, help="image side in px")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    mix = SAMPLE_MIX if args.n is None else ((args.difficulty, args.n),)
    files = export_sample(args.folder, mix, size=args.size, seed=args.seed)
    print(f"wrote {len(files)} faces (PNG + 300W .pts) to {args.folder}")


if __name__ == "__main__":
    main()
