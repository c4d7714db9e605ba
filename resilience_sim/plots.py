"""``resilience_sim.plots``: the same module as :mod:`resilience_sim.views.plots` (the path notebooks use)."""
import sys

from .views import plots as _module

sys.modules[__name__] = _module
