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

import warnings
from pathlib import Path

import numpy as np
import torch

from .._backend import from_torch, to_torch
from ..geometry import apply_affine, compose_affine, invert_affine, rescale_points
from ..layouts import LAYOUTS, Layout
from .transforms import (Augment, alignment_matrix, box_from_landmarks, crop_matrix,
                         normalize_image, transform_pose, warp_image)

MODES = ("crop", "align", "none")
DATA_NAMES = ("synthetic", "sample", "300w", "wflw", "jd106")
SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "data" / "sample"
"""The committed 300W-format sample set (``data/sample``)."""


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
    Items:
        ``image`` float32 ``(3, H, W)``; ``landmarks`` float32 ``(N, 2)`` in input pixels;
        ``transform`` float32 ``(2, 3)`` source -> input; ``original_landmarks`` float32
        ``(N, 2)``; ``index`` int; ``flipped`` bool; and when the source has them: ``pose``
        ``(3,)`` yaw, pitch, roll of the face *as seen in the input* (a flip negates yaw and
        roll, a rotation adds to the roll: :func:`~lmk.data.transforms.transform_pose`),
        ``box`` ``(4,)`` in *source* pixels (for NME normalisation there) and ``occluded``
        ``(N,)`` bool.
    """

    def __init__(self, source, input_size=128, *, mode: str = "crop", margin: float = 0.2,
                 augment: Augment | None = None, seed: int = 0, layout: Layout | None = None,
                 use_box: bool = True, normalize: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.source = source
        self.input_size = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
        self.mode, self.margin, self.augment = mode, margin, augment
        self.seed, self.epoch = int(seed), 0
        self.layout, self.use_box, self.normalize = layout, use_box, normalize

    def __len__(self) -> int:
        return len(self.source)

    @property
    def skipped(self) -> list:
        """``(file, reason)`` for every sample the source skipped (``on_error="skip"``)."""
        return list(getattr(self.source, "skipped", []))

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

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index)
        item = self.source[index]
        image = np.asarray(item["image"])
        points = np.asarray(item["landmarks"], dtype=np.float64)
        matrix = self.base_matrix(item)
        flipped = False
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.augment is not None:
            aug, flipped = self.augment.geometric(rng, self.input_size)
            matrix = compose_affine(aug, matrix)
        out_image = warp_image(image, matrix, self.input_size)
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


def _split_seed(seed: int, split: str) -> int:
    offsets = {"train": 0, "val": 1_000_003, "test": 2_000_003}
    if split not in offsets:
        raise ValueError(f"split for synthetic data must be one of {tuple(offsets)}, got {split!r}")
    return seed + offsets[split]


def open_source(name: str, root=None, split: str = "train", *, n: int = 1000, size: int = 128,
                seed: int = 0, difficulty: str = "default", on_error: str = "raise"):
    """The raw source behind a notebook's ``DATA`` / ``DATA_ROOT`` parameters.

    Args:
        name: ``"synthetic"`` (``SynthFaces(n, size, seed, difficulty)``, a distinct seed per
            split), ``"sample"`` (the committed 300W-format set, ``root`` defaults to
            ``data/sample``), ``"300w"``, ``"wflw"`` or ``"jd106"`` (``root`` = the data set
            folder described in ``data/README.md``).
        split: ``"train"`` / ``"test"`` (and the data set's named subsets, see the readers).
    """
    from . import sources

    if name == "synthetic":
        from .synth import SynthFaces

        return SynthFaces(n, size=size, seed=_split_seed(seed, split), difficulty=difficulty)
    if name == "sample":
        return sources.PtsFolder(SAMPLE_ROOT if root is None else root, on_error=on_error)
    if root is None:
        raise ValueError(f"DATA={name!r} needs DATA_ROOT: the folder holding the data set "
                         f"(see data/README.md)")
    if name == "300w":
        return sources.open_300w(root, split, on_error=on_error)
    if name == "wflw":
        return sources.open_wflw(root, split, on_error=on_error)
    if name == "jd106":
        return sources.open_jd106(root, split, on_error=on_error)
    raise ValueError(f"unknown data set {name!r}; expected one of {DATA_NAMES}")


def open_dataset(name: str = "synthetic", root=None, split: str = "train", *, n: int = 1000,
                 size: int = 128, seed: int = 0, difficulty: str = "default",
                 on_error: str = "raise", **dataset_kwargs) -> LandmarkDataset:
    """A :class:`LandmarkDataset` over :func:`open_source` (``name`` is a notebook's ``DATA``).

    ``size`` is the synthetic image size; ``dataset_kwargs`` go to :class:`LandmarkDataset`
    (``input_size``, ``mode``, ``margin``, ``augment``, ...). With ``on_error="skip"`` bad
    files are left out with a warning each and listed in ``dataset.skipped``.
    """
    source = open_source(name, root, split, n=n, size=size, seed=seed, difficulty=difficulty,
                         on_error=on_error)
    dataset_kwargs.setdefault("seed", seed)
    dataset = LandmarkDataset(source, **dataset_kwargs)
    if dataset.skipped:
        warnings.warn(f"{name}/{split}: skipped {len(dataset.skipped)} bad sample(s); "
                      f"see dataset.skipped", stacklevel=2)
    return dataset
