"""Drawing the synthetic faces with OpenCV: backgrounds, face parts, occluders, camera effects.

Everything is drawn anti-aliased with sub-pixel vertices (``cv2.LINE_AA`` with ``shift=4``, i.e.
1/16 px), so moving a landmark by a fraction of a pixel changes the image. OpenCV's anti-aliased
fill grows every shape by about 0.65 px (it also paints a one-pixel anti-aliased outline); filled
parts are therefore inset by that much first (:func:`inset_polygon`), which puts the visible
edge on the polygon, i.e. on the landmarks, to about 0.1 px.

All randomness comes in as a ``numpy.random.Generator``; textures and noise come from banks that
are built once from a fixed seed, so every image is a pure function of its generator.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .synth_face import project, rotation_matrix, shape_3d

SHIFT = 4                    # sub-pixel bits of the OpenCV drawing calls
_ONE = 1 << SHIFT
AA_GROWTH = 0.65             # px by which cv2's anti-aliased fill grows a shape
_BANK_SIZE = 320


# ----------------------------------------------------------------------------- drawing helpers

def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32)


def inset_polygon(poly: np.ndarray, d: float) -> np.ndarray:
    """Move the edges of a closed polygon ``(K, 2)`` inward by ``d`` px (mitred, capped at 2d)."""
    nxt = np.concatenate((poly[1:], poly[:1]))
    edge = nxt - poly
    normal = edge[:, ::-1] * _LEFT                   # left normal (-ey, ex), not yet unit
    normal /= np.maximum(np.sqrt(np.einsum("ij,ij->i", edge, edge)), 1e-9)[:, None]
    area2 = np.einsum("i,i->", poly[:, 0], nxt[:, 1]) - np.einsum("i,i->", nxt[:, 0], poly[:, 1])
    n_prev = np.concatenate((normal[-1:], normal[:-1]))
    cos = np.einsum("ij,ij->i", n_prev, normal)
    step = (d if area2 > 0 else -d) / np.maximum(1.0 + cos, 0.25)
    return poly + (n_prev + normal) * step[:, None]


_LEFT = np.array([-1.0, 1.0])


def fill(img, poly, color, grow: float = 0.0, exact: bool = True):
    """Fill a polygon so that its visible (anti-aliased) edge lies on ``poly`` (+ ``grow`` px).

    ``exact=False`` skips the inset (for shapes whose edges carry no label: backgrounds).
    """
    if exact:
        poly = inset_polygon(poly, AA_GROWTH - grow)
    cv2.fillPoly(img, [_fixed(poly)], color, cv2.LINE_AA, SHIFT)


def line(img, pts, color, thickness: int = 1, closed: bool = False):
    cv2.polylines(img, [_fixed(pts)], closed, color, thickness, cv2.LINE_AA, SHIFT)


def disc(img, center, radius, color):
    r = max(radius - AA_GROWTH, 0.3)
    cv2.circle(img, tuple(int(v) for v in _fixed(center)), int(round(r * _ONE)), color, -1,
               cv2.LINE_AA, SHIFT)


def ellipse(img, center, axes, angle, color):
    ax = tuple(int(round(max(a - AA_GROWTH, 0.3) * _ONE)) for a in axes)
    cv2.ellipse(img, tuple(int(v) for v in _fixed(center)), ax, angle, 0, 360, color, -1,
                cv2.LINE_AA, SHIFT)


def _rgb(c):
    return tuple(min(max(float(v), 0.0), 255.0) for v in c)


# ----------------------------------------------------------------------------- banks

@lru_cache(maxsize=1)
def texture_bank() -> tuple[np.ndarray, ...]:
    """Gray textures ``(320, 320)`` uint8 in [0, 255], built once from a fixed seed."""
    rng = np.random.default_rng(20240601)
    n = _BANK_SIZE
    out = []
    for sigma in (1.5, 4.0, 10.0, 24.0):                       # smooth noise at four scales
        t = cv2.GaussianBlur(rng.random((n, n), dtype=np.float32), (0, 0), sigma)
        out.append(t)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    for freq, ang in ((0.08, 0.3), (0.2, 1.2), (0.04, 2.0)):  # stripes, wavy stripes
        u = xx * np.cos(ang) + yy * np.sin(ang)
        out.append(np.sin(freq * u + 3 * np.sin(0.02 * (xx - yy))))
    t = np.zeros((n, n), np.float32)                            # random discs
    for _ in range(150):
        cv2.circle(t, (int(rng.integers(n)), int(rng.integers(n))), int(rng.integers(4, 30)),
                   float(rng.random()), -1, cv2.LINE_AA)
    out.append(t)
    t = ((xx // 24 + yy // 24) % 2).astype(np.float32)         # tiles with grain
    out.append(cv2.GaussianBlur(t, (0, 0), 1.0) + 0.3 * out[0])
    result = []
    for t in out:
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        result.append((t * 255).astype(np.uint8))
    return tuple(result)


@lru_cache(maxsize=1)
def noise_bank() -> np.ndarray:
    """Standard normal noise ``(320, 320, 3)`` float32 from a fixed seed (cropped per image)."""
    return np.random.default_rng(7).standard_normal((_BANK_SIZE, _BANK_SIZE, 3), np.float32)


def _texture_patch(rng, size: int, smooth_only: bool = False) -> np.ndarray:
    bank = texture_bank()
    t = bank[int(rng.integers(4 if smooth_only else len(bank)))]
    crop = int(rng.integers(max(size // 2, 16), _BANK_SIZE + 1))
    x0, y0 = (int(v) for v in rng.integers(0, _BANK_SIZE - crop + 1, 2))
    patch = t[y0:y0 + crop, x0:x0 + crop]
    if rng.random() < 0.5:
        patch = patch.T
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


def _colorize(gray: np.ndarray, rng) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    gamma = rng.uniform(0.5, 2.0)
    t = (np.arange(256) / 255.0) ** gamma
    lut = (c0[None] + t[:, None] * (c1 - c0)[None]).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), lut)


# ----------------------------------------------------------------------------- background

def render_background(rng, size: int, num_shapes: tuple[int, int] = (2, 8)) -> np.ndarray:
    """A random textured background ``(size, size, 3)`` uint8: texture, colours, shapes."""
    img = _colorize(_texture_patch(rng, size), rng)
    for _ in range(int(rng.integers(num_shapes[0], num_shapes[1] + 1))):
        color = _rgb(rng.uniform(0, 255, 3))
        kind = rng.integers(4)
        c = rng.uniform(-0.1, 1.1, 2) * size
        r = rng.uniform(0.05, 0.4) * size
        if kind == 0:
            ellipse(img, c, (r, r * rng.uniform(0.3, 1.0)), float(rng.uniform(0, 180)), color)
        elif kind == 1:
            k = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            poly = c + r * rng.uniform(0.5, 1.0, (k, 1)) * np.stack([np.cos(ang), np.sin(ang)], 1)
            fill(img, poly, color, exact=False)
        elif kind == 2:
            p = c + rng.uniform(-1, 1, (2, 2)) * r * 2
            line(img, p, color, int(rng.integers(1, max(2, size // 24))))
        else:
            w = rng.uniform(0.2, 1.0, 2) * r
            a = rng.uniform(0, np.pi)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * w
            fill(img, c + box @ rot.T, color, exact=False)
    return img


# ----------------------------------------------------------------------------- appearance

SKIN_TONES = np.array([[255, 219, 190], [241, 194, 160], [224, 172, 130], [198, 134, 96],
                       [160, 104, 70], [110, 70, 46], [80, 52, 36]], float)


def sample_appearance(rng) -> dict:
    """Colours, lighting and hair of one person (constant over the frames of a video)."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(t)
    skin = SKIN_TONES[i] + (t - i) * (SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[i])
    skin = skin * rng.uniform(0.85, 1.1, 3)
    hair = rng.choice([0, 1, 2, 3]) if True else 0
    hair_colors = np.array([[30, 22, 18], [90, 60, 35], [200, 160, 90], [140, 140, 140]], float)
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.3), -1.0])
    return {
        "skin": skin,
        "lip": skin * np.array([0.75, 0.45, 0.45]) * rng.uniform(0.8, 1.1) + [25, 0, 5],
        "brow": hair_colors[hair] * rng.uniform(0.6, 1.0),
        "hair": hair_colors[hair] * rng.uniform(0.8, 1.2),
        "has_hair": bool(rng.random() < 0.8),
        "hair_height": rng.uniform(0.1, 0.5),
        "iris": rng.choice(np.array([[60, 40, 25], [100, 70, 40], [60, 90, 130], [70, 100, 60]],
                                    float)) * rng.uniform(0.7, 1.2),
        "brow_thickness": rng.uniform(0.07, 0.13),
        "gaze": rng.uniform(-0.25, 0.25, 2),
        "light": light / np.linalg.norm(light),
        "ambient": rng.uniform(0.5, 0.75),
        "neck": rng.random() < 0.9,
    }


