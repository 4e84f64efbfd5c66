"""One landmark dataset over any source: synthetic faces or a real-format annotation set.

A *source* is anything indexable (``len`` and ``[i]``) whose items are dicts with ``image``
``(H, W, 3)`` uint8 RGB and ``landmarks`` ``(N, 2)``, and optionally ``box`` ``(x0, y0, x1, y1)``,
``five_points`` ``(5, 2)`` (a face detector's output) and ``pose`` ``(3,)`` degrees.
:class:`LandmarkDataset` turns an item into model input::

    source image --A--> input image (crop or 5-point alignment, Earp et al. 2021 Sec. 3.1)
                 --R--> augmented input (flip, rotation, scale, shift; Sec. 5.1)

and returns the composed ``transform = R o A`` so predictions go back to the source image with
:func:`to_original`. Each item's randomness comes from ``numpy.random.default_rng((seed, epoch,
index))``: DataLoader workers and reruns see the same augmentation for the same item and epoch.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .._backend import check_size, from_torch, to_torch
from ..geometry import apply_affine, compose_affine, invert_affine, rescale_points
from ..layouts import LAYOUTS, Layout
from .errors import AnnotationError
from .sources import DATA_NAMES, SAMPLE_ROOT, data_label, open_source  # noqa: F401 (re-exported)
from .transforms import (Augment, alignment_matrix, box_from_landmarks, crop_matrix,
                         normalize_image, transform_pose, warp_image)

MODES = ("crop", "align", "none")
CACHE_OVERSAMPLING = 2
"""A cached item keeps the input region at this many times the input resolution..."""
CACHE_CONTEXT = 0.25
"""...plus this fraction of the input size on each side, for rotations and shifts."""


class DatasetItemError(AnnotationError):
    """An :class:`AnnotationError` reworded to name a dataset item, built from its message.

    :func:`item_error` no longer needs it (every :mod:`lmk.data.errors` class now takes a message
    alone and keeps its own type); kept for code that raises or catches it by name. ``path``,
    ``line``, ``expected`` and ``found`` are those of the original error.
    """

    def __init__(self, message: str, path=None, line=None, expected=None, found=None):
        ValueError.__init__(self, message)
        self.path, self.line, self.expected, self.found = path, line, expected, found

    def __reduce__(self):
        return (type(self), (str(self), self.path, self.line, self.expected, self.found))


def item_error(exc: Exception, index: int, file: str | None = None) -> Exception:
    """``exc`` reworded as ``"item 7 (faces/007.pts): <message>"``, of the same type and with
    the same attributes (an :class:`AnnotationError`'s ``path``, ``line`` ...).

    The type survives a ``DataLoader`` worker, which re-raises ``type(exc)(message)``: every
    ``lmk`` error can be built from one message; any other type that cannot becomes a
    ``RuntimeError`` whose message starts with the type's name.
    """
    where = f"item {index}" + (f" ({file})" if file else "")
    message = f"{where}: {exc}"
    try:
        error = type(exc)(message)
    except Exception:                     # as torch does: a type that needs more than a message
        return RuntimeError(f"{type(exc).__name__}: {message}")
    error.__dict__.update({k: v for k, v in vars(exc).items() if k != "__notes__"})
    return error


def to_original(points, transform):
    """Map points predicted on the model input back to the source image.

    Args:
        points: ``(..., N, 2)`` in input pixels (numpy or torch).
        transform: ``(..., 2, 3)`` source -> input matrices, as returned in ``item["transform"]``
            (batched by the DataLoader to ``(B, 2, 3)``).
    Returns:
        ``(..., N, 2)`` in source pixels, same kind and dtype as ``points``. The inverse is
        computed in float64. (For a flipped training item the indices are also permuted; see
        ``item["flipped"]``.)
    """
    p, was_numpy = to_torch(points)
    m, _ = to_torch(transform)
    dtype = p.dtype if p.is_floating_point() else torch.float64
    out = apply_affine(p.double(), invert_affine(m.double().to(p.device)))
    return from_torch(out.to(dtype), was_numpy)


class LandmarkDataset(torch.utils.data.Dataset):
    """Crop or align, resize, augment and normalise landmark items for a model.

    Args:
        source: indexable items (see module docstring), e.g. ``lmk.data.SynthFaces`` or
            ``lmk.data.PtsFolder``.
        input_size: model input ``(H, W)`` or an int.
        mode: ``"crop"`` (square around ``box``, or around the landmarks if the item has none
            or ``use_box=False``, plus ``margin``), ``"align"`` (similarity onto
            :data:`~lmk.data.transforms.REFERENCE_FIVE_POINTS` from ``item["five_points"]``,
            or the layout's 5 points of the ground truth) or ``"none"`` (plain resize).
        margin: context around the box in ``"crop"`` mode, fraction of the box side.
        augment: an :class:`~lmk.data.transforms.Augment`, or ``None`` for none (evaluation).
        seed: base seed of the per-item generators.
        layout: landmark layout (flip permutation, 5 points); by default guessed from N.
        use_box: use the item's ``box`` in crop mode when present.
        normalize: return a normalised float image; else the uint8 image as a ``(3, H, W)``
            float32 tensor in [0, 255].
        cache: keep each item's source image, reduced, after its first use (see
            :meth:`fill_cache`), so that later epochs do not decode full-size photos again.
            The reduced image is the crop / alignment region plus :data:`CACHE_CONTEXT` of the
            input size on each side, at :data:`CACHE_OVERSAMPLING` times the input
            resolution (about ``(2 * 1.5)**2 = 9`` times an input image in memory). Landmarks
            and transforms are exactly those of the uncached path; images differ only by the
            second resampling (a grey level or so), and augmentations that reach beyond the
            context show the border instead of the photo.
    Items:
        ``image`` float32 ``(3, H, W)``; ``landmarks`` float32 ``(N, 2)`` in input pixels;
        ``transform`` float32 ``(2, 3)`` source -> input; ``original_landmarks`` float32
        ``(N, 2)``; ``index`` int; ``flipped`` bool; and when the source has them: ``pose``
        ``(3,)`` yaw, pitch, roll of the face *as seen in the input* (a flip negates yaw and
        roll, a rotation adds to the roll: :func:`~lmk.data.transforms.transform_pose`),
        ``box`` ``(4,)`` in *source* pixels (for NME normalisation there) and ``occluded``
        ``(N,)`` bool.
    Errors:
        Any error raised while reading item ``i`` is re-raised with the same type (see
        :func:`item_error`) and a message that starts ``"item i (file): "``.
    """

    def __init__(self, source, input_size=128, *, mode: str = "crop", margin: float = 0.2,
                 augment: Augment | None = None, seed: int = 0, layout: Layout | None = None,
                 use_box: bool = True, normalize: bool = True, cache: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.source = source
        self.input_size = check_size(input_size, "input_size")
        self.mode, self.margin, self.augment = mode, margin, augment
        self.seed, self.epoch = int(seed), 0
        self.layout, self.use_box, self.normalize = layout, use_box, normalize
        self.cache = {} if cache else None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def skipped(self) -> list:
        """``(file, reason)`` for every file the source skipped (``on_error="skip"``)."""
        return list(getattr(self.source, "skipped", []))

    def file(self, index: int) -> str | None:
        """The file behind item ``index`` (for messages), when the source knows it."""
        files = getattr(self.source, "file", None)
        return files(index) if callable(files) else None

    def fill_cache(self) -> None:
        """Read and reduce every item now (``cache=True``). Call it before handing the dataset
        to ``DataLoader`` workers: what a worker caches is lost when the worker exits."""
        if self.cache is None:
            raise ValueError("fill_cache needs a dataset made with cache=True")
        for index in range(len(self)):
            self._guarded(self._load, index)

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation epoch (call once per epoch; workers pick it up on restart)."""
        self.epoch = int(epoch)

    def _layout(self, n: int) -> Layout:
        if self.layout is not None:
            if self.layout.num_points != n:
                raise ValueError(f"layout {self.layout.name} has {self.layout.num_points} points, "
                                 f"items have {n}")
            return self.layout
        for layout in LAYOUTS.values():
            if layout.num_points == n:
                return layout
        raise ValueError(f"no known layout has {n} points; pass layout=")

    def base_matrix(self, item) -> np.ndarray:
        """``(2, 3)`` source -> input matrix of the crop / alignment step (no augmentation)."""
        points = np.asarray(item["landmarks"], dtype=np.float64)
        if self.mode == "align":
            five = item.get("five_points")
            five = self._layout(len(points)).five_points(points) if five is None else five
            return alignment_matrix(np.asarray(five, np.float64), self.input_size)
        if self.mode == "crop":
            box = item.get("box") if self.use_box else None
            box = box_from_landmarks(points) if box is None else np.asarray(box, np.float64)
            return crop_matrix(box, self.input_size, self.margin)
        h, w = np.asarray(item["image"]).shape[:2]
        scale = np.array([self.input_size[1] / w, self.input_size[0] / h])
        offset = rescale_points(np.zeros(2), scale)    # x -> x * s + offset
        return np.array([[scale[0], 0.0, offset[0]], [0.0, scale[1], offset[1]]])

    def _guarded(self, read, index: int):
        try:
            return read(index)
        except Exception as exc:
            try:
                file = self.file(index)
            except Exception:
                file = None
            raise item_error(exc, index, file) from exc

    def _load(self, index: int) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(item, image, base, to_image)``: the source item, the image to warp, the crop /
        alignment matrix and the source -> ``image`` matrix (``None``: the source image)."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        item = self.source[index]
        image = np.asarray(item["image"])
        base = self.base_matrix(item)
        if self.cache is None:
            return item, image, base, None
        h, w = self.input_size
        pad = np.array([math.ceil(CACHE_CONTEXT * w), math.ceil(CACHE_CONTEXT * h)])
        k = CACHE_OVERSAMPLING
        offset = rescale_points(pad.astype(np.float64), k)   # input pixel x -> (x + pad) at k x
        zoom = np.array([[k, 0.0, offset[0]], [0.0, k, offset[1]]])
        to_cache = compose_affine(zoom, base)
        reduced = warp_image(image, to_cache, (k * (h + 2 * pad[1]), k * (w + 2 * pad[0])))
        item = {key: value for key, value in item.items() if key != "image"}
        self.cache[index] = (item, reduced, base, to_cache)
        return self.cache[index]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return self._guarded(self._item, int(index))

    def _item(self, index: int) -> dict:
        item, image, matrix, to_image = self._load(index)
        points = np.asarray(item["landmarks"], dtype=np.float64)
        flipped = False
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.augment is not None:
            aug, flipped = self.augment.geometric(rng, self.input_size)
            matrix = compose_affine(aug, matrix)
        warp = matrix if to_image is None else compose_affine(matrix, invert_affine(to_image))
        out_image = warp_image(image, warp, self.input_size)
        out_points = apply_affine(points, matrix)
        occluded = item.get("occluded")
        if flipped:
            perm = self._layout(len(points)).flip_perm
            out_points = out_points[perm]
            occluded = None if occluded is None else np.asarray(occluded)[perm]
        if self.augment is not None:
            out_image = self.augment.photometric(out_image, rng)
        if self.normalize:
            tensor = normalize_image(out_image)
        else:
            tensor = torch.from_numpy(np.ascontiguousarray(out_image.transpose(2, 0, 1))).float()
        out = {
            "image": tensor,
            "landmarks": torch.from_numpy(out_points.astype(np.float32)),
            "transform": torch.from_numpy(matrix.astype(np.float32)),
            "original_landmarks": torch.from_numpy(points.astype(np.float32)),
            "index": index,
            "flipped": flipped,
        }
        if item.get("pose") is not None:
            pose = transform_pose(item["pose"], matrix)
            out["pose"] = torch.from_numpy(pose.astype(np.float32))
        if item.get("box") is not None:
            out["box"] = torch.from_numpy(np.asarray(item["box"], np.float32).reshape(4))
        if occluded is not None:
            out["occluded"] = torch.as_tensor(np.asarray(occluded, dtype=bool))
        return out


def open_dataset(name: str = "synthetic", root=None, split: str = "train", *,
                 n: int | None = None, size: int = 128, seed: int = 0,
                 difficulty: str = "default", on_error: str = "raise",
                 verify_images: bool = False, **dataset_kwargs) -> LandmarkDataset:
    """A :class:`LandmarkDataset` over :func:`open_source` (``name`` is a notebook's ``DATA``).

    The source arguments are those of :func:`open_source`; ``dataset_kwargs`` go to
    :class:`LandmarkDataset` (``input_size``, ``mode``, ``margin``, ``augment``, ``cache``,
    ...). With ``on_error="skip"`` bad files are left out with a warning each and listed in
    ``dataset.skipped``; ``len(dataset)`` is the number of images really used.
    """
    source = open_source(name, root, split, n=n, size=size, seed=seed, difficulty=difficulty,
                         on_error=on_error, verify_images=verify_images)
    dataset_kwargs.setdefault("seed", seed)
    dataset = LandmarkDataset(source, **dataset_kwargs)
    if dataset.skipped:
        warnings.warn(f"{name}/{split}: skipped {len(dataset.skipped)} bad sample(s); "
                      f"see dataset.skipped", stacklevel=2)
    return dataset
