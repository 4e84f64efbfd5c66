"""``python -m lmk.recipes``: train one recipe into a folder, on one process or under torchrun.

    python -m lmk.recipes train NAME --scale {fast,zoo,full} --out DIR [--data ... --data-root ...]
        [--epochs N] [--n-train N] [--n-val N] [--batch-size N] [--device ...] [--seed N]
        [--precision {fp32,bf16,fp16,fp64}] [--channels-last | --no-channels-last] [--workers N]
    torchrun --nproc_per_node=N -m lmk.recipes train NAME ...      # DistributedDataParallel
    python -m lmk.recipes list [--notebook NN]

``DIR`` gets checkpoints (rerunning the command resumes), ``model.pt`` and ``result.json`` (a zoo
entry); see :mod:`lmk.runs`. ``--batch-size`` is the global batch under torchrun.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import torch

from .. import recipes
from ..distributed import SYNCS, ranks_from_torchrun
from ..runs import train_into
from ..train import PRECISIONS, Execution


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lmk.recipes", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one recipe into --out (resumes there)")
    t.add_argument("name", help="a recipe (python -m lmk.recipes list)")
    t.add_argument("--scale", choices=recipes.SCALES, default="fast")
    t.add_argument("--out", required=True, help="the run's folder: checkpoints, model.pt, result.json")
    t.add_argument("--data", default="synthetic", help="synthetic, 300w, wflw, jd106 (lmk.data.open_source)")
    t.add_argument("--data-root", default=None, help="the real data set's folder")
    t.add_argument("--epochs", type=_positive, help="epochs of every trained stage (default: the scale's)")
    t.add_argument("--n-train", type=_positive)
    t.add_argument("--n-val", type=_positive)
    t.add_argument("--batch-size", type=_positive, help="the global batch (shared by torchrun's processes)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda (under torchrun: each rank's GPU)")
    t.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16 / fp16 autocast (fp16: CUDA only, with a gradient scaler); fp64 for exactness")
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: on at full scale, else the family's choice)")
    t.add_argument("--workers", type=int, default=None,
                   help="data loader workers of each process (default at full scale on CUDA: the CPU "
                        "cores per process less one, at most 8; else 0)")
    t.add_argument("--threads", type=_positive, help="torch CPU threads of each process")
    t.add_argument("--data-cache", default=None,
                   help="render synthetic faces once into this folder (default at full scale: "
                        "render-cache/ beside --out; 'none': render into memory)")
    t.add_argument("--zoo-dir", default=None, help="where recipes that start from a zoo model find it")
    t.add_argument("--no-score", action="store_true", help="write the weights, skip result.json's scoring")
    t.add_argument("--unsynced", choices=SYNCS, action="append", default=[],
                   help="leave this all-reduce out (a negative control for tests)")
    ls = sub.add_parser("list", help="the recipes")
    ls.add_argument("--notebook", default=None)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "list":
        for name in recipes.recipe_names(args.notebook):
            r = recipes.RECIPES[name]
            print(f"{name:28s} notebook {r.notebook}  {r.model}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    ranks, device = ranks_from_torchrun(args.device, tuple(s for s in SYNCS if s not in args.unsynced))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    full = args.scale == "full"
    # one core crops and augments about 200 faces/s at 256 px: a GPU needs several
    cores = (os.cpu_count() or 2) // ranks.world_size
    workers = args.workers if args.workers is not None else (max(1, min(8, cores - 1)) if full and cuda else 0)
    cache = args.data_cache or (str(Path(args.out).resolve().parent / "render-cache") if full else None)
    execution = Execution(args.precision, True if args.channels_last is None and full else args.channels_last,
                          workers, ranks, None if cache == "none" else cache)
    command = " ".join(["python -m lmk.recipes"] + [shlex.quote(a) for a in (argv or sys.argv[1:])])
    try:
        entry = train_into(args.name, args.out, args.scale, data=args.data, data_root=args.data_root,
                           seed=args.seed, n_train=args.n_train, n_val=args.n_val, epochs=args.epochs,
                           batch_size=args.batch_size, device=device, execution=execution,
                           show_progress="epochs" if ranks.writer else False, zoo_dir=args.zoo_dir,
                           command=command, score=not args.no_score)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    finally:
        ranks.barrier()
        if ranks.distributed:
            torch.distributed.destroy_process_group()
    if entry is not None and "metrics" in entry:
        m = entry["metrics"][entry["method"]]
        print(f"{entry['name']}: NME {100 * m['nme']:.2f} % (baseline {100 * entry['baseline_nme']:.2f} %), "
              f"{entry['seconds']:.0f} s on {ranks.world_size} process(es) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
