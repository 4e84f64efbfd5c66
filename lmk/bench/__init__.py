"""Benchmarks: ``python -m lmk.bench [--json] [--quick] [--only TOPIC]``.

Each topic module (``decode``, ``synth``, ``models``, ...) exposes ``run(quick) -> {key: number}``
and ``describe() -> {key: label}``. Figures that are compared (a speed-up, a memory ratio) are
measured side by side in one run, never against numbers from another machine or day.
"""

TOPICS = ("decode", "synth", "data", "models")
