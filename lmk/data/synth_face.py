"""Geometry of the synthetic faces: a 3D 68-point template, identity, expression, pose, camera.

Frames and units. The head frame is the camera frame of a frontal face (OpenCV convention)::

    x: to the image right      y: down      z: away from the camera (into the scene)

so a frontal face looks toward ``-z`` and its nose tip has the most negative ``z``. One unit is
half the face width (jaw point 0 to jaw point 16 spans 2 units); the origin is the head's centre
at eye height, the point the head turns about.

Euler convention (degrees), exact for every label this module produces::

    R = R_roll @ R_pitch @ R_yaw            (yaw is applied first, in the head frame)
    yaw   > 0: the face turns toward the image right (the nose tip moves to larger x)
    pitch > 0: the face looks up (the nose tip moves to smaller y)
    roll  > 0: the face rotates clockwise as seen in the image (y points down)

Projection (perspective, a pinhole camera at distance ``D`` in front of the head)::

    p = R @ X + (0, 0, D)          u = cx + s * D * p_x / p_z        v = cy + s * D * p_y / p_z

where ``camera = (s, cx, cy, D)``: ``s`` is pixels per face unit at the head's depth.
Landmarks are in the course's pixel convention (pixel centres at integers).

The jaw contour (points 0-16) follows the iBUG convention of labelling the visible silhouette
rather than fixed points on the skin. Approximation: each contour point lies on a horizontal
ellipse through its frontal position, reaching forward to the front of the face; for a given
yaw the point slides to the ellipse's extreme in x (the silhouette of an orthographic view).
The far contour therefore hugs the cheek at large yaw. Pitch and roll then move the points
rigidly (the silhouette is not recomputed for them, nor for perspective).
"""

from __future__ import annotations

import math

import numpy as np

# Frontal 2D template (x, y) of the 68 iBUG points, zero-based, left/right symmetric; derived
# from a commonly used mean face, recentred (x = 0 on the midline, y = 0 on the eye line) and
# scaled so that the jaw spans x in [-1, 1].
_TEMPLATE_XY = np.array([
    (-1.000, 0.011), (-0.995, 0.277), (-0.969, 0.545), (-0.916, 0.810), (-0.814, 1.056),
    (-0.655, 1.271), (-0.462, 1.455), (-0.246, 1.605), (0.000, 1.648), (0.246, 1.605),
    (0.462, 1.455), (0.655, 1.271), (0.814, 1.056), (0.916, 0.810), (0.969, 0.545),
    (0.995, 0.277), (1.000, 0.011),                                         # jaw 0-16
    (-0.793, -0.187), (-0.668, -0.285), (-0.500, -0.310), (-0.328, -0.282), (-0.165, -0.213),
    (0.165, -0.213), (0.328, -0.282), (0.500, -0.310), (0.668, -0.285), (0.793, -0.187),
    (0.000, -0.016), (0.000, 0.158), (0.000, 0.332), (0.000, 0.510),         # bridge 27-30
    (-0.194, 0.621), (-0.101, 0.659), (0.000, 0.692), (0.101, 0.659), (0.194, 0.621),
    (-0.595, 0.001), (-0.490, -0.061), (-0.362, -0.058), (-0.255, 0.024), (-0.373, 0.048),
    (-0.497, 0.046),                                                          # eye 36-41
    (0.255, 0.024), (0.362, -0.058), (0.490, -0.061), (0.595, 0.001), (0.497, 0.046),
    (0.373, 0.048),                                                           # eye 42-47
    (-0.388, 0.935), (-0.247, 0.878), (-0.103, 0.853), (0.000, 0.878), (0.103, 0.853),
    (0.247, 0.878), (0.388, 0.935), (0.253, 1.081), (0.112, 1.145), (0.000, 1.157),
    (-0.112, 1.145), (-0.253, 1.081),                                         # outer lip 48-59
    (-0.328, 0.945), (-0.104, 0.939), (0.000, 0.949), (0.104, 0.939), (0.328, 0.945),
    (0.104, 0.939), (0.000, 0.949), (-0.104, 0.939),                          # inner lip 60-67
])
# The lower inner lip (65-67) coincides with the upper (63-61): a neutral mouth is closed, and
# ``mouth_open`` alone opens it.

_JAW_ANGLE = np.linspace(0.0, np.pi, 17)
# Protrusion toward the camera (h = -z) of each point, in face units.
_TEMPLATE_H = np.concatenate([
    0.1 + 0.9 * np.sin(_JAW_ANGLE) ** 1.3,
    [0.72, 0.88, 0.97, 1.02, 1.03, 1.03, 1.02, 0.97, 0.88, 0.72],
    [1.00, 1.12, 1.25, 1.38],
    [1.07, 1.15, 1.20, 1.15, 1.07],
    [0.72, 0.86, 0.88, 0.84, 0.86, 0.84, 0.84, 0.88, 0.86, 0.72, 0.84, 0.86],
    [0.98, 1.10, 1.17, 1.19, 1.17, 1.10, 0.98, 1.10, 1.15, 1.16, 1.15, 1.10],
    [1.00, 1.12, 1.14, 1.12, 1.00, 1.12, 1.14, 1.12],
])
_JAW_FRONT = 1.05        # depth the jaw's silhouette ellipses reach on the midline
_FOREHEAD_FRONT = 0.95

