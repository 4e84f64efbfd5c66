"""Run the whole course with papermill: ``python -m lmk.course``.

Every notebook in ``notebooks/`` (``NN_name.ipynb``, in order) is executed with the given
parameters; the executed copies and a ``summary.md`` with each notebook's closing results table
go to ``runs/<timestamp>/``. Parameters are checked against every notebook's ``parameters``
cell *before* anything runs, and a notebook that fails stops the run, naming the notebook and
the failing cell.

Examples::

    python -m lmk.course                          # all notebooks, fast mode
    python -m lmk.course --only 01 --only 02      # a subset
    python -m lmk.course --scale full -p DATA 300w -p DATA_ROOT /data/300w
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from .params import ParameterError, check_value

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")
ROOT = Path(__file__).resolve().parent.parent
# Rules every notebook shares, on top of the types inferred from each parameters cell.
COMMON_SPEC = {"SCALE": ("fast", "full"), "SEED": int, "SHOW_PROGRESS": bool}


def _plain(value):
    """Make numpy / torch scalars JSON-serialisable."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def write_results(path, notebook: str, table: list[dict], metrics: dict | None = None) -> dict:
    """Record a notebook's closing results table (and headline metrics) for the course summary.

    Args:
        path: JSON file to write, or ``None`` (interactive use: nothing is written).
        notebook: the notebook's name, e.g. ``"01_quantization_error"``.
        table: rows of the closing table, dicts with the same keys.
        metrics: optional flat ``{name: number}`` headline figures.
    Returns:
        The record (also when nothing is written).
    """
    if not isinstance(table, list) or not all(isinstance(r, dict) for r in table):
        raise TypeError("table must be a list of dicts (one per row)")
    keys = [list(r) for r in table]
    if any(k != keys[0] for k in keys):
        raise ValueError("every row of the results table must have the same keys in the same order")
    record = {
        "notebook": notebook,
        "table": [{k: _plain(v) for k, v in row.items()} for row in table],
        "metrics": {k: _plain(v) for k, v in (metrics or {}).items()},
    }
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(path)
    return record


