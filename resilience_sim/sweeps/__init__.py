"""Many runs: a scenario over a grid of parameters and many seeds, with confidence intervals and a
progress bar, on any ``concurrent.futures.Executor`` (in this process by default, a process pool,
or a Dask cluster through ``client.get_executor()``).

A layer above the simulator and the views, below the lessons. It never imports simpy (a scenario
does, where it runs) and imports the progress widget only when one is shown::

    from resilience_sim.sweeps import sweep
    table = sweep(edge_run, {"trigger": [1, 2, 3]}, seeds=20)     # 60 runs, one row each
    table.summary("failed")                                       # share per point, Wilson 95% interval

The table and its intervals are :mod:`resilience_sim.metrics.sweeps`; the pictures
:mod:`resilience_sim.views.sweeps`.
"""
from ..metrics.sweeps import PointSummary, Summary, SweepTable
from .plan import MAX_RUNS, points_of, seed_for
from .progress import SweepProgress
from .runner import SweepFailed, SweepInterrupted, process_pool, sweep

__all__ = ["sweep", "process_pool", "seed_for", "points_of", "SweepTable", "Summary", "PointSummary",
           "SweepProgress", "SweepFailed", "SweepInterrupted", "MAX_RUNS"]
