"""DARK as published, one landmark at a time: the reference the vectorized decoder is checked against.

Zhang et al. (2020)'s public code decodes each landmark's map in a Python loop with OpenCV;
:func:`lmk.codecs.decode_heatmaps` (``method="dark"``) does the same for a whole batch at once.
The tests compare the two point for point, notebook 01 shows them side by side and
``python -m lmk.bench --only decode`` times them.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["dark_reference_loop"]


def dark_reference_loop(heatmaps: np.ndarray, blur_sigma: float) -> np.ndarray:
    """DARK as in Zhang et al. (2020)'s public code, one landmark at a time (the baseline).

    For each ``(H, W)`` map: argmax of the raw map; zero-pad, ``cv2.GaussianBlur`` with the
    kernel of :func:`lmk.codecs.decode_heatmaps` (std ``blur_sigma``, radius
    ``ceil(3 blur_sigma)``), rescale to the raw maximum, floor at ``1e-10``, log; then, if the
    argmax is at least 2 cells inside the map, ``mu = m - H^{-1} g`` with central differences
    (step-2 stencil for the second derivatives) where the Hessian is invertible.

    Args:
        heatmaps: ``(B, N, H, W)`` numpy array.
    Returns:
        ``(B, N, 2)`` float64 points in heatmap cells.
    """
    import cv2

    b, n, h, w = heatmaps.shape
    radius = math.ceil(3.0 * blur_sigma)
    ksize = 2 * radius + 1
    out = np.zeros((b, n, 2))
    for i in range(b):
        for j in range(n):
            hm = heatmaps[i, j].astype(np.float64)
            py, px = np.unravel_index(np.argmax(hm), hm.shape)
            padded = np.zeros((h + 2 * radius, w + 2 * radius))
            padded[radius:-radius, radius:-radius] = hm
            blurred = cv2.GaussianBlur(padded, (ksize, ksize), blur_sigma)[radius:-radius,
                                                                           radius:-radius]
            blurred *= hm.max() / blurred.max()
            lg = np.log(np.maximum(blurred, 1e-10))
            coord = np.array([px, py], dtype=np.float64)
            if 1 < px < w - 2 and 1 < py < h - 2:
                dx = 0.5 * (lg[py, px + 1] - lg[py, px - 1])
                dy = 0.5 * (lg[py + 1, px] - lg[py - 1, px])
                dxx = 0.25 * (lg[py, px + 2] - 2 * lg[py, px] + lg[py, px - 2])
                dxy = 0.25 * (lg[py + 1, px + 1] - lg[py - 1, px + 1]
                              - lg[py + 1, px - 1] + lg[py - 1, px - 1])
                dyy = 0.25 * (lg[py + 2, px] - 2 * lg[py, px] + lg[py - 2, px])
                hessian = np.array([[dxx, dxy], [dxy, dyy]])
                if dxx * dyy - dxy ** 2 != 0:
                    coord -= np.linalg.inv(hessian) @ np.array([dx, dy])
            out[i, j] = coord
    return out
