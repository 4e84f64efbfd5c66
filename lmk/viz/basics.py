"""Plotting helpers shared by the notebooks (matplotlib only)."""

from __future__ import annotations

import numpy as np

from ..layouts import LAYOUT_68, Layout, point_names
from .style import SMALL, SMALLEST, legend_above, legend_below, legend_outside, subplots


def _numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def draw_landmarks(ax, image=None, landmarks=None, *, layout: Layout | None = LAYOUT_68,
                   color="lime", size=8, label=None, connect=True, **kwargs):
    """Show ``image`` (H, W[, 3]) and ``landmarks`` (N, 2) on ``ax`` in pixel coordinates.

    ``imshow`` places pixel ``i`` centred on ``i`` (extent ``[-0.5, W - 0.5]``), which is the
    project's convention, so points need no shift. With ``connect`` and a layout, the points of
    each group are joined by lines.
    """
    if image is not None:
        img = _numpy(image)
        if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
            img = img.transpose(1, 2, 0)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    if landmarks is not None:
        pts = _numpy(landmarks).reshape(-1, 2)
        if connect and layout is not None and len(pts) == layout.num_points:
            for idx in layout.groups.values():
                ax.plot(pts[idx, 0], pts[idx, 1], "-", color=color, lw=0.6, alpha=0.7)
        ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, label=label, **kwargs)
    ax.set_axis_off()
    return ax


def plot_ced(ax, nmes: dict, threshold: float = 0.08, steps: int = 200, xmax=None, colors=None):
    """Cumulative error distribution of per-image NMEs, one curve per entry of ``nmes``.

    Args:
        nmes: ``{label: (M,) per-image NMEs as fractions}``.
        threshold: the AUC / failure-rate threshold (a fraction).
        xmax: right end of the x axis as a fraction: ``None`` stops at ``threshold`` (the part
            AUC integrates); ``"auto"`` extends to the 99th percentile of all NMEs when that is
            larger, so large errors do not leave an empty plot, and marks ``threshold``.
        colors: optional ``{label: colour}`` so a model keeps its colour across panels.
    """
    values = {label: np.sort(_numpy(v).ravel()) for label, v in nmes.items()}
    if xmax is None:
        xmax = threshold
    elif xmax == "auto":
        finite = np.concatenate([v[np.isfinite(v)] for v in values.values()] + [np.zeros(1)])
        xmax = max(threshold, 1.05 * float(np.quantile(finite, 0.99)))
    elif isinstance(xmax, str) or not xmax > 0:
        raise ValueError(f"plot_ced: xmax must be None, 'auto' or a positive fraction, got {xmax!r}")
    grid = np.linspace(0.0, xmax, steps)
    for label, v in values.items():
        frac = np.searchsorted(v, grid, side="right") / max(len(v), 1)
        ax.plot(100 * grid, frac, label=label, color=(colors or {}).get(label))
    if xmax > threshold:
        ax.axvline(100 * threshold, color="grey", ls=":", lw=1,
                   label=f"threshold {100 * threshold:g} %")
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("fraction of images")
    ax.set_xlim(0, 100 * xmax)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    return ax


def show_heatmap(ax, heatmap, point=None, title=None):
    """Show one ``(H, W)`` heatmap with an optional ``(x, y)`` marker."""
    ax.imshow(_numpy(heatmap), cmap="magma", interpolation="nearest")
    if point is not None:
        p = _numpy(point)
        ax.plot(p[0], p[1], "c+", ms=12, mew=2)
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return ax


def draw_pose_axes(ax, pose, origin, length: float = 20.0):
    """Draw the head axes of ``pose = (yaw, pitch, roll)`` degrees at ``origin`` ``(x, y)``.

    Red: the head's x axis (toward the image right on a frontal face), green: its y axis
    (down), blue: the facing direction (out of the face, toward the camera). Orthographic
    projection of the rotation of :mod:`lmk.data.synth_face` (``R = R_roll R_pitch R_yaw``).
    """
    from ..data.synth_face import rotation_matrix

    rot = rotation_matrix(*(float(a) for a in _numpy(pose).reshape(3)))
    ox, oy = _numpy(origin).reshape(2)
    for column, sign, color in ((0, 1, "red"), (1, 1, "lime"), (2, -1, "deepskyblue")):
        dx, dy = sign * length * rot[:2, column]
        ax.plot([ox, ox + dx], [oy, oy + dy], "-", color=color, lw=2.5, solid_capstyle="round")
    return ax


