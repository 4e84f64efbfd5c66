"""Image + landmark transforms: cropping, 5-point alignment, flips and the augmentations.

Everything is numpy / OpenCV on ``(H, W, 3)`` uint8 RGB images and ``(N, 2)`` float landmarks
in the project's pixel-centre convention (pixel ``i`` is centred on the integer ``i``). Every
geometric transform is a ``(2, 3)`` affine matrix ``M`` mapping *source* points to *output*
points; :func:`warp_image` (from :mod:`.resample`: an area pre-filter when the matrix shrinks,
then ``cv2.warpAffine``) uses the same convention, so the image and the points move together
without any half-pixel fix-up::

    out_image = warp_image(image, M, size)          # out_image(M @ p) = image(p)
    out_points = lmk.geometry.apply_affine(points, M)

Randomness always comes in as a ``numpy.random.Generator``; given the same generator state a
transform returns the same result. Ranges follow Earp et al. (2021), Sec. 5.1 (rotation up to
15 deg, scaling 1 +- 0.05..0.2, repositioning 5..20 px, flips, random erasing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._backend import check_positive_int, check_size
from ..geometry import (apply_affine, compose_affine, rescale_points, rotation_matrix,
                        similarity_transform)
from .resample import _check_image, warp_image

IMAGE_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
"""Per-channel RGB mean (ImageNet) subtracted by :func:`normalize_image`, images in [0, 1]."""
IMAGE_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
"""Per-channel RGB standard deviation (ImageNet) divided by :func:`normalize_image`."""

REFERENCE_FIVE_POINTS = np.array([
    [0.368, 0.372],   # left eye centre (image left)
    [0.632, 0.372],   # right eye centre
    [0.500, 0.504],   # nose tip
    [0.394, 0.623],   # left mouth corner
    [0.606, 0.623],   # right mouth corner
], dtype=np.float64)
"""Where 5-point alignment puts the eyes, nose tip and mouth corners, as fractions of the output
width and height (0 = left/top edge, 1 = right/bottom edge). Eyes and mouth are horizontal and
the face is centred with room for the jaw and brows of the 68-point layout (Earp et al., 2021,
Sec. 3.1 choose their reference the same way)."""

# Eigen-decomposition of the RGB covariance of ImageNet pixels in [0, 1] (Krizhevsky et al., 2012).
_PCA_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
_PCA_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                        [-0.5808, -0.0045, -0.8140],
                        [-0.5836, -0.6948, 0.4203]])


def _check_landmarks(landmarks, name: str = "landmarks") -> np.ndarray:
    p = np.asarray(landmarks, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return p


# --- warping ----------------------------------------------------------------------------------

def warp(image, landmarks, matrix, size):
    """Warp an image and its landmarks with the same ``(2, 3)`` matrix: ``(image, landmarks)``."""
    points = _check_landmarks(landmarks)
    return warp_image(image, matrix, size), apply_affine(points, np.asarray(matrix, np.float64))


# --- crop and alignment -----------------------------------------------------------------------

def box_from_landmarks(landmarks) -> np.ndarray:
    """Tight box ``(x0, y0, x1, y1)`` around ``(N, 2)`` landmarks."""
    p = _check_landmarks(landmarks)
    return np.concatenate([p.min(0), p.max(0)])


def crop_matrix(box, size, margin: float = 0.2) -> np.ndarray:
    """Affine matrix taking a square around ``box`` to an output image of ``size``.

    The square has side ``max(w, h) * (1 + 2 * margin)`` and the box's centre. Its *edges* map
    onto the output's pixel edges (``-0.5`` and ``W' - 0.5``), the same rule as
    :func:`lmk.geometry.rescale_points`.

    Args:
        box: ``(x0, y0, x1, y1)`` in source pixels.
        size: output ``(H', W')``.
        margin: extra context on each side, as a fraction of the box side.
    Returns:
        ``(2, 3)`` float64, source -> output.
    """
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    h, w = check_size(size)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    corner = np.array([(x0 + x1 - side) / 2, (y0 + y1 - side) / 2])   # top-left edge of the square
    scale = np.array([w / side, h / side])
    # shift the square's edge to the pixel edge -0.5, then change resolution by ``scale``
    offset = rescale_points(-corner - 0.5, scale)
    return np.array([[scale[0], 0.0, offset[0]], [0.0, scale[1], offset[1]]])


def reference_points(size, reference=REFERENCE_FIVE_POINTS) -> np.ndarray:
    """The 5-point reference in output pixels: fraction ``u`` -> ``u * W' - 0.5``."""
    h, w = check_size(size)
    ref = np.asarray(reference, dtype=np.float64)
    return ref * np.array([w, h]) - 0.5


