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
  Exact shapes are first inset by that much (:func:`inset_polygons`), which puts the visible
  edge (50 % coverage) on the polygon, i.e. on the landmarks.

A face has a dozen exact shapes of 5 to 26 vertices: :func:`exact_pieces` prepares them all
in one vectorized pass (shape by shape, numpy's per-call overhead would dominate), and
:func:`fill_pieces` draws each; :func:`fill` does both for one polygon.

Points are ``(x, y)`` pixel coordinates with pixel centres at integers (OpenCV agrees). Inside,
they are complex numbers ``x + iy`` (an edge's left normal is ``1j * edge``).
"""

from __future__ import annotations

from functools import lru_cache

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
    """
    fill_pieces(img, exact_pieces({"shape": [(poly, AA_GROWTH - grow)]})["shape"], color)


def fill_band(img, top, bottom, color) -> None:
    """Fill the band between two polylines ``(K, 2)`` (a brow) so that its top edge is exact
    (see :func:`band_parts`)."""
    fill_pieces(img, exact_pieces({"band": band_parts(top, bottom)})["band"], color)


def band_parts(top, bottom) -> list:
    """The band between two polylines ``(K, 2)`` (a brow), as parts for :func:`exact_pieces`
    whose union has an exact top edge.

    The band is cut at the midpoints of the top's second and last-but-one segments (so no cut
    passes through a top vertex, a landmark) into three parts that are y-monotone when the top
    bends like an arch, as a brow's does. The lower edge is a polyline through ``bottom``'s ends
    and the cut points (it carries no label). Cuts are not inset (distance 0), so the parts
    overlap and leave no seam. Returns ``[(polygon, per-edge insets), ...]``.
    """
    t = np.asarray(top, float).tolist()
    b = np.asarray(bottom, float).tolist()
    k = len(t)
    i, j = 1, k - 2                                   # cut in segments (i, i+1) and (j-1, j)
    ct, cb = _midpoint(t[i], t[i + 1]), _midpoint(b[i], b[i + 1])
    dt, db = _midpoint(t[j - 1], t[j]), _midpoint(b[j - 1], b[j])
    g = AA_GROWTH
    return [(t[:i + 1] + [ct, cb, b[0]], [g] * (i + 1) + [0.0, g, g]),
            ([ct] + t[i + 1:j] + [dt, db, cb], [g] * (j - i) + [0.0, g, 0.0]),
            ([dt] + t[j:] + [b[-1], db], [g] * (k - j) + [g, g, 0.0])]


def _midpoint(p, q) -> list:
    return [0.5 * (p[0] + q[0]), 0.5 * (p[1] + q[1])]


def split_parts(polygon, i: int, j: int) -> list:
    """A polygon ``(K, 2)`` cut along the chord from vertex ``i`` to vertex ``j > i``, as two
    parts for :func:`exact_pieces`: the chord is not inset, so the parts overlap along it and
    leave no seam, and their union's outline is the polygon's. (A cut through a cusp turns a
    shape that is not y-monotone into two that are.)"""
    p = np.asarray(polygon, float).tolist()
    g = AA_GROWTH
    return [(p[i:j + 1], [g] * (j - i) + [0.0]),
            (p[j:] + p[:i + 1], [g] * (len(p) - j + i) + [0.0])]


def exact_pieces(shapes: dict) -> dict:
    """OpenCV-ready pieces of several exact shapes, prepared together.

    Args:
        shapes: name -> a polygon ``(K, 2)`` array (every edge to be inset by
            :data:`AA_GROWTH`), or a list of parts ``(polygon (K, 2), insets)``, ``insets`` a
            scalar or ``K`` per-edge distances in px (edge ``k`` joins vertex ``k`` to
            ``k + 1``; 0 keeps an edge in place).
    Returns:
        name -> its pieces for :func:`fill_pieces`.

    All parts are inset in one vectorized pass (:func:`_inset`). A part whose inset outline is
    y-monotone is one piece; another is cut into y-monotone pieces (:func:`_monotone_pieces`).
    """
    names, polygons, insets = [], [], []
    for name, shape in shapes.items():
        for polygon, d in [(shape, AA_GROWTH)] if isinstance(shape, np.ndarray) else shape:
            names.append(name)
            polygons.append(polygon)
            insets += [d] * len(polygon) if isinstance(d, (int, float)) else list(d)
    sizes = tuple(len(p) for p in polygons)
    rings = _rings(sizes)
    z = np.concatenate(polygons, dtype=float).view(np.complex128).ravel()   # rows x + iy
    d = np.array(insets, float)
    q, used = _inset(z, d, rings)
    # y-monotone: going round, y turns from rising to falling (and back) once each. (An edge
    # with no rise counts as rising: that can only add turns, so the test stays safe.)
    _, nxt, prv, start = rings
    rising = q.imag[nxt] >= q.imag
    monotone = (np.add.reduceat(rising != rising[prv], start) <= 2).tolist()
    fixed = np.rint(q.view(np.float64).reshape(-1, 2) * _ONE).astype(np.int32)
    out = {name: [] for name in shapes}
    a = 0
    for name, size, simple, factor in zip(names, sizes, monotone, used.tolist()):
        b = a + size
        if simple:
            out[name].append(fixed[a:b])
        else:
            out[name] += _monotone_pieces(z[a:b].tolist(), q[a:b].tolist(),
                                          [factor * v for v in insets[a:b]])
        a = b
    return out


def fill_pieces(img, pieces: list, color) -> None:
    """Draw :func:`exact_pieces` output: each int32 ``(M, 2)`` fixed-point outline with
    ``cv2.fillConvexPoly``; a list of outlines (the fallback for a shape that could not be cut,
    see :func:`_monotone_pieces`) with ``cv2.fillPoly``."""
    for piece in pieces:
        if isinstance(piece, list):
            cv2.fillPoly(img, piece, color, _AA, SHIFT)
        else:
            cv2.fillConvexPoly(img, piece, color, _AA, SHIFT)


def inset_polygons(polygons, insets) -> list:
    """Move every edge of closed polygons inward by its own distance; return the new vertices.

    Args:
        polygons: ``P`` polygons ``(K, 2)``, in either orientation.
        insets: ``P`` sequences of ``K`` distances in px (0 leaves an edge's line in place;
            negative moves it out); edge ``k`` joins vertex ``k`` to ``k + 1``.
    Returns:
        ``P`` arrays ``(K, 2)`` (see :func:`_inset`).
    """
    sizes = tuple(len(p) for p in polygons)
    z = np.concatenate(polygons, dtype=float).view(np.complex128).ravel()
    q, _ = _inset(z, np.concatenate([np.asarray(d, float) for d in insets]), _rings(sizes))
    return np.split(q.view(np.float64).reshape(-1, 2), np.cumsum(sizes)[:-1])


@lru_cache(maxsize=64)
def _rings(sizes: tuple) -> tuple:
    """Index arrays for closed polygons of these sizes stored one after another: each vertex's
    polygon, the next and the previous vertex on its polygon, and each polygon's first vertex."""
    count = np.array(sizes)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    last = start + count - 1
    owner = np.repeat(np.arange(len(sizes)), count)
    nxt, prv = np.arange(1, count.sum() + 1), np.arange(-1, count.sum() - 1)
    nxt[last], prv[start] = start, last
    return owner, nxt, prv, start


def _inset(z, d, rings) -> tuple:
    """Inset polygons stored one after another: complex vertices ``z (N,)``, per-edge distances
    ``d (N,)`` (edge ``k`` leaves vertex ``k``), ``rings`` from :func:`_rings`.

    With unit inward normals ``n1, n2`` and distances ``d1, d2`` of the edges entering and
    leaving a vertex ``v``, the vertex moves to the intersection of the moved edges::

        v + i (d2 n1 - d1 n2) / (n1 x n2)

    which for equal distances is the mitre ``v + d (n1 + n2) / (1 + n1 . n2)`` (its length is
    ``d / cos(turn / 2)``). The mitre, at the mean distance, is used wherever the distances are
    equal or the edges turn by less than about 17 degrees (nearly parallel edges); its
    denominator is floored at 0.25, so a very sharp corner moves at most about ``2.8 d``.

    A shape thinner than twice its inset would turn inside out: while a polygon's inset outline
    keeps under 5 % of its area, its distances are halved (it is then drawn up to 0.7 px too
    wide); after four halvings it is left as it is. Returns ``(q (N,), used (P,))``, ``used``
    the factor each polygon's distances were scaled by (1, 1/2, ..., 0).
    """
    owner, nxt, prv, start = rings
    z_next = z[nxt]
    edge = z_next - z                                          # edge k: vertex k -> k + 1
    area2 = np.add.reduceat((z.conj() * z_next).imag, start)   # twice the signed areas
    orientation = np.copysign(1.0, area2)                      # 1: the left normals point in
    n2 = (1j * orientation)[owner] * edge / np.maximum(np.abs(edge), 1e-9)  # inward, edge k
    n1, d1 = n2[prv], d[prv]                                   # ... and edge k - 1
    turn = n1.conj() * n2                                      # cos + i sin of the turn
    move = (n1 + n2) * (0.5 * (d1 + d) / np.maximum(1.0 + turn.real, 0.25))
    k = np.flatnonzero((d1 != d) & (np.abs(turn.imag) > 0.3))   # where the edges' lines cross
    if len(k):
        move[k] = 1j * (d[k] * n1[k] - d1[k] * n2[k]) / turn.imag[k]
    used = np.ones_like(area2)
    q = z + move
    for attempt in range(4):
        inset_area2 = np.add.reduceat((q.conj() * q[nxt]).imag, start)
        thin = inset_area2 * orientation <= 0.05 * np.abs(area2)
        if not thin.any():
            break
        used[thin] = 0.5 * used[thin] if attempt < 3 else 0.0
        q = z + used[owner] * move
    return q, used


def _y_monotone(ys: list) -> bool:
    """True if every horizontal line crosses the closed polygon with these vertex ``y`` at most
    twice: going round it, y turns from rising to falling, and back, once each."""
    rising = [y1 > y0 for y0, y1 in zip(ys, ys[1:] + ys[:1]) if y1 != y0]
    return sum([a != b for a, b in zip(rising, rising[1:] + rising[:1])]) <= 2


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


def _monotone_pieces(zl: list, rl: list, d: list) -> list:
    """A polygon that is not y-monotone, as y-monotone pieces (see :func:`exact_pieces`).

    Args:
        zl, rl: the polygon's vertices and its inset outline, complex ``x + iy`` (lists).
        d: the distance each edge was inset by.

    The pieces are cut along spokes from the centroid ``c``: through the *cusps* (reflex
    vertices where y turns back, which are what makes a polygon non-monotone) and through edge
    midpoints where a piece would still not be y-monotone or would span half a turn. Spokes are
    not inset, so neighbouring pieces overlap and leave no seam; at a cusp the overlap stays
    inside the shape, and a cut at an edge midpoint lies on a straight edge, so the outline is
    exact everywhere. A spoke ends where it meets its edge's inset line. Where a spoke cannot
    (the centroid lies within the inset of an edge's line: a thin or strongly foreshortened
    shape), the inset outline goes to ``cv2.fillPoly`` instead (returned as ``[[outline]]``).
    """
    n = len(zl)
    edges = [zl[k + 1 - n] - zl[k] for k in range(n)]
    area2 = sum([(a.conjugate() * b).imag for a, b in zip(zl, zl[1:] + zl[:1])])
    sign = 1.0 if area2 > 0 else -1.0
    nl = [sign * 1j * e / (abs(e) or 1e-9) for e in edges]              # inward unit normals
    cusps = [k for k in range(n)
             if sign * (edges[k - 1].real * edges[k].imag - edges[k - 1].imag * edges[k].real) < 0
             and edges[k - 1].imag * edges[k].imag <= 0]
    c = sum(zl) / n

    def on_spoke(q, k):             # where the spoke from c through q meets edge k's inset line
        w, nk = q - c, nl[k]
        u = c - zl[k]
        den = nk.real * w.real + nk.imag * w.imag
        t = (d[k] - (nk.real * u.real + nk.imag * u.imag)) / den if den < 0 else -1.0
        if t <= 0.0:                # (t < 1 for an inset, t > 1 for an outset)
            raise _NotStarShaped
        return c + t * w

    try:
        if not cusps:
            raise _NotStarShaped    # only by rounding (a nearly flat turn): no spoke to cut on
        return [_fixed(piece) for piece in _cut_at_spokes(zl, rl, cusps, c, on_spoke, sign)]
    except _NotStarShaped:
        return [[_fixed(rl)]]


def _cut_at_spokes(zl, rl, cusps, c, on_spoke, orientation) -> list:
    """y-monotone pieces ``[c, ...]`` of a star-shaped polygon cut at ``cusps`` (see
    :func:`_monotone_pieces`)."""
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
