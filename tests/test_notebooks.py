"""Structure of the committed notebooks (their execution is checked by nbval in `make test`)."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
REQUIRED = ["00_landmarks_data_metrics", "01_quantization_error", "02_heatmaps_2d_vs_1d",
            "03_pixelshuffle_vs_deconv"]
COMMON_PARAMETERS = {"SCALE", "SEED", "DEVICE", "DATA", "DATA_ROOT", "ON_ERROR", "RESULTS", "SHOW_PROGRESS"}
LOCAL_PATH = re.compile(r"(/work/|/home/\w|/root/|/tmp/pytest|C:\\\\Users)")


def _load(path):
    return json.loads(path.read_text())


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def test_required_notebooks_exist():
    names = [p.stem for p in NOTEBOOKS]
    for name in REQUIRED:
        assert name in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executed_top_to_bottom_without_errors(path):
    cells = [c for c in _code_cells(_load(path)) if _text(c["source"]).strip()]
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: execution counts {counts}"
    for i, cell in enumerate(cells, 1):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name} cell [{i}] has an error output"
            text = _text(out.get("text", "")) + _text(out.get("data", {}).get("text/plain", ""))
            assert len(text.splitlines()) <= 100, f"{path.name} cell [{i}]: output over 100 lines"
            if out["output_type"] == "execute_result":
                assert not text.startswith(("<Figure", "<matplotlib", "[<matplotlib")), \
                    f"{path.name} cell [{i}] leaks a matplotlib repr; end it with plt.show() or ;"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_then_validation(path):
    cells = _code_cells(_load(path))
    tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    source = _text(cells[tagged[0]]["source"])
    names = set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*=", source, flags=re.M))
    assert COMMON_PARAMETERS <= names, f"{path.name} lacks {COMMON_PARAMETERS - names}"
    assert re.search(r'^SCALE\s*=\s*"fast"', source, flags=re.M), "committed default must be fast"
    following = _text(cells[tagged[0] + 1]["source"])
    number = path.stem[:2]
    assert re.search(rf'lmk\.params\.validate\("{number}", globals\(\)\)', following), \
        f"{path.name}: the cell after 'parameters' must call lmk.params.validate(\"{number}\", globals())"
    assert "write_results(" in "".join(_text(c["source"]) for c in cells[-3:]), \
        f"{path.name}: the closing cells must record the results table with write_results"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_reads_as_course_material(path):
    nb = _load(path)
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and _text(first["source"]).startswith("# ")
    markdown = "\n".join(_text(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"learning goals", markdown, re.I), f"{path.name}: no learning goals"
    assert re.search(r"et al\.", markdown), f"{path.name}: cite the papers by author and year"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    assert not LOCAL_PATH.search(path.read_text()), f"{path.name} mentions a local machine path"


# a kernel per notebook; these two took over 5 s (the first pays the kernel's warm-up)
HEAVY_KERNELS = {"00_landmarks_data_metrics", "01_quantization_error"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.heavy) if p.stem in HEAVY_KERNELS else p
                                  for p in NOTEBOOKS], ids=lambda p: p.stem)
def test_unknown_parameter_fails_in_validation_cell(path, tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        papermill.execute_notebook(str(path), str(tmp_path / path.name), kernel_name="python3",
                                   parameters={"NOT_A_PARAMETER": 1}, progress_bar=False,
                                   cwd=str(NOTEBOOK_DIR))
    assert info.value.ename == "ParameterError" and "NOT_A_PARAMETER" in info.value.evalue
