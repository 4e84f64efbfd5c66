"""Command line of the benchmarks; see :mod:`lmk.bench`."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch

from . import TOPICS


def _modules() -> dict:
    """The topic modules, imported only for the CPU benchmarks (``--gpu`` needs none of them)."""
    from . import data, decode, models, ops, synth, training

    return {"decode": decode, "synth": synth, "data": data, "models": models, "ops": ops, "training": training}


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmk.bench", description=__doc__)
    parser.add_argument("--json", action="store_true",
                        help="also print one flat JSON object of all figures as the last line")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--only", action="append", choices=TOPICS, help="run only this topic")
    parser.add_argument("--gpu", action="store_true",
                        help="train every family at full scale on a CUDA GPU (about 6 minutes; lmk.bench.gpu)")
    args = parser.parse_args(argv)
    if args.gpu:
        from . import gpu          # imports torch, numpy, OpenCV and lmk only

        return gpu.main()

    print(f"lmk.bench  python {platform.python_version()}  torch {torch.__version__}  "
          f"{platform.machine()}  threads {torch.get_num_threads()}")
    figures: dict[str, float] = {}
    modules = _modules()
    for topic in args.only or TOPICS:
        module = modules[topic]
        start = time.perf_counter()
        results = module.run(quick=args.quick)
        labels = module.describe()
        print(f"\n[{topic}]  ({time.perf_counter() - start:.1f} s)")
        width = max((len(labels.get(k, k)) for k in results), default=10)
        for key, value in results.items():
            print(f"  {labels.get(key, key):<{width}}  {_format(value):>14}   ({key})")
        figures.update(results)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
