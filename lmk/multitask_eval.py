"""Deprecated: moved to :mod:`lmk.lessons.n06_multitask` (the notebook helpers); this alias warns."""

import warnings

from .lessons.n06_multitask import *  # noqa: F401,F403
from .lessons.n06_multitask import __all__  # noqa: F401

warnings.warn("lmk.multitask_eval moved to lmk.lessons.n06_multitask", DeprecationWarning, stacklevel=2)
