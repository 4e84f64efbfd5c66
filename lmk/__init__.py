"""lmk: sub-pixel face landmarks, a small PyTorch library behind the notebook course.

Conventions (see README): landmarks are ``(..., N, 2)`` arrays of ``(x, y)`` pixel coordinates
with pixel centres at integers; codecs and metrics take numpy or torch and return the same kind.

Importing ``lmk`` before torch makes torch's OpenMP threads wait passively (``OMP_WAIT_POLICY=
PASSIVE``, unless the variable is already set): an idle thread then sleeps instead of spinning,
so two multi-threaded jobs on one machine do not slow each other down (lmk's DARK decoder, 6x
faster than MMPose's alone, fell to 0.4x of it beside another two-thread job with active waits). The OpenMP runtime
reads the variable once, when torch is first imported; a program that imports torch first
sets it itself: ``OMP_WAIT_POLICY=PASSIVE python ...``.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