# ----------------------------------------------------------------------------- the face

def _shade_map(size: int, pose, camera, width: float, light, ambient, grid: int = 20):
    """Lambertian shading ``(size, size)`` float32 of an ellipsoid head (orthographic rays)."""
    s, cx, cy, _ = camera
    rot = rotation_matrix(*pose)
    axes = np.array([1.02 * width, 1.45, 1.1])
    centre = np.array([0.0, 0.3, 0.0])
    coords = (np.arange(grid) + 0.5) * size / grid - 0.5
    X, Y = np.meshgrid((coords - cx) / s, (coords - cy) / s)
    q = np.stack([X, Y, np.zeros_like(X)], -1)                # camera-frame points on z = 0
    p0 = q @ rot - centre                                       # head frame: R^T q - c
    d = rot[2] / axes                                           # ray direction R^T e_z, scaled
    p0 = p0 / axes
    a = d @ d
    b = p0 @ d
    c = (p0 ** 2).sum(-1) - 1
    t = (-b - np.sqrt(np.maximum(b * b - a * c, 0.0))) / a
    surface = p0 + t[..., None] * d                             # unit-sphere coordinates
    normal = (surface / axes) @ rot.T
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    lam = np.maximum(-(normal @ light), 0.0)                    # light points toward the scene
    shade = (ambient + (1.05 - ambient) * lam).astype(np.float32)
    return cv2.resize(shade, (size, size), interpolation=cv2.INTER_LINEAR)


