"""Drawing one synthetic face: skin with 3D shading, brows, eyes, nose, lips, hair, ears, neck.

Every landmark lies on a drawn edge: the jaw on the face outline, brow points on the brows'
upper edge, eye points on the outline of the white of the eye, the nose bridge on the edge of
the nose's shadow, the nose base on the nostril line, lip points on the outlines of the lips and
of the mouth opening. Those edges are drawn exactly (:mod:`lmk.data.synth_draw`).

The small geometry here (a lash line, a nostril, a colour) is plain Python on ``(x, y)`` and
``(r, g, b)`` tuples: numpy's per-call overhead would cost more than the arithmetic.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .synth_draw import (band_parts, blend, disc, ellipse, exact_pieces, fill_pieces, fill_rough,
                         line, split_parts)
from .synth_face import project, rotation_matrix

# ----------------------------------------------------------------------------- appearance

SKIN_TONES = np.array([[255, 219, 190], [241, 194, 160], [224, 172, 130], [198, 134, 96],
                       [160, 104, 70], [110, 70, 46], [80, 52, 36]], float)


_HAIR_COLORS = ((30.0, 22.0, 18.0), (90.0, 60.0, 35.0), (200.0, 160.0, 90.0),
                (140.0, 140.0, 140.0))
_IRIS_COLORS = ((60.0, 40.0, 25.0), (100.0, 70.0, 40.0), (60.0, 90.0, 130.0),
                (70.0, 100.0, 60.0))


def sample_appearance(rng) -> dict:
    """Colours, lighting and hair of one person (constant over the frames of a video).

    Colours are ``(r, g, b)`` tuples of floats; ``light`` is a ``(3,)`` unit vector (camera
    frame, the direction the light travels)."""
    u = rng.random(20).tolist()
    t = u[0] * (len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    skin = tuple((a + (t - i) * (b - a)) * (0.85 + 0.25 * v)
                 for a, b, v in zip(SKIN_TONES[i].tolist(), SKIN_TONES[i + 1].tolist(), u[1:4]))
    hair = _HAIR_COLORS[int(4 * u[4])]
    light = np.array([1.6 * u[5] - 0.8, 1.1 * u[6] - 0.8, -1.0])
    lip_tint = 0.8 + 0.3 * u[7]
    return {
        "skin": skin,
        "lip": tuple(c * f * lip_tint + o for c, f, o in zip(skin, (0.75, 0.45, 0.45),
                                                              (25.0, 0.0, 5.0))),
        "brow": _times(hair, 0.6 + 0.4 * u[8]),
        "hair": _times(hair, 0.8 + 0.4 * u[9]),
        "has_hair": u[10] < 0.8,
        "hair_height": 0.1 + 0.4 * u[11],
        "iris": _times(_IRIS_COLORS[int(4 * u[12])], 0.7 + 0.5 * u[13]),
        "brow_thickness": 0.07 + 0.06 * u[14],
        "gaze": (0.5 * u[15] - 0.25, 0.5 * u[16] - 0.25),
        "light": light / math.sqrt(light @ light),
        "ambient": 0.5 + 0.25 * u[17],
        "neck": u[18] < 0.9,
        "ears": u[19] < 0.7,
    }


def _times(color, k: float) -> tuple:
    return tuple(k * c for c in color)


def _shaded(color, k: float) -> tuple:
    """``k * color`` clipped to [0, 255]: a colour as OpenCV's drawing calls take it."""
    r, g, b = color
    return (min(max(k * r, 0.0), 255.0), min(max(k * g, 0.0), 255.0),
            min(max(k * b, 0.0), 255.0))


# ----------------------------------------------------------------------------- the face

