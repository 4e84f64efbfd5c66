"""Landmark layouts: which index is which point, and how the set mirrors.

"Left" and "right" are in *image* terms throughout: on a frontal face, ``left_eye`` is the eye
with the smaller x. (In iBUG's 68-point annotation, points 36-41 are that eye: the subject's
right eye.) Flipping an image horizontally turns the image-left eye into the image-right eye,
so a flipped landmark array must be re-indexed with ``flip_perm``:
``flipped[i] = mirror(original[flip_perm[i]])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ._backend import from_torch, to_torch


@dataclass(frozen=True)
class Layout:
    """A landmark layout.

    Attributes:
        name: short name (``"ibug68"``, ...).
        num_points: N.
        flip_perm: ``(N,)`` int array; an involution mapping each point to its mirror twin.
        groups: named index arrays (``"jaw"``, ``"left_eye"``, ``"right_eye"``, ...).
        outer_eye_corners: indices of the outer eye corners (inter-ocular distance).
        five_point_groups: five index tuples whose means are the 5-point subset (left eye
            centre, right eye centre, nose tip, left mouth corner, right mouth corner).
        pupil_indices: explicit pupil landmarks if the layout has them, else ``None`` and the
            pupils are the means of the eye groups.
    """

    name: str
    num_points: int
    flip_perm: np.ndarray
    groups: dict = field(default_factory=dict)
    outer_eye_corners: tuple = (0, 1)
    five_point_groups: tuple = ()
    pupil_indices: tuple | None = None

    def __post_init__(self):
        perm = np.asarray(self.flip_perm)
        if sorted(perm.tolist()) != list(range(self.num_points)):
            raise ValueError(f"layout {self.name}: flip_perm is not a permutation of 0..N-1")
        if not np.array_equal(perm[perm], np.arange(self.num_points)):
            raise ValueError(f"layout {self.name}: flip_perm is not an involution")

    def _check(self, p):
        if p.ndim < 2 or p.shape[-2:] != (self.num_points, 2):
            raise ValueError(f"landmarks for layout {self.name} must have shape "
                             f"(..., {self.num_points}, 2), got {tuple(p.shape)}")

    def _means(self, landmarks, index_groups):
        p, was_numpy = to_torch(landmarks)
        self._check(p)
        p = p if p.is_floating_point() else p.double()
        out = [p[..., list(idx), :].mean(-2) for idx in index_groups]
        return from_torch(torch.stack(out, dim=-2), was_numpy)

    def pupils(self, landmarks):
        """``(..., 2, 2)``: left and right pupil centres (explicit points or eye-group means)."""
        if self.pupil_indices is not None:
            return self._means(landmarks, [(i,) for i in self.pupil_indices])
        return self._means(landmarks, [self.groups["left_eye"], self.groups["right_eye"]])

    def five_points(self, landmarks):
        """``(..., 5, 2)``: left eye, right eye, nose tip, left and right mouth corner."""
        return self._means(landmarks, self.five_point_groups)


def _perm_from_pairs(n: int, pairs) -> np.ndarray:
    perm = np.arange(n)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def _mirror_run(first: range, second: range):
    """Pair a run with another run read backwards (jaw 0..16 with 16..0, and so on)."""
    return list(zip(first, reversed(second)))


_PAIRS_68 = (
    _mirror_run(range(0, 8), range(9, 17))          # jaw, 8 is the chin
    + _mirror_run(range(17, 22), range(22, 27))     # brows
    + _mirror_run(range(31, 33), range(34, 36))     # nostrils, 33 is the centre
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]            # outer lip
    + [(60, 64), (61, 63), (65, 67)]                                # inner lip
)

LAYOUT_68 = Layout(
    name="ibug68",
    num_points=68,
    flip_perm=_perm_from_pairs(68, _PAIRS_68),
    groups={
        "jaw": np.arange(0, 17),
        "left_brow": np.arange(17, 22),
        "right_brow": np.arange(22, 27),
        "nose_bridge": np.arange(27, 31),
        "nostrils": np.arange(31, 36),
        "left_eye": np.arange(36, 42),
        "right_eye": np.arange(42, 48),
        "outer_lip": np.arange(48, 60),
        "inner_lip": np.arange(60, 68),
    },
    outer_eye_corners=(36, 45),
    five_point_groups=(tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)),
)
"""The 68-point iBUG / 300W layout (zero-based indices)."""

# Names of groups that mirror onto each other under a horizontal flip.
MIRROR_GROUPS = {"left_brow": "right_brow", "left_eye": "right_eye"}


# ---------------------------------------------------------------------------------------------
# WFLW (98 points) and JD-landmark (106 points): the layouts of the real-data loaders.
# Pairs were read off each data set's annotation figure; the tests check that the permutation
# is an involution and maps every ``left_*`` group onto its ``right_*`` twin.
# ---------------------------------------------------------------------------------------------

_PAIRS_98 = (
    _mirror_run(range(0, 16), range(17, 33))        # contour, 16 is the chin
    + _mirror_run(range(33, 38), range(42, 47))     # upper brows (outer -> inner)
    + _mirror_run(range(38, 42), range(47, 51))     # lower brows
    + _mirror_run(range(55, 57), range(58, 60))     # nostrils, 57 is the centre
    + _mirror_run(range(60, 65), range(68, 73))     # eyes: corner, upper lid, corner
    + _mirror_run(range(65, 68), range(73, 76))     # eyes: lower lid
    + _mirror_run(range(76, 79), range(80, 83))     # outer upper lip, 79 is the centre
    + _mirror_run(range(83, 85), range(86, 88))     # outer lower lip, 85 is the centre
    + [(88, 92), (89, 91), (93, 95)]                # inner lip, 90 and 94 are centres
    + [(96, 97)]                                    # pupils
)

LAYOUT_98 = Layout(
    name="wflw98",
    num_points=98,
    flip_perm=_perm_from_pairs(98, _PAIRS_98),
    groups={
        "jaw": np.arange(0, 33),
        "left_brow": np.arange(33, 42),
        "right_brow": np.arange(42, 51),
        "nose_bridge": np.arange(51, 55),
        "nostrils": np.arange(55, 60),
        "left_eye": np.arange(60, 68),
        "right_eye": np.arange(68, 76),
        "outer_lip": np.arange(76, 88),
        "inner_lip": np.arange(88, 96),
        "left_pupil": np.array([96]),
        "right_pupil": np.array([97]),
    },
    outer_eye_corners=(60, 72),
    five_point_groups=((96,), (97,), (54,), (76,), (82,)),
    pupil_indices=(96, 97),
)
"""The 98-point WFLW layout (Wu et al., 2018), zero-based: 33 contour points, brows with
upper and lower edges, 8 points per eye and explicit pupils (96, 97)."""

_PAIRS_106 = (
    _mirror_run(range(0, 16), range(17, 33))        # contour, 16 is the chin
    + _mirror_run(range(33, 38), range(42, 47))     # upper brows
    + _mirror_run(range(38, 42), range(47, 51))     # lower brows
    + _mirror_run(range(55, 60), range(61, 66))     # nose wings and nostrils, 60 is the centre
    + list(zip(range(66, 71), range(79, 74, -1)))   # eyes: outer corner .. inner corner
    + list(zip(range(71, 74), range(82, 79, -1)))   # eyes: lower lid
    + [(74, 83)]                                    # eye centres
    + _mirror_run(range(84, 87), range(88, 91))     # outer upper lip, 87 is the centre
    + _mirror_run(range(91, 93), range(94, 96))     # outer lower lip, 93 is the centre
    + _mirror_run(range(96, 98), range(99, 101))    # inner upper lip, 98 is the centre
    + [(101, 103), (104, 105)]                      # inner lower lip (102 centre), pupils
)

LAYOUT_106 = Layout(
    name="jd106",
    num_points=106,
    flip_perm=_perm_from_pairs(106, _PAIRS_106),
    groups={
        "jaw": np.arange(0, 33),
        "left_brow": np.arange(33, 42),
        "right_brow": np.arange(42, 51),
        "nose_bridge": np.arange(51, 55),
        "nostrils": np.arange(55, 66),
        "left_eye": np.arange(66, 74),
        "right_eye": np.arange(75, 83),
        "left_eye_centre": np.array([74]),
        "right_eye_centre": np.array([83]),
        "outer_lip": np.arange(84, 96),
        "inner_lip": np.arange(96, 104),
        "left_pupil": np.array([104]),
        "right_pupil": np.array([105]),
    },
    outer_eye_corners=(66, 79),
    five_point_groups=((104,), (105,), (54,), (84,), (90,)),
    pupil_indices=(104, 105),
)
"""The 106-point JD-landmark layout (Liu et al., 2019; also used by LaPa), zero-based: 33
contour points, brows with upper and lower edges, 11 nose-base points, 8 points and a centre per
eye, explicit pupils (104, 105)."""

LAYOUTS = {"ibug68": LAYOUT_68, "wflw98": LAYOUT_98, "jd106": LAYOUT_106}
"""Every layout by name."""


def layout_for(num_points: int) -> Layout:
    """The layout with ``num_points`` landmarks (68, 98 or 106); an error names the count."""
    for layout in LAYOUTS.values():
        if layout.num_points == num_points:
            return layout
    raise ValueError(f"no known landmark layout has {num_points} points; known: "
                     f"{', '.join(f'{n} ({l.num_points})' for n, l in LAYOUTS.items())}")


_NAMED_68 = {8: "chin", 30: "nose tip", 36: "left eye outer corner", 39: "left eye inner corner",
             42: "right eye inner corner", 45: "right eye outer corner", 48: "left mouth corner",
             54: "right mouth corner"}
"""Points of the 68-point layout with a name of their own (image left and right)."""


def point_names(layout: Layout) -> tuple:
    """A short name per landmark: its index and group, e.g. ``"37 left eye 2/6"``, or for the
    points that have one (68-point layout) their own name, e.g. ``"36 left eye outer corner"``."""
    names = [str(i) for i in range(layout.num_points)]
    for group, idx in layout.groups.items():
        words = group.replace("_", " ")
        for k, i in enumerate(np.asarray(idx).tolist()):
            names[i] = f"{i} {words}" + (f" {k + 1}/{len(idx)}" if len(idx) > 1 else "")
    if layout.num_points == 68:
        for i, name in _NAMED_68.items():
            names[i] = f"{i} {name}"
    return tuple(names)
