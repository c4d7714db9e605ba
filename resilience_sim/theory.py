"""``resilience_sim.theory``: the same module as :mod:`resilience_sim.core.theory` (the path notebooks use)."""
import sys

from .core import theory as _module

sys.modules[__name__] = _module
