"""The synthetic face world: faces, videos and negatives with exact ground truth.

Every item is a pure function of ``(seed, index)`` (its generator is
``numpy.random.default_rng([seed, index])``), so data-loader workers, reruns and any access
order agree. A face is a 3D 68-point template (iBUG layout, zero-based) varied by identity and
expression, turned by yaw/pitch/roll and projected by a pinhole camera (:mod:`.synth_face`,
which documents the Euler convention and how the jaw contour follows the visible silhouette);
then it is drawn with OpenCV (:mod:`.synth_render`, :mod:`.synth_draw`) so that the landmarks
lie on visible edges, to a few hundredths of a pixel: the face outline, brow tops, eye outlines,
the nose bridge (a shadow edge) and base, lip outlines. Backgrounds, occluders and camera
effects come from :mod:`.synth_scene`, videos from :mod:`.synth_video`.

Difficulty presets (:data:`DIFFICULTIES`): ``easy`` (|yaw| <= 15, mild blur and noise, no
occluders), ``default`` (|yaw| <= 45, |pitch| <= 25, |roll| <= 30, occluders on 15 % of faces),
``hard`` (|yaw| <= 75, |pitch|, |roll| <= 35, occluders on 60 %, strong blur, noise, low contrast,
motion blur). In every preset all 68 landmarks lie inside the image.

Example::

    ds = SynthFaces(1000, size=128, seed=0, difficulty="default")
    item = ds[0]        # dict: image (128, 128, 3) uint8, landmarks (68, 2) float32, pose, box, ...

For throughput, call ``cv2.setNumThreads(1)`` in data-loader workers (see ``python -m lmk.bench``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import cv2
import numpy as np
from torch.utils.data import Dataset

from .._backend import check_positive_int
from ..layouts import LAYOUT_68
from .synth_face import EXPRESSION_NAMES, IDENTITY_NAMES, project, rotation_matrix, shape_3d
from .synth_render import draw_face, sample_appearance
from .synth_scene import apply_effects, draw_occluders, render_background, sample_effects

MIN_SIZE, MAX_SIZE = 64, 256


@dataclass(frozen=True)
class Difficulty:
    """Ranges of one difficulty preset (angles in degrees, poses uniform in ``[-max, max]``).

    Attributes:
        yaw, pitch, roll: largest absolute angle.
        face_scale: side of the landmark box as a fraction of the image side (min, max).
        shift: largest offset of the face centre from the image centre, fraction of the side.
        expression: strength of expressions (0 = neutral faces).
        occluder_prob: chance that a face gets occluders (1 to ``max_occluders``).
        blur: Gaussian blur sigma range in px at 128 px (scaled with the image size).
        noise: sensor noise standard deviation range (grey levels).
        contrast: overall gain range. motion_blur: chance of a motion-blur streak.
        distance: camera distance range in face units (perspective strength).
    """

    name: str
    yaw: float
    pitch: float
    roll: float
    face_scale: tuple = (0.5, 0.7)
    shift: float = 0.06
    expression: float = 1.0
    occluder_prob: float = 0.0
    max_occluders: int = 1
    blur: tuple = (0.0, 1.0)
    noise: tuple = (0.0, 6.0)
    contrast: tuple = (0.8, 1.15)
    motion_blur: float = 0.0
    distance: tuple = (6.0, 14.0)


DIFFICULTIES = {
    "easy": Difficulty("easy", yaw=15, pitch=10, roll=10, face_scale=(0.55, 0.7), shift=0.04,
                       expression=0.5, blur=(0.0, 0.6), noise=(0.0, 3.0), contrast=(0.9, 1.1)),
    "default": Difficulty("default", yaw=45, pitch=25, roll=30, occluder_prob=0.15,
                          blur=(0.0, 1.2), noise=(0.0, 8.0)),
    "hard": Difficulty("hard", yaw=75, pitch=35, roll=35, face_scale=(0.45, 0.75), shift=0.1,
                       occluder_prob=0.6, max_occluders=2, blur=(0.3, 2.0), noise=(2.0, 16.0),
                       contrast=(0.55, 1.2), motion_blur=0.25, distance=(4.0, 14.0)),
}
"""The presets: ``easy`` (near-frontal, clean), ``default``, ``hard`` (large poses, occluders)."""

_IDENTITY_RANGES = np.array([(0.88, 1.12), (0.9, 1.1), (0.85, 1.15), (0.8, 1.25), (0.92, 1.08),
                             (0.85, 1.2), (1.0, 1.6), (0.85, 1.15), (0.8, 1.3), (0.85, 1.2),
                             (0.7, 1.4), (-0.06, 0.06), (0.85, 1.15)])
_IDENTITY_LOW, _IDENTITY_SPAN = _IDENTITY_RANGES[:, 0], np.ptp(_IDENTITY_RANGES, axis=1)


def get_difficulty(difficulty) -> Difficulty:
    """A :class:`Difficulty` from a preset name or an instance (for custom ranges)."""
    if isinstance(difficulty, Difficulty):
        return difficulty
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)} or a Difficulty, "
                         f"got {difficulty!r}")
    return DIFFICULTIES[difficulty]


def check_render_size(size) -> int:
    """A synthetic image side in ``[MIN_SIZE, MAX_SIZE]`` px (Python or numpy int), as an int.

    Not :func:`lmk._backend.check_size`, which takes any positive ``(H, W)`` and returns a pair.
    """
    side = check_positive_int(size, "size")
    if not MIN_SIZE <= side <= MAX_SIZE:
        raise ValueError(f"size must be an int in [{MIN_SIZE}, {MAX_SIZE}] px, got {size!r}")
    return side


def check_size(size) -> int:
    """Deprecated name of :func:`check_render_size` (it read as :func:`lmk._backend.check_size`)."""
    warnings.warn("lmk.data.synth.check_size is deprecated: use check_render_size (the synthetic "
                  "image side, an int); lmk._backend.check_size checks an (H, W) size",
                  DeprecationWarning, stacklevel=2)
    return check_render_size(size)


def _check_count(name, value) -> int:
    return check_positive_int(value, name)


def _check_index(index, n: int, owner: str) -> int:
    """A dataset index in ``[-n, n)`` as a non-negative int, or a clear TypeError/IndexError."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"index {index} out of range for {owner} of length {n}")
    return int(index) % n


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def sample_identity(rng) -> np.ndarray:
    """``(13,)`` identity parameters, uniform in their ranges (see ``IDENTITY_NAMES``)."""
    return _IDENTITY_LOW + _IDENTITY_SPAN * rng.random(len(_IDENTITY_RANGES))


