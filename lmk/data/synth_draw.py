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
points are handled as complex numbers ``x + iy``: an edge's left normal is ``1j * edge``.
"""

from __future__ import annotations

import cv2
import numpy as np

SHIFT = 4                    # sub-pixel bits of the OpenCV drawing calls
_ONE = float(1 << SHIFT)
AA_GROWTH = 0.68             # px by which OpenCV's anti-aliased fills grow a shape
_AA = cv2.LINE_AA


def _fixed(z: np.ndarray) -> np.ndarray:
    """Complex points ``(..., K)`` to OpenCV fixed-point ``(..., K, 2)`` int32."""
    return np.rint(np.stack((z.real, z.imag), -1) * _ONE).astype(np.int32)


def as_complex(points) -> np.ndarray:
    p = np.asarray(points, float)
    return p[..., 0] + 1j * p[..., 1]


def offset_edges(z: np.ndarray, d) -> np.ndarray:
    """Move every edge of closed polygons inward by ``d`` px; return the new vertices.

    Args:
        z: ``(..., K)`` complex vertices (``x + iy``); edge ``k`` joins vertex ``k`` to ``k + 1``.
        d: a scalar (mitred offset of all edges) or ``(..., K)`` per-edge distances (vertices
            go to the intersections of the moved edges; 0 leaves an edge in place).
    Returns:
        ``(..., K)`` complex vertices.
    """
    nxt = np.concatenate((z[..., 1:], z[..., :1]), -1)
    edge = nxt - z
    normal = 1j * edge / np.maximum(np.abs(edge), 1e-9)             # left unit normals
    area2 = (z.conj() * nxt).imag.sum(-1, keepdims=True)           # > 0: interior on the left
    normal = np.where(area2 > 0, normal, -normal)
    n_prev = np.concatenate((normal[..., -1:], normal[..., :-1]), -1)
    cos = (n_prev.conj() * normal).real
    if np.ndim(d) == 0:                                           # uniform: the mitre
        return z + (n_prev + normal) * (d / np.maximum(1.0 + cos, 0.25))
    d = np.asarray(d, float)
    d_prev = np.concatenate((d[..., -1:], d[..., :-1]), -1)
    sin = (n_prev.conj() * normal).imag
    safe = np.abs(sin) > 0.3                                      # intersect the moved edges
    solved = 1j * (d * n_prev - d_prev * normal) / np.where(safe, sin, 1.0)
    mitre = (n_prev + normal) * (0.5 * (d + d_prev) / np.maximum(1.0 + cos, 0.25))
    return z + np.where(safe, solved, mitre)


def is_monotone(z: np.ndarray) -> bool:
    """True if every horizontal line crosses the closed polygon ``(K,)`` at most twice."""
    y = z.imag
    dy = np.concatenate((y[1:], y[:1])) - y
    up = dy[dy != 0] > 0
    return int(np.count_nonzero(up[1:] != up[:-1])) + int(up[0] != up[-1]) <= 2


def fill(img, poly, color, grow: float = 0.0) -> None:
    """Fill a polygon so that its visible edge lies on ``poly`` (moved out by ``grow`` px).

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` uint8, drawn in place.
        poly: ``(K, 2)`` points or ``(K,)`` complex; y-monotone polygons take one OpenCV call,
            others (star-shaped about their centroid) a fan of triangles whose outer edges only
            are inset, so the fan's inner edges overlap and leave no seam.
        color: a scalar or a tuple of floats.
    """
    z = poly if np.iscomplexobj(poly) else as_complex(poly)
    d = AA_GROWTH - grow
    if is_monotone(z):
        cv2.fillConvexPoly(img, _fixed(offset_edges(z, d)), color, _AA, SHIFT)
        return
    centre = np.full_like(z, z.mean())
    tris = np.stack([centre, z, np.concatenate((z[1:], z[:1]))], 1)   # (K, 3)
    fill_pieces(img, offset_edges(tris, np.array([0.0, d, 0.0])), color)


def fill_pieces(img, pieces: np.ndarray, color) -> None:
    """Draw already-inset convex pieces ``(P, K)`` complex, one OpenCV call each."""
    for piece in _fixed(pieces):
        cv2.fillConvexPoly(img, piece, color, _AA, SHIFT)


def fill_band(img, top, bottom, color) -> None:
    """Fill the band between two polylines ``(K, 2)`` (brows, lash lines) with exact outline.

    The band is cut halfway between vertices into near-convex pieces; only the outline is inset,
    so the cuts overlap and leave no seam, and no cut passes through a vertex (a landmark).
    """
    t, b = as_complex(top), as_complex(bottom)
    mid_t = np.concatenate((t[:1], 0.5 * (t[1:] + t[:-1]), t[-1:]))
    mid_b = np.concatenate((b[:1], 0.5 * (b[1:] + b[:-1]), b[-1:]))
    pieces = np.stack([mid_t[:-1], t, mid_t[1:], mid_b[1:], b, mid_b[:-1]], 1)
    inset = np.full(pieces.shape, AA_GROWTH)
    inset[:-1, 2] = 0.0                              # the cuts between pieces stay put
    inset[1:, 5] = 0.0
    fill_pieces(img, offset_edges(pieces, inset), color)


def fill_rough(img, poly, color) -> None:
    """Fill any polygon with ``cv2.fillPoly`` as is: for shapes whose edges carry no label."""
    cv2.fillPoly(img, [_fixed(as_complex(poly))], color, _AA, SHIFT)


def line(img, pts, color, thickness: int = 1) -> None:
    """An anti-aliased open polyline (not exact: for details that carry no label)."""
    cv2.polylines(img, [_fixed(as_complex(pts))], False, color, thickness, _AA, SHIFT)


def ellipse(img, centre, axes, angle: float, color) -> None:
    """A filled ellipse whose visible edge is at the given semi-axes (px)."""
    c = tuple(int(v) for v in np.rint(np.asarray(centre, float) * _ONE))
    ax = tuple(int(round(max(a - AA_GROWTH, 0.25) * _ONE)) for a in axes)
    cv2.ellipse(img, c, ax, angle, 0, 360, color, -1, _AA, SHIFT)


def disc(img, centre, radius: float, color) -> None:
    """A filled disc whose visible edge is at ``radius`` px."""
    ellipse(img, centre, (radius, radius), 0.0, color)


def rgb(c) -> tuple:
    """A colour as a tuple of floats clipped to [0, 255] (what OpenCV expects)."""
    return tuple(min(max(float(v), 0.0), 255.0) for v in c)