def alignment_matrix(five_points, size, reference=REFERENCE_FIVE_POINTS) -> np.ndarray:
    """Similarity taking 5 detected points onto the reference (Earp et al., 2021, Sec. 3.1).

    Least squares over rotation, uniform scale and translation (Umeyama), so a noisy detector
    point moves the face a little instead of shearing it.

    Args:
        five_points: ``(5, 2)`` left eye, right eye, nose tip, left and right mouth corner.
        size: output ``(H', W')``.
        reference: ``(5, 2)`` target positions as fractions of the output size.
    Returns:
        ``(2, 3)`` float64, source -> output. Predictions made on the aligned image return to
        the source with ``apply_affine(pred, invert_affine(M))``.
    """
    src = _check_landmarks(five_points, "five_points")
    if src.shape != (5, 2):
        raise ValueError(f"five_points must have shape (5, 2), got {src.shape}")
    return similarity_transform(src, reference_points(size, reference))


def align_five_points(image, landmarks, five_points, size, reference=REFERENCE_FIVE_POINTS):
    """Align a face by its 5 points: ``(aligned_image, aligned_landmarks, matrix)``."""
    m = alignment_matrix(five_points, size, reference)
    out_image, out_points = warp(image, landmarks, m, size)
    return out_image, out_points, m


# --- flips ------------------------------------------------------------------------------------

def flip_matrix(width: int) -> np.ndarray:
    """``(2, 3)`` mirror of an image ``width`` pixels wide: ``x -> W - 1 - x``.

    Pixel ``i`` goes to pixel ``W - 1 - i``, so in the pixel-centre convention the mirror axis is
    ``x = (W - 1) / 2``, not ``W / 2`` (that would shift every point by one pixel).
    """
    width = check_positive_int(width, "width")
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def flip_landmarks(landmarks, width: int, flip_perm) -> np.ndarray:
    """Mirror ``(..., N, 2)`` landmarks and re-index them so the left eye is again ``left_eye``.

    ``flipped[i] = mirror(landmarks[flip_perm[i]])``.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    perm = np.asarray(flip_perm)
    if p.shape[-2] != len(perm):
        raise ValueError(f"flip_perm has {len(perm)} entries for {p.shape[-2]} landmarks")
    out = p[..., perm, :].copy()
    out[..., 0] = check_positive_int(width, "width") - 1 - out[..., 0]
    return out


def flip_horizontal(image, landmarks, flip_perm):
    """Mirror an image and its landmarks (Earp et al., 2021, Sec. 5.1): ``(image, landmarks)``."""
    image = _check_image(image)
    points = _check_landmarks(landmarks)
    return np.ascontiguousarray(image[:, ::-1]), flip_landmarks(points, image.shape[1], flip_perm)


def transform_pose(pose, matrix) -> np.ndarray:
    """Head pose ``(yaw, pitch, roll)`` degrees of a face after an image transform ``matrix``.

    With the pose convention of :mod:`lmk.data.synth_face` (``R = R_roll R_pitch R_yaw``, roll
    clockwise in the image), a mirror negates yaw and roll, and an in-plane rotation by
    ``theta`` (clockwise, y down) adds ``theta`` to the roll; scale and shift change nothing.
    Exact for a weak-perspective camera, close for a face near the optical axis.

    Args:
        pose: ``(3,)`` yaw, pitch, roll in degrees.
        matrix: ``(2, 3)`` source -> output (a similarity, possibly mirrored).
    Returns:
        ``(3,)`` float64, roll wrapped to ``[-180, 180)``.
    """
    yaw, pitch, roll = np.asarray(pose, dtype=np.float64).reshape(3)
    lin = np.asarray(matrix, dtype=np.float64)[:, :2]
    if np.linalg.det(lin) < 0:                      # mirrored: undo the mirror, flip the pose
        yaw, roll = -yaw, -roll
        lin = lin @ np.diag([-1.0, 1.0])
    theta = np.degrees(np.arctan2(lin[1, 0], lin[0, 0]))
    return np.array([yaw, pitch, (roll + theta + 180.0) % 360.0 - 180.0])


# --- random geometry --------------------------------------------------------------------------

def random_affine_matrix(rng: np.random.Generator, size, max_rotation: float = 15.0,
                         max_scale: float = 0.05, max_shift: float = 5.0) -> np.ndarray:
    """A random rotation, scale and shift about the centre of an image of ``size``.

    Draws ``angle ~ U(-max_rotation, max_rotation)`` degrees, ``scale ~ U(1 - max_scale,
    1 + max_scale)`` and ``(dx, dy) ~ U(-max_shift, max_shift)`` pixels, in that order.
    Earp et al. (2021, Sec. 5.1) find rotation helps and scaling / repositioning after alignment
    hurt, hence the small defaults for the latter two.

    Returns:
        ``(2, 3)`` float64, image -> augmented image.
    """
    h, w = check_size(size)
    angle = rng.uniform(-max_rotation, max_rotation)
    scale = rng.uniform(1 - max_scale, 1 + max_scale)
    shift = rng.uniform(-max_shift, max_shift, size=2)
    m = rotation_matrix(angle, center=((w - 1) / 2, (h - 1) / 2), scale=scale)
    m[:, 2] += shift
    return m


def random_affine(image, landmarks, rng: np.random.Generator, **ranges):
    """Apply :func:`random_affine_matrix`: ``(image, landmarks, matrix)``, same size."""
    image = _check_image(image)
    m = random_affine_matrix(rng, image.shape[:2], **ranges)
    out_image, out_points = warp(image, landmarks, m, image.shape[:2])
    return out_image, out_points, m


# --- photometric ------------------------------------------------------------------------------

def color_jitter(image, rng: np.random.Generator, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2) -> np.ndarray:
    """Random brightness, contrast and saturation factors ``U(1 - a, 1 + a)``, in that order.

    Contrast scales about the mean grey level, saturation about each pixel's grey value.
    Results are rounded and saturated to the uint8 range.
    """
    image = _check_image(image)
    b, c, s = (rng.uniform(1 - a, 1 + a) for a in (brightness, contrast, saturation))
    x = image.astype(np.float32) * b
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32) if x.ndim == 3 else x
    x = (x - grey.mean()) * c + grey.mean()
    if x.ndim == 3:
        grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = (x - grey[..., None]) * s + grey[..., None]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def pca_lighting(image, rng: np.random.Generator, std: float = 0.1) -> np.ndarray:
    """AlexNet-style lighting noise (Krizhevsky et al., 2012): add ``V (alpha * lambda)`` to
    every RGB pixel, ``alpha ~ N(0, std^2)`` per eigenvector of the ImageNet colour covariance."""
    image = _check_image(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"pca_lighting needs an RGB image (H, W, 3), got {image.shape}")
    alpha = rng.normal(0.0, std, size=3)
    shift = 255.0 * (_PCA_EIGVEC @ (alpha * _PCA_EIGVAL))
    return np.clip(np.rint(image + shift.astype(np.float32)), 0, 255).astype(np.uint8)


def random_erasing(image, rng: np.random.Generator, p: float = 0.5,
                   area=(0.02, 0.2), aspect=(0.3, 3.3), attempts: int = 10) -> np.ndarray:
    """Random erasing (Zhong et al., 2020; used by Earp et al., 2021, Sec. 5.1).

    With probability ``p`` replace one rectangle covering a fraction ``U(area)`` of the image,
    with aspect ratio log-uniform in ``aspect``, by uniform noise. Landmarks are unchanged: the
    network must infer occluded points from context.
    """
    image = _check_image(image)
    out = image.copy()
    if rng.uniform() >= p:
        return out
    h, w = image.shape[:2]
    for _ in range(attempts):
        target = rng.uniform(*area) * h * w
        ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        eh, ew = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            y0, x0 = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
            patch = out[y0:y0 + eh, x0:x0 + ew]
            patch[...] = rng.integers(0, 256, size=patch.shape)
            return out
    return out


# --- tensors ----------------------------------------------------------------------------------

def normalize_image(image) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` RGB -> float32 ``(3, H, W)``: ``(x / 255 - IMAGE_MEAN) / IMAGE_STD``."""
    image = _check_image(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    x = (image.astype(np.float32) / 255.0 - IMAGE_MEAN) / IMAGE_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def denormalize_image(tensor) -> np.ndarray:
    """Inverse of :func:`normalize_image` for display: ``(3, H, W)`` -> uint8 ``(H, W, 3)``."""
    x = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"tensor must have shape (3, H, W), got {x.shape}")
    x = x.transpose(1, 2, 0) * IMAGE_STD + IMAGE_MEAN
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


