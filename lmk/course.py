"""Run the whole course with papermill: ``python -m lmk.course``.

Every notebook in ``notebooks/`` (``NN_name.ipynb``, in order) is executed with the given
parameters; the executed copies and a ``summary.md`` with each notebook's closing results table
go to ``runs/<timestamp>/`` (or ``--run-dir DIR``). Every notebook that trains (``RUN_DIR`` in its
declaration) trains into ``<run folder>/<notebook>/<recipe>/`` with a checkpoint every epoch;
``--run-dir DIR --resume`` runs the course again into that folder and every recipe resumes where
it stopped (a finished one is read back, not retrained), so a crash costs at most an epoch of
each recipe that was training. Every parameter is checked against the declarations of every
selected notebook (``lmk.params.SPECS``) *before* anything runs: a bad one exits with status 2
and creates no run folder. A notebook that fails stops the run, naming the notebook and the
failing cell. ``-p RESULTS file.json`` is honoured with one notebook (``--only``).

Examples::

    python -m lmk.course                          # all notebooks, fast mode
    python -m lmk.course --only 01 --only 02      # a subset
    python -m lmk.course --scale full -p DATA 300w -p DATA_ROOT /data/300w
    python -m lmk.course --only 06 -p STAGE_EPOCHS 1,1,1   # a list: 1,1,1 or "[1, 1, 1]"
    python -m lmk.course --scale full -p ZOO_DIR /data/zoo-full       # tables from a full-scale zoo
    python -m lmk.course --scale full --run-dir runs/full             # train everything here ...
    python -m lmk.course --scale full --run-dir runs/full --resume    # ... and go on after a crash
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import difflib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from .experiments import reads_zoo
from .params import RULES, SPECS, Param, ParameterError, check_namespace

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")
ROOT = Path(__file__).resolve().parent.parent


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


LIST_SYNTAX = "comma-separated values such as 4,1,2, or a list in quotes: '[4, 1, 2]' or '(4, 1, 2)'"
"""How a list parameter is written on the command line (``-p STAGE_EPOCHS 4,1,2``)."""


def parse_value(text: str, param: Param | None = None):
    """Parse a ``-p NAME VALUE`` value.

    A scalar is a Python/JSON literal (1, 0.5, True, None, "x"), else the text itself as a
    string. The value of a list parameter (``param.is_list``: ``STAGE_EPOCHS``, ``RATIOS_1D``,
    ``STRATEGIES`` ...) is always a list, written ``[a, b]``, ``(a, b)`` or ``a,b``, each item
    a scalar (``[SSSS, SDSD]`` needs no quotes; one item ``0.5`` is ``[0.5]``), or ``None``.
    A list, not a tuple: papermill writes a tuple into the notebook as the *string* ``"(1, 1)"``.
    """
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if text.strip().lower() in lowered:
        return lowered[text.strip().lower()]
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text
    if param is None or not param.is_list:
        return value
    if isinstance(value, (list, tuple)):
        return _injectable(value)
    body = (value if isinstance(value, str) else text).strip()     # '"SSSS,SDSD"' quoted whole
    if body[:1] + body[-1:] in ("[]", "()"):
        body = body[1:-1]
    return [parse_value(item.strip()) for item in body.split(",")] if body.strip() else []


def _injectable(value):
    """``value`` as papermill writes it faithfully: tuples as lists, numpy scalars as Python
    numbers (papermill writes any other type as a string of its ``str``)."""
    if isinstance(value, (list, tuple)):
        return [_injectable(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def declaration(name: str, specs=SPECS) -> Param | None:
    """The declaration of parameter ``name`` in the first notebook of ``specs`` declaring it."""
    return next((spec[name] for spec in specs.values() if name in spec), None)


def notebook_defaults(path: Path) -> dict:
    """``{name: default value}`` of a notebook's ``parameters`` cell.

    The cell is read as papermill reads it (assignments of Python literals); a default that is
    not a literal cannot be checked before the run and is an error naming its line.
    """
    path = Path(path)
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    sources = [c["source"] for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not sources:
        raise ParameterError(f"{path.name} has no cell tagged 'parameters'", notebook=path.stem)
    source = "".join(sources[0]) if isinstance(sources[0], list) else sources[0]
    defaults = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                defaults[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                raise ParameterError(f"{path.name}, parameters cell line {node.lineno}: the default of "
                                     f"{node.targets[0].id} is not a Python literal",
                                     parameter=node.targets[0].id, notebook=path.stem) from None
    return defaults


def check_course_params(params: dict, notebooks: list[Path], specs=SPECS, rules=RULES) -> dict[Path, dict]:
    """Check user parameters against every selected notebook; return what each one receives.

    Each user value is checked by the declaration (``specs[NN]``) of every notebook that declares
    it, together with that notebook's defaults for the rest, so rules across parameters
    (``DATA="300w"`` without ``DATA_ROOT``) are caught. Path parameters are made absolute (the
    notebooks run in their own folder); tuples become lists and numpy scalars Python numbers,
    which papermill writes as they are (it writes a tuple as a string), and the values checked
    are the values the notebooks receive. A ``RESULTS`` file is honoured for one notebook and
    rejected for several, which would overwrite it.

    Raises:
        ParameterError: one paragraph naming the parameter, the notebook(s) and what is allowed.
    """
    declared = {}
    for path in notebooks:
        if path.name[:2] not in specs:
            raise ParameterError(f"{path.name} has no parameter declaration (lmk.params.SPECS has "
                                 f"{', '.join(sorted(specs))})", notebook=path.stem)
        declared[path] = specs[path.name[:2]]
    stems = ", ".join(p.stem for p in notebooks)
    for name in params:
        if not any(name in spec for spec in declared.values()):
            known = sorted({n for spec in declared.values() for n in spec})
            close = difflib.get_close_matches(name, known, 1)
            raise ParameterError(f"unknown parameter {name}{f' (did you mean {close[0]}?)' if close else ''}: "
                                 f"no selected notebook ({stems}) declares it; they accept "
                                 f"{', '.join(known)}", parameter=name)
    writers = [p.stem for p in notebooks if "RESULTS" in declared[p]]
    if params.get("RESULTS") is not None and len(writers) > 1:
        raise ParameterError(f"RESULTS={params['RESULTS']!r} would be written by {len(writers)} notebooks "
                             f"({', '.join(writers)}), each overwriting the last; select one notebook "
                             f"with --only, or leave RESULTS out (the course then writes "
                             f"<run folder>/<notebook>.results.json for each)", parameter="RESULTS")
    plan, failures = {}, []
    for path, spec in declared.items():
        mine = {n: _injectable(_absolute(v) if spec[n].path and isinstance(v, str) else v)
                for n, v in params.items() if n in spec}
        try:
            check_namespace({**notebook_defaults(path), **mine}, spec, path.stem, rules)
        except ParameterError as exc:
            failures.append(exc)
        plan[path] = mine
    if failures:
        first = failures[0]
        where = [e.notebook for e in failures if e.reason == first.reason]
        raise ParameterError(f"{first.reason} (notebook{'s' if len(where) > 1 else ''} {', '.join(where)})",
                             parameter=first.parameter, notebook=where[0], reason=first.reason)
    return plan


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute())


def run_folder(out_dir=None, run_dir=None, resume: bool = False) -> Path:
    """The folder of a course run (not created here): ``run_dir``, else a new
    ``<out_dir or runs/>/<timestamp>``.

    Raises:
        ParameterError: ``resume`` without ``run_dir`` or with one that does not exist; a
            ``run_dir`` that already holds a run, without ``resume``.
    """
    if run_dir is None:
        if resume:
            raise ParameterError("--resume needs --run-dir DIR, the folder of the run to go on with")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path(out_dir or ROOT / "runs") / stamp
    folder = Path(run_dir).expanduser().absolute()
    if resume and not folder.is_dir():
        raise ParameterError(f"--resume: {folder} is not the folder of a run (it does not exist); "
                             f"leave out --resume to start one there")
    if not resume and folder.exists() and any(folder.iterdir()):
        raise ParameterError(f"--run-dir {folder} already holds a run; add --resume to go on with it, "
                             f"or give a new folder")
    return folder


def run_course(params: dict, only=None, out_dir=None, notebooks_dir=None, log=print,
               cell_timeout: float | None = None, specs=SPECS, run_dir=None, resume: bool = False) -> Path:
    """Execute the selected notebooks in order; return the run directory.

    Every parameter is checked (:func:`check_course_params`) before the run folder is created.
    ``cell_timeout`` (seconds) turns a cell that hangs into a failure of its notebook; ``specs``
    replaces ``lmk.params.SPECS`` (for notebooks outside the course). ``run_dir`` is the run
    folder itself (default: a new timestamped one under ``out_dir``); ``resume`` goes on with the
    run in it (:func:`run_folder`). A notebook that declares ``RUN_DIR`` and is not given one
    trains into ``<run folder>/<notebook>/``.
    """
    notebooks_dir = Path(notebooks_dir or ROOT / "notebooks")
    notebooks = find_notebooks(notebooks_dir, only)
    plan = check_course_params(params, notebooks, specs)
    if params.get("ZOO_DIR") is not None:     # a zoo of other data or scale: refused before any run
        reads_zoo(params.get("USE_ZOO", True), params["ZOO_DIR"], params.get("DATA", "synthetic"),
                  params.get("SCALE", "fast"))
    folder = run_folder(out_dir, run_dir, resume)

    import papermill  # deferred: seconds to import, not needed to reject a bad parameter
    from papermill.exceptions import PapermillExecutionError

    chosen, run_dir = run_dir is not None, folder
    run_dir.mkdir(parents=True, exist_ok=chosen)       # a new timestamped folder is never shared
    log(f"course run -> {run_dir}{' (resumed)' if resume else ''}  ({len(notebooks)} notebooks, "
        f"parameters {params})")
    records, timings = [], {}
    for path in notebooks:
        nb_params = dict(plan[path])
        results = None
        if "RESULTS" in nb_params:          # the user's file (or None: write nothing), honoured
            results = None if nb_params["RESULTS"] is None else Path(nb_params["RESULTS"])
            log(f"[{path.stem}] results -> {results} (the RESULTS parameter)")
        elif "RESULTS" in specs[path.name[:2]]:
            results = run_dir / f"{path.stem}.results.json"
            nb_params["RESULTS"] = str(results.resolve())
        if "RUN_DIR" in specs[path.name[:2]] and "RUN_DIR" not in nb_params:
            nb_params["RUN_DIR"] = str((run_dir / path.stem).resolve())    # a folder per recipe inside
        before = _stamp(results)
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
        if results is not None and _stamp(results) not in (None, before):
            records.append(json.loads(results.read_text()))
        else:
            records.append({"notebook": path.stem, "table": [], "metrics": {},
                            "note": "the notebook wrote no results file"})
    _write_summary(run_dir, records, timings)
    log(f"summary: {run_dir / 'summary.md'}")
    return run_dir


def _stamp(path):
    """``(mtime_ns, size)`` of a file, or None: tells a file written by this run from an old one."""
    if path is None or not path.exists():
        return None
    st = path.stat()
    return st.st_mtime_ns, st.st_size


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
    parser.add_argument("--run-dir", default=None, metavar="DIR",
                        help="the run folder itself (instead of a new runs/<timestamp>/); its notebooks "
                             "train into DIR/<notebook>/<recipe>/")
    parser.add_argument("--resume", action="store_true",
                        help="go on with the run in --run-dir DIR: every recipe resumes from its "
                             "checkpoints, finished ones are read back")
    parser.add_argument("--notebooks", default=None, help="notebook folder (default notebooks/)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds one cell may run (default: 1800 in fast mode, none in full)")
    args = parser.parse_args(argv)
    params = {name: parse_value(value, declaration(name)) for name, value in args.parameter}
    if "SCALE" in params and params["SCALE"] != args.scale and args.scale != "fast":
        parser.error("give SCALE either as --scale or as -p SCALE, not both with different values")
    params.setdefault("SCALE", args.scale)
    try:
        timeout = args.cell_timeout
        if timeout is None and params["SCALE"] == "fast":
            timeout = 1800.0
        run_course(params, only=args.only, out_dir=args.out, notebooks_dir=args.notebooks,
                   cell_timeout=timeout, run_dir=args.run_dir, resume=args.resume)
    except ParameterError as exc:
        param = declaration(exc.parameter) if exc.parameter in params else None
        hint = f"; on the command line a list is {LIST_SYNTAX}" if param and param.is_list else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
