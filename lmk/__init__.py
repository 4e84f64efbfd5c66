"""lmk: sub-pixel face landmarks, a small PyTorch library behind the notebook course.

Conventions (see README): landmarks are ``(..., N, 2)`` arrays of ``(x, y)`` pixel coordinates
with pixel centres at integers; codecs and metrics take numpy or torch and return the same kind.
"""

__version__ = "0.1.0"
