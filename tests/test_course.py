"""The course runner on tiny notebooks written by the test (one papermill kernel per notebook)."""

import json

import nbformat
import pytest

from lmk.course import (check_course_params, find_notebooks, main, markdown_table, notebook_defaults,
                        parse_value, run_course, write_results)
from lmk.params import COMMON, NOTEBOOKS, Param, ParameterError

PARAMS = ('SCALE = "fast"\nSEED = 0\nDEVICE = "auto"\nDATA = "synthetic"\nDATA_ROOT = None\n'
          'ON_ERROR = "raise"\nRESULTS = None\nSHOW_PROGRESS = False\nN = 3\n')
# The tiny notebooks are not in lmk.params.SPECS: the test declares them, and their validation
# cell uses the light check (the kernel cannot see the test's declarations).
SPECS = {"00": {**COMMON, "N": Param(int, positive=True)},
         "01": {**COMMON, "N": Param(int, positive=True), "K": Param(int, optional=True)}}
CHECK = ('from lmk.params import check_params\n'
         'P = check_params(globals(), SCALE=("fast", "full"), SEED=int, DEVICE=str, DATA=str, '
         'DATA_ROOT=(str, None), ON_ERROR=str, RESULTS=(str, None), SHOW_PROGRESS=bool, N=int{extra})')
GOOD = ('from lmk.course import write_results\n'
        'write_results(RESULTS, "00_a", [{"n": N, "scale": SCALE}], {"twice": 2.0 * N})')


