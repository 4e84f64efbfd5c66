"""Sub-pixel exact anti-aliased drawing on top of OpenCV, for the synthetic faces.

Shapes are drawn with ``cv2.LINE_AA`` and ``shift=4`` (vertices on a 1/16 px grid), so moving
a landmark by a fraction of a pixel changes the image. Two OpenCV facts shape this module:

* ``cv2.fillConvexPoly`` anti-aliases accurately (an edge moves with its vertices to a few
  hundredths of a pixel), whereas ``cv2.fillPoly`` rounds edges to whole pixel rows (errors up
  to 0.5 px in y). Despite its name, ``fillConvexPoly`` fills any *y-monotone* polygon (every
  row crosses it at most twice, convex or not): it walks down the outline's left and right
  chains from the top vertex. Exact shapes therefore go through it: in one call when
  y-monotone (the face, eyes, nose, most lips), else cut into y-monotone pieces.
* Both grow a filled shape by about 0.68 px (an anti-aliased outline is painted around it).
  Exact shapes are first inset by that much (:func:`inset_outline`), which puts the visible
  edge (50 % coverage) on the polygon, i.e. on the landmarks.

Points are ``(x, y)`` pixel coordinates with pixel centres at integers (OpenCV agrees). Inside,
polygons are Python lists of ``(x, y)`` floats (complex numbers ``x + iy`` in the rare cutting
path, where an edge's left normal is ``1j * edge``): the polygons are small, and plain Python
beats numpy's per-call overhead on them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SHIFT = 4                    # sub-pixel bits of the OpenCV drawing calls
_ONE = float(1 << SHIFT)
AA_GROWTH = 0.68             # px by which OpenCV's anti-aliased fills grow a shape
_AA = cv2.LINE_AA


def fill(img, poly, color, grow: float = 0.0) -> None:
    """Fill a polygon so that its visible edge lies on ``poly`` (moved out by ``grow`` px).

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` uint8, drawn in place.
        poly: ``(K, 2)`` points of a simple polygon, star-shaped about its centroid.
        color: a scalar or a tuple of floats.

    The outline is inset by OpenCV's growth (:func:`inset_outline`); a y-monotone inset outline
    takes one OpenCV call. Another is cut along spokes from the centroid into y-monotone pieces
    (:func:`_fill_in_pieces`).
    """
    pts = np.asarray(poly, float).tolist()
    inset, d = inset_outline(pts, AA_GROWTH - grow)
    if _y_monotone([y for _, y in inset]):
        cv2.fillConvexPoly(img, _fixed(inset), color, _AA, SHIFT)
    else:
        _fill_in_pieces(img, pts, inset, d, color)


def _unit_normals(pts: list) -> tuple[list, float]:
    """Left unit normals ``(-e_y, e_x) / |e|`` of the edges ``k -> k + 1`` of a closed polygon,
    and twice its signed area (> 0: the left normals point inward)."""
    normals, area2 = [], 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        area2 += x0 * y1 - y0 * x1
        length = math.hypot(x1 - x0, y1 - y0) or 1e-9
        normals.append(((y0 - y1) / length, (x1 - x0) / length))
    return normals, area2


def _area2(pts: list) -> float:
    """Twice the signed area of a closed polygon (shoelace formula)."""
    return sum(x0 * y1 - y0 * x1 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))


def inset_outline(pts: list, d: float) -> tuple[list, float]:
    """Move every edge of a closed polygon inward by ``d`` px, with mitred corners.

    Vertex ``k`` moves along the sum of its two edges' inward unit normals ``n1 + n2``::

        v' = v + d (n1 + n2) / (1 + n1 . n2)

    which puts it on both moved edges (``|n1 + n2| / (1 + n1 . n2) = 1 / cos(turn / 2)``); the
    denominator is floored at 0.25, so a very sharp corner moves at most about ``2.8 d``.

    Args:
        pts: ``K`` vertices ``(x, y)`` (a list), in either orientation.
        d: the inset in px.
    Returns:
        ``(inset, d)``: the ``K`` moved vertices and the inset used. A shape thinner than
        ``2 d`` would turn inside out, so while the inset outline keeps under 5 % of the area,
        ``d`` is halved (the shape is then drawn up to 0.7 px too wide); after four halvings
        the outline is returned as it is, with ``d = 0``.
    """
    normals, area2 = _unit_normals(pts)
    inward = 1.0 if area2 > 0 else -1.0
    mitres = []
    for (ax, ay), (bx, by) in zip(normals[-1:] + normals[:-1], normals):
        f = inward / max(1.0 + ax * bx + ay * by, 0.25)
        mitres.append(((ax + bx) * f, (ay + by) * f))
    for _ in range(4):
        inset = [(x + d * u, y + d * v) for (x, y), (u, v) in zip(pts, mitres)]
        if _area2(inset) * inward > 0.05 * abs(area2):
            return inset, d
        d *= 0.5
    return pts, 0.0


def _y_monotone(ys: list) -> bool:
    """True if every horizontal line crosses the closed polygon with these vertex ``y`` at most
    twice: going round it, y turns from rising to falling, and back, once each."""
    rising = [y1 > y0 for y0, y1 in zip(ys, ys[1:] + ys[:1]) if y1 != y0]
    return sum(a != b for a, b in zip(rising, rising[1:] + rising[:1])) <= 2


def _fixed(points) -> np.ndarray:
    """Points ``(K, 2)`` (an array, or a list of ``(x, y)`` or of complex ``x + iy``) to
    OpenCV's fixed point (``SHIFT`` fractional bits) ``(K, 2)`` int32, rounding half to even."""
    if isinstance(points, np.ndarray):
        return np.rint(points * _ONE).astype(np.int32)
    if points and isinstance(points[0], complex):
        return np.array([(round(v.real * _ONE), round(v.imag * _ONE)) for v in points], np.int32)
    return np.array([(round(x * _ONE), round(y * _ONE)) for x, y in points], np.int32)


class _NotStarShaped(Exception):
    pass


def _fill_in_pieces(img, pts: list, inset: list, d: float, color) -> None:
    """Fill a polygon that is not y-monotone as y-monotone pieces (see :func:`fill`).

    The pieces are cut along spokes from the centroid ``c``: through the *cusps* (reflex vertices
    where y turns back, which are what makes a polygon non-monotone) and through edge
    midpoints where a piece would still not be y-monotone or would span half a turn. Spokes are
    not inset, so neighbouring pieces overlap and leave no seam; at a cusp the overlap stays
    inside the shape, and a cut at an edge midpoint lies on a straight edge, so the outline is
    exact everywhere. A spoke end lies where the spoke meets its edge's inset line.
    """
    zl = [complex(x, y) for x, y in pts]
    rl = [complex(x, y) for x, y in inset]
    n = len(zl)
    edges = [zl[k + 1 - n] - zl[k] for k in range(n)]
    sign = 1.0 if _area2(pts) > 0 else -1.0
    nl = [sign * 1j * e / (abs(e) or 1e-9) for e in edges]              # inward unit normals
    cusps = [k for k in range(n)
             if sign * (edges[k - 1].real * edges[k].imag - edges[k - 1].imag * edges[k].real) < 0
             and edges[k - 1].imag * edges[k].imag <= 0]
    c = sum(zl) / n

    def on_spoke(q, k):             # where the spoke from c through q meets edge k's inset line
        w, nk = q - c, nl[k]
        u = c - zl[k]
        den = nk.real * w.real + nk.imag * w.imag
        t = (d - (nk.real * u.real + nk.imag * u.imag)) / den if den < 0 else -1.0
        if not 0.0 < t < 1.0:
            raise _NotStarShaped
        return c + t * w

    try:
        if not cusps:
            raise _NotStarShaped    # only by rounding (a nearly flat turn): no spoke to cut on
        pieces = _cut_at_spokes(zl, rl, cusps, c, on_spoke, sign)
    except _NotStarShaped:          # rare (degenerate, strongly foreshortened shapes)
        cv2.fillPoly(img, [_fixed(rl)], color, _AA, SHIFT)
        return
    for piece in pieces:
        cv2.fillConvexPoly(img, _fixed(piece), color, _AA, SHIFT)


def _cut_at_spokes(zl, rl, cusps, c, on_spoke, orientation) -> list:
    """y-monotone pieces ``[c, ...]`` of a star-shaped polygon cut at ``cusps`` (see
    :func:`_fill_in_pieces`)."""
    n = len(zl)
    pieces = []
    # Cuts are (vertex index, None) at cusps or (edge index, midpoint) on edges.
    cuts = [(r, None) for r in cusps]
    # Also cut runs over half the outline at edge midpoints up front (they would most likely
    # span half a turn and be cut again anyway).
    longest = max(3, n // 2)
    marks = sorted(cusps)
    extra = []
    for r0, r1 in zip(marks, marks[1:] + [marks[0] + n]):
        steps = (r1 - r0 - 1) // longest
        extra += [((r0 + (j + 1) * (r1 - r0) // (steps + 1)) % n) for j in range(steps)]
    cuts = sorted(cuts + [(k, 0.5 * (zl[k] + zl[(k + 1) % n])) for k in extra],
                  key=lambda cut: cut[0] + (0.5 if cut[1] is not None else 0.0))
    todo = list(zip(cuts, cuts[1:] + cuts[:1]))
    while todo:
        (a, ma), (b, mb) = todo.pop()
        first = a                                       # edge that starts the piece
        last = b if mb is not None else (b - 1) % n     # edge that ends the piece
        count = (last - first) % n
        piece = [c, on_spoke(zl[a] if ma is None else ma, first)]
        piece += [rl[(first + 1 + j) % n] for j in range(count)]
        piece.append(on_spoke(zl[b] if mb is None else mb, last))
        run = [(first + j) % n for j in range(count + 1)
               if not (j == 0 and ma is not None) and not (j == count and mb is not None)]
        u, v = piece[1] - c, piece[-1] - c          # a piece must span less than a half-turn
        wide = (a, ma) == (b, mb) or (u.real * v.imag - u.imag * v.real) * orientation <= 0
        # Slide the spokes' outer ends along the outline, so that neighbours overlap there.
        e0, e1 = zl[(first + 1) % n] - zl[first], zl[(last + 1) % n] - zl[last]
        piece[1] -= _SPOKE_OVERLAP * e0 / (abs(e0) or 1.0)
        piece[-1] += _SPOKE_OVERLAP * e1 / (abs(e1) or 1.0)
        if run and (wide or not _y_monotone([z.imag for z in piece])):
            k = run[len(run) // 2]                     # cut again at a middle edge's midpoint
            cut = (k, 0.5 * (zl[k] + zl[(k + 1) % n]))
            todo += [((a, ma), cut), (cut, (b, mb))]
            continue
        pieces.append(piece)
    return pieces


_SPOKE_OVERLAP = 0.5        # px each piece reaches across a spoke, along the outline


def fill_band(img, top, bottom, color) -> None:
    """Fill the band between two polylines ``(K, 2)`` (a brow) so that its top edge is exact.

    The band is cut into three pieces at the midpoints of the top's second and last-but-one
    segments (so no cut passes through a top vertex, a landmark); the lower edge is a polyline
    through ``bottom``'s ends and the cut points (it carries no label). The pieces are
    y-monotone when the top bends like an arch, as a brow's does; a piece that is not is drawn
    by :func:`fill`. Cuts are not inset, so the pieces overlap and leave no seam.
    """
    t = np.asarray(top, float).tolist()
    b = np.asarray(bottom, float).tolist()
    k = len(t)
    i, j = 1, k - 2                                   # cut in segments (i, i+1) and (j-1, j)
    ct, cb = _midpoint(t[i], t[i + 1]), _midpoint(b[i], b[i + 1])
    dt, db = _midpoint(t[j - 1], t[j]), _midpoint(b[j - 1], b[j])
    g = AA_GROWTH
    pieces = [(t[:i + 1] + [ct, cb, b[0]], [g] * (i + 1) + [0.0, g, g]),
              ([ct] + t[i + 1:j] + [dt, db, cb], [g] * (j - i) + [0.0, g, 0.0]),
              ([dt] + t[j:] + [b[-1], db], [g] * (k - j) + [g, g, 0.0])]
    for piece, d in pieces:
        out = offset_edges(piece, d)
        if _y_monotone([y for _, y in out]):
            cv2.fillConvexPoly(img, _fixed(out), color, _AA, SHIFT)
        else:
            fill(img, piece, color)


def _midpoint(p, q) -> list:
    return [0.5 * (p[0] + q[0]), 0.5 * (p[1] + q[1])]


def offset_edges(pts: list, d: list) -> list:
    """Move every edge of a closed polygon inward by its own distance; return the new vertices.

    Args:
        pts: ``K`` vertices ``(x, y)``; edge ``k`` joins vertex ``k`` to ``k + 1``.
        d: ``K`` distances in px (0 leaves an edge's line in place; negative moves it out).
    Returns:
        ``K`` vertices ``(x, y)``: each at the intersection of its two moved edges, or, where
        the edges turn by less than about 17 degrees, on their mitre at the mean distance
        (exact when both distances are equal). With inward unit normals ``n1, n2`` of the
        edges before and after a vertex ``v`` and ``sin = n1 x n2``, the intersection is
        ``v + (d2 * perp(n1) - d1 * perp(n2)) / sin``, ``perp(x, y) = (-y, x)``.
    """
    normals, area2 = _unit_normals(pts)
    if area2 < 0:
        normals = [(-nx, -ny) for nx, ny in normals]                    # inward
    out = []
    for (x, y), (ax, ay), (bx, by), d1, d2 in zip(pts, normals[-1:] + normals[:-1], normals,
                                                  d[-1:] + d[:-1], d):
        sin = ax * by - ay * bx
        if abs(sin) > 0.3:                            # the moved edges' intersection ...
            px, py = d2 * ax - d1 * bx, d2 * ay - d1 * by
            out.append((x - py / sin, y + px / sin))
        else:                                         # ... or a mitre when nearly collinear
            f = 0.5 * (d1 + d2) / max(1.0 + ax * bx + ay * by, 0.25)
            out.append((x + (ax + bx) * f, y + (ay + by) * f))
    return out


def fill_rough(img, poly, color) -> None:
    """Fill any polygon with ``cv2.fillPoly`` as is: for shapes whose edges carry no label."""
    cv2.fillPoly(img, [_fixed(poly)], color, _AA, SHIFT)


def line(img, pts, color, thickness: int = 1) -> None:
    """An anti-aliased open polyline (not exact: for details that carry no label)."""
    cv2.polylines(img, [_fixed(pts)], False, color, thickness, _AA, SHIFT)


def ellipse(img, centre, axes, angle: float, color) -> None:
    """A filled ellipse whose visible edge is at the given semi-axes (px)."""
    x, y = float(centre[0]), float(centre[1])
    ax = (int(round(max(float(axes[0]) - AA_GROWTH, 0.25) * _ONE)),
          int(round(max(float(axes[1]) - AA_GROWTH, 0.25) * _ONE)))
    cv2.ellipse(img, (int(round(x * _ONE)), int(round(y * _ONE))), ax, float(angle), 0, 360,
                color, -1, _AA, SHIFT)


def disc(img, centre, radius: float, color) -> None:
    """A filled disc whose visible edge is at ``radius`` px."""
    ellipse(img, centre, (radius, radius), 0.0, color)


def blend(img, x0: int, y0: int, layer, mask) -> None:
    """Blend ``layer (h, w, 3)`` into ``img`` at column ``x0``, row ``y0`` through the coverage
    ``mask (h, w)`` uint8 (255: all layer), in place: ``(layer * mask + img * (255 - mask)) / 255``
    in uint8 arithmetic (each product rounded, so a result may be 1 grey level off)."""
    h, w = mask.shape
    roi = img[y0:y0 + h, x0:x0 + w]
    alpha = cv2.cvtColor(mask, cv2.COLOR_GRAY2RGB)
    img[y0:y0 + h, x0:x0 + w] = cv2.add(cv2.multiply(layer, alpha, scale=1 / 255),
                                        cv2.multiply(roi, cv2.bitwise_not(alpha), scale=1 / 255))


def rgb(c) -> tuple:
    """A colour as a tuple of floats clipped to [0, 255] (what OpenCV expects)."""
    r, g, b = np.asarray(c, float).tolist()
    return (min(max(r, 0.0), 255.0), min(max(g, 0.0), 255.0), min(max(b, 0.0), 255.0))