# Forehead outline (not landmarks): from jaw point 16 over the top of the face to jaw point 0.
_TOP_ANGLE = np.linspace(0.0, np.pi, 11)[1:-1]
_OUTLINE_X = np.cos(_TOP_ANGLE)
_OUTLINE_Y = 0.011 - 1.05 * np.sin(_TOP_ANGLE) ** 0.8
_OUTLINE_H = 0.1 + 0.75 * np.sin(_TOP_ANGLE)

IDENTITY_NAMES = ("face_width", "face_height", "jaw_width", "chin_length", "eye_spacing",
                  "eye_size", "eye_open", "nose_length", "nose_width", "mouth_width",
                  "lip_thickness", "brow_height", "face_depth")
"""Identity parameters (multiplicative factors around 1, ``brow_height`` additive around 0)."""
EXPRESSION_NAMES = ("mouth_open", "smile", "brow_raise", "blink_left", "blink_right")
"""Expression parameters (0 is neutral; blinks in [0, 1], 1 = closed; left/right in image terms)."""

NEUTRAL_IDENTITY = np.array([1.0] * 11 + [0.0, 1.0])
"""Identity of the mean face."""
NEUTRAL_EXPRESSION = np.zeros(len(EXPRESSION_NAMES))

_LEFT_EYE, _RIGHT_EYE = np.arange(36, 42), np.arange(42, 48)
_NOSE_LOW = np.arange(28, 36)
_MOUTH = np.arange(48, 68)
_BROWS = np.arange(17, 27)
_UPPER_LID = {37: 41, 38: 40, 43: 47, 44: 46}


def _construct(identity, expression) -> np.ndarray:
    """The reference construction of the shape model: every identity and expression effect as
    an explicit edit of the template. Returns ``(77, 3)``: 68 landmarks then the 9-point forehead
    outline, as ``(x, y, h)`` with ``h = -z`` the protrusion toward the camera."""
    (fw, fh, jw, cl, es, ez, eo, nl, nw, mw, lt, bh, fd) = np.asarray(identity, float)
    (mouth_open, smile, brow_raise, blink_l, blink_r) = np.asarray(expression, float)
    x, y = _TEMPLATE_XY[:, 0].copy(), _TEMPLATE_XY[:, 1].copy()
    h = _TEMPLATE_H * fd

    # Identity.
    lower = np.sin(_JAW_ANGLE) ** 2                     # 0 at the ears, 1 at the chin
    x[:17] *= fw * (1 + (jw - 1) * lower)
    y[:17] = np.where(y[:17] > 0.9, 0.9 + (y[:17] - 0.9) * cl, y[:17])
    y[27:] = np.where(y[27:] > 0, y[27:] * fh, y[27:])
    y[:17] *= np.where(y[:17] > 0, fh, 1.0)
    for eye in (_LEFT_EYE, _RIGHT_EYE):
        cx, cy = x[eye].mean(), y[eye].mean()
        x[eye] = cx * es + (x[eye] - cx) * ez
        y[eye] = cy + (y[eye] - cy) * ez * eo
    y0 = y[27]
    y[_NOSE_LOW] = y0 + (y[_NOSE_LOW] - y0) * nl
    h[_NOSE_LOW] = h[27] + (h[_NOSE_LOW] - h[27]) * nl
    x[31:36] *= nw
    x[_MOUTH] *= mw
    mouth_line = y[60:68].mean()
    y[48:60] = mouth_line + (y[48:60] - mouth_line) * lt
    y[_BROWS] += bh

    # Expression.
    y[[65, 66, 67]] += mouth_open
    y[55:60] += mouth_open * np.array([0.9, 1.0, 1.0, 1.0, 0.9])
    y[[48, 54, 60, 64]] += 0.35 * mouth_open
    y[:17] += 0.7 * mouth_open * np.sin(_JAW_ANGLE) ** 4
    corners = np.array([48, 54, 60, 64])
    y[corners] -= 0.1 * smile
    x[corners] *= 1 + 0.1 * smile
    y[[49, 53, 59, 55]] -= 0.04 * smile
    y[_BROWS] -= 0.09 * brow_raise
    for upper, low in _UPPER_LID.items():
        blink = blink_l if upper < 42 else blink_r
        y[upper] += 0.85 * blink * (y[low] - y[upper])

    outline = np.stack([_OUTLINE_X * fw, _OUTLINE_Y + bh * 0.3, _OUTLINE_H * fd], axis=1)
    return np.concatenate([np.stack([x, y, h], axis=1), outline])


_NEUTRAL = np.concatenate([NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION])
MEAN_SHAPE = _construct(NEUTRAL_IDENTITY, NEUTRAL_EXPRESSION)
"""``(77, 3)`` neutral shape: 68 landmarks and the forehead outline, ``(x, y, h)``."""
BASIS = np.stack([_construct(p[:13], p[13:]) - MEAN_SHAPE
                  for p in _NEUTRAL + np.eye(len(_NEUTRAL))])
