"""How the committed notebooks show in JupyterLab: metadata it would rewrite, and figure sizes."""

import base64
import json
import struct
from pathlib import Path

import pytest
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

from lmk.viz import style

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _load(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernelspec_is_what_jupyterlab_writes(path):
    """JupyterLab replaces a kernelspec that differs from the kernel's own and autosaves the file."""
    kernel = get_kernel_dict()   # what `python -m ipykernel install` writes to kernel.json
    expected = {"display_name": kernel["display_name"], "language": kernel["language"],
                "name": KERNEL_NAME}
    assert _load(path)["metadata"]["kernelspec"] == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_language_info_is_what_the_kernel_reports(path):
    """The kernel's info reply; its Python version is the one that executed the notebook."""
    saved = dict(_load(path)["metadata"]["language_info"])
    expected = dict(IPythonKernel.language_info)
    assert saved.pop("version").split(".")[0] == expected.pop("version").split(".")[0]
    assert saved == expected


def _png_sizes(nb):
    """``(cell number, width, height)`` of every PNG output (the IHDR chunk of the file)."""
    for k, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                head = base64.b64decode("".join(png) if isinstance(png, list) else png)[:24]
                assert head[:8] == b"\x89PNG\r\n\x1a\n", f"cell {k}: image/png is not a PNG"
                yield (k, *struct.unpack(">II", head[16:24]))


def figure_widths(path):
    return [(k, w) for k, w, _ in _png_sizes(_load(path))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_fit_the_output_area(path):
    """A PNG wider than the output area is shrunk in JupyterLab, and its text with it."""
    widths = figure_widths(path)
    too_wide = [(k, w) for k, w in widths if w > style.PAGE_PX]
    assert not too_wide, f"{path.name}: (cell, width px) wider than {style.PAGE_PX} px: {too_wide}"


def test_figure_width_check_reads_pngs(tmp_path):
    """The check above finds a wide figure: a 12-inch figure saved as the inline backend does."""
    import io

    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 2), dpi=style.DPI)
    fig.text(0.1, 0.5, "wide")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {"image/png": base64.b64encode(buf.getvalue()).decode()}}]}]}
    path = tmp_path / "wide.ipynb"
    path.write_text(json.dumps(nb))
    assert figure_widths(path) == [(0, 1200)]


def test_style_fonts_are_readable_at_full_width():
    """Every font of the style, in the widest figure it allows, is at least 9 px on screen."""
    from matplotlib.font_manager import FontProperties

    sizes = {key: FontProperties(size=style.RC[key]).get_size_in_points() for key in style.FONT_KEYS}
    sizes["SMALLEST"] = style.SMALLEST
    smallest = min(sizes, key=sizes.get)
    px = style.text_px(sizes[smallest], style.WIDE)
    assert px >= style.MIN_TEXT_PX, f"{smallest}: {sizes[smallest]} pt is {px:.1f} px"
    assert style.WIDE * style.DPI <= style.PAGE_PX


def test_text_px_shrinks_wide_figures():
    assert style.text_px(9, 5.0) == pytest.approx(12.5)               # 500 px wide: shown as is
    assert style.text_px(9, 18.0) == pytest.approx(12.5 * 1000 / 1800)  # 1800 px: shrunk to 1000


def test_course_figures_refuse_a_width_that_would_shrink():
    with pytest.raises(ValueError, match="figure width must be in"):
        style.subplots(width=12)


def test_viz_draws_no_text_below_the_smallest_font():
    """No hard-coded font size in lmk.viz is smaller than the style's smallest."""
    import re

    sources = (Path(style.__file__).parent).glob("*.py")
    literal = re.compile(r"fontsize\s*=\s*(\d+(?:\.\d+)?)")
    small = [(p.name, float(v)) for p in sources for v in literal.findall(p.read_text())
             if float(v) < style.SMALLEST]
    assert not small, f"font sizes below {style.SMALLEST} pt: {small}"


def _code(path):
    return ["".join(c["source"]) for c in _load(path)["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_is_made_in_the_course_style(path):
    """Figures come from viz.subplots / viz.figure (course sizes) after viz.style.use() (fonts)."""
    import re

    code = _code(path)
    first = next((k for k, s in enumerate(code) if "viz.style.use()" in s), None)
    assert first is not None, f"{path.name} never calls viz.style.use()"
    made = [k for k, s in enumerate(code) if re.search(r"viz\.(subplots|figure)\(|viz\.explore\(", s)]
    assert made and min(made) > first, f"{path.name}: a figure before viz.style.use()"
    for k, source in enumerate(code):
        for pattern in (r"plt\.(subplots|figure)\(", r"figsize\s*=", r"tight_layout\(",
                        r"fontsize\s*=\s*[0-7](\.\d+)?\b"):
            assert not re.search(pattern, source), \
                f"{path.name} code cell {k}: {pattern!r} bypasses the course style (lmk.viz.style)"
