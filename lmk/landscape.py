"""Deprecated: moved to :mod:`lmk.lessons.n04_landscape` (the notebook helpers); this alias warns."""

import warnings

from .lessons.n04_landscape import *  # noqa: F401,F403
from .lessons.n04_landscape import __all__  # noqa: F401

warnings.warn("lmk.landscape moved to lmk.lessons.n04_landscape", DeprecationWarning, stacklevel=2)