_BROW_DROP = np.array([0.6, 0.9, 1.0, 1.0, 0.8, 0.8, 1.0, 1.0, 0.9, 0.6])[:, None] * [0, 1, 0]
"""``(10, 3)``: per unit of brow thickness, how far each brow point's lower edge lies below it
(head frame, tapered toward the brow's ends)."""
_EYE_MEANS = np.zeros((2, 68))
_EYE_MEANS[0, 36:42] = _EYE_MEANS[1, 42:48] = 1 / 6
_NECK = np.array([[-0.5, 0.9, -0.1], [0.5, 0.9, -0.1], [0.55, 3.5, -0.2], [-0.55, 3.5, -0.2]])
_EAR_T = np.linspace(0, 2 * np.pi, 9)[:-1]
_EAR = np.stack([np.zeros(8), 0.36 * np.sin(_EAR_T) + 0.3, 0.17 * np.cos(_EAR_T) + 0.1], 1)
_EARS = np.concatenate([_EAR + [-1.0, 0, 0], _EAR + [1.0, 0, 0]])
_SCLERA = (235.0, 232.0, 225.0)
_TEETH = (230.0, 225.0, 210.0)
_MOUTH_INSIDE = (40.0, 15.0, 20.0)
_PUPIL = (12.0, 10.0, 10.0)


def shading(points, rot, camera, width: float, light, ambient: float) -> np.ndarray:
    """Lambertian shade at image points ``(N, 2)`` of an ellipsoid head (orthographic rays).

    The ray through each point along the optical axis meets the ellipsoid (semi-axes
    ``1.02 * width, 1.45, 1.1`` about ``(0, 0.3, 0)`` in the head frame) at its nearest point;
    the shade there is ``ambient + (1.05 - ambient) * max(0, -n . light)``, ``n`` the unit
    normal. Rays that miss take the silhouette's normal. Returns ``(N,)``.

    In head coordinates scaled by the semi-axes (the ellipsoid becomes the unit sphere), the ray
    through ``(u, v)`` is ``p0 + t d`` with ``p0 = (R^T q - centre) / axes`` for the camera
    point ``q = ((u - cx) / s, (v - cy) / s, 0)`` and ``d = R^T e_z / axes``; it meets the
    sphere at the smaller root of ``|p0 + t d|^2 = 1``. The normal there is ``hit / axes``
    (head frame); ``n . light`` is taken in the head frame as ``(hit / axes) . (R^T light)``.
    """
    s, cx, cy, _ = np.asarray(camera, float).tolist()
    inv_axes = 1.0 / np.array([1.02 * width, 1.45, 1.1])
    p0 = (points - (cx, cy)) @ (rot[:2] * (inv_axes / s)) - (0.0, 0.3 * inv_axes[1], 0.0)
    d = rot[2] * inv_axes
    a, b = float(d @ d), p0 @ d
    c = (p0 * p0) @ _ONES3 - 1.0                                  # |p0|^2 - 1, row by row
    t = (-b - np.sqrt(np.maximum(b * b - a * c, 0.0))) / a
    normal = (p0 + t[:, None] * d) * inv_axes
    cos = (normal @ (light @ rot)) / -np.sqrt((normal * normal) @ _ONES3)
    return ambient + (1.05 - ambient) * np.maximum(cos, 0.0)


_ONES3 = np.ones(3)


_GRID = 12
_GRID_T = (np.arange(_GRID) + 0.5) / _GRID
_GRID_UNIT = np.stack(np.meshgrid(_GRID_T, _GRID_T), -1).reshape(-1, 2)
"""``(144, 2)`` centres ``(x, y)`` of a 12 x 12 grid over the unit square, row by row."""
_PROBES = np.zeros((9, 68))
for _row, _group in enumerate(([8], [19], [24], range(36, 42), range(42, 48), [30], [33], [57],
                               [62])):
    _PROBES[_row, list(_group)] = 1.0 / len(_group)
_PARTS = (("landmarks", 68), ("outline", 9), ("brow_low", 10), ("iris", 2), ("iris_edge", 2),
          ("hair", 9), ("neck", 4), ("ears", 16))


def face_points(points3d, outline3d, pose, camera, app, rotation=None) -> dict:
    """Project the landmarks and the extra drawing points of one face (one projection)."""
    eyes = _EYE_MEANS @ points3d                                       # (2, 3) eye centres
    eye_w = math.dist(points3d[39].tolist(), points3d[36].tolist())
    gaze_x, gaze_y = app["gaze"]
    iris = eyes + (gaze_x * 0.25 * eye_w, gaze_y * 0.05, -0.05)
    parts = (points3d, outline3d, points3d[17:27] + app["brow_thickness"] * _BROW_DROP,
             iris, iris + (0.21 * eye_w, 0.0, 0.0),
             outline3d * (1.12, 1.0, 1.0) + (0.0, -app["hair_height"], 0.1), _NECK, _EARS)
    uv = project(np.concatenate(parts), pose, camera, rotation)
    out, k = {}, 0
    for name, count in _PARTS:
        out[name] = uv[k:k + count]
        k += count
    return out