def _notebook(path, body, extra=""):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS + extra)
    params.metadata["tags"] = ["parameters"]
    check = CHECK.format(extra=", K=(int, None)" if extra else "")
    nb.cells = [params, nbformat.v4.new_code_cell(check), nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "nb"
    d.mkdir()
    _notebook(d / "00_a.ipynb", GOOD)
    _notebook(d / "01_b.ipynb", 'raise ValueError("boom in b")', extra="K = None\n")
    (d / "notes.ipynb").write_text("{}")  # not a course notebook: ignored
    return d


def _run(params, notebooks, tmp_path, **kw):
    return run_course(params, notebooks_dir=notebooks, out_dir=tmp_path / "runs", log=lambda *_: None,
                      specs=SPECS, **kw)


def test_find_notebooks_orders_and_filters(notebooks):
    assert [p.name for p in find_notebooks(notebooks)] == ["00_a.ipynb", "01_b.ipynb"]
    assert [p.name for p in find_notebooks(notebooks, ["01"])] == ["01_b.ipynb"]
    with pytest.raises(ParameterError, match="--only 07"):
        find_notebooks(notebooks, ["07"])


@pytest.mark.parametrize("params,match", [
    ({"NOPE": 1}, r"unknown parameter NOPE: no selected notebook \(00_a, 01_b\) declares it; they accept"),
    ({"SEDE": 1}, r"unknown parameter SEDE \(did you mean SEED\?\)"),
    ({"N": "three"}, r"parameter N='three' has type str; expected an int > 0 \(notebooks 00_a, 01_b\)"),
    ({"N": 0}, r"N=0 is out of range; expected an int > 0 \(notebooks 00_a, 01_b\)"),
    ({"K": 1.5}, r"K=1.5 has type float; expected an int, or None \(notebook 01_b\)"),
    ({"SCALE": "huge"}, r"SCALE='huge' is not allowed; expected one of 'fast', 'full'"),
    ({"DATA": "300w"}, r"DATA='300w' needs DATA_ROOT.*\(notebooks 00_a, 01_b\)"),
    ({"DATA": "300W"}, r"did you mean '300w'"),
    ({"DATA": "wflw", "DATA_ROOT": "/no/such/folder"}, r"DATA_ROOT='/no/such/folder' \(for DATA='wflw'\) "
                                                       r"is not an existing folder"),
    ({"RESULTS": "r.json"}, r"RESULTS='r.json' would be written by 2 notebooks \(00_a, 01_b\).*--only"),
])
def test_bad_parameters_rejected_before_running(notebooks, tmp_path, params, match):
    with pytest.raises(ParameterError, match=match):
        _run(params, notebooks, tmp_path)
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written


def test_notebook_without_declaration_is_rejected(notebooks, tmp_path):
    _notebook(notebooks / "02_c.ipynb", "pass")
    with pytest.raises(ParameterError, match=r"02_c.ipynb has no parameter declaration"):
        _run({}, notebooks, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_cell_out_of_step_with_declaration_is_rejected(notebooks, tmp_path):
    specs = {**SPECS, "00": {**SPECS["00"], "M": Param(int)}}
    with pytest.raises(ParameterError, match=r"M declared in lmk.params but missing from the parameters "
                                             r"cell \(notebook 00_a\)"):
        run_course({}, notebooks_dir=notebooks, out_dir=tmp_path / "runs", specs=specs)
    assert not (tmp_path / "runs").exists()


def test_paths_are_made_absolute(notebooks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faces").mkdir()
    plan = check_course_params({"DATA": "sample", "DATA_ROOT": "faces", "N": 2},
                               find_notebooks(notebooks), SPECS)
    assert all(p == {"DATA": "sample", "DATA_ROOT": str(tmp_path / "faces"), "N": 2} for p in plan.values())


def test_notebook_defaults(notebooks):
    assert notebook_defaults(notebooks / "01_b.ipynb") == {
        "SCALE": "fast", "SEED": 0, "DEVICE": "auto", "DATA": "synthetic", "DATA_ROOT": None,
        "ON_ERROR": "raise", "RESULTS": None, "SHOW_PROGRESS": False, "N": 3, "K": None}
    _notebook(notebooks / "02_c.ipynb", "pass", extra="K = 2 * N\n")
    with pytest.raises(ParameterError, match=r"02_c.ipynb, parameters cell line 10: the default of K is "
                                             r"not a Python literal"):
        notebook_defaults(notebooks / "02_c.ipynb")


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("None") is None and parse_value("300w") == "300w"


@pytest.mark.heavy                       # runs notebooks in kernels: 3-9 s
def test_run_writes_summary_and_stops_on_failure(notebooks, tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)01_b.ipynb failed in cell \[4\].*raise ValueError.*ValueError: boom in b"):
        _run({"N": 4}, notebooks, tmp_path)
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "00_a.results.json").read_text())
    assert record["table"] == [{"n": 4, "scale": "fast"}] and record["metrics"] == {"twice": 8.0}
    summary = (run_dir / "summary.md").read_text()
    assert "| n | scale |" in summary and "| 4 | fast |" in summary and "01_b: FAILED" in summary
    assert (run_dir / "00_a.ipynb").exists()


def test_users_results_file_is_honoured_for_one_notebook(notebooks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # a relative path means the caller's folder, not the notebooks'
    run_dir = _run({"N": 5, "RESULTS": "mine/r.json"}, notebooks, tmp_path, only=["00"])
    record = json.loads((tmp_path / "mine" / "r.json").read_text())
    assert record["table"] == [{"n": 5, "scale": "fast"}]
    assert not (run_dir / "00_a.results.json").exists()        # not replaced by the course's own
    assert "| 5 | fast |" in (run_dir / "summary.md").read_text()


def test_main_exits_2_on_a_bad_parameter_without_a_run_folder(tmp_path, capsys):
    """The real notebooks and SPECS: checked before papermill starts anything."""
    assert main(["-p", "DATA", "300w", "--out", str(tmp_path / "runs")]) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: DATA='300w' needs DATA_ROOT") and "03_pixelshuffle_vs_deconv" in message
    assert len(message.strip().splitlines()) == 1
    assert main(["-p", "N_TRAIN", "0", "--only", "03", "--out", str(tmp_path / "runs")]) == 2
    assert "N_TRAIN=0 is out of range; expected an int > 0, or None (notebook 03_" in capsys.readouterr().err
    assert main(["-p", "RESULTS", str(tmp_path / "r.json"), "--out", str(tmp_path / "runs")]) == 2
    assert f"would be written by {len(NOTEBOOKS)} notebooks" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_write_results_validates(tmp_path):
    with pytest.raises(TypeError):
        write_results(None, "x", {"a": 1})
    with pytest.raises(ValueError, match="same keys"):
        write_results(None, "x", [{"a": 1}, {"b": 2}])
    rec = write_results(tmp_path / "r.json", "x", [{"a": 1.5}])
    assert json.loads((tmp_path / "r.json").read_text()) == rec
    assert markdown_table(rec["table"]).splitlines()[2] == "| 1.5 |"


def test_check_course_params_passes_only_declared(notebooks):
    plan = check_course_params({"N": 2, "K": 1}, find_notebooks(notebooks), SPECS)
    assert [v for v in plan.values()] == [{"N": 2}, {"N": 2, "K": 1}]
