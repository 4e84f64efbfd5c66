"""Affine image resampling without aliasing: area pre-filter, then one bilinear warp.

A bilinear warp reads the 2 x 2 source pixels around each output sample. When the warp
shrinks the image by ``s`` < 1, output samples are ``1 / s`` source pixels apart and the pixels
between them are never read: thin lines (glasses, cables, eyelids) break into dots and fine
texture turns into moire. Resampling theory asks for a low-pass filter of width ``~1 / s``
before sampling; area averaging (``cv2.INTER_AREA``) is that filter for a resize.

:func:`warp_image` therefore splits a shrinking affine ``M`` into two steps::

    M = M' @ R        R: source -> reduced image, an area resize by (fx, fy) <= 1 per axis
                      M': reduced -> output, a warp that no longer shrinks (scale ~1)

``R`` follows the project's pixel-centre convention (:func:`lmk.geometry.rescale_points`), and
``cv2.resize`` uses the same one, so ``M'`` is exact: source point ``p`` still lands on output
point ``M @ p``. Only the part of the source that the output sees is reduced, so the cost stays
at about one resize of the face region. Warps that do not shrink (identity, rotation,
upscaling) take the plain bilinear path and are bit-equal to ``cv2.warpAffine``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .._backend import check_size
from ..geometry import apply_affine, compose_affine, invert_affine, rescale_points

SHRINK_TOLERANCE = 1e-6
"""Axes whose gain (output pixels per source pixel) is at least ``1 - SHRINK_TOLERANCE`` are
not pre-filtered, so an identity matrix with rounding noise stays a plain warp."""


def _check_image(image, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"{name} must have shape (H, W) or (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {image.dtype}")
    return image


def axis_gains(matrix) -> np.ndarray:
    """``(gx, gy)``: output pixels per source pixel along the source's x and y axes.

    The column norms of the linear part of a ``(2, 3)`` matrix: ``s`` for both axes of a
    similarity with scale ``s``, whatever its rotation.
    """
    lin = np.asarray(matrix, dtype=np.float64)[:, :2]
    return np.sqrt((lin * lin).sum(0))


def _axis_window(first: float, last: float, gain: float, length: int) -> tuple[int, int, int]:
    """One source axis: ``(start, span, reduced)``, the window ``[start, start + span)`` of source
    pixels that the output sees from ``first`` to ``last``, and its length after the reduction.

    The margin of two output pixels covers the bilinear warp's support. A shrinking axis
    (``gain < 1``) is reduced to ``ceil(span * gain)`` pixels, and the window is widened to
    ``round(reduced / gain)`` pixels so that a pure ``1 / k`` downscale is reduced by exactly
    ``k``; the widening may run past the image edge.
    """
    margin = 2.0 / min(gain, 1.0)
    start = max(math.floor(first - margin), 0)
    span = min(math.ceil(last + margin), length) - start
    if gain >= 1 - SHRINK_TOLERANCE or span <= 0:
        return start, span, span
    reduced = max(math.ceil(span * gain - SHRINK_TOLERANCE), 1)
    return start, max(round(reduced / gain), span), reduced


def area_prefilter(image, matrix, size, border_value=0):
    """Area-reduce the part of ``image`` a shrinking warp sees: ``(reduced, new_matrix)``.

    Each source axis with gain ``g < 1`` (:func:`axis_gains`) is shrunk by about ``g`` with
    ``cv2.INTER_AREA`` (see :func:`_axis_window`); window pixels outside the image count as
    ``border_value``, as the warp's constant border does.

    Args:
        image: ``(H, W[, 3])`` uint8.
        matrix: ``(2, 3)`` source -> output.
        size: output ``(H', W')``.
        border_value: grey level (or per-channel tuple) outside the image.
    Returns:
        ``reduced`` (a uint8 image at most as large as the window) and ``new_matrix``
        (``(2, 3)``, reduced -> output) with ``new_matrix @ R == matrix``. Returns the inputs
        unchanged when no axis shrinks or the output sees no pixel of the image.
    """
    m = np.asarray(matrix, dtype=np.float64)
    gain = axis_gains(m)
    if np.all(gain >= 1 - SHRINK_TOLERANCE):
        return image, m
    h, w = check_size(size)
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])
    seen = apply_affine(corners, invert_affine(m))          # output edges in source pixels
    first, last = seen.min(0).tolist(), seen.max(0).tolist()
    (x0, nx, mx), (y0, ny, my) = (
        _axis_window(first[i], last[i], float(gain[i]), image.shape[1 - i]) for i in (0, 1))
    if nx <= 0 or ny <= 0:
        return image, m
    window = image[y0:y0 + ny, x0:x0 + nx]
    if window.shape[:2] != (ny, nx):                        # the window runs off the image
        window = cv2.copyMakeBorder(window, 0, ny - window.shape[0], 0, nx - window.shape[1],
                                    cv2.BORDER_CONSTANT, value=_fill(border_value))
    out = cv2.resize(window, (mx, my), interpolation=cv2.INTER_AREA)
    if image.ndim == 3 and out.ndim == 2:                   # OpenCV drops a single channel
        out = out[..., None]
    factor = np.array([nx / mx, ny / my])                   # source pixels per reduced pixel
    offset = rescale_points(np.zeros(2), factor) + [x0, y0]  # reduced pixel 0 in source pixels
    to_source = np.array([[factor[0], 0.0, offset[0]], [0.0, factor[1], offset[1]]])
    return out, compose_affine(m, to_source)


def _fill(border_value) -> tuple:
    """OpenCV's 4-channel border colour: a number means that grey in every channel."""
    if np.isscalar(border_value):
        return (border_value,) * 4
    return tuple(border_value) + (0,) * (4 - len(border_value))


def warp_image(image, matrix, size, *, border_value=0, interpolation=cv2.INTER_LINEAR,
               antialias: bool = True):
    """Resample ``image`` so that output pixel ``M @ p`` shows source point ``p``.

    A warp that shrinks is pre-filtered by :func:`area_prefilter` (set ``antialias=False``
    for the plain ``cv2.warpAffine``, e.g. for label maps with ``INTER_NEAREST``).

    Args:
        image: ``(H, W[, 3])`` uint8.
        matrix: ``(2, 3)`` source -> output affine matrix (project convention = OpenCV's).
        size: output ``(H', W')`` (or an int for a square).
        border_value: grey level outside the source (all channels), or a per-channel tuple.
        interpolation: OpenCV flag of the final warp.
        antialias: area pre-filter when the warp shrinks.
    Returns:
        ``(H', W'[, 3])`` uint8; outside the source is ``border_value``.
    """
    image = _check_image(image)
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"matrix must have shape (2, 3), got {m.shape}")
    h, w = check_size(size)
    if antialias:
        image, m = area_prefilter(image, m, (h, w), border_value)
    return cv2.warpAffine(image, m, (w, h), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=_fill(border_value))