"""``(18, 77, 3)``: the effect of a unit step of each identity, then expression, parameter."""
_BASIS_FLAT = BASIS.reshape(len(BASIS), -1)
_CONTOUR = np.r_[0:17, 68:77]
_FRONT = np.r_[np.full(17, _JAW_FRONT), np.full(9, _FOREHEAD_FRONT)]


def frontal_shape(identity, expression) -> tuple[np.ndarray, np.ndarray]:
    """The face in its frontal pose, before the contour follows the silhouette.

    A linear shape model (in the spirit of a 3D morphable model):
    ``shape = MEAN_SHAPE + sum_k (p_k - neutral_k) * BASIS[k]``, where each basis shape is one
    effect (face width, eye spacing, mouth open, ...) built by :func:`_construct`.

    Args:
        identity: ``(13,)`` in the order of :data:`IDENTITY_NAMES`.
        expression: ``(5,)`` in the order of :data:`EXPRESSION_NAMES`.
    Returns:
        ``(x, y, h)`` arrays of the 68 landmarks ``(68, 3)`` and the forehead outline ``(9, 3)``,
        with ``h = -z`` the protrusion toward the camera.
    """
    p = np.concatenate([np.asarray(identity, float), np.asarray(expression, float)]) - _NEUTRAL
    shape = MEAN_SHAPE + (p @ _BASIS_FLAT).reshape(MEAN_SHAPE.shape)
    return shape[:68], shape[68:]


def follow_silhouette(x, h, front, yaw_deg):
    """Slide contour points to the silhouette of their horizontal ellipse for a given yaw.

    The ellipse through the frontal point ``(x, h)`` has half-width ``|x|`` and reaches forward
    to depth ``front``; under yaw ``psi`` its extreme in x sits at ``tan(t) = (b / a) tan(psi)``
    with ``a = |x|``, ``b = front - h``, i.e. ``(cos t, sin t) = (a cos psi, b sin psi) / r``
    with ``r = |(a cos psi, b sin psi)|``. Returns the new ``(x, h)``; at yaw 0 nothing moves.
    """
    psi = math.radians(float(yaw_deg))
    a_cos = np.maximum(np.abs(x), 1e-9) * math.cos(psi)
    b = np.maximum(front - h, 0.0)
    b_sin = b * math.sin(psi)
    r = np.hypot(a_cos, b_sin)
    return x * (a_cos / r), h + np.sign(x) * b * (b_sin / r)


def shape_3d(identity, expression, yaw_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Head-frame 3D points for a pose with this yaw: ``(68, 3)`` landmarks, ``(9, 3)`` outline.

    Only the contour depends on the yaw (see :func:`follow_silhouette`); ``z = -h``.
    """
    p = np.concatenate([np.asarray(identity, float), np.asarray(expression, float)]) - _NEUTRAL
    shape = MEAN_SHAPE + (p @ _BASIS_FLAT).reshape(MEAN_SHAPE.shape)
    c = shape[_CONTOUR]
    shape[_CONTOUR, 0], shape[_CONTOUR, 2] = follow_silhouette(c[:, 0], c[:, 2], _FRONT, yaw_deg)
    shape[:, 2] *= -1
    return shape[:68], shape[68:]


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``(3, 3)`` head-to-camera rotation ``R_roll @ R_pitch @ R_yaw`` (degrees, see module doc).

    With ``c*, s*`` the cosines and sines of the angles::

        R_yaw = [[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]]
        R_pitch = [[1, 0, 0], [0, cp, sp], [0, -sp, cp]]
        R_roll = [[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]]

    multiplied out in plain floats (numpy's per-call overhead would exceed the arithmetic).
    """
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    rows = ((cy, 0.0, -sy), (sp * sy, cp, sp * cy), (cp * sy, -sp, cp * cy))   # R_pitch @ R_yaw
    return np.array([[cr * a - sr * b for a, b in zip(rows[0], rows[1])],
                     [sr * a + cr * b for a, b in zip(rows[0], rows[1])], rows[2]])


def project(points, pose, camera, rotation=None) -> np.ndarray:
    """Project head-frame points ``(..., 3)`` with ``pose = (yaw, pitch, roll)`` degrees and
    ``camera = (s, cx, cy, D)`` to pixel coordinates ``(..., 2)`` (float64). ``rotation``
    may pass ``rotation_matrix(*pose)`` if it is already at hand."""
    s, cx, cy, dist = np.asarray(camera, float).tolist()
    rot = rotation_matrix(*pose) if rotation is None else rotation
    p = np.asarray(points, float) @ rot.T
    depth = p[..., 2] + dist
    if depth.min() <= 0:
        raise ValueError(f"camera distance D={dist} puts points behind the camera")
    return p[..., :2] * (s * dist / depth)[..., None] + (cx, cy)


def landmarks_2d(identity, expression, pose, camera) -> np.ndarray:
    """The exact ``(68, 2)`` landmarks of a face: :func:`shape_3d` then :func:`project`."""
    pts, _ = shape_3d(identity, expression, pose[0])
    return project(pts, pose, camera)