def draw_layout(ax, landmarks, layout: Layout = LAYOUT_68, *, numbers=True, pairs: bool = True,
                fontsize: float = SMALLEST, legend: bool = True):
    """A layout's groups in colour, point numbers and flip pairs (dotted lines).

    Each number sits a few points from its landmark, away from the centre of the landmark's
    group (toward it for an inner contour such as the inner lip, whose numbers would otherwise
    meet the outer lip's), so the numbers of neighbouring contours do not overlap.

    Args:
        landmarks: ``(N, 2)`` points of one face (e.g. a frontal synthetic face), y down.
        numbers: ``True`` numbers every point, ``False`` none, or the indices to number.
        legend: name the groups in a legend right of the axes.
    """
    import matplotlib.pyplot as plt

    pts = _numpy(landmarks).reshape(-1, 2)
    colors = plt.get_cmap("tab10")
    for k, (name, idx) in enumerate(layout.groups.items()):
        ax.plot(pts[idx, 0], pts[idx, 1], "o-", ms=3, lw=1, color=colors(k % 10), label=name)
    if pairs:
        for i, j in enumerate(layout.flip_perm):
            if i < j:
                ax.plot(pts[[i, j], 0], pts[[i, j], 1], ":", color="grey", lw=0.5)
    shown = set(range(len(pts)) if numbers is True else [] if numbers is False else
                (int(i) for i in numbers))
    for name, idx in layout.groups.items():
        away = (pts[idx] - pts[idx].mean(0)) * (-1 if name.startswith("inner") else 1)
        away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-9)
        for i, (dx, dy) in zip(idx, away):
            if int(i) in shown:    # offsets in points, y up on the page: image y is down
                ax.annotate(str(i), pts[i], xytext=(1.1 * fontsize * dx, -1.1 * fontsize * dy),
                            textcoords="offset points", ha="center", va="center", fontsize=fontsize)
    ax.set_aspect("equal")
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    if legend:
        legend_outside(ax)
    return ax


def show_layout(axes, landmarks, layout: Layout = LAYOUT_68, zoom=("outer_lip", "inner_lip")):
    """A whole layout (left) and its ``zoom`` groups enlarged (right), every point numbered once.

    Args:
        axes: two matplotlib axes; landmarks: ``(N, 2)`` of one face, y down (a face with its
            mouth a little open keeps the two lip contours apart).
    """
    pts = _numpy(landmarks).reshape(-1, 2)
    zoomed = np.concatenate([np.asarray(layout.groups[g]) for g in zoom])
    whole, near = axes
    draw_layout(whole, pts, layout, numbers=np.setdiff1d(np.arange(len(pts)), zoomed), legend=False)
    draw_layout(near, pts, layout, numbers=zoomed)
    lo, hi = pts[zoomed].min(0), pts[zoomed].max(0)
    pad = 0.12 * float((hi - lo).max())
    near.set_xlim(lo[0] - pad, hi[0] + pad)
    near.set_ylim(hi[1] + pad, lo[1] - pad)
    whole.indicate_inset_zoom(near, edgecolor="grey")
    near.set_title(", ".join(g.replace("_", " ") for g in zoom) + ", enlarged")
    return whole, near


def landmark_options(layout: Layout = LAYOUT_68) -> list:
    """``[(name, index), ...]`` for a widget that picks a landmark by name (``SelectionSlider``)."""
    return [(name, i) for i, name in enumerate(point_names(layout))]


def show_quantization(ax, point, ratio: float, cells: float = 1.5):
    """A point's round trip through a heatmap with ``ratio = L / F`` cells per input pixel.

    Draws, in input pixels around ``point``: the heatmap cell edges of the floor convention of
    Yin et al. (2020), Eqs. 3-4 (red, dashed, at multiples of ``1 / ratio``) and of the
    pixel-centre convention (blue, solid, half an input pixel earlier), the point, and where each convention
    recovers it (the floor convention returns a cell *corner*, the centre convention a cell
    *centre*), with the errors ``E`` of Eq. 5 in the legend.

    Args:
        point: ``(x, y)`` in input pixels.
        ratio: ``L / F``.
        cells: half-width of the view in heatmap cells.
    """
    from ..quantization import quantization_error, recover_points

    p = _numpy(point).astype(np.float64).reshape(2)
    step = 1.0 / ratio
    half = cells * step
    lo, hi = p - half, p + half
    for offset, style, color in ((0.0, "--", "tab:red"), (-0.5, "-", "tab:blue")):
        for axis, (a, b) in enumerate(zip(lo, hi)):
            first = np.ceil((a - offset) / step) * step + offset
            for edge in np.arange(first, b, step):
                line = ax.axvline if axis == 0 else ax.axhline
                line(edge, color=color, ls=style, lw=0.8, alpha=0.4)
    ax.plot(*p, "kx", ms=10, mew=2, label=f"landmark ({p[0]:.2f}, {p[1]:.2f})")
    for convention, color in (("floor", "tab:red"), ("centre", "tab:blue")):
        q = recover_points(p, ratio, 1.0, convention)
        e = float(quantization_error(p, ratio, 1.0, convention))
        ax.plot([p[0], q[0]], [p[1], q[1]], color=color, lw=1)
        ax.plot(*q, "o", color=color, label=f"{convention}: p' = ({q[0]:.2f}, {q[1]:.2f}), "
                                            f"E = {e:.2f} px")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(hi[1], lo[1])  # image convention: y grows downwards
    ax.set_aspect("equal")
    ax.set_xlabel("x (input px)")
    ax.set_ylabel("y (input px)")
    legend_below(ax)
    return ax


