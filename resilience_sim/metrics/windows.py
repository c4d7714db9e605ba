"""Metrics over windows of time, computed from a run's records and timelines (never from a World).

:class:`~resilience_sim.metrics.results.Results` answers for one window (``results.between(t0, t1)``);
these answer for many at once, or where an empty window must give NaN rather than an error:

* :func:`availability_between`: request availability of the requests that started in a window, NaN
  when none did (for scanning a run bin by bin);
* :func:`quality_series`: per bin, the share answered and the share answered with full quality;
* :func:`quality_shares_series`: per bin, the share of each kind of answer (full, each degradation
  reason, unanswered), for a stacked picture of quality over time;
* :func:`time_down`: seconds a timeline spent down inside a window;
* :func:`batch_means`: time availability of a group of services in equal slices of the run, and the
  standard error of the whole-run figure that their spread gives.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import validate
from ..core.reasons import Outcome
from ..core.timeline import Timeline, combine
from .results import MAX_BINS, as_results, bin_count

#: Most slices :func:`batch_means` cuts a run into (each is a row of a spans x batches array).
MAX_BATCHES = MAX_BINS
#: Cells of the (slices x down spans) array :func:`batch_means` works on at a time (80 MB).
_CELLS = 10 ** 7


def _window(lo, hi) -> tuple[float, float]:
    """``lo`` and ``hi`` as finite floats with lo < hi, else a ValueError naming the one at fault (an
    infinite end is refused with the finite one that means the same: the start or end of the run)."""
    lo = _finite("lo", lo, "for 'from the start of the run' pass results.since")
    hi = _finite("hi", hi, "for 'to the end of the run' pass results.until")
    if not hi > lo:
        raise ValueError(f"hi must be > lo ({lo!r}): the window [lo, hi) would be empty, got hi={hi!r}")
    return lo, hi


def _finite(name: str, value, hint: str) -> float:
    try:
        return validate.number(name, value)
    except validate.WrongType:
        raise
    except ValueError as err:
        if value == value:                       # infinite (NaN is not equal to itself): say what to pass
            raise ValueError(f"{err}; {hint}") from None
        raise


def _started_in(results, lo: float, hi: float) -> np.ndarray:
    return (results.start >= lo) & (results.start < hi)


def availability_between(results, lo: float, hi: float) -> float:
    """The share of the requests that started in ``[lo, hi)`` that got an answer (full or degraded);
    NaN when none started there. ``lo`` and ``hi`` are finite seconds, ``lo < hi``; the window may
    reach outside the run's (it is just empty there)."""
    results = as_results(results)
    lo, hi = _window(lo, hi)
    mask = _started_in(results, lo, hi)
    return float((results.outcome[mask] <= Outcome.DEGRADED).mean()) if mask.any() else math.nan


def quality_series(results, bin_width: float) -> dict[str, np.ndarray]:
    """Per ``bin_width`` bin of the results' window, by start time: ``t`` (bin start), ``answered``
    and ``full_quality`` (shares of the requests that started in the bin; NaN where none did).
    At most :data:`~resilience_sim.metrics.results.MAX_BINS` bins."""
    results = as_results(results)
    bin_width = validate.positive("bin_width", bin_width)
    n_bins = bin_count(results.duration, bin_width)
    idx = np.minimum(((results.start - results.since) / bin_width).astype(np.int64), n_bins - 1)
    total = np.bincount(idx, minlength=n_bins)
    good = np.bincount(idx, weights=results.outcome <= Outcome.DEGRADED, minlength=n_bins)
    full = np.bincount(idx, weights=results.outcome == Outcome.OK, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"t": results.since + np.arange(n_bins) * bin_width,
                "answered": np.where(total > 0, good / total, np.nan),
                "full_quality": np.where(total > 0, full / total, np.nan)}


def quality_shares_series(results, bin_width: float) -> dict[str, np.ndarray]:
    """Per ``bin_width`` bin, by start time: ``t`` (bin start) and, for ``"full"``, each degradation
    reason in the results (a stale value, a fallback level, "deferred") and ``"unanswered"``, the share
    of the bin's requests that got that answer (NaN where no request started). The shares of a bin
    sum to 1, and the keys come in that order (the reasons by how often they occur)."""
    results = as_results(results)
    bin_width = validate.positive("bin_width", bin_width)
    n_bins = bin_count(results.duration, bin_width)
    idx = np.minimum(((results.start - results.since) / bin_width).astype(np.int64), n_bins - 1)
    total = np.bincount(idx, minlength=n_bins)
    degraded = results.outcome == Outcome.DEGRADED
    reasons = [r for r in results.quality() if r not in ("full", "unanswered")] if len(results) else []
    masks = {"full": results.outcome == Outcome.OK}
    codes = results._reason
    for reason in reasons:
        masks[reason] = degraded & (codes == results.names.index(reason))
    masks["unanswered"] = results.outcome > Outcome.DEGRADED
    out = {"t": results.since + np.arange(n_bins) * bin_width}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, mask in masks.items():
            out[name] = np.where(total > 0, np.bincount(idx, weights=mask, minlength=n_bins) / total, np.nan)
    return out


def time_down(timeline, lo: float, hi: float) -> float:
    """Seconds ``timeline`` spent down inside ``[lo, hi)`` (what an up/down health check reported);
    ``lo`` and ``hi`` are finite seconds, ``lo < hi``."""
    if not isinstance(timeline, Timeline):
        raise validate.WrongType(f"timeline must be a Timeline, e.g. results.services['db'].timeline, "
                                 f"got {validate.show(timeline)}")
    lo, hi = _window(lo, hi)
    return sum(min(e, hi) - max(s, lo) for s, e in timeline.down_windows(hi) if e > lo and s < hi)


def batch_means(results, *services: str, need: str = "all", batches: int = 20) -> tuple[float, float]:
    """Time availability of the named services over the run, and its standard error by batch means.

    The run is cut into ``batches`` equal slices; the spread of the slices' availabilities, divided
    by sqrt(batches), says how noisy the whole-run figure is, where no simple formula gives it.
    ``need`` is as for :meth:`Results.time_availability` ("all" or "any" of them up).
    """
    results = as_results(results)
    batches = validate.integer("batches", batches, low=2, high=MAX_BATCHES)
    if not services:
        raise ValueError(f"services must name at least one of {sorted(results.services)}")
    timelines = [results._stats(name).timeline for name in services]
    spans = np.array(combine(timelines, results.until, need=need)).reshape(-1, 2)
    edges = np.linspace(results.since, results.until, batches + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    rows = max(1, _CELLS // max(1, len(spans)))      # slices at a time: a (slices x spans) array stays small
    down = np.concatenate([np.clip(np.minimum(spans[:, 1], hi[i:i + rows]) - np.maximum(spans[:, 0], lo[i:i + rows]),
                                   0.0, None).sum(axis=1) for i in range(0, batches, rows)])
    values = 1.0 - down / (results.duration / batches)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(batches))
