"""The course's figure style: sizes and fonts readable where the notebooks are read.

JupyterLab shows a PNG at its own pixel size, but never wider than the output area: a wider
figure is shrunk to fit, and its text with it. The course is laid out for an output area
:data:`PAGE_PX` = 1000 px wide, and no text may be smaller than :data:`MIN_TEXT_PX` = 9 px
there. A figure of width ``w`` inches at :data:`DPI` is ``w * DPI`` px wide, and a font of
``s`` points is ``s * DPI / 72`` px high, times ``PAGE_PX / (w * DPI)`` when the figure is
shrunk (:func:`text_px`). So every figure is at most :data:`WIDE` inches (960 px) wide, made with
:func:`subplots` or :func:`figure`, and no text is below :data:`SMALLEST` points (11 px).

Call :func:`use` once per notebook (after ``import matplotlib.pyplot``); it sets the fonts of
:data:`RC`. Layout is matplotlib's constrained layout, which also keeps legends placed
outside the axes (:func:`legend_outside`) inside the figure.
"""

from __future__ import annotations

DPI = 100                  # pixels per inch of the PNGs the inline backend saves
PAGE_PX = 1000             # width of the output area a figure is designed for
MIN_TEXT_PX = 9            # the smallest readable text there
WIDE = 9.6                 # inches: a full-width figure, 960 px
MEDIUM = 7.2               # inches: a single plot with a legend beside it
NARROW = 5.6               # inches: a single square-ish plot
FONT = 10                  # points: labels and titles
SMALL = 9                  # points: tick labels, legends, annotations
SMALLEST = 8               # points: the floor for dense labels (point numbers, cell values)

RC = {
    "figure.dpi": DPI,
    "savefig.dpi": "figure",
    "figure.figsize": (MEDIUM, 3.6),
    "font.size": FONT,
    "axes.titlesize": FONT,
    "axes.labelsize": FONT,
    "figure.titlesize": FONT + 1,
    "figure.labelsize": FONT,
    "xtick.labelsize": SMALL,
    "ytick.labelsize": SMALL,
    "legend.fontsize": SMALL,
    "legend.title_fontsize": SMALL,
    "legend.framealpha": 0.9,
    "axes.grid": False,
    "grid.alpha": 0.3,
}
FONT_KEYS = tuple(k for k in RC if k == "font.size" or k.endswith(("labelsize", "titlesize", "fontsize")))
"""The keys of :data:`RC` that set a font size."""


def use() -> None:
    """Apply :data:`RC` to matplotlib's defaults (once, at the top of a notebook)."""
    import matplotlib

    matplotlib.rcParams.update(RC)


def text_px(points: float, width_in: float, dpi: float = DPI, page_px: float = PAGE_PX) -> float:
    """Height in screen pixels of ``points``-point text in a ``width_in``-inch figure shown in an
    output area ``page_px`` wide (a wider figure is shrunk to fit)."""
    return points * dpi / 72 * min(1.0, page_px / (width_in * dpi))


def _check_width(width: float) -> float:
    if not 0 < width <= WIDE:
        raise ValueError(f"figure width must be in (0, {WIDE}] inches (at most {WIDE * DPI:.0f} px "
                         f"at {DPI} dpi), got {width!r}")
    return float(width)


def subplots(nrows: int = 1, ncols: int = 1, *, width: float = WIDE, height: float = 3.6, **kwargs):
    """``plt.subplots`` at a course size (``width`` at most :data:`WIDE` inches), constrained layout."""
    import matplotlib.pyplot as plt

    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(_check_width(width), height), **kwargs)


def figure(*, width: float = WIDE, height: float = 3.6, **kwargs):
    """``plt.figure`` at a course size, constrained layout (for functions that add their own axes)."""
    import matplotlib.pyplot as plt

    kwargs.setdefault("layout", "constrained")
    return plt.figure(figsize=(_check_width(width), height), **kwargs)


def legend_outside(ax, handles=None, labels=None, **kwargs):
    """A legend right of ``ax``, off the data (constrained layout makes room for it)."""
    args = () if handles is None else (handles, labels)
    kwargs.setdefault("loc", "upper left")
    kwargs.setdefault("bbox_to_anchor", (1.02, 1.0))
    kwargs.setdefault("borderaxespad", 0.0)
    return ax.legend(*args, **kwargs)


def legend_above(ax, ncols: int = 2, **kwargs):
    """A frameless legend in ``ncols`` columns just above ``ax`` (for panels side by side)."""
    kwargs.setdefault("loc", "lower left")
    kwargs.setdefault("bbox_to_anchor", (0.0, 1.01))
    kwargs.setdefault("borderaxespad", 0.0)
    kwargs.setdefault("frameon", False)
    return ax.legend(ncols=ncols, **kwargs)


def legend_below(ax, ncols: int = 1, offset_pt: float = 40.0, **kwargs):
    """A legend under ``ax``, ``offset_pt`` points below its bottom edge (clear of the tick
    labels and the x label), off the data; constrained layout makes room for it."""
    from matplotlib.transforms import ScaledTranslation

    kwargs.setdefault("loc", "upper center")
    kwargs.setdefault("borderaxespad", 0.0)
    kwargs.setdefault("frameon", False)
    shift = ScaledTranslation(0, -offset_pt / 72, ax.figure.dpi_scale_trans)
    return ax.legend(ncols=ncols, bbox_to_anchor=(0.5, 0.0), bbox_transform=ax.transAxes + shift, **kwargs)
