"""The course figure style at work: landmark names, layout numbers, widget views of one size."""

import io
import struct

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ipywidgets import IntSlider  # noqa: E402

from lmk import viz  # noqa: E402
from lmk.data.synth_face import NEUTRAL_IDENTITY, frontal_shape  # noqa: E402
from lmk.layouts import LAYOUT_68, LAYOUT_98, LAYOUT_106, point_names  # noqa: E402


@pytest.fixture(autouse=True)
def course_style():
    saved = matplotlib.rcParams.copy()
    viz.style.use()
    yield
    matplotlib.rcParams.update(saved)
    plt.close("all")


def test_point_names_name_the_well_known_points():
    names = point_names(LAYOUT_68)
    assert names[36] == "36 left eye outer corner" and names[45] == "45 right eye outer corner"
    assert names[30] == "30 nose tip" and names[8] == "8 chin"
    assert names[61] == "61 inner lip 2/8"
    for layout in (LAYOUT_68, LAYOUT_98, LAYOUT_106):
        names = point_names(layout)
        assert len(set(names)) == layout.num_points
        assert all(name.split()[0] == str(i) and len(name.split()) > 1 for i, name in enumerate(names))


def test_landmark_options_keep_the_index_as_value():
    options = viz.landmark_options(LAYOUT_68)
    assert options[36] == ("36 left eye outer corner", 36) and len(options) == 68


def _overlaps(texts, renderer):
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b)]


def test_lip_numbers_do_not_overlap():
    shape, _ = frontal_shape(NEUTRAL_IDENTITY, [0.3, 0, 0, 0, 0])
    fig, axes = viz.subplots(1, 2, height=4.6, width_ratios=(1.1, 1))
    whole, near = viz.show_layout(axes, shape[:, :2], LAYOUT_68)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    numbers = [t for t in near.texts if t.get_text().isdigit()]
    assert sorted(int(t.get_text()) for t in numbers) == list(range(48, 68))
    assert not _overlaps(numbers, renderer)
    assert sorted(int(t.get_text()) for t in whole.texts if t.get_text().isdigit()) == list(range(48))
    assert min(t.get_fontsize() for t in numbers) >= viz.style.SMALLEST


def test_explore_views_keep_their_pixel_size(monkeypatch):
    """Each view is saved whole: a longer title or wider tick labels do not change the PNG."""
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    def fake_display(*objs, display_id=None, **kwargs):
        shown.extend(o for o in objs if hasattr(o, "data") and isinstance(o.data, bytes))
        return Handle() if display_id else None

    monkeypatch.setattr(IPython.display, "display", fake_display)

    def view(k=0):
        fig, ax = viz.subplots(width=6, height=3)
        ax.plot(np.arange(10) * 10.0 ** k)
        ax.set_title("x" * (5 + 20 * k))
        return fig

    slider = IntSlider(value=0, min=0, max=3)
    viz.explore(view, k=slider)
    slider.value = 3
    sizes = [struct.unpack(">II", image.data[16:24]) for image in shown]
    assert len(sizes) == 2 and sizes[0] == sizes[1] == (600, 300)
    assert shown[0].data != shown[1].data


def test_inline_crop_would_change_the_size():
    """Why explore saves whole figures: a tight crop (the inline backend's) follows the content."""
    widths = []
    for title in ("short", "a much longer title " * 4):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.set_title(title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        widths.append(struct.unpack(">I", buf.getvalue()[16:20])[0])
    assert widths[0] != widths[1]


def test_explore_shows_a_redraw_error_in_place_of_the_figure(monkeypatch):
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    monkeypatch.setattr(IPython.display, "display",
                        lambda *objs, display_id=None, **kw: Handle() if display_id else None)

    def view(k=0):
        if k > 1:
            raise ValueError(f"k must be at most 1, got {k}")
        return viz.subplots(width=4, height=2)[0]

    slider = IntSlider(value=0, min=0, max=3)
    viz.explore(view, k=slider)
    with pytest.raises(ValueError, match="at most 1"):
        slider.value = 2
    assert shown[-1].data == "ValueError: k must be at most 1, got 2"
