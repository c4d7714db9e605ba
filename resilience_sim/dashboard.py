"""``resilience_sim.dashboard``: the same module as :mod:`resilience_sim.views.dashboard` (the path notebooks use)."""
import sys

from .views import dashboard as _module

sys.modules[__name__] = _module
