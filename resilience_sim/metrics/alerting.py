"""How good an alert rule is, from a run's records: replay the outcomes through the rule, then compare
when it fired with when something was really wrong (the SRE Workbook's four properties).

* :func:`firing_spans`: the ``(start, end)`` spans a rule fired, evaluating it every ``every`` seconds
  on the requests that had ended by then (as a monitoring system scrapes);
* :func:`alert_quality`: against the ``incidents`` (spans when users were really hurt), the
  **precision** (the share of alerts that overlapped an incident), the **recall** (the share of
  incidents that got an alert while they lasted), the **detection time** of each incident caught
  (first firing minus incident start) and the **reset time** (how long the alert kept firing after
  the incident ended).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import validate
from ..core.reasons import Outcome
from .results import as_results

#: The most evaluations :func:`firing_spans` makes.
MAX_EVALUATIONS = 10 ** 7


def firing_spans(results, rule, *, every: float = 10.0) -> list:
    """Replay ``results``' requests (by end time) through ``rule`` (a fresh ThresholdRule or
    BurnRateRule) and evaluate it every ``every`` s: the spans it fired, ``[(start, end), ...]``."""
    results = as_results(results)
    every = validate.positive("every", every)
    if not callable(getattr(rule, "record_counts", None)) or not callable(getattr(rule, "firing", None)):
        raise validate.WrongType(f"rule must be an alert rule (ThresholdRule, BurnRateRule), got {validate.show(rule)}")
    steps = int(np.ceil(results.duration / every))
    if steps > MAX_EVALUATIONS:
        raise ValueError(f"every must be at least {results.duration / MAX_EVALUATIONS:g} s for this run, got {every:g}")
    order = np.argsort(results.end, kind="stable")
    ends, ok = results.end[order], (results.outcome <= Outcome.DEGRADED)[order]
    spans, on_since, i = [], None, 0
    for k in range(1, steps + 1):
        t = min(results.since + k * every, results.until)
        j = int(np.searchsorted(ends, t, side="right"))
        good = int(np.count_nonzero(ok[i:j]))
        rule.record_counts(t, good, (j - i) - good)
        i = j
        if rule.firing(t):
            on_since = t if on_since is None else on_since
        elif on_since is not None:
            spans.append((on_since, t))
            on_since = None
    if on_since is not None:
        spans.append((on_since, results.until))
    return spans


@dataclass(frozen=True)
class AlertQuality:
    alerts: int
    incidents: int
    precision: float          # NaN when the rule never fired
    recall: float             # NaN when there was no incident
    detection_times: tuple    # per incident caught, seconds from its start to the first firing
    reset_times: tuple        # per incident caught, seconds the alert outlived it (0 if it stopped first)

    @property
    def mean_detection(self) -> float:
        return float(np.mean(self.detection_times)) if self.detection_times else float("nan")


def _spans(name: str, spans) -> list:
    out = []
    for span in spans:
        try:
            start, end = (float(x) for x in span)
        except (TypeError, ValueError):
            raise validate.WrongType(f"{name} must be a list of (start, end) pairs, got {validate.show(span)}") from None
        if not end > start:
            raise ValueError(f"{name}: a span must end after it starts, got ({start:g}, {end:g})")
        out.append((start, end))
    return sorted(out)


def alert_quality(alerts, incidents) -> AlertQuality:
    """Compare firing spans with incident spans (see :mod:`resilience_sim.metrics.alerting`)."""
    alerts, incidents = _spans("alerts", alerts), _spans("incidents", incidents)
    overlaps = lambda a, b: a[0] < b[1] and b[0] < a[1]      # noqa: E731
    significant = sum(any(overlaps(a, inc) for inc in incidents) for a in alerts)
    detection, reset = [], []
    for inc in incidents:
        hits = [a for a in alerts if overlaps(a, inc)]
        if hits:
            detection.append(max(0.0, hits[0][0] - inc[0]))
            reset.append(max(0.0, hits[-1][1] - inc[1]))
    return AlertQuality(len(alerts), len(incidents),
                        significant / len(alerts) if alerts else float("nan"),
                        len(detection) / len(incidents) if incidents else float("nan"),
                        tuple(detection), tuple(reset))


__all__ = ["firing_spans", "alert_quality", "AlertQuality"]