def sample_expression(rng, strength: float = 1.0) -> np.ndarray:
    """``(5,)`` expression: mouth open (half the time, up to 0.3), smile and brow raise in
    [-0.5, 1], blinks (both eyes in [0.5, 1] 15 % of the time, else in [0, 0.2])."""
    u = rng.random(7).tolist()
    mouth = 0.3 * u[1] if u[0] < 0.5 else 0.0
    blinks = [0.5 + 0.5 * v if u[4] < 0.15 else 0.2 * v for v in u[5:7]]
    values = [mouth, 1.5 * u[2] - 0.5, 1.5 * u[3] - 0.5] + blinks
    return np.array([v * strength for v in values])


def place_face(rng, points3d, pose, size, face_scale, shift, distance, rotation=None):
    """Choose ``camera = (s, cx, cy, D)`` so the landmark box has a random size and position
    and lies inside the image (1 px margin). ``rotation`` may pass ``rotation_matrix(*pose)``."""
    u = rng.random(4).tolist()
    dist = distance[0] + (distance[1] - distance[0]) * u[0]
    unit = project(points3d, pose, (1.0, 0.0, 0.0, dist), rotation)    # at s = 1, centre 0
    lo, hi = unit.min(0).tolist(), unit.max(0).tolist()
    side = max(hi[0] - lo[0], hi[1] - lo[1])
    s = (face_scale[0] + (face_scale[1] - face_scale[0]) * u[1]) * size / side
    s = min(s, (size - 3.0) / side)
    camera = [s]
    for a, b, v in zip(lo, hi, u[2:]):                  # x, then y
        half = (b - a) * s / 2
        centre = (size - 1) / 2 + (2 * v - 1) * shift * size
        centre = min(max(centre, 1.0 + half), size - 2.0 - half)
        camera.append(centre - (a + b) / 2 * s)
    return np.array(camera + [dist])


