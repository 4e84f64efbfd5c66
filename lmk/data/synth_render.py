"""Drawing one synthetic face: skin with 3D shading, brows, eyes, nose, lips, hair, ears, neck.

Every landmark lies on a drawn edge: the jaw on the face outline, brow points on the brows'
upper edge, eye points on the outline of the white of the eye, the nose bridge on the edge of
the nose's shadow, the nose base on the nostril line, lip points on the outlines of the lips and
of the mouth opening. Those edges are drawn exactly (:mod:`lmk.data.synth_draw`).
"""

from __future__ import annotations

import cv2
import numpy as np

from .synth_draw import disc, ellipse, fill, fill_band, fill_rough, line, rgb
from .synth_face import project, rotation_matrix

# ----------------------------------------------------------------------------- appearance

SKIN_TONES = np.array([[255, 219, 190], [241, 194, 160], [224, 172, 130], [198, 134, 96],
                       [160, 104, 70], [110, 70, 46], [80, 52, 36]], float)


_HAIR_COLORS = np.array([[30, 22, 18], [90, 60, 35], [200, 160, 90], [140, 140, 140]], float)
_IRIS_COLORS = np.array([[60, 40, 25], [100, 70, 40], [60, 90, 130], [70, 100, 60]], float)


def sample_appearance(rng) -> dict:
    """Colours, lighting and hair of one person (constant over the frames of a video)."""
    u = rng.random(20)
    t = u[0] * (len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    skin = (SKIN_TONES[i] + (t - i) * (SKIN_TONES[i + 1] - SKIN_TONES[i])) * (0.85 + 0.25 * u[1:4])
    hair = _HAIR_COLORS[int(4 * u[4])]
    light = np.array([1.6 * u[5] - 0.8, 1.1 * u[6] - 0.8, -1.0])
    return {
        "skin": skin,
        "lip": skin * np.array([0.75, 0.45, 0.45]) * (0.8 + 0.3 * u[7]) + [25, 0, 5],
        "brow": hair * (0.6 + 0.4 * u[8]),
        "hair": hair * (0.8 + 0.4 * u[9]),
        "has_hair": bool(u[10] < 0.8),
        "hair_height": 0.1 + 0.4 * u[11],
        "iris": _IRIS_COLORS[int(4 * u[12])] * (0.7 + 0.5 * u[13]),
        "brow_thickness": 0.07 + 0.06 * u[14],
        "gaze": 0.5 * u[15:17] - 0.25,
        "light": light / np.linalg.norm(light),
        "ambient": 0.5 + 0.25 * u[17],
        "neck": bool(u[18] < 0.9),
        "ears": bool(u[19] < 0.7),
    }


# ----------------------------------------------------------------------------- the face

_BROW_TAPER = np.array([0.6, 0.9, 1.0, 1.0, 0.8, 0.8, 1.0, 1.0, 0.9, 0.6])[:, None]
_DOWN = np.array([0.0, 1.0, 0.0])
_NECK = np.array([[-0.5, 0.9, -0.1], [0.5, 0.9, -0.1], [0.55, 3.5, -0.2], [-0.55, 3.5, -0.2]])
_EAR_T = np.linspace(0, 2 * np.pi, 9)[:-1]
_EAR = np.stack([np.zeros(8), 0.36 * np.sin(_EAR_T) + 0.3, 0.17 * np.cos(_EAR_T) + 0.1], 1)
_SCLERA = np.array([235.0, 232.0, 225.0])


def shading(points, rot, camera, width: float, light, ambient: float) -> np.ndarray:
    """Lambertian shade at image points ``(N, 2)`` of an ellipsoid head (orthographic rays).

    The ray through each point along the optical axis meets the ellipsoid (semi-axes
    ``1.02 * width, 1.45, 1.1`` about ``(0, 0.3, 0)`` in the head frame) at its nearest point;
    the shade there is ``ambient + (1.05 - ambient) * max(0, -n . light)``, ``n`` the unit
    normal. Rays that miss take the silhouette's normal. Returns ``(N,)``.
    """
    s, cx, cy, _ = camera
    axes = np.array([1.02 * width, 1.45, 1.1])
    X = (points[:, :1] - cx) / s
    Y = (points[:, 1:] - cy) / s
    # Head frame, unit-sphere scaled: (R^T q - centre) / axes for q = (X, Y, 0).
    p0 = (X * rot[0] + Y * rot[1] - [0.0, 0.3, 0.0]) / axes
    d = rot[2] / axes                                           # ray direction R^T e_z, scaled
    a, b = d @ d, p0 @ d
    c = (p0 * p0).sum(-1) - 1
    t = (-b - np.sqrt(np.maximum(b * b - a * c, 0.0))) / a
    normal = ((p0 + t[:, None] * d) / axes) @ rot.T
    cos = -(normal @ light) / np.linalg.norm(normal, axis=-1)
    return ambient + (1.05 - ambient) * np.maximum(cos, 0.0)


_GRID = 12
_GRID_T = (np.arange(_GRID) + 0.5) / _GRID
_PROBES = np.zeros((9, 68))
for _row, _group in enumerate(([8], [19], [24], range(36, 42), range(42, 48), [30], [33], [57],
                               [62])):
    _PROBES[_row, list(_group)] = 1.0 / len(_group)


def face_points(points3d, outline3d, pose, camera, app, rotation=None) -> dict:
    """Project the landmarks and the extra drawing points of one face (one projection)."""
    brow_low = points3d[17:27] + _DOWN * app["brow_thickness"] * _BROW_TAPER
    eyes = np.stack([points3d[36:42].mean(0), points3d[42:48].mean(0)])
    eye_w = float(np.linalg.norm(points3d[39] - points3d[36]))
    iris = eyes + [app["gaze"][0] * 0.25 * eye_w, app["gaze"][1] * 0.05, -0.05]
    iris_edge = iris + [0.21 * eye_w, 0.0, 0.0]
    hair = outline3d * [1.12, 1.0, 1.0] + [0.0, -app["hair_height"], 0.1]
    ears = np.concatenate([_EAR + [-1.0, 0, 0], _EAR + [1.0, 0, 0]])
    parts = (("landmarks", points3d), ("outline", outline3d), ("brow_low", brow_low),
             ("iris", iris), ("iris_edge", iris_edge), ("hair", hair), ("neck", _NECK),
             ("ears", ears))
    uv = project(np.concatenate([p for _, p in parts]), pose, camera, rotation)
    out, k = {}, 0
    for name, p in parts:
        out[name] = uv[k:k + len(p)]
        k += len(p)
    return out


def draw_face(img, points3d, outline3d, pose, camera, app, width: float = 1.0) -> dict:
    """Draw one face onto ``img`` (H, W, 3) uint8 in place; return its projected points.

    Args:
        points3d, outline3d: head-frame ``(68, 3)`` and ``(9, 3)`` from ``synth_face.shape_3d``.
        pose: yaw, pitch, roll in degrees. camera: ``(s, cx, cy, D)``.
        app: :func:`sample_appearance` output. width: the face-width identity factor (shading).
    """
    size = img.shape[0]
    rot = rotation_matrix(*pose)
    fp = face_points(points3d, outline3d, pose, camera, app, rot)
    L = fp["landmarks"]
    skin = app["skin"]
    face = np.concatenate([L[:17], fp["outline"]])
    x0, y0 = np.maximum(np.floor(face.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(face.max(0)).astype(int) + 3, size)
    # Shade on a coarse grid over the face's box (resized to a smooth layer) and at probes.
    grid = np.empty((_GRID, _GRID, 2))
    grid[..., 0] = x0 - 0.5 + _GRID_T * (x1 - x0)
    grid[..., 1] = (y0 - 0.5 + _GRID_T * (y1 - y0))[:, None]
    grid = grid.reshape(-1, 2)
    probe = _PROBES @ L         # chin, brow peaks, eye centres, nose tip and base, lips, mouth
    shade = shading(np.concatenate([grid, probe]), rot, camera, width, app["light"],
                    app["ambient"])
    (s_chin, s_brow_l, s_brow_r, s_eye_l, s_eye_r, s_nose, s_base, s_lip,
     s_mouth) = shade[len(grid):].tolist()

    # Behind the face: neck, ears (unless turned away), hair.
    if app["neck"]:
        fill_rough(img, fp["neck"], rgb(skin * 0.7 * s_chin))
    if app["ears"]:
        for k, side in enumerate((-1.0, 1.0)):
            if rot[2, 0] * side < 0.25:                       # the ear's normal, z component
                fill_rough(img, fp["ears"][8 * k:8 * k + 8], rgb(skin * 0.8 * s_chin))
    if app["has_hair"]:
        fill_rough(img, np.concatenate([L[[16]], fp["hair"], L[[0]]]), rgb(app["hair"]))

    # Skin: a shaded layer composited through the exact face mask.
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill(mask, face - [x0, y0], 255)
    mask = mask.astype(np.float32) * (1 / 255)
    colours = np.clip(shade[:len(grid), None] * skin, 0, 255).astype(np.uint8)
    layer = cv2.resize(colours.reshape(_GRID, _GRID, 3), (x1 - x0, y1 - y0),
                       interpolation=cv2.INTER_LINEAR)
    roi = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = cv2.blendLinear(layer, roi, mask, 1 - mask)

    # Brows: the landmarks are their upper edge.
    fill_band(img, L[17:22], fp["brow_low"][:5], rgb(app["brow"] * (0.6 + 0.4 * s_brow_l)))
    fill_band(img, L[22:27], fp["brow_low"][5:], rgb(app["brow"] * (0.6 + 0.4 * s_brow_r)))

    # Eyes: a dark lid shape (the lash line shows above the eye), then the white of the eye
    # (its outline is the landmarks) with the iris clipped to it, both eyes in one layer.
    eyes = (L[36:42], L[42:48])
    for eye in eyes:
        across = eye[3] - eye[0]
        length = max(float(np.hypot(*across)), 1e-9)
        up = np.array([across[1], -across[0]]) / length
        fill_rough(img, np.concatenate([eye[:1], eye[1:3] + max(0.7, 0.09 * length) * up,
                                        eye[3:]]), rgb(app["brow"] * 0.45))
    both = L[36:48]
    ex0, ey0 = np.maximum(np.floor(both.min(0)).astype(int) - 1, 0)
    ex1, ey1 = np.minimum(np.ceil(both.max(0)).astype(int) + 2, size)
    if ex1 - ex0 >= 2 and ey1 - ey0 >= 2:
        sub = img[ey0:ey1, ex0:ex1]
        eye_mask = np.zeros(sub.shape[:2], np.uint8)
        layer = np.empty_like(sub)
        layer[:] = rgb(_SCLERA * (0.5 + 0.25 * (s_eye_l + s_eye_r)))
        for k, (eye, light) in enumerate(zip(eyes, (s_eye_l, s_eye_r))):
            fill(eye_mask, eye - [ex0, ey0], 255)
            centre = fp["iris"][k] - [ex0, ey0]
            r = float(np.hypot(*(fp["iris_edge"][k] - fp["iris"][k])))
            disc(layer, centre, r, rgb(app["iris"] * (0.6 + 0.4 * light)))
            disc(layer, centre, 0.45 * r, (12.0, 10.0, 10.0))
        eye_mask = eye_mask.astype(np.float32) * (1 / 255)
        img[ey0:ey1, ex0:ex1] = cv2.blendLinear(layer, sub, eye_mask, 1 - eye_mask)

    # Nose: the bridge is the edge of the shadow on the side away from the light; the base line
    # joins the nostril points; dark nostrils.
    side = L[35] if app["light"][0] < 0 else L[31]
    fill(img, np.concatenate([L[27:31], side[None]]), rgb(skin * 0.72 * s_nose))
    fill(img, np.concatenate([L[31:36], L[[30]]]), rgb(skin * 0.85 * s_nose))
    line(img, L[31:36], rgb(skin * 0.45 * s_base))
    for a, b in ((31, 32), (34, 35)):
        m = 0.5 * (L[a] + L[b]) + 0.3 * (L[30] - L[33])
        r = 0.3 * float(np.linalg.norm(L[b] - L[a])) + 0.3
        angle = float(np.degrees(np.arctan2(L[b, 1] - L[a, 1], L[b, 0] - L[a, 0])))
        ellipse(img, m, (1.4 * r, r), angle, rgb(skin * 0.25))

    # Mouth: lips (outer edge = landmarks), the opening (inner edge = landmarks), teeth.
    fill(img, L[48:60], rgb(app["lip"] * s_lip))
    inner = L[60:68]
    gap = L[66] - L[62]
    if np.hypot(*gap) > 1.0:
        fill(img, inner, (40.0, 15.0, 20.0))
        teeth = np.concatenate([inner[1:4], inner[3:0:-1] + 0.3 * gap])
        fill_rough(img, teeth, rgb(np.array([230.0, 225.0, 210.0]) * s_mouth))
    line(img, np.concatenate([L[[48]], inner[:5], L[[54]]]), rgb(app["lip"] * 0.35))
    return fp
