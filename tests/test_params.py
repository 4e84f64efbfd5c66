"""The notebook parameter declarations (lmk.params.SPECS) and their checks."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lmk import params
from lmk.course import notebook_defaults
from lmk.data.dataset import DATA_NAMES
from lmk.params import (COMMON, NOTEBOOKS, SPECS, Param, ParameterError, check_params, scaled,
                        validate)

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
GOOD = {"SCALE": "fast", "SEED": 0, "DEVICE": "auto", "DATA": "synthetic", "DATA_ROOT": None,
        "ON_ERROR": "raise", "RESULTS": None, "SHOW_PROGRESS": False, "INPUT_SIZE": None,
        "N_TRAIN": None, "N_VAL": None, "EPOCHS": None, "BATCH_SIZE": None, "LR": None,
        "USE_ZOO": True, "ZOO_DIR": None, "RUN_DIR": None, "N_SEEDS": None, "FILTERS": None,
        "STRATEGIES": None, "COMPILE": None}


def _ns(**over):
    """A notebook 03 namespace: its parameters plus the modules and helpers a cell imports."""
    return {**GOOD, **over, "np": np, "helper": len, "Param": Param}


def _fails(match, notebook="03", **over):
    with pytest.raises(ParameterError, match=match) as info:
        validate(notebook, _ns(**over))
    assert "03_pixelshuffle_vs_deconv" in str(info.value) or notebook != "03"
    return info.value


def test_valid_namespace_returns_the_declared_parameters():
    assert validate("03", _ns(LR=1, INPUT_SIZE=np.int64(96))) == {**GOOD, "LR": 1, "INPUT_SIZE": 96}
    assert validate("03_pixelshuffle_vs_deconv", _ns())["SCALE"] == "fast"


@pytest.mark.parametrize("over,match", [
    (dict(SCALE="medium"), r"SCALE='medium' is not allowed; expected one of 'fast', 'full'"),
    (dict(SEED=-1), r"SEED=-1 is out of range; expected an int >= 0"),
    (dict(SEED=True), r"SEED=True has type bool; expected an int"),
    (dict(SEED="0"), r"SEED='0' has type str"),
    (dict(DEVICE="gpu"), r"DEVICE='gpu' is not a device; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    (dict(DATA="300W"), r"DATA='300W' is not allowed.*'jd106' \(did you mean '300w'\? Names are lower-case"),
    (dict(DATA="wflv"), r"did you mean 'wflw'"),
    (dict(ON_ERROR="ignore"), r"ON_ERROR='ignore' is not allowed; expected one of 'raise', 'skip'"),
    (dict(SHOW_PROGRESS=1), r"SHOW_PROGRESS=1 has type int; expected a bool"),
    (dict(USE_ZOO="yes"), r"USE_ZOO='yes' has type str; expected a bool"),
    (dict(RESULTS="out.csv"), r"RESULTS='out.csv' must be the path of a .json file"),
    (dict(RESULTS=3), r"RESULTS=3 has type int"),
    (dict(N_TRAIN=0), r"N_TRAIN=0 is out of range; expected an int > 0, or None"),
    (dict(N_VAL=-3), r"N_VAL=-3 is out of range"),
    (dict(EPOCHS=2.5), r"EPOCHS=2.5 has type float; expected an int > 0, or None"),
    (dict(BATCH_SIZE=0), r"BATCH_SIZE=0 is out of range"),
    (dict(FILTERS=-64), r"FILTERS=-64 is out of range"),
    (dict(INPUT_SIZE=-64), r"INPUT_SIZE=-64 is out of range; expected an int > 0 and a multiple of 32"),
    (dict(INPUT_SIZE=100), r"INPUT_SIZE=100 is out of range.*multiple of 32"),
    (dict(LR=0), r"LR=0 is out of range; expected a number > 0, or None"),
    (dict(LR=float("nan")), r"LR=nan is out of range"),
    (dict(LR="1e-3"), r"LR='1e-3' has type str"),
    (dict(STRATEGIES="XYZ"), r"STRATEGIES='XYZ' contains 'XYZ'; a strategy is a string of upper-case 'S'"),
    (dict(STRATEGIES="SDSD,sdsd"), r"contains 'sdsd'"),
    (dict(STRATEGIES="SDSD,"), r"contains ''"),
    (dict(STRATEGIES=["SDSD", "SDSD"]), r"names a strategy twice"),
    (dict(STRATEGIES=[]), r"STRATEGIES=\[\] is empty"),
    (dict(STRATEGIES=("SDSD", 4)), r"has an item 4 of type int"),
    (dict(EPOCS=3), r"unknown parameter\(s\) EPOCS \(did you mean 'EPOCHS'\?\); this notebook accepts SCALE"),
])
def test_each_bad_value_is_named_with_what_is_allowed(over, match):
    error = _fails(match, **over)
    assert error.parameter == next(iter(over)) and error.notebook == "03_pixelshuffle_vs_deconv"


def test_strategies_as_string_or_sequence():
    for value in ("SSSS,SDSD,DDDD", ["DSSS", "SSSD"], ("D",)):
        assert validate("03", _ns(STRATEGIES=value))["STRATEGIES"] == value


def test_ratios_of_notebook_02():
    ns = {n: v for n, v in _ns().items() if n not in ("FILTERS", "STRATEGIES", "COMPILE")}
    ok = validate("02", {**ns, "RATIOS_1D": [0.25, 1, 3], "RATIOS_2D": (0.25, np.float32(0.5))})
    assert ok["RATIOS_1D"] == [0.25, 1, 3]
    for name, value, match in [("RATIOS_1D", (), "is empty"), ("RATIOS_1D", (1, -2), "item -2 out of range"),
                               ("RATIOS_1D", 2.0, "has type float; expected a non-empty list or tuple"),
                               ("RATIOS_1D", (1, "2"), "item '2' of type str"),
                               ("RATIOS_2D", (1 / 64,), "out of range; expected .* >= 0.03125")]:
        with pytest.raises(ParameterError, match=rf"{name}=.*{match}.*02_heatmaps_2d_vs_1d"):
            validate("02", {**ns, "RATIOS_1D": None, "RATIOS_2D": None, name: value})


def test_missing_parameter_names_the_cell():
    ns = _ns()
    del ns["LR"], ns["USE_ZOO"]
    _fails_ns = pytest.raises(ParameterError, match="LR, USE_ZOO declared in lmk.params but missing")
    with _fails_ns:
        validate("03", ns)


def test_unknown_notebook():
    with pytest.raises(ParameterError, match="no parameter declaration for notebook '09'.*03_pixel"):
        validate("09", _ns())


def test_data_root_rules(tmp_path):
    for data in ("300w", "wflw", "jd106"):
        error = _fails(rf"DATA='{data}' needs DATA_ROOT, the folder holding the data set", DATA=data)
        assert error.parameter == "DATA_ROOT"
    _fails(r"DATA_ROOT='.*nowhere' \(for DATA='300w'\) is not an existing folder",
           DATA="300w", DATA_ROOT=str(tmp_path / "nowhere"))
    (tmp_path / "file").write_text("")
    _fails(r"is not an existing folder", DATA="sample", DATA_ROOT=str(tmp_path / "file"))
    _fails(r"DATA_ROOT=.* is given but DATA='synthetic' reads no files", DATA_ROOT=str(tmp_path))
    assert validate("03", _ns(DATA="300w", DATA_ROOT=str(tmp_path)))["DATA_ROOT"] == str(tmp_path)
    assert validate("03", _ns(DATA="sample"))["DATA_ROOT"] is None   # sample: data/sample


def test_results_path(tmp_path):
    assert validate("03", _ns(RESULTS=str(tmp_path / "new" / "deeper" / "r.json")))  # creatable
    (tmp_path / "plain").write_text("")
    _fails(r"RESULTS=.* cannot be written: .*plain is not a writable folder",
           RESULTS=str(tmp_path / "plain" / "r.json"))
    (tmp_path / "d.json").mkdir()
    _fails(r"RESULTS=.* is a folder", RESULTS=str(tmp_path / "d.json"))
    assert not (tmp_path / "new").exists()   # checking creates nothing


def test_device_must_be_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(r"DEVICE='cuda' is not available on this machine", DEVICE="cuda")
    _fails(r"DEVICE='cuda:0' is not available", DEVICE="cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert validate("03", _ns(DEVICE="cuda:1"))["DEVICE"] == "cuda:1"
    _fails(r"DEVICE='cuda:2' names a GPU this machine does not have \(it has 2: 'cuda:0' .. 'cuda:1'\)",
           DEVICE="cuda:2")
    assert validate("03", _ns(DEVICE="cpu"))["DEVICE"] == "cpu"


def test_every_notebook_shares_the_common_block():
    assert tuple(SPECS) == tuple(NOTEBOOKS)
    for spec in SPECS.values():
        assert all(spec[name] is COMMON[name] for name in COMMON)
    assert params.DATA_NAMES is DATA_NAMES        # the loaders' list itself, not a copy
    for name in ("N_TRAIN", "N_VAL", "EPOCHS", "BATCH_SIZE", "LR", "USE_ZOO", "INPUT_SIZE"):
        assert name in SPECS["02"] and name in SPECS["03"]


def test_describe():
    assert Param(int, optional=True, positive=True).describe() == "an int > 0, or None"
    assert Param(tuple, item=float, minimum=0.5).describe() == "a non-empty list or tuple of numbers >= 0.5"
    assert Param(str, choices=("a", "b")).describe() == "one of 'a', 'b'"


def _course_notebooks():
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_notebook_names_are_declared():
    for path in _course_notebooks():
        assert NOTEBOOKS.get(path.name[:2]) == path.stem, f"{path.name}: add it to lmk.params.NOTEBOOKS"


@pytest.mark.parametrize("path", _course_notebooks(), ids=lambda p: p.name[:2])
def test_parameters_cell_matches_the_declaration(path):
    """The names in each notebook's parameters cell are exactly those SPECS declares, and the
    cell's own defaults pass the checks."""
    defaults = notebook_defaults(path)
    spec = SPECS[path.name[:2]]
    assert (sorted(set(spec) - set(defaults)), sorted(set(defaults) - set(spec))) == ([], []), \
        f"{path.name}: (declared but not in the cell, in the cell but not declared)"
    validate(path.name[:2], defaults)