_FIVE_POINT_MEANS = np.zeros((5, 68))
for _row, _group in enumerate(LAYOUT_68.five_point_groups):
    _FIVE_POINT_MEANS[_row, list(_group)] = 1.0 / len(_group)
_FIVE_POINT_NOISE = np.array([0.04] * 2 + [0.03] * 10)   # error in interocular distances


def noisy_five_points(rng, landmarks) -> np.ndarray:
    """A noisy 5-point "detector" output: true 5 points + a common and a per-point error."""
    iod = math.dist(landmarks[45].tolist(), landmarks[36].tolist())
    noise = rng.standard_normal(12) * (_FIVE_POINT_NOISE * iod)     # common (2,), per point
    return _FIVE_POINT_MEANS @ landmarks + noise[:2] + noise[2:].reshape(5, 2)


def landmark_box(landmarks) -> np.ndarray:
    """``(4,)`` x0, y0, x1, y1: the tight box of the landmarks (the face box of every item)."""
    landmarks = np.asarray(landmarks, np.float32)
    return np.concatenate([landmarks.min(0), landmarks.max(0)])


def sample_effects_for(rng, cfg: Difficulty, size: int) -> dict:
    return sample_effects(rng, cfg.blur, cfg.noise, cfg.contrast, cfg.motion_blur, size)


def _f32(x) -> np.ndarray:
    """Round parameters to float32 *before* use, so the stored labels reproduce exactly."""
    return np.asarray(x, np.float32).astype(np.float64)


def render_face_item(rng, size: int, cfg: Difficulty, face_scale=None, shift=None) -> dict:
    """One synthetic face image with its labels (the body of ``SynthFaces[i]``)."""
    identity = _f32(sample_identity(rng))
    expression = _f32(sample_expression(rng, cfg.expression))
    pose = _f32(rng.uniform(-1, 1, 3) * np.array([cfg.yaw, cfg.pitch, cfg.roll]))
    points3d, outline3d = shape_3d(identity, expression, pose[0])
    rotation = rotation_matrix(*pose)
    camera = _f32(place_face(rng, points3d, pose, size, face_scale or cfg.face_scale,
                             cfg.shift if shift is None else shift, cfg.distance, rotation))
    app = sample_appearance(rng)
    img = render_background(rng, size)
    fp = draw_face(img, points3d, outline3d, pose, camera, app, identity[0], rotation)
    landmarks = fp["landmarks"]
    landmarks32 = landmarks.astype(np.float32)
    occluded = np.zeros(68, bool)
    if rng.random() < cfg.occluder_prob:
        mask = draw_occluders(img, rng, landmarks, int(rng.integers(1, cfg.max_occluders + 1)))
        ij = np.clip(np.round(landmarks).astype(int), 0, size - 1)
        occluded = mask[ij[:, 1], ij[:, 0]] > 127
    img = apply_effects(img, rng, sample_effects_for(rng, cfg, size))
    return {
        "image": img,
        "landmarks": landmarks32,
        "pose": pose.astype(np.float32),
        "box": landmark_box(landmarks32),
        "five_points": noisy_five_points(rng, landmarks).astype(np.float32),
        "occluded": occluded,
        "identity": identity.astype(np.float32),
        "expression": expression.astype(np.float32),
        "camera": camera.astype(np.float32),
    }


