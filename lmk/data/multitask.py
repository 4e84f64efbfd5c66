"""Data for ATPN's three training stages (Xia et al. 2022, Secs. 3.4 and 4.2): faces and negatives.

Xia train the alignment branch on faces with landmarks (stage 1), the tracking branch on faces
and on crops without a face, ten negatives (IoU < 0.3 with the face) per positive (stage 2), and
the pose branch on faces with head pose (stage 3). :class:`MultitaskDataset` holds the faces of
a :class:`~lmk.data.LandmarkDataset` followed by negatives (e.g. :class:`~lmk.data.SynthNegatives`)
and gives every item the same keys and shapes, so the default ``DataLoader`` collate (and
``lmk.train``'s) stacks any mix of them::

    image          (3, H, W) float32   normalised as LandmarkDataset's images
    landmarks      (N, 2) float32      input pixels; zeros for a negative
    has_landmarks  () bool             False for a negative: the mask, never NaN
    face           () float32          1 face, 0 background: the label y of Xia's Eq. 5
    pose           (3,) float32        degrees yaw, pitch, roll (only when the faces have pose;
                                       zeros for a negative)
    index          int                 the item's index in this dataset

A sample without landmarks is marked by ``has_landmarks`` (read from a batch with
:func:`landmark_mask`), not by NaN coordinates: losses and metrics select the masked-in samples,
and a NaN never enters an arithmetic expression whose gradient could carry it. The same mask
covers the pose, which only faces have.

:func:`synth_multitask` builds the data set of one stage from the synthetic sources.
"""

from __future__ import annotations

import numpy as np
import torch

from .._backend import check_positive_int
from .dataset import LandmarkDataset
from .synth import SynthFaces, SynthNegatives
from .transforms import Augment, normalize_image, warp_image

__all__ = ["HAS_LANDMARKS", "landmark_mask", "MultitaskDataset", "synth_multitask",
           "XIA_NEGATIVES_PER_FACE"]

HAS_LANDMARKS = "has_landmarks"
"""The batch key of the ``(B,)`` bool mask of samples that carry landmarks (and pose)."""

XIA_NEGATIVES_PER_FACE = 10
"""Xia et al. (2022), Sec. 4.2: ten negatives (IoU < 0.3) are generated per positive sample."""

NEGATIVES_SEED_OFFSET = 1_000_003
"""The negatives of ``synth_multitask(seed=s)`` are ``SynthNegatives(seed=s + this)``."""


def landmark_mask(batch: dict) -> torch.Tensor:
    """``(B,)`` bool: the samples of a collated batch that carry landmarks (and pose).

    ``batch["has_landmarks"]`` when present (a bool tensor of shape ``(B,)``), else every sample
    (data sets of faces only, like ``LandmarkDataset``, need no mask).

    Raises:
        KeyError: the batch has neither ``has_landmarks`` nor ``landmarks``.
        ValueError: the mask is not a ``(B,)`` bool tensor.
    """
    if "landmarks" not in batch:
        raise KeyError(f"the batch has no 'landmarks' (B, N, 2); its keys are {sorted(batch)}")
    size = batch["landmarks"].shape[0]
    mask = batch.get(HAS_LANDMARKS)
    if mask is None:
        return torch.ones(size, dtype=torch.bool, device=batch["landmarks"].device)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (size,):
        got = (f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor)
               else type(mask).__name__)
        raise ValueError(f"batch['{HAS_LANDMARKS}'] must be a bool tensor of shape (B,) = ({size},), "
                         f"got {got} (items hold a 0-d bool tensor, which collates to one)")
    return mask