# --- the training-time pipeline ---------------------------------------------------------------

@dataclass(frozen=True)
class Augment:
    """Augmentation settings for :class:`lmk.data.LandmarkDataset` (Earp et al., 2021, Sec. 5.1).

    The geometric part is returned as a matrix so the dataset composes it with the crop /
    alignment and resamples the source image *once*. Set a probability or range to 0 to switch
    that part off.
    """

    flip_prob: float = 0.5
    max_rotation: float = 15.0
    max_scale: float = 0.05
    max_shift: float = 5.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    lighting_std: float = 0.1
    erase_prob: float = 0.5

    def geometric(self, rng: np.random.Generator, size) -> tuple[np.ndarray, bool]:
        """``(matrix, flipped)``: flip (maybe), then a random rotation / scale / shift.

        The matrix acts on output-image coordinates; if ``flipped``, the landmarks must also be
        re-indexed with the layout's ``flip_perm``.
        """
        h, w = check_size(size)
        flipped = bool(rng.uniform() < self.flip_prob)
        m = flip_matrix(w) if flipped else np.array([[1.0, 0, 0], [0, 1.0, 0]])
        r = random_affine_matrix(rng, (h, w), self.max_rotation, self.max_scale, self.max_shift)
        return compose_affine(r, m), flipped

    def photometric(self, image, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter, PCA lighting noise, then random erasing."""
        image = color_jitter(image, rng, self.brightness, self.contrast, self.saturation)
        if self.lighting_std > 0:
            image = pca_lighting(image, rng, self.lighting_std)
        if self.erase_prob > 0:
            image = random_erasing(image, rng, self.erase_prob)
        return image