def face_points(identity, expression, pose, camera, app) -> dict:
    """Project the landmarks and the extra drawing points of one face."""
    pts, outline = shape_3d(identity, expression, pose[0])
    brows = pts[17:27]
    brow_low = brows + np.array([0.0, 1.0, 0.0]) * app["brow_thickness"] * \
        np.array([0.6, 0.9, 1.0, 1.0, 0.8, 0.8, 1.0, 1.0, 0.9, 0.6])[:, None]
    eyes = np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])
    eye_w = np.linalg.norm(pts[39] - pts[36])
    iris = eyes + np.array([app["gaze"][0] * 0.25 * eye_w, app["gaze"][1] * 0.05, -0.05])
    iris_edge = iris + np.array([0.21 * eye_w, 0, 0])
    top = outline * np.array([1.12, 1.0, 1.0]) + np.array([0, -app["hair_height"], 0.1])
    neck = np.array([[-0.5, 0.9, 0.1], [0.5, 0.9, 0.1], [0.55, 3.5, 0.2], [-0.55, 3.5, 0.2]])
    allp = np.concatenate([pts, outline, brow_low, iris, iris_edge, top, neck])
    uv = project(allp, pose, camera)
    k = np.cumsum([68, len(outline), 10, 2, 2, len(top), 4])
    return {"landmarks": uv[:68], "outline": uv[k[0]:k[1]], "brow_low": uv[k[1]:k[2]],
            "iris": uv[k[2]:k[3]], "iris_edge": uv[k[3]:k[4]], "hair": uv[k[4]:k[5]],
            "neck": uv[k[5]:k[6]]}