class SynthFaces(Dataset):
    """``n`` synthetic faces; item ``i`` is a pure function of ``(seed, i)``.

    Args:
        n: number of items. size: image side in px, 64 to 256.
        seed: non-negative int. difficulty: ``"easy"``, ``"default"``, ``"hard"`` or a
            :class:`Difficulty`.
    Items (numpy; the default collate stacks them into tensors):
        ``image`` (H, W, 3) uint8 RGB; ``landmarks`` (68, 2) float32 (pixel centres at
        integers); ``pose`` (3,) float32 yaw, pitch, roll in degrees (convention in
        :mod:`lmk.data.synth_face`); ``box`` (4,) float32 x0, y0, x1, y1 (landmark box);
        ``five_points`` (5, 2) float32 noisy detector output; ``occluded`` (68,) bool (under an
        occluder); ``identity`` (13,), ``expression`` (5,), ``camera`` (4,) float32: the exact
        parameters (``synth_face.landmarks_2d`` reproduces ``landmarks`` from them).
    """

    identity_names = IDENTITY_NAMES
    expression_names = EXPRESSION_NAMES

    def __init__(self, n: int, size: int = 128, seed: int = 0, difficulty="default"):
        self.n = _check_count("n", n)
        self.size = check_render_size(size)
        self.seed = _check_seed(seed)
        self.difficulty = get_difficulty(difficulty)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> dict:
        index = _check_index(index, self.n, "SynthFaces")
        rng = np.random.default_rng([self.seed, index])
        return render_face_item(rng, self.size, self.difficulty)

    def __repr__(self) -> str:
        return (f"SynthFaces(n={self.n}, size={self.size}, seed={self.seed}, "
                f"difficulty={self.difficulty.name!r})")

    def with_difficulty(self, **changes) -> "SynthFaces":
        """A copy whose difficulty has some ranges changed, e.g. ``yaw=0, occluder_prob=0``."""
        return SynthFaces(self.n, self.size, self.seed, replace(self.difficulty, **changes))