def markdown_table(rows: list[dict]) -> str:
    """Render rows (dicts with the same keys) as a GitHub-flavoured Markdown table."""
    if not rows:
        return "(empty table)\n"
    keys = list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def find_notebooks(directory: Path, only: list[str] | None = None) -> list[Path]:
    """Course notebooks ``NN_*.ipynb`` in order; ``only`` keeps those whose number or name match."""
    paths = sorted(p for p in Path(directory).glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if only:
        chosen = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
        missing = [o for o in only if not any(p.name.startswith(o) or p.stem == o for p in paths)]
        if missing:
            raise ParameterError(f"--only {', '.join(missing)}: no such notebook in {directory} "
                                 f"(have {', '.join(p.stem for p in paths)})")
        paths = chosen
    if not paths:
        raise FileNotFoundError(f"no course notebooks (NN_name.ipynb) in {directory}")
    return paths


def parse_value(text: str):
    """Parse a ``-p NAME VALUE`` value: Python/JSON literals (1, 0.5, True, None, "x"), else a string."""
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if text.lower() in lowered:
        return lowered[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_defaults(path: Path) -> dict:
    """``{name: default value}`` of a notebook's ``parameters`` cell (via papermill)."""
    import papermill

    info = papermill.inspect_notebook(str(path))
    if not info:
        raise ParameterError(f"{path.name} has no cell tagged 'parameters'")
    defaults = {}
    for name, meta in info.items():
        try:
            defaults[name] = ast.literal_eval(meta["default"])
        except (ValueError, SyntaxError):
            defaults[name] = None  # an expression: its type is not checked here
    return defaults


def check_course_params(params: dict, notebooks: list[Path]) -> dict[Path, dict]:
    """Check user parameters against every notebook; return the parameters each one receives.

    A name no selected notebook declares, a value whose type differs from the notebooks'
    defaults, or a value breaking a shared rule (SCALE must be fast/full) raises
    :class:`ParameterError` before anything runs.
    """
    per_notebook = {p: notebook_defaults(p) for p in notebooks}
    for name, value in params.items():
        owners = [p for p, d in per_notebook.items() if name in d]
        if not owners:
            raise ParameterError(f"unknown parameter {name}: no selected notebook declares it")
        if name in COMMON_SPEC:
            check_value(name, value, COMMON_SPEC[name])
        for p in owners:
            default = per_notebook[p][name]
            if default is not None and value is not None:
                check_value(name, value, type(default))
    return {p: {k: v for k, v in params.items() if k in d} for p, d in per_notebook.items()}


def run_course(params: dict, only=None, out_dir=None, notebooks_dir=None, log=print,
               cell_timeout: float | None = None) -> Path:
    """Execute the selected notebooks in order; return the run directory.

    ``cell_timeout`` (seconds) turns a cell that hangs into a failure of its notebook.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebooks_dir = Path(notebooks_dir or ROOT / "notebooks")
    notebooks = find_notebooks(notebooks_dir, only)
    plan = check_course_params(params, notebooks)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out_dir or ROOT / "runs") / stamp
    run_dir.mkdir(parents=True, exist_ok=False)
    log(f"course run -> {run_dir}  ({len(notebooks)} notebooks, parameters {params})")
    records, timings = [], {}
    for path in notebooks:
        results = run_dir / f"{path.stem}.results.json"
        nb_params = dict(plan[path])
        if "RESULTS" in notebook_defaults(path):
            nb_params["RESULTS"] = str(results.resolve())
        start = time.perf_counter()
        log(f"[{path.stem}] running ...")
        try:
            papermill.execute_notebook(str(path), str(run_dir / path.name), parameters=nb_params,
                                       kernel_name="python3", cwd=str(notebooks_dir),
                                       progress_bar=False, execution_timeout=cell_timeout)
        except PapermillExecutionError as exc:
            _write_summary(run_dir, records, timings, failed=(path.stem, exc))
            raise RuntimeError(f"notebook {path.name} failed in cell [{exc.exec_count}] "
                               f"(executed copy: {run_dir / path.name}):\n"
                               f"{_failing_source(run_dir / path.name)}"
                               f"{exc.ename}: {exc.evalue}") from None
        except Exception as exc:  # a cell timeout, a dead kernel
            _write_summary(run_dir, records, timings)
            raise RuntimeError(f"notebook {path.name} stopped: {type(exc).__name__}: {exc} "
                               f"(executed copy: {run_dir / path.name})") from None
        timings[path.stem] = time.perf_counter() - start
        log(f"[{path.stem}] done in {timings[path.stem]:.1f} s")
        if results.exists():
            records.append(json.loads(results.read_text()))
        else:
            records.append({"notebook": path.stem, "table": [], "metrics": {},
                            "note": "the notebook wrote no results file"})
    _write_summary(run_dir, records, timings)
    log(f"summary: {run_dir / 'summary.md'}")
    return run_dir


def _failing_source(executed: Path, lines: int = 6) -> str:
    """The first lines of the cell whose output is an error, indented, or ''."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return ""
    for cell in nb.cells:
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            src = cell.source.splitlines()[:lines]
            return "".join(f"    {line}\n" for line in src)
    return ""


def _write_summary(run_dir: Path, records, timings, failed=None) -> None:
    lines = ["# Course run summary", ""]
    for rec in records:
        name = rec["notebook"]
        lines += [f"## {name}", "", f"wall time: {timings.get(name, float('nan')):.1f} s", ""]
        if rec.get("note"):
            lines += [rec["note"], ""]
        lines.append(markdown_table(rec["table"]))
        if rec.get("metrics"):
            lines += ["", "Headline figures:", ""]
            lines += [f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}"
                      for k, v in rec["metrics"].items()]
        lines.append("")
    if failed:
        name, exc = failed
        lines += [f"## {name}: FAILED", "", f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}", ""]
    (run_dir / "summary.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmk.course", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=("fast", "full"), default="fast")
    parser.add_argument("--only", action="append", metavar="NN",
                        help="run only this notebook (number like 01 or name); repeatable")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="notebook parameter; repeatable")
    parser.add_argument("--out", default=None, help="parent folder of the run (default runs/)")
    parser.add_argument("--notebooks", default=None, help="notebook folder (default notebooks/)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds one cell may run (default: 1800 in fast mode, none in full)")
    args = parser.parse_args(argv)
    params = {name: parse_value(value) for name, value in args.parameter}
    if "SCALE" in params and params["SCALE"] != args.scale and args.scale != "fast":
        parser.error("give SCALE either as --scale or as -p SCALE, not both with different values")
    params.setdefault("SCALE", args.scale)
    try:
        timeout = args.cell_timeout
        if timeout is None and params["SCALE"] == "fast":
            timeout = 1800.0
        run_course(params, only=args.only, out_dir=args.out, notebooks_dir=args.notebooks,
                   cell_timeout=timeout)
    except (ParameterError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