class MultitaskDataset(torch.utils.data.Dataset):
    """Faces with landmarks, then negatives without: items with the keys of the module docstring.

    Items ``0 .. len(faces) - 1`` are ``faces[i]`` (``face = 1``, ``has_landmarks = True``);
    the rest are ``negatives[i - len(faces)]`` (``has_landmarks = False``, ``face`` from the
    item, 0 when it has none). When the faces have an ``augment``, a negative gets the same
    kind of augmentation with the generator ``(faces.seed, epoch, index)``: the geometric part
    warped with the same resampling (and the same black border) as a face crop, then the
    photometric part, so that only the content tells a face from a negative.

    Args:
        faces: a :class:`~lmk.data.LandmarkDataset` (normalised images).
        negatives: None, or indexable items with ``image`` ``(H, W, 3)`` uint8 at the faces'
            input size (``SynthNegatives(n, size=H)``) and optionally ``face`` (0 or 1).
    Raises:
        ValueError: ``faces`` is not a normalising ``LandmarkDataset``, or a negative image has
            another size than the faces' input.
    """

    def __init__(self, faces: LandmarkDataset, negatives=None):
        if not isinstance(faces, LandmarkDataset):
            raise ValueError(f"faces must be an lmk.data.LandmarkDataset, got {type(faces).__name__}")
        if not faces.normalize:
            raise ValueError("faces must give normalised images (LandmarkDataset(normalize=True)), "
                             "as negatives are normalised the same way")
        if len(faces) == 0:
            raise ValueError("faces is empty")
        self.faces, self.negatives = faces, negatives
        first = faces[0]
        self.num_points = int(first["landmarks"].shape[0])
        self.has_pose = "pose" in first
        if negatives is not None and len(negatives) > 0:
            shape = np.asarray(negatives[0]["image"]).shape
            if shape != (*faces.input_size, 3):
                raise ValueError(f"negative images must be (H, W, 3) = ({faces.input_size[0]}, "
                                 f"{faces.input_size[1]}, 3) like the faces' input, got {shape}")

    def __len__(self) -> int:
        return len(self.faces) + (0 if self.negatives is None else len(self.negatives))

    @property
    def num_faces(self) -> int:
        """Items ``0 .. num_faces - 1`` are faces, the rest negatives."""
        return len(self.faces)

    def set_epoch(self, epoch: int) -> None:
        """The augmentation epoch of faces and negatives alike (``lmk.train.fit`` calls it)."""
        self.faces.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index)
        if index < self.num_faces:
            item = self.faces[index]
            out = {"image": item["image"], "landmarks": item["landmarks"],
                   HAS_LANDMARKS: torch.tensor(True), "face": torch.tensor(1.0)}
            if self.has_pose:
                out["pose"] = item["pose"]
        else:
            item = self.negatives[index - self.num_faces]
            out = {"image": self._negative_image(item["image"], index),
                   "landmarks": torch.zeros(self.num_points, 2),
                   HAS_LANDMARKS: torch.tensor(False),
                   "face": torch.tensor(float(item.get("face", 0)))}
            if self.has_pose:
                out["pose"] = torch.zeros(3)
        out["index"] = index
        return out

    def _negative_image(self, image, index: int) -> torch.Tensor:
        image = np.asarray(image)
        augment: Augment | None = self.faces.augment
        if augment is not None:
            rng = np.random.default_rng((self.faces.seed, self.faces.epoch, index))
            matrix, _ = augment.geometric(rng, self.faces.input_size)   # a flip needs no permutation
            image = warp_image(image, matrix, self.faces.input_size)
            image = augment.photometric(image, rng)
        return normalize_image(image)


def synth_multitask(stage: int, n: int, *, input_size: int = 112, size: int = 128, seed: int = 0,
                    difficulty="default", negatives_per_face: float = XIA_NEGATIVES_PER_FACE,
                    augment: Augment | None = None, margin: float = 0.2) -> MultitaskDataset:
    """The synthetic data set of one ATPN training stage (Xia et al. 2022, Secs. 3.4, 4.2).

    Stage 1 (backbone and alignment branch) and stage 3 (pose branch): ``n`` faces
    (``SynthFaces(n, size, seed, difficulty)`` cropped to ``input_size`` by ``LandmarkDataset``),
    with landmarks and pose. Stage 2 (tracking branch): the same faces followed by
    ``round(n * negatives_per_face)`` ``SynthNegatives`` at the input size (face-free
    backgrounds and crops of face scenes with IoU < 0.3; their seed is
    ``seed + NEGATIVES_SEED_OFFSET``).

    Args:
        stage: 1, 2 or 3.
        n: number of faces.
        input_size: the model input side (ATPN: 112); square.
        size: side of the synthetic source images the faces are cropped from.
        seed, difficulty: of the synthetic sources (and of ``LandmarkDataset``'s augmentation).
        negatives_per_face: stage 2's negatives per face (Xia: 10).
        augment: ``Augment`` for training, None for evaluation.
        margin: ``LandmarkDataset``'s crop margin around the face box.
    """
    if stage not in (1, 2, 3):
        raise ValueError(f"stage must be 1, 2 or 3 (Xia et al. 2022, Sec. 3.4), got {stage!r}")
    n = check_positive_int(n, "n")
    input_size = check_positive_int(input_size, "input_size")
    if isinstance(negatives_per_face, bool) or not isinstance(negatives_per_face, (int, float)) \
            or not 0 <= negatives_per_face < float("inf"):
        raise ValueError(f"negatives_per_face must be a number >= 0, got {negatives_per_face!r}")
    faces = LandmarkDataset(SynthFaces(n, size=size, seed=seed, difficulty=difficulty), input_size,
                            margin=margin, augment=augment, seed=seed)
    negatives = None
    count = round(n * negatives_per_face)
    if stage == 2 and count > 0:
        negatives = SynthNegatives(count, size=input_size, seed=seed + NEGATIVES_SEED_OFFSET,
                                   difficulty=difficulty)
    return MultitaskDataset(faces, negatives)