def plot_pixel_shuffle(ax_in, ax_out, channels: int = 4, size: int = 2):
    """Pixel shuffle x2 on numbered values: ``channels`` maps of ``size x size`` (left) become one
    ``2 size x 2 size`` map per 4 channels (right). Colour = source channel, number = value."""
    import matplotlib.pyplot as plt
    import torch

    x = torch.arange(channels * size * size, dtype=torch.float32).reshape(1, channels, size, size)
    y = torch.nn.functional.pixel_shuffle(x, 2)[0, 0].numpy()
    source = np.arange(channels).repeat(size * size).reshape(channels, size, size)
    cmap = plt.get_cmap("tab10")
    for c in range(channels):                       # input: channels side by side
        for (i, j), value in np.ndenumerate(x[0, c].numpy()):
            ax_in.add_patch(plt.Rectangle((c * (size + 1) + j, i), 1, 1, color=cmap(c), alpha=0.6))
            ax_in.text(c * (size + 1) + j + 0.5, i + 0.5, int(value), ha="center", va="center")
    for (i, j), value in np.ndenumerate(y):
        c = int(source.reshape(-1)[int(value)])
        ax_out.add_patch(plt.Rectangle((j, i), 1, 1, color=cmap(c), alpha=0.6))
        ax_out.text(j + 0.5, i + 0.5, int(value), ha="center", va="center")
    ax_in.set_xlim(0, channels * (size + 1) - 1)
    ax_in.set_ylim(size, 0)
    ax_out.set_xlim(0, 2 * size)
    ax_out.set_ylim(2 * size, 0)
    for ax in (ax_in, ax_out):
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    ax_in.set_title(f"{channels} channels, {size}x{size}")
    ax_out.set_title(f"{channels // 4} channel, {2 * size}x{2 * size}")
    return ax_in, ax_out


def plot_deconv_footprint(ax, size: int = 4, kernel: int = 4, stride: int = 2, padding: int = 1):
    """How many kernel taps reach each output pixel of a transposed convolution (all-ones input
    and kernel): 4 everywhere inside for 4x4 / stride 2, so the work is 4 MACs per output pixel
    per channel pair, i.e. 16 per input pixel."""
    import torch

    x = torch.ones(1, 1, size, size)
    w = torch.ones(1, 1, kernel, kernel)
    taps = torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding)[0, 0].numpy()
    ax.imshow(taps, cmap="Blues", vmin=0, vmax=taps.max() + 1)
    for (i, j), v in np.ndenumerate(taps):
        ax.text(j, i, int(v), ha="center", va="center", fontsize=SMALL)
    ax.set_title(f"taps per output pixel ({kernel}x{kernel}, stride {stride})")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def show_heatmap_marginals(fig, heatmap, hx, hy, point=None, title=None):
    """A 2D heatmap with its 1D marginals on the top (``h^x``) and right (``h^y``) margins.

    Yin et al. (2020), Eq. 12: ``h^x(x) = sum_y H(x, y)``, ``h^y(y) = sum_x H(x, y)``. The 1D
    curves are drawn as bars centred on the heatmap's cells, so each bar sits above (beside) the
    column (row) it sums.

    Args:
        fig: a matplotlib figure to draw into (three axes are added).
        heatmap: ``(H, W)``; hx: ``(W,)``; hy: ``(H,)``; point: optional ``(x, y)`` in cells.
    Returns:
        ``(ax_heatmap, ax_x, ax_y)``.
    """
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4), wspace=0.05, hspace=0.05)
    ax = fig.add_subplot(grid[1, 0])
    ax_x = fig.add_subplot(grid[0, 0], sharex=ax)
    ax_y = fig.add_subplot(grid[1, 1], sharey=ax)
    h, vx, vy = _numpy(heatmap), _numpy(hx), _numpy(hy)
    ax.imshow(h, cmap="magma", interpolation="nearest", aspect="auto")
    ax_x.bar(np.arange(len(vx)), vx, width=1.0, color="tab:blue")
    ax_y.barh(np.arange(len(vy)), vy, height=1.0, color="tab:orange")
    if point is not None:
        p = _numpy(point)
        ax.plot(p[0], p[1], "c+", ms=12, mew=2)
        ax_x.axvline(p[0], color="c", lw=1)
        ax_y.axhline(p[1], color="c", lw=1)
    ax.set_xlabel("x (heatmap cells)")
    ax.set_ylabel("y (heatmap cells)")
    ax_x.set_ylabel(r"$h^x$")
    ax_y.set_xlabel(r"$h^y$")
    ax_x.tick_params(labelbottom=False)
    ax_y.tick_params(labelleft=False)
    if title:
        ax_x.set_title(title)
    return ax, ax_x, ax_y


