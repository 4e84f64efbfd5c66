"""Sub-pixel exact anti-aliased drawing on top of OpenCV, for the synthetic faces.

Shapes are drawn with ``cv2.LINE_AA`` and ``shift=4`` (vertices on a 1/16 px grid), so moving
a landmark by a fraction of a pixel changes the image. Two OpenCV facts shape this module:

* ``cv2.fillConvexPoly`` anti-aliases accurately (an edge moves with its vertices to a few
  hundredths of a pixel), whereas ``cv2.fillPoly`` rounds edges to whole pixel rows (errors up
  to 0.5 px in y). Exact shapes therefore go through ``fillConvexPoly``: directly when they are
  y-monotone (every row crosses them at most twice), else as a fan of triangles.
* Both grow a filled shape by about 0.68 px (an anti-aliased outline is painted around it).
  Exact shapes are first inset by that much (:func:`offset_edges`), which puts the visible
  edge (50 % coverage) on the polygon, i.e. on the landmarks.

Points are ``(x, y)`` pixel coordinates with pixel centres at integers (OpenCV agrees). Inside,
points are handled as Python complex numbers ``x + iy`` (an edge's left normal is ``1j * edge``):
the polygons are small, and plain Python beats numpy's per-call overhead on them.
"""

from __future__ import annotations

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

    A convex polygon takes one OpenCV call on its inset outline. Another is cut along spokes
    from its centroid to its reflex vertices (and to edge midpoints, where a piece would still
    not be convex) into convex pieces. Spokes are not inset, so neighbouring pieces overlap and
    leave no seam; at a reflex vertex the overlap stays inside the shape, and a cut at an edge
    midpoint lies on a straight edge, so the outline is exact everywhere.
    """
    zl = [complex(x, y) for x, y in np.asarray(poly, float).tolist()]
    n = len(zl)
    d = AA_GROWTH - grow
    edges = [zl[k + 1 - n] - zl[k] for k in range(n)]
    area2 = sum(a.real * b.imag - a.imag * b.real for a, b in zip(zl, zl[1:] + zl[:1]))
    sign = 1.0 if area2 > 0 else -1.0
    nl = [sign * 1j * e / (abs(e) or 1e-9) for e in edges]              # inward unit normals
    # Reflex vertices; a turn of under 2 degrees the wrong way is treated as straight (OpenCV
    # fills it cleanly, and near-collinear runs such as a nose bridge stay one piece).
    reflex = [k for k in range(n) if sign * (edges[k - 1].real * edges[k].imag -
                                             edges[k - 1].imag * edges[k].real)
              < -0.035 * abs(edges[k - 1]) * abs(edges[k])]
    mitres = [(nl[k - 1] + nl[k]) / max(1.0 + nl[k - 1].real * nl[k].real +
                                        nl[k - 1].imag * nl[k].imag, 0.25) for k in range(n)]
    for _ in range(4):              # a shape thinner than the inset would turn inside out:
        rl = [v + d * m for v, m in zip(zl, mitres)]                     # inset outline
        inset_area2 = sum(a.real * b.imag - a.imag * b.real for a, b in zip(rl, rl[1:] + rl[:1]))
        if inset_area2 * sign > 0.05 * abs(area2):
            break
        d *= 0.5                    # then inset less (it is drawn up to 0.7 px too wide)
    else:
        d, rl = 0.0, zl
    if not reflex:
        cv2.fillConvexPoly(img, _cfixed(rl), color, _AA, SHIFT)
        return
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
        pieces = _cut_at_spokes(zl, rl, reflex, c, on_spoke, sign)
    except _NotStarShaped:          # rare (degenerate, strongly foreshortened shapes)
        cv2.fillPoly(img, [_cfixed(rl)], color, _AA, SHIFT)
        return
    for piece in pieces:
        cv2.fillConvexPoly(img, _cfixed(piece), color, _AA, SHIFT)


def _cfixed(z) -> np.ndarray:
    """Complex points (a list) to OpenCV's fixed point ``(K, 2)`` int32 (round half to even,
    as ``np.rint``)."""
    return np.array([(round(v.real * _ONE), round(v.imag * _ONE)) for v in z], np.int32)


class _NotStarShaped(Exception):
    pass


def _cut_at_spokes(zl, rl, reflex, c, on_spoke, orientation) -> list:
    """Convex pieces ``[c, ...]`` of a star-shaped polygon cut at ``reflex`` (see :func:`fill`)."""
    n = len(zl)
    pieces = []
    # Cuts are (vertex index, None) at reflex vertices or (edge index, midpoint) on edges.
    cuts = [(r, None) for r in reflex]
    # Also cut runs over half the outline at edge midpoints up front (they would most likely
    # span half a turn and be cut again anyway).
    longest = max(3, n // 2)
    marks = sorted(reflex)
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
        if run and (wide or (len(piece) > 3 and not _convex(piece))):
            k = run[len(run) // 2]                     # cut again at a middle edge's midpoint
            cut = (k, 0.5 * (zl[k] + zl[(k + 1) % n]))
            todo += [((a, ma), cut), (cut, (b, mb))]
            continue
        # Slide the spokes' outer ends along the outline, so that neighbours overlap there.
        e0, e1 = zl[(first + 1) % n] - zl[first], zl[(last + 1) % n] - zl[last]
        piece[1] -= _SPOKE_OVERLAP * e0 / (abs(e0) or 1.0)
        piece[-1] += _SPOKE_OVERLAP * e1 / (abs(e1) or 1.0)
        pieces.append(piece)
    return pieces


_SPOKE_OVERLAP = 0.5        # px each piece reaches across a spoke, along the outline


def _convex(z) -> bool:
    """True if the closed polygon (complex vertices, a list) turns the same way at every
    vertex (enough for the pieces here, which never wind around twice: see the span check)."""
    left = right = False
    for k in range(len(z)):
        a, b = z[k - 1] - z[k - 2], z[k] - z[k - 1]
        cross = a.real * b.imag - a.imag * b.real
        left |= cross > 1e-9
        right |= cross < -1e-9
    return not (left and right)


def fill_band(img, top, bottom, color) -> None:
    """Fill the band between two polylines ``(K, 2)`` (a brow) so that its top edge is exact.

    The band is cut into three convex pieces at the midpoints of the top's second and last-but-
    one segments (so no cut passes through a top vertex, a landmark); the lower edge is a
    polyline through ``bottom``'s ends and the cut points (it carries no label). Convexity
    needs the top to bend like an arch, as a brow's does; a piece that is not convex is drawn
    by :func:`fill`. Cuts are not inset, so the pieces overlap and leave no seam.
    """
    t = [complex(x, y) for x, y in np.asarray(top, float).tolist()]
    b = [complex(x, y) for x, y in np.asarray(bottom, float).tolist()]
    k = len(t)
    i, j = 1, k - 2                                   # cut in segments (i, i+1) and (j-1, j)
    ct, cb = 0.5 * (t[i] + t[i + 1]), 0.5 * (b[i] + b[i + 1])
    dt, db = 0.5 * (t[j - 1] + t[j]), 0.5 * (b[j - 1] + b[j])
    g = AA_GROWTH
    pieces = [(t[:i + 1] + [ct, cb, b[0]], [g] * (i + 1) + [0.0, g, g]),
              ([ct] + t[i + 1:j] + [dt, db, cb], [g] * (j - i) + [0.0, g, 0.0]),
              ([dt] + t[j:] + [b[-1], db], [g] * (k - j) + [g, g, 0.0])]
    for piece, d in pieces:
        if _convex(piece):
            out = offset_edges(piece, d)
            cv2.fillConvexPoly(img, _cfixed(out), color, _AA, SHIFT)
        else:
            fill(img, np.array([(v.real, v.imag) for v in piece]), color)


def offset_edges(z: list, d: list) -> list:
    """Move every edge of a closed polygon inward by its own distance; return the new vertices.

    Args:
        z: ``K`` complex vertices ``x + iy``; edge ``k`` joins vertex ``k`` to ``k + 1``.
        d: ``K`` distances in px (0 leaves an edge's line in place; negative moves it out).
    Returns:
        ``K`` complex vertices: each at the intersection of its two moved edges, or, where the
        edges turn by less than about 17 degrees, on their mitre at the mean distance (exact
        when both distances are equal). (Plain Python: for a handful of vertices it
        is several times faster than numpy's per-call overhead.)
    """
    n = len(z)
    area2 = 0.0
    normals = []
    for k in range(n):
        a, b = z[k], z[k + 1 - n]
        area2 += a.real * b.imag - a.imag * b.real
        e = b - a
        normals.append(1j * e / (abs(e) or 1e-9))
    sign = 1.0 if area2 > 0 else -1.0
    out = []
    for k in range(n):
        n1, n2 = normals[k - 1] * sign, normals[k] * sign
        d1, d2 = d[k - 1], d[k]
        sin = n1.real * n2.imag - n1.imag * n2.real
        if abs(sin) > 0.3:                            # the moved edges' intersection ...
            out.append(z[k] + 1j * (d2 * n1 - d1 * n2) / sin)
        else:                                         # ... or a mitre when nearly collinear
            cos = n1.real * n2.real + n1.imag * n2.imag
            out.append(z[k] + (n1 + n2) * (0.5 * (d1 + d2) / max(1.0 + cos, 0.25)))
    return out


def _fixed(points) -> np.ndarray:
    """``(K, 2)`` points to OpenCV's fixed point (``shift`` fractional bits), int32."""
    return np.rint(np.asarray(points, float) * _ONE).astype(np.int32)


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


def rgb(c) -> tuple:
    """A colour as a tuple of floats clipped to [0, 255] (what OpenCV expects)."""
    r, g, b = np.asarray(c, float).tolist()
    return (min(max(r, 0.0), 255.0), min(max(g, 0.0), 255.0), min(max(b, 0.0), 255.0))