# ----------------------------------------------------------------------------- light checks
LIGHT = dict(SCALE=("fast", "full"), SEED=int, LR=float, EPOCHS=(int, None), SHOW_PROGRESS=bool)


@pytest.mark.parametrize("over,match", [
    (dict(SCALE="medium"), "SCALE='medium'.*one of 'fast', 'full'"),
    (dict(SEED="0"), "SEED='0'.*expected int"),
    (dict(SEED=True), "SEED=True.*expected int"),
    (dict(EPOCHS=2.5), "EPOCHS=2.5.*int or None"),
    (dict(EPOCS=3), "unknown parameter.*EPOCS"),
])
def test_check_params_names_bad_parameters(over, match):
    ns = {**dict(SCALE="fast", SEED=0, LR=1e-3, EPOCHS=None, SHOW_PROGRESS=True, np=np), **over}
    with pytest.raises(ParameterError, match=match):
        check_params(ns, **LIGHT)
    assert check_params(dict(SCALE="full", SEED=np.int64(1), LR=1, EPOCHS=3, SHOW_PROGRESS=False), **LIGHT)


def test_scaled():
    assert scaled("fast", 1, 10) == 1 and scaled("full", 1, 10) == 10 and scaled("full", 1, 10, 3) == 3
    with pytest.raises(ParameterError, match="SCALE must be 'fast' or 'full'"):
        scaled("huge", 1, 10)