DECODER_STYLES = {"argmax": ("s", "lime"), "shift": ("D", "deepskyblue"), "dark": ("o", "red"),
                  "soft_argmax": ("^", "magenta")}


def show_decoders(ax, heatmap, truth, *, blur_sigma: float = 1.0, radius: float = 4.0):
    """A ``2 radius``-cell window of one ``(H, W)`` heatmap around ``truth`` with the answer of
    every decoder of :func:`lmk.codecs.decode_heatmaps` (hollow markers; truth: cyan cross).

    An answer outside the window is drawn on its edge and its legend entry says where it is,
    so no marker leaves the panel silently. The legend sits right of the axes on a dark frame.

    Returns:
        ``{method: (2,) decoded (x, y) in cells}``.
    """
    from ..codecs import METHODS, decode_heatmaps

    h, t = _numpy(heatmap), _numpy(truth).astype(np.float64).reshape(2)
    lo, hi = t - radius, t + radius
    ax.imshow(h, cmap="magma", interpolation="nearest")
    ax.plot(*t, "+", color="cyan", ms=16, mew=2, label="truth")
    decoded = {}
    for method in METHODS:
        q = _numpy(decode_heatmaps(h[None], method, blur_sigma=blur_sigma))[0].astype(np.float64)
        decoded[method] = q
        shown = np.clip(q, lo, hi)
        label = f"{method}: error {np.linalg.norm(q - t):.2f}"
        if not np.array_equal(shown, q):
            label += f"\n(at {q[0]:.1f}, {q[1]:.1f}:\ndrawn on the edge)"
        marker, color = DECODER_STYLES[method]
        ax.plot(*shown, marker, color=color, mfc="none", ms=9, mew=1.5, label=label,
                clip_on=False)
    ax.set(xlim=(lo[0], hi[0]), ylim=(hi[1], lo[1]), xlabel="x (cells)", ylabel="y (cells)")
    legend_outside(ax, facecolor="0.25", labelcolor="white", framealpha=1.0)
    return decoded


def show_decoding(sigma: float, noise: float, offset=(0.0, 0.0), *, size: int = 64,
                  cell=(30, 21), seed: int = 0):
    """One landmark at ``cell + offset`` encoded as a 2D heatmap and as 1D marginals (Yin et
    al. (2020), Eq. 12), plus noise, decoded by every method: a figure for a decoder widget.

    The noise is one fixed draw (``seed``) scaled by ``noise``, so moving a slider changes only
    what it names. Left: :func:`show_decoders` on the 2D map; right: each decoder's error.

    Args:
        sigma: Gaussian std in cells (also DARK's blur); noise: std of the per-cell noise;
        offset: ``(dx, dy)`` sub-cell position of the landmark from the centre of ``cell``.
    Returns:
        The matplotlib ``Figure``.
    """
    from ..codecs import METHODS, decode_marginals, gaussian_heatmaps, gaussian_marginals

    truth = np.asarray(cell, np.float64) + np.asarray(offset, np.float64)
    rng = np.random.default_rng(seed)
    field, field_x, field_y = rng.standard_normal((size, size)), *rng.standard_normal((2, 1, size))
    heatmap = gaussian_heatmaps(truth[None], (size, size), sigma)[0] + noise * field
    hx, hy = gaussian_marginals(truth[None], (size, size), sigma)
    hx, hy = hx + noise * field_x, hy + noise * field_y
    fig, (ax, bars) = subplots(1, 2, height=4.2, width_ratios=(1.6, 1))
    found_2d = show_decoders(ax, heatmap, truth, blur_sigma=sigma)
    ax.set_title(f"2D map, sigma {sigma:g}, noise {noise:g}: a window around the truth")
    errors_1d = [np.linalg.norm(_numpy(decode_marginals(hx, hy, m, blur_sigma=sigma))[0] - truth)
                 for m in METHODS]
    errors_2d = [np.linalg.norm(found_2d[m] - truth) for m in METHODS]
    x, floor = np.arange(len(METHODS)), 1e-6  # log axis: an exact answer is drawn at the floor
    bars.bar(x - 0.2, np.maximum(errors_2d, floor), 0.4, label="2D")
    bars.bar(x + 0.2, np.maximum(errors_1d, floor), 0.4, label="1D marginals")
    bars.set_xticks(x, METHODS)
    bars.set(yscale="log", ylim=(floor, None), ylabel="distance to the truth (cells, log scale)")
    legend_above(bars)
    return fig