def draw_face(img, identity, expression, pose, camera, app) -> dict:
    """Draw one face onto ``img`` (H, W, 3) uint8 in place; return its projected points."""
    size = img.shape[0]
    fp = face_points(identity, expression, pose, camera, app)
    L = fp["landmarks"]
    skin = app["skin"]
    shade = _shade_map(size, pose, camera, identity[0], app["light"], app["ambient"])

    def at(p):  # shading factor at a point
        x, y = np.clip(np.round(p).astype(int), 0, size - 1)
        return float(shade[y, x])

    if app["neck"]:
        fill(img, fp["neck"], _rgb(skin * 0.7 * at(L[8])))
    if app["has_hair"]:
        hair = np.concatenate([L[[16]], fp["hair"], L[[0]]])
        fill(img, hair, _rgb(app["hair"]), grow=1.0)

    # Skin: a shaded layer composited through the face mask.
    face_poly = np.concatenate([L[:17], fp["outline"]])
    x0, y0 = np.maximum(np.floor(face_poly.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(face_poly.max(0)).astype(int) + 3, size)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill(mask, face_poly - [x0, y0], 255)
    alpha = mask.astype(np.float32) * (1 / 255)
    layer = (shade[y0:y1, x0:x1, None] * skin.astype(np.float32)).clip(0, 255).astype(np.uint8)
    roi = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = cv2.blendLinear(layer, roi, alpha, 1 - alpha)

    # Brows: the landmarks are their upper edge.
    for side in (slice(0, 5), slice(5, 10)):
        top = L[17:27][side]
        fill(img, np.concatenate([top, fp["brow_low"][side][::-1]]),
             _rgb(app["brow"] * (0.6 + 0.4 * at(top[2]))))

    # Eyes: sclera (its outline is the landmarks), iris clipped to it, lash line above.
    for k, eye in enumerate((L[36:42], L[42:48])):
        c = eye.mean(0)
        light = at(c)
        ex0, ey0 = np.maximum(np.floor(eye.min(0)).astype(int) - 2, 0)
        ex1, ey1 = np.minimum(np.ceil(eye.max(0)).astype(int) + 3, size)
        if ex1 <= ex0 or ey1 <= ey0:
            continue
        sub = img[ey0:ey1, ex0:ex1]
        eye_mask = np.zeros(sub.shape[:2], np.uint8)
        fill(eye_mask, eye - [ex0, ey0], 255)
        layer = np.empty_like(sub)
        layer[:] = _rgb(np.array([235, 232, 225]) * (0.5 + 0.5 * light))
        r = float(np.linalg.norm(fp["iris_edge"][k] - fp["iris"][k]))
        disc(layer, fp["iris"][k] - [ex0, ey0], r, _rgb(app["iris"] * (0.6 + 0.4 * light)))
        disc(layer, fp["iris"][k] - [ex0, ey0], 0.45 * r, (10, 10, 10))
        a = eye_mask.astype(np.float32) * (1 / 255)
        img[ey0:ey1, ex0:ex1] = cv2.blendLinear(layer, sub, a, 1 - a)
        upper = eye[[0, 1, 2, 3]] + [0, -0.6]
        line(img, upper, _rgb(app["brow"] * 0.5), 1)

    # Nose: the bridge is the edge of a shadow on the side away from the light; nostrils.
    away = 1 if app["light"][0] < 0 else -1               # +1: shadow on the image right
    nose_side = L[35] if away > 0 else L[31]
    fill(img, np.concatenate([L[27:31], [nose_side]]), _rgb(skin * 0.72 * at(L[30])))
    fill(img, np.concatenate([L[31:36], L[[30]]]), _rgb(skin * 0.85 * at(L[30])))
    line(img, L[31:36], _rgb(skin * 0.45 * at(L[33])), 1)
    for a, b in ((31, 32), (34, 35)):
        m = 0.5 * (L[a] + L[b]) + 0.3 * (L[30] - L[33])
        r = 0.3 * np.linalg.norm(L[b] - L[a]) + 0.3
        angle = float(np.degrees(np.arctan2(L[b, 1] - L[a, 1], L[b, 0] - L[a, 0])))
        ellipse(img, m, (1.4 * r, r), angle, _rgb(skin * 0.25))

    # Mouth: lips (outer edge = landmarks), the opening (inner edge = landmarks).
    fill(img, L[48:60], _rgb(app["lip"] * at(L[57])))
    inner = L[60:68]
    opening = np.linalg.norm(L[66] - L[62])
    if opening > 1.0:
        fill(img, inner, (40, 15, 20))
        teeth = np.concatenate([inner[1:4], inner[1:4][::-1] + (L[66] - L[62]) * 0.3])
        fill(img, teeth, _rgb(np.array([230, 225, 210]) * at(L[62])))
    line(img, np.concatenate([L[[48]], inner[:5], L[[54]]]), _rgb(app["lip"] * 0.35), 1)
    return fp


# ----------------------------------------------------------------------------- occluders, camera

def draw_occluders(img, rng, landmarks: np.ndarray, count: int) -> np.ndarray:
    """Draw ``count`` occluders over parts of the face; return their mask ``(H, W)`` uint8."""
    size = img.shape[0]
    mask = np.zeros(img.shape[:2], np.uint8)
    span = float(np.ptp(landmarks, axis=0).max())
    for _ in range(count):
        centre = landmarks[int(rng.integers(68))] + rng.normal(0, 0.1 * span, 2)
        kind = int(rng.integers(3))
        layer = np.zeros(img.shape[:2], np.uint8)
        if kind == 0:                                   # a bar (hand-held object, strand)
            a = rng.uniform(0, np.pi)
            half = np.array([np.cos(a), np.sin(a)]) * span * rng.uniform(0.3, 0.9)
            normal = np.array([-half[1], half[0]]) / np.linalg.norm(half) * span * \
                rng.uniform(0.06, 0.18)
            poly = centre + np.stack([-half - normal, half - normal, half + normal, -half + normal])
        elif kind == 1:                                 # a blob (hand, ball)
            k = 7
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            rad = span * rng.uniform(0.15, 0.35) * rng.uniform(0.7, 1.0, (k, 1))
            poly = centre + rad * np.stack([np.cos(ang), np.sin(ang)], 1)
        else:                                           # glasses-like band over the eyes
            e0, e1 = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
            d = e1 - e0
            n = np.array([-d[1], d[0]]) * rng.uniform(0.15, 0.3)
            poly = np.stack([e0 - 0.45 * d - n, e1 + 0.45 * d - n, e1 + 0.45 * d + n,
                             e0 - 0.45 * d + n])
        fill(layer, poly, 255)
        if rng.random() < 0.5:
            texture = _colorize(_texture_patch(rng, size), rng)
        else:
            texture = np.empty_like(img)
            texture[:] = _rgb(rng.uniform(0, 255, 3))
        a = layer.astype(np.float32) * (1 / 255)
        img[:] = cv2.blendLinear(texture, img, a, 1 - a)
        np.maximum(mask, layer, out=mask)
    return mask


def sample_effects(rng, blur: tuple, noise: tuple, contrast: tuple, motion_blur_prob: float,
                   size: int) -> dict:
    """Camera settings of one shot: lighting gain field, blur, motion-blur kernel, noise level."""
    effects = {
        "gain": (rng.uniform(*contrast) * rng.uniform(0.85, 1.15, (2, 2, 3))).astype(np.float32),
        "sigma": rng.uniform(*blur) * size / 128,
        "noise": rng.uniform(*noise),
        "kernel": None,
    }
    if rng.random() < motion_blur_prob:
        k = int(rng.integers(3, 4 + size // 32)) | 1
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(0, 180)), 1)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        effects["kernel"] = kernel / kernel.sum()
    return effects


def apply_effects(img, rng, effects: dict) -> np.ndarray:
    """Apply :func:`sample_effects` settings; ``rng`` picks only the noise pattern."""
    size = img.shape[0]
    gain = cv2.resize(effects["gain"], (size, size), interpolation=cv2.INTER_LINEAR)
    out = cv2.multiply(img.astype(np.float32), gain)
    if effects["kernel"] is not None:
        out = cv2.filter2D(out, -1, effects["kernel"])
    sigma = effects["sigma"]
    if sigma > 0.25:
        k = 2 * int(np.ceil(2.5 * sigma)) + 1
        out = cv2.GaussianBlur(out, (k, k), sigma)
    if effects["noise"] > 0:
        y0, x0 = (int(v) for v in rng.integers(0, _BANK_SIZE - size + 1, 2))
        out = cv2.scaleAdd(noise_bank()[y0:y0 + size, x0:x0 + size], effects["noise"], out)
    return cv2.add(out, 0.0, dtype=cv2.CV_8U)
