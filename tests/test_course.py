"""The course runner on tiny notebooks written by the test (one papermill kernel per notebook)."""

import json

import nbformat
import pytest

from lmk.course import (check_course_params, find_notebooks, markdown_table, parse_value,
                        run_course, write_results)
from lmk.params import ParameterError

PARAMS = 'SCALE = "fast"\nSEED = 0\nRESULTS = None\nN = 3\n'
CHECK = ('from lmk.params import check_params\n'
         'P = check_params(globals(), SCALE=("fast", "full"), SEED=int, RESULTS=(str, None), N=int)')


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(CHECK), nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


GOOD = ('from lmk.course import write_results\n'
        'write_results(RESULTS, "00_a", [{"n": N, "scale": SCALE}], {"twice": 2.0 * N})')


@pytest.fixture
def course(tmp_path):
    d = tmp_path / "nb"
    d.mkdir()
    _notebook(d / "00_a.ipynb", GOOD)
    _notebook(d / "01_b.ipynb", 'raise ValueError("boom in b")')
    (d / "notes.ipynb").write_text("{}")  # not a course notebook: ignored
    return d


def test_find_notebooks_orders_and_filters(course):
    assert [p.name for p in find_notebooks(course)] == ["00_a.ipynb", "01_b.ipynb"]
    assert [p.name for p in find_notebooks(course, ["01"])] == ["01_b.ipynb"]
    with pytest.raises(ParameterError, match="--only 07"):
        find_notebooks(course, ["07"])


@pytest.mark.parametrize("params,match", [
    ({"NOPE": 1}, "unknown parameter NOPE"),
    ({"N": "three"}, "N='three'.*expected int"),
    ({"SCALE": "huge"}, "SCALE='huge'"),
])
def test_bad_parameters_rejected_before_running(course, tmp_path, params, match):
    with pytest.raises(ParameterError, match=match):
        run_course(params, notebooks_dir=course, out_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("None") is None and parse_value("300w") == "300w"


def test_run_writes_summary_and_stops_on_failure(course, tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)01_b.ipynb failed in cell \[4\].*raise ValueError.*ValueError: boom in b"):
        run_course({"N": 4}, notebooks_dir=course, out_dir=tmp_path / "runs", log=lambda *_: None)
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "00_a.results.json").read_text())
    assert record["table"] == [{"n": 4, "scale": "fast"}] and record["metrics"] == {"twice": 8.0}
    summary = (run_dir / "summary.md").read_text()
    assert "| n | scale |" in summary and "| 4 | fast |" in summary and "01_b: FAILED" in summary
    assert (run_dir / "00_a.ipynb").exists()


def test_write_results_validates(tmp_path):
    with pytest.raises(TypeError):
        write_results(None, "x", {"a": 1})
    with pytest.raises(ValueError, match="same keys"):
        write_results(None, "x", [{"a": 1}, {"b": 2}])
    rec = write_results(tmp_path / "r.json", "x", [{"a": 1.5}])
    assert json.loads((tmp_path / "r.json").read_text()) == rec
    assert markdown_table(rec["table"]).splitlines()[2] == "| 1.5 |"


def test_check_course_params_passes_only_declared(course):
    plan = check_course_params({"N": 2}, find_notebooks(course))
    assert all(v == {"N": 2} for v in plan.values())