def box_iou(a, b) -> float:
    """Intersection over union of two boxes ``(x0, y0, x1, y1)``."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def crop_window(image, window, size: int) -> np.ndarray:
    """Resample the square ``window = (x0, y0, x1, y1)`` (continuous coordinates, pixel
    centres at integers) to ``(size, size)``; outside the image is black.

    Black, as outside a face crop of :class:`lmk.data.LandmarkDataset`: a face-confidence
    branch must not tell faces from negatives by how their borders are filled.
    """
    a = (window[2] - window[0]) / size
    m = np.array([[a, 0, window[0] + 0.5 * a], [0, a, window[1] + 0.5 * a]], np.float32)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class SynthNegatives(Dataset):
    """Patches for a face-confidence branch: face-free backgrounds and bad crops of face scenes.

    Item ``i`` (a pure function of ``(seed, i)``) is a dict with ``image`` (size, size, 3)
    uint8, ``face`` (int 0/1), ``iou`` (float32: IoU of the crop window with the face's
    landmark box; 0 for face-free patches) and ``window`` (4,) float32 (the crop in the scene).
    Negatives (``face = 0``) have IoU < 0.3: 30 % are face-free backgrounds, the rest crops of
    a face scene away from the face. With ``positive_fraction > 0`` that share of items are
    well-centred face crops (``face = 1``, IoU >= 0.5) for the same branch.
    """

    def __init__(self, n: int, size: int = 64, seed: int = 0, difficulty="default",
                 positive_fraction: float = 0.0, max_iou: float = 0.3):
        self.n = _check_count("n", n)
        self.size = check_render_size(size)
        self.seed = _check_seed(seed)
        self.difficulty = get_difficulty(difficulty)
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
        if not 0.0 < max_iou <= 0.5:
            raise ValueError(f"max_iou must be in (0, 0.5], got {max_iou!r}")
        self.positive_fraction, self.max_iou = float(positive_fraction), float(max_iou)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> dict:
        rng = np.random.default_rng([self.seed, _check_index(index, self.n, "SynthNegatives")])
        size, cfg = self.size, self.difficulty
        positive = rng.random() < self.positive_fraction
        if not positive and rng.random() < 0.3:
            return self._background(rng)
        scene_size = min(2 * size, MAX_SIZE)
        scene = render_face_item(rng, scene_size, cfg, face_scale=(0.25, 0.45), shift=0.25)
        box = scene["box"].astype(float)
        side = float((box[2:] - box[:2]).max())
        centre = (box[:2] + box[2:]) / 2
        for _ in range(30):
            w = side * rng.uniform(1.0, 1.6)
            if positive:
                c = centre + rng.normal(0, 0.04 * w, 2)
            else:
                c = rng.uniform(-0.1, 1.1, 2) * scene_size
            window = np.array([c[0] - w / 2, c[1] - w / 2, c[0] + w / 2, c[1] + w / 2])
            iou = box_iou(window, box)
            if (iou >= 0.5) if positive else (iou < self.max_iou):
                return {"image": crop_window(scene["image"], window, size), "face": int(positive),
                        "iou": np.float32(iou), "window": window.astype(np.float32)}
        return self._background(rng)

    def _background(self, rng) -> dict:
        img = render_background(rng, self.size)
        img = apply_effects(img, rng, sample_effects_for(rng, self.difficulty, self.size))
        return {"image": img, "face": 0, "iou": np.float32(0.0),
                "window": np.array([-0.5, -0.5, self.size - 0.5, self.size - 0.5], np.float32)}


def boundary_gradient_ratio(dataset, n: int = 500, seed: int = 0) -> float:
    """Mean image-gradient magnitude at the landmarks over that at random points of the face.

    The random points are uniform in the convex hull of each face's landmarks (as many as
    landmarks); gradients are Sobel magnitudes of the grey image, read bilinearly. A ratio well
    above 1 says the landmarks sit on visible edges rather than anywhere on the face.

    Args:
        dataset: items with ``image`` (H, W, 3) and ``landmarks`` (N, 2), e.g. ``SynthFaces``.
        n: number of items used (the first ``n``); at most ``len(dataset)``.
        seed: seed of the random points.
    """
    n = _check_count("n", n)
    if n > len(dataset):
        raise ValueError(f"n={n} exceeds the dataset length {len(dataset)}")
    rng = np.random.default_rng(seed)
    at_landmarks, at_random = [], []
    for i in range(n):
        item = dataset[i]
        gray = cv2.cvtColor(np.ascontiguousarray(item["image"]), cv2.COLOR_RGB2GRAY)
        gray = gray.astype(np.float32)
        magnitude = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3),
                                  cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)) / 8
        landmarks = np.asarray(item["landmarks"], np.float32)
        hull = np.round(cv2.convexHull(landmarks)).astype(np.int32)
        mask = np.zeros(gray.shape, np.uint8)
        cv2.fillConvexPoly(mask, hull, 1)
        ys, xs = np.nonzero(mask)
        pick = rng.integers(0, len(xs), len(landmarks))
        random_points = np.stack([xs[pick], ys[pick]], 1) + rng.uniform(-0.5, 0.5,
                                                                         (len(landmarks), 2))
        for points, out in ((landmarks, at_landmarks), (random_points, at_random)):
            p = points.astype(np.float32).reshape(1, -1, 2)
            out.append(cv2.remap(magnitude, p[..., 0], p[..., 1], cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).ravel())
    return float(np.concatenate(at_landmarks).mean() / np.concatenate(at_random).mean())