def _pixel_box(points, margin: int, size: int) -> tuple[int, int, int, int]:
    """``x0, y0, x1, y1``: the pixels around ``points (N, 2)`` plus ``margin`` (end exclusive,
    within the image)."""
    (lx, ly), (hx, hy) = points.min(0).tolist(), points.max(0).tolist()
    return (max(math.floor(lx) - margin, 0), max(math.floor(ly) - margin, 0),
            min(math.ceil(hx) + margin + 1, size), min(math.ceil(hy) + margin + 1, size))


def draw_face(img, points3d, outline3d, pose, camera, app, width: float = 1.0,
              rotation=None) -> dict:
    """Draw one face onto ``img`` (H, W, 3) uint8 in place; return its projected points.

    Args:
        points3d, outline3d: head-frame ``(68, 3)`` and ``(9, 3)`` from ``synth_face.shape_3d``.
        pose: yaw, pitch, roll in degrees. camera: ``(s, cx, cy, D)``.
        app: :func:`sample_appearance` output. width: the face-width identity factor (shading).
        rotation: ``rotation_matrix(*pose)``, if already at hand.
    """
    size = img.shape[0]
    rot = rotation_matrix(*pose) if rotation is None else rotation
    fp = face_points(points3d, outline3d, pose, camera, app, rot)
    L = fp["landmarks"]
    P = L.tolist()
    skin = app["skin"]
    face = np.concatenate([L[:17], fp["outline"]])
    x0, y0, x1, y1 = _pixel_box(face, 2, size)                 # the skin layer's box
    ex0, ey0, ex1, ey1 = _pixel_box(L[36:48], 1, size)         # the eyes' layer's box
    side = 35 if app["light"][0] < 0 else 31                   # the nostril away from the light
    gap_x, gap_y = P[66][0] - P[62][0], P[66][1] - P[62][1]    # the mouth's opening
    mouth_open = math.hypot(gap_x, gap_y) > 1.0
    # The shapes whose edges are landmarks, made ready for OpenCV together (masks' shapes in
    # their layer's box); drawn in order below.
    shapes = {
        "face": face - (x0, y0), "eye_l": L[36:42] - (ex0, ey0), "eye_r": L[42:48] - (ex0, ey0),
        "brow_l": band_parts(L[17:22], fp["brow_low"][:5]),
        "brow_r": band_parts(L[22:27], fp["brow_low"][5:]),
        "bridge": L[[27, 28, 29, 30, side]], "base": L[[31, 32, 33, 34, 35, 30]],
        "lips": split_parts(L[48:60], 3, 9)}      # at 51 and 57: halves with one bow peak each
    if mouth_open:
        shapes["mouth"] = L[60:68]
    exact = exact_pieces(shapes)
    # Shade on a coarse grid over the face's box (resized to a smooth layer) and at probes.
    cells = _GRID * _GRID
    points = np.empty((cells + len(_PROBES), 2))
    points[:cells] = _GRID_UNIT * (x1 - x0, y1 - y0) + (x0 - 0.5, y0 - 0.5)
    points[cells:] = _PROBES @ L   # chin, brow peaks, eye centres, nose tip and base, lips, mouth
    shade = shading(points, rot, camera, width, app["light"], app["ambient"])
    (s_chin, s_brow_l, s_brow_r, s_eye_l, s_eye_r, s_nose, s_base, s_lip,
     s_mouth) = shade[cells:].tolist()

    # Behind the face: neck, ears (unless turned away), hair.
    if app["neck"]:
        fill_rough(img, fp["neck"], _shaded(skin, 0.7 * s_chin))
    if app["ears"]:
        ear_z = float(rot[2, 0])                              # the ears' normal, z component
        for k, sign in enumerate((-1.0, 1.0)):                # left ear, right ear
            if ear_z * sign < 0.25:
                fill_rough(img, fp["ears"][8 * k:8 * k + 8], _shaded(skin, 0.8 * s_chin))
    if app["has_hair"]:
        fill_rough(img, np.concatenate([L[16:17], fp["hair"], L[0:1]]), app["hair"])

    # Skin: a shaded layer composited through the exact face mask.
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill_pieces(mask, exact["face"], 255)
    colours = np.minimum(shade[:cells, None] * skin, 255.0).astype(np.uint8)   # both positive
    layer = cv2.resize(colours.reshape(_GRID, _GRID, 3), (x1 - x0, y1 - y0),
                       interpolation=cv2.INTER_LINEAR)
    blend(img, x0, y0, layer, mask)

    # Brows: the landmarks are their upper edge.
    fill_pieces(img, exact["brow_l"], _shaded(app["brow"], 0.6 + 0.4 * s_brow_l))
    fill_pieces(img, exact["brow_r"], _shaded(app["brow"], 0.6 + 0.4 * s_brow_r))

    # Eyes: a dark lid shape (the lash line shows above the eye), then the white of the eye
    # (its outline is the landmarks) with the iris clipped to it, both eyes in one layer.
    lash = _shaded(app["brow"], 0.45)
    for e in (P[36:42], P[42:48]):
        (ax, ay), (bx, by) = e[0], e[3]                       # the eye's corners
        length = max(math.hypot(bx - ax, by - ay), 1e-9)
        lift = max(0.7, 0.09 * length) / length
        up_x, up_y = (by - ay) * lift, (ax - bx) * lift       # perpendicular to the corners
        fill_rough(img, [e[0], (e[1][0] + up_x, e[1][1] + up_y),
                         (e[2][0] + up_x, e[2][1] + up_y), e[3], e[4], e[5]], lash)
    if ex1 - ex0 >= 2 and ey1 - ey0 >= 2:
        eye_mask = np.zeros((ey1 - ey0, ex1 - ex0), np.uint8)
        layer = np.full((ey1 - ey0, ex1 - ex0, 3),
                        _shaded(_SCLERA, 0.5 + 0.25 * (s_eye_l + s_eye_r)), np.uint8)
        iris, iris_edge = fp["iris"].tolist(), fp["iris_edge"].tolist()
        for k, (eye, light) in enumerate((("eye_l", s_eye_l), ("eye_r", s_eye_r))):
            fill_pieces(eye_mask, exact[eye], 255)
            (cx, cy), (qx, qy) = iris[k], iris_edge[k]
            r = math.hypot(qx - cx, qy - cy)
            disc(layer, (cx - ex0, cy - ey0), r, _shaded(app["iris"], 0.6 + 0.4 * light))
            disc(layer, (cx - ex0, cy - ey0), 0.45 * r, _PUPIL)
        blend(img, ex0, ey0, layer, eye_mask)

    # Nose: the bridge is the edge of the shadow on the side away from the light; the base line
    # joins the nostril points; dark nostrils.
    fill_pieces(img, exact["bridge"], _shaded(skin, 0.72 * s_nose))
    fill_pieces(img, exact["base"], _shaded(skin, 0.85 * s_nose))
    line(img, L[31:36], _shaded(skin, 0.45 * s_base))
    (tip_x, tip_y), (base_x, base_y) = P[30], P[33]
    for a, b in ((31, 32), (34, 35)):
        (ax, ay), (bx, by) = P[a], P[b]
        r = 0.3 * math.hypot(bx - ax, by - ay) + 0.3
        centre = (0.5 * (ax + bx) + 0.3 * (tip_x - base_x),
                  0.5 * (ay + by) + 0.3 * (tip_y - base_y))
        ellipse(img, centre, (1.4 * r, r), math.degrees(math.atan2(by - ay, bx - ax)),
                _shaded(skin, 0.25))

    # Mouth: lips (outer edge = landmarks), the opening (inner edge = landmarks), teeth.
    fill_pieces(img, exact["lips"], _shaded(app["lip"], s_lip))
    if mouth_open:
        fill_pieces(img, exact["mouth"], _MOUTH_INSIDE)
        upper = P[61:64]                                      # the upper teeth hang from 61-63
        teeth = upper + [(x + 0.3 * gap_x, y + 0.3 * gap_y) for x, y in upper[::-1]]
        fill_rough(img, teeth, _shaded(_TEETH, s_mouth))
    line(img, [P[48]] + P[60:65] + [P[54]], _shaded(app["lip"], 0.35))
    return fp
