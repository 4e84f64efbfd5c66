"""Deprecated: moved to :mod:`lmk.lessons.n05_cascade` (the notebook helpers); this alias warns."""

import warnings

from .lessons.n05_cascade import *  # noqa: F401,F403
from .lessons.n05_cascade import __all__  # noqa: F401

warnings.warn("lmk.cascade_eval moved to lmk.lessons.n05_cascade", DeprecationWarning, stacklevel=2)