def explore(fn, **controls):
    """Show ``fn``'s figure with controls that redraw it in place: ``interact`` for course notebooks.

    ``ipywidgets.interact`` draws into an Output widget, and executing such a cell unattended
    (papermill, nbval) can stall intermittently (nbclient issue 312). Here the figure is an
    ordinary display output, so an executed notebook shows the default view, and moving a
    control replaces that same output (``display_id``) in a live session.

    The figure is saved whole, at its own size (not cropped to its contents as the inline
    backend does), so every view has the same pixel size and nothing jumps while a slider moves.
    An error while redrawing replaces the figure with its message (and is raised, for the log):
    a widget callback has no cell to show a traceback in.

    Args:
        fn: called as ``fn(**{name: control.value})``; returns a matplotlib ``Figure`` (and
            does not call ``plt.show()``).
        controls: ipywidgets value widgets (``FloatSlider``, ``Dropdown``, ...) by argument name.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, Pretty, display
    from ipywidgets import HBox

    def render():
        fig = fn(**{name: control.value for name, control in controls.items()})
        if fig is None or not hasattr(fig, "savefig"):
            raise TypeError("explore: fn must return a matplotlib Figure, not call plt.show()")
        png = io.BytesIO()
        fig.savefig(png, format="png", bbox_inches=None)
        plt.close(fig)  # shown once through the display handle, not again at the cell's end
        return Image(data=png.getvalue(), format="png")

    display(HBox(list(controls.values())))
    handle = display(render(), display_id=True)

    def redraw(_change):
        try:
            handle.update(render())
        except Exception as exc:  # shown where the figure was: a callback's errors reach no cell
            handle.update(Pretty(f"{type(exc).__name__}: {exc}"))
            raise

    for control in controls.values():
        control.observe(redraw, "value")


def plot_learning_curve(axes, history, baseline: float | None = None, title: str | None = None):
    """Training loss (left panel, log scale) and validation NME in % (right panel), per epoch.

    Args:
        axes: two matplotlib axes side by side, one per quantity.
        history: ``lmk.train.History`` or its ``to_dict()`` (a zoo entry's ``history`` works too).
        baseline: the mean shape's NME (fraction), drawn as a dashed line in the NME panel.
        title: the figure's title (``suptitle``).
    Returns:
        ``(loss_ax, nme_ax)``.
    """
    ax, bx = axes
    h = history if isinstance(history, dict) else history.to_dict()
    epochs, nme = np.asarray(h["epoch"]), 100 * np.asarray(h["val_nme"], dtype=float)
    steps = h.get("step_loss") or []
    if steps:
        x = np.linspace(0, epochs[-1], len(steps) + 1)[1:]
        ax.plot(x, steps, color="tab:gray", lw=0.6, alpha=0.7, label="per step")
    ax.plot(epochs, h["train_loss"], "o-", color="black", ms=3, label="per epoch")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (log)")
    keep = np.isfinite(nme)
    bx.plot(epochs[keep], nme[keep], "s-", color="tab:blue", ms=4, label="validation")
    if baseline is not None:
        bx.axhline(100 * baseline, color="tab:red", ls="--", lw=1, label="mean shape")
    bx.set_xlabel("epoch")
    bx.set_ylabel("validation NME (%)")
    bx.set_ylim(bottom=0)
    for a in (ax, bx):
        a.grid(alpha=0.3)
        legend_above(a)
    if title:
        ax.figure.suptitle(title)
    return ax, bx
