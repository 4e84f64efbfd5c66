"""Faults in the course's parameters: list values, VIDEO_ROOT, one list of data set names.

Everything here is checked before a notebook runs; papermill is replaced by a stub that fails the
test, so a bad value that slipped through would not start a training run.
"""

import ast
import re
import shutil
from pathlib import Path

import numpy as np
import papermill
import pytest
from papermill.translators import PythonTranslator

import lmk.data
import lmk.params
from lmk.course import (LIST_SYNTAX, check_course_params, declaration, find_notebooks, main,
                        notebook_defaults, parse_value)
from lmk.data import read_300vw_videos, synth_video, write_300vw
from lmk.params import SPECS, ParameterError, validate

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
LISTS = {name: number for number, spec in SPECS.items() for name, p in spec.items() if p.is_list}


@pytest.fixture(autouse=True)
def no_notebook_runs(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("papermill was started: the parameter passed the pre-check")
    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def _notebook(number):
    (path,) = find_notebooks(NOTEBOOK_DIR, [number])
    return path


def _injected(value):
    """What the notebook's parameters cell holds after papermill wrote ``value`` into it."""
    return ast.literal_eval(PythonTranslator.translate(value))


# ----------------------------------------------------------------------------- list values
def test_the_list_parameters_are_these():
    assert LISTS == {"RATIOS_1D": "02", "RATIOS_2D": "02", "STRATEGIES": "03", "STAGE_EPOCHS": "06",
                     "YIN_VIDEOS": "06"}
    for name in {n for spec in SPECS.values() for n in spec}:   # one reading for every notebook
        assert len({spec[name].is_list for spec in SPECS.values() if name in spec}) == 1, name


@pytest.mark.parametrize("name,text,expected", [
    ("STAGE_EPOCHS", "(1,1,1)", [1, 1, 1]),
    ("STAGE_EPOCHS", "1,1,1", [1, 1, 1]),
    ("STAGE_EPOCHS", "[1, 1, 1]", [1, 1, 1]),
    ("STAGE_EPOCHS", " ( 4, 0, 2 ) ", [4, 0, 2]),
    ("STAGE_EPOCHS", "None", None),
    ("RATIOS_1D", "0.25,1,3", [0.25, 1, 3]),
    ("RATIOS_1D", "(0.5,)", [0.5]),
    ("RATIOS_1D", "0.5", [0.5]),
    ("RATIOS_2D", "[0.25, 0.5]", [0.25, 0.5]),
    ("STRATEGIES", "SSSS,SDSD", ["SSSS", "SDSD"]),
    ("STRATEGIES", "[SSSS, SDSD]", ["SSSS", "SDSD"]),
    ("STRATEGIES", "('SSSS', 'SDSD')", ["SSSS", "SDSD"]),
    ("STRATEGIES", "DDDD", ["DDDD"]),
])
def test_a_list_parameter_reaches_the_notebook_as_a_list(name, text, expected):
    path = _notebook(LISTS[name])
    value = parse_value(text, declaration(name))
    plan = check_course_params({name: value}, [path])
    assert plan[path][name] == expected and type(plan[path][name]) is type(expected)
    written = _injected(plan[path][name])      # a tuple was written as the string "(1, 1, 1)"
    assert written == expected and type(written) is type(expected)
    validate(LISTS[name], {**notebook_defaults(path), name: written})   # the notebook's own check


def test_python_values_are_written_as_the_notebook_reads_them():
    """A tuple or a numpy number from the Python API is made a list or a Python number."""
    path = _notebook("02")
    plan = check_course_params({"RATIOS_1D": (0.25, np.float64(1.0)), "SEED": np.int64(3)}, [path])
    assert _injected(plan[path]["RATIOS_1D"]) == [0.25, 1.0] and _injected(plan[path]["SEED"]) == 3
    assert type(plan[path]["SEED"]) is int


@pytest.mark.parametrize("name,text,match", [
    ("STAGE_EPOCHS", "1,1", r"STAGE_EPOCHS=\[1, 1\] must give three epoch counts \(stages 1, 2, 3\), got 2"),
    ("STAGE_EPOCHS", "(1, 1.5, 1)", r"STAGE_EPOCHS=\[1, 1.5, 1\] has an item 1.5 of type float"),
    ("STAGE_EPOCHS", "[1, 1", r"STAGE_EPOCHS=\['\[1', 1\] has an item '\[1' of type str"),
    ("STAGE_EPOCHS", "0,0,0", r"STAGE_EPOCHS=\[0, 0, 0\] trains nothing"),
    ("STAGE_EPOCHS", "[]", r"STAGE_EPOCHS=\[\] is empty"),
    ("STAGE_EPOCHS", "1,,1", r"STAGE_EPOCHS=\[1, '', 1\] has an item '' of type str"),
    ("RATIOS_1D", "0.25,-1", r"RATIOS_1D=\[0.25, -1\] has an item -1 out of range"),
    ("RATIOS_2D", "(0.01,)", r"RATIOS_2D=\[0.01\] has an item 0.01 out of range; expected .* >= 0.03125"),
    ("STRATEGIES", "[SSSS, sdsd]", r"STRATEGIES=\['SSSS', 'sdsd'\] contains 'sdsd'"),
    ("STRATEGIES", "SSSS,SSSS", r"names a strategy twice"),
])
def test_a_bad_list_is_refused_before_running_and_the_syntax_shown(tmp_path, capsys, name, text, match):
    runs = tmp_path / "runs"
    assert main(["-p", name, text, "--only", LISTS[name], "--out", str(runs)]) == 2
    message = capsys.readouterr().err
    assert re.search(match, message), message
    assert f"(notebook {lmk.params.NOTEBOOKS[LISTS[name]]})" in message and message.rstrip().endswith(LIST_SYNTAX)
    assert not runs.exists()


def test_a_scalar_parameter_gets_no_list_syntax(tmp_path, capsys):
    assert main(["-p", "SEED", "(1, 2)", "--only", "01", "--out", str(tmp_path / "runs")]) == 2
    message = capsys.readouterr().err
    assert "SEED=[1, 2] has type list; expected an int" in message and LIST_SYNTAX not in message


# ----------------------------------------------------------------------------- VIDEO_ROOT
def _write_video(folder, seed=1):
    v = synth_video((5, seed), 3, 64)
    write_300vw(folder, v["frames"], v["landmarks"])


def _break(root, how):
    """A second video folder ``002`` broken in one way; returns the file its error names."""
    folder = root / "002"
    _write_video(folder, 2)
    if how == "no annot":
        shutil.rmtree(folder / "annot")
        return folder / "annot"
    if how == "gap":
        (folder / "annot" / "000002.pts").unlink()
        return folder / "annot" / "000003.pts"
    if how == "no video":
        (folder / "vid.avi").unlink()
        return folder / "vid.avi"
    (folder / "vid.avi").write_bytes(b"not a video")     # "bad video"
    return folder / "vid.avi"


@pytest.mark.parametrize("how", ["no annot", "gap", "no video", "bad video"])
def test_video_root_is_checked_by_the_readers_own_rules(tmp_path, how):
    root = tmp_path / "300vw"
    _write_video(root / "001")
    (root / "notes").mkdir()                         # not a video: passed over by both
    defaults = notebook_defaults(_notebook("06"))
    assert validate("06", {**defaults, "VIDEO_ROOT": str(root)})["VIDEO_ROOT"] == str(root)
    bad = _break(root, how)
    with pytest.raises(lmk.data.AnnotationError) as read:
        read_300vw_videos(root, n=1)                 # the broken video is found before decoding
    assert str(bad) in str(read.value)
    with pytest.raises(ParameterError) as check:
        validate("06", {**defaults, "VIDEO_ROOT": str(root)})
    assert check.value.parameter == "VIDEO_ROOT"
    assert f"VIDEO_ROOT={str(root)!r} cannot be read as 300VW videos: {read.value}" in str(check.value)


def test_a_bad_video_root_stops_the_course_before_it_starts(tmp_path, capsys):
    root = tmp_path / "300vw"
    _write_video(root / "001")
    bad = _break(root, "no annot")
    assert main(["-p", "VIDEO_ROOT", str(root), "--only", "06", "--out", str(tmp_path / "runs")]) == 2
    message = capsys.readouterr().err
    assert "VIDEO_ROOT=" in message and str(bad) in message and "per-frame annotations" in message
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- one list of names
def test_data_names_are_defined_once_in_lmk_data():
    assert lmk.params.DATA_NAMES is lmk.data.DATA_NAMES
    assert SPECS["03"]["DATA"].choices is lmk.data.DATA_NAMES
