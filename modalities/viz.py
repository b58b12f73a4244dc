"""Moved to :mod:`modalities.eval.viz`; this name stays so notebooks that import ``modalities.viz`` keep working."""

from .eval.viz import *  # noqa: F403
from .eval.viz import __all__  # noqa: F401
