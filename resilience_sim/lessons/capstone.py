"""Capstone: keep a shop above its SLOs through a chaos day, with no order lost or charged twice, at
the least cost; then do it again on days you have not seen.

::

    from resilience_sim.lessons.capstone import BASELINE, REFERENCE, check, play_day, scoreboard
    score = play_day(REFERENCE)             # the visible chaos day (VISIBLE_SEED), 24 simulated hours
    print(score)                            # SLOs, orders, cost, feedback
    board = scoreboard(score)               # the data of the day's picture
    print(check(my_config))                 # the lab's verdict: visible day + HIDDEN_SEEDS on the sweeps

The parts: :mod:`resilience_sim.sim.chaos` (the day and its faults), :mod:`resilience_sim.sim.shop_config`
(what the learner sets), :mod:`resilience_sim.sim.shop` and :mod:`~resilience_sim.sim.shop_day` (the shop
in one world, through one day), :mod:`resilience_sim.metrics.scoring`
(SLOs, orders, cost, misses from the records). Here they are put together: a run's :class:`DayScore`
with feedback that names, for each miss, when it happened, the fault behind it, who failed and why,
and the pattern that would have covered it; and, when money goes where it buys little, which setting.

Pages are the configuration's burn-rate rule replayed on the day's user requests
(:func:`~resilience_sim.metrics.alerting.firing_spans`); an incident (an endpoint below 90% good in a
10-minute bin) that no page caught within 10 minutes costs :data:`~resilience_sim.metrics.scoring.UNDETECTED_INCIDENT`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..core import validate
from ..core.reasons import Outcome
from ..metrics.alerting import firing_spans
from ..metrics.scoring import (Cost, EndpointScore, Miss, OrderCheck, Slo, check_orders, day_cost, endpoint_score,
                               explain_misses, incidents, slo_series)
from ..metrics.sweeps import SweepTable
from ..policies import BurnRateRule
from ..sim.chaos import HOUR, PARTITION_HANG, ChaosDay, chaos_day
from ..sim.shop import PATIENCE, PRODUCTS, SCALE, SLOTS, WORK
from ..sim.shop_config import Alerting, CacheSettings, ConfigError, Dependency, Replicas, ShopConfig
from ..sim.shop_day import DayRun, run_day
from ..sweeps import sweep
from .common import Table, percent

#: No patterns at all: one replica of everything, no timeouts, no cache, no fallbacks, a dual write.
BASELINE = ShopConfig(name="baseline")

#: A configuration that keeps every SLO on the visible and the hidden days, at a moderate cost.
REFERENCE = ShopConfig(
    catalog=Dependency(timeout=0.5, retries=1, backoff=0.05, budget=0.1, breaker=10, open_for=5.0, bulkhead=20),
    recommendations=Dependency(timeout=0.3, breaker=5, open_for=10.0, bulkhead=10),
    search=Dependency(timeout=0.5, breaker=5, open_for=10.0, bulkhead=20),
    sql_search=Dependency(timeout=2.0, bulkhead=6),
    orders=Dependency(timeout=2.0),
    cache=CacheSettings(ttl=60.0, stale=3600.0, capacity=400),
    recommendations_fallback=True, search_fallback=True,
    replicas=Replicas(workers=2),
    alerting=Alerting(slo=0.999),
    outbox=True, dedupe="transaction", idempotency_key=True, deferred_checkout=True, honour_retry_after=True,
    name="reference")

#: The endpoints' objectives: the share of requests answered within the user's patience.
SLOS = (Slo("browse", 0.999, PATIENCE["browse"]), Slo("search", 0.995, PATIENCE["search"]),
        Slo("checkout", 0.9995, PATIENCE["checkout"]))
#: The day the learner sees, and the days the check runs on (never shown in the notebook).
VISIBLE_SEED = 32
HIDDEN_SEEDS = (11, 12, 13, 14, 15)
#: A page that comes this long after an incident started still counts as catching it.
DETECTION_GRACE = 600.0

#: What covers each kind of fault: ``(missing(config, route, target), advice)``, advice given when
#: ``missing`` holds (the setting is off), for the endpoint ``route`` that missed; ``target`` is the
#: service the fault hit (a partition's far side).
ADVICE = {
    "db failover": [
        (lambda c, r, t: r == "browse" and c.cache is not None and c.cache.capacity < PRODUCTS,
         "a larger cache.capacity (stale-if-error serves only what the cache still holds; the catalog has "
         f"{PRODUCTS} products)"),
        (lambda c, r, t: r == "browse" and c.cache is None,
         "a catalog cache (cache=CacheSettings(...)) serving stale values while the database fails over"),
        (lambda c, r, t: r == "browse" and c.cache is not None and c.cache.stale == 0,
         "a stale bound on the cache (cache.stale > 0: stale-if-error)"),
        (lambda c, r, t: r == "checkout" and not c.deferred_checkout,
         "a deferred checkout (deferred_checkout=True): its job retries after the failover")],
    "search down": [
        (lambda c, r, t: not c.search_fallback, "a fallback to SQL search (search_fallback=True)"),
        (lambda c, r, t: c.search_fallback and c.search.timeout is None,
         "a search.timeout, so that calls to a dead engine fail fast to the fallback"),
        (lambda c, r, t: c.search_fallback and _too_long(c.search.timeout, "search"),
         f"a search.timeout shorter than a user's patience ({PATIENCE['search']:g} s; timeouts are in seconds)")],
    "recommendations slow": [
        (lambda c, r, t: c.recommendations.timeout is None, "a short recommendations.timeout"),
        (lambda c, r, t: _too_long(c.recommendations.timeout, "browse"),
         f"a recommendations.timeout shorter than a user's patience ({PATIENCE['browse']:g} s; timeouts are in seconds)"),
        (lambda c, r, t: not c.recommendations_fallback, "a fallback to popular products (recommendations_fallback=True)"),
        (lambda c, r, t: c.recommendations.bulkhead is None,
         "a recommendations.bulkhead, so slow calls cannot take every frontend slot")],
    "broker crash": [(lambda c, r, t: not c.outbox, "the transactional outbox (outbox=True)")],
    "payment 503": [
        (lambda c, r, t: not c.deferred_checkout,
         "a deferred checkout (deferred_checkout=True), so users do not wait out the 503"),
        (lambda c, r, t: r != "checkout" and c.orders.bulkhead is None,
         "an orders.bulkhead, so checkouts stuck on the provider cannot take every frontend slot")],
    "partition": [
        (lambda c, r, t: getattr(c, t, None) is not None and (getattr(c, t).timeout or 1e9) >= PARTITION_HANG,
         "a {t}.timeout shorter than the partition's hang"),
        (lambda c, r, t: t == "catalog" and c.cache is None, "a catalog cache with stale-if-error"),
        (lambda c, r, t: t == "catalog" and c.cache is not None and c.cache.capacity < PRODUCTS,
         f"a larger cache.capacity (the catalog has {PRODUCTS} products)"),
        (lambda c, r, t: t == "catalog" and c.cache is not None and c.cache.stale == 0,
         "a stale bound on the cache (cache.stale > 0: stale-if-error)"),
        (lambda c, r, t: t == "recommendations" and not c.recommendations_fallback, "recommendations_fallback=True"),
        (lambda c, r, t: t == "search" and not c.search_fallback, "search_fallback=True")],
    "latency trigger": [
        (lambda c, r, t: c.cache is None, "a catalog cache, so few reads reach the slow catalog"),
        (lambda c, r, t: c.cache is not None and c.cache.capacity < PRODUCTS,
         f"a larger cache.capacity (the catalog has {PRODUCTS} products), so fewer reads reach the slow catalog"),
        (lambda c, r, t: c.cache is not None and c.cache.stale == 0,
         "a stale bound on the cache (cache.stale > 0), so reads the slow catalog fails are served stale"),
        (lambda c, r, t: c.catalog.timeout is None, "a catalog.timeout, so slow reads fail over to the stale cache"),
        (lambda c, r, t: _too_long(c.catalog.timeout, "browse"),
         f"a catalog.timeout shorter than a user's patience ({PATIENCE['browse']:g} s; timeouts are in seconds)"),
        (lambda c, r, t: c.catalog.breaker is None, "a catalog breaker"),
        (lambda c, r, t: c.catalog.retries and c.catalog.budget is None,
         "a retry budget on catalog (catalog.budget): retries alone turn a slow spell into a retry storm")],
}
#: Said when every setting that covers the faults is on: it needs tuning, not another pattern.
TUNE_ADVICE = ("the patterns that cover it are on: tune them (shorter timeouts, a longer stale bound, "
               "more replicas of the service that failed)")
#: When no fault was active: the service ran out of capacity.
NO_FAULT_ADVICE = "more replicas (replicas=Replicas(...)) of the service that failed them, or a bulkhead"


def _too_long(timeout, route: str) -> bool:
    """A timeout no shorter than the user's patience on ``route`` protects nobody (often one in ms)."""
    return timeout is not None and timeout >= PATIENCE[route]


def fixes(config: ShopConfig, route: str, fault_label: str) -> list:
    """What would have covered ``route``'s miss during the fault labelled ``fault_label`` (its kind,
    then the service it hit in brackets), given what ``config`` has on already."""
    kind, _, where = fault_label.partition(" (")
    target = where.rstrip(")").split(" | ")[-1]
    return [text.format(t=target) for missing, text in ADVICE.get(kind, ()) if missing(config, route, target)]


@dataclass(frozen=True)
class DayScore:
    """One configuration on one chaos day: per endpoint its SLO score, the orders' check, the day's
    cost, the pages, incidents and misses, and the feedback (sentences). ``run`` is the DayRun."""
    seed: int
    config: ShopConfig
    hours: float
    endpoints: tuple
    orders: OrderCheck
    cost: Cost
    alerts: tuple
    incidents: tuple
    misses: tuple
    feedback: tuple
    run: DayRun | None = field(default=None, repr=False, compare=False)

    @property
    def pages(self) -> int:
        """Times the on-call was paged (the alert rule started firing)."""
        return len(self.alerts)

    @property
    def slos_met(self) -> bool:
        return all(e.met for e in self.endpoints)

    @property
    def passed(self) -> bool:
        """Every SLO met, and no order lost or duplicated."""
        return self.slos_met and self.orders.ok

    def endpoint(self, route: str) -> EndpointScore:
        for e in self.endpoints:
            if e.route == route:
                return e
        raise ValueError(f"route must be one of {[e.route for e in self.endpoints]}, got {route!r}")

    def summary(self) -> dict:
        """The day's numbers, flat (a sweep's row)."""
        out = {}
        for e in self.endpoints:
            out[f"{e.route}_availability"] = e.availability
            out[f"{e.route}_met"] = e.met
            out[f"{e.route}_budget_left"] = e.budget_left
        out.update({"lost": len(self.orders.lost), "duplicated": len(self.orders.duplicated),
                    "pages": self.pages, "cost": self.cost.total, "passed": self.passed})
        return out

    def table(self) -> Table:
        rows = [[e.route, percent(e.target), f"{e.availability:.4%}", "met" if e.met else "MISSED",
                 f"{e.budget_left:.0%}"] for e in self.endpoints]
        return Table(["endpoint", "SLO", "good", "", "budget left"], rows, data=self.summary())

    def __str__(self) -> str:
        head = (f"{self.config.name} on chaos day {self.seed}: {'PASSED' if self.passed else 'FAILED'}; "
                f"orders lost {len(self.orders.lost)}, duplicated {len(self.orders.duplicated)}; "
                f"cost ${self.cost.total:,.0f}")
        return "\n".join([head, str(self.table()), *(f"- {line}" for line in self.feedback)])


# --- scoring one run -----------------------------------------------------------------------------------
def score_run(run: DayRun) -> DayScore:
    """Score a finished :class:`~resilience_sim.sim.shop_day.DayRun` (see the module docstring)."""
    if not isinstance(run, DayRun):
        raise validate.WrongType(f"run must be a DayRun (sim.shop_day.run_day(config, day)), got {validate.show(run)}")
    config, day, results = run.config, run.day, run.results
    window = results.between(0.0, day.duration)
    endpoints = tuple(endpoint_score(window, slo) for slo in SLOS)
    orders = check_orders(_accepted(window), run.orders["statuses"], run.orders["charges"], run.orders["receipts"])
    alerts = (tuple(firing_spans(window, BurnRateRule(config.alerting.slo), every=60.0))
              if config.alerting.slo is not None else ())
    hurt = incidents(window, SLOS)
    undetected = sum(not any(a0 < s + DETECTION_GRACE and a1 > s for a0, a1 in alerts) for s, _ in hurt)
    cost = day_cost(hours=day.profile.hours, replicas=_replicas(config), extra_calls=_extra_calls(run),
                    cache_entries=config.cache.capacity if config.cache else 0, pages=len(alerts),
                    undetected=undetected, lost=len(orders.lost), duplicated=len(orders.duplicated))
    misses = tuple(m for e, slo in zip(endpoints, SLOS) if not e.met for m in _worth_saying(explain_misses(window, slo)))
    feedback = (*(_miss_advice(m, e, config) for m in misses for e in endpoints if e.route == m.route),
                *_order_advice(run, orders), *_cost_advice(run, cost, len(alerts), len(hurt)))
    return DayScore(day.seed, config, day.profile.hours, endpoints, orders, cost, alerts, tuple(hurt),
                    misses, tuple(feedback), run)


def _worth_saying(misses: list) -> list:
    """The misses, without spans of a single bad request when there are larger ones (noise, not a fault's mark)."""
    larger = [m for m in misses if m.bad > 1]
    return larger or misses


def _accepted(window) -> list:
    """The checkout intents whose user heard "confirmed" or "accepted"."""
    view = window.only("checkout") if "checkout" in window.routes else None
    if view is None or not len(view):
        return []
    return list(view.key_values[view.outcome <= Outcome.DEGRADED])


def _replicas(config: ShopConfig) -> dict:
    r = config.replicas
    out = {name: getattr(r, name) for name in SLOTS}
    if config.deferred_checkout:
        out["job workers"] = r.workers
    return out


def _extra_calls(run: DayRun) -> int:
    """Calls beyond one per request on the frontend's clients (retries sent and hedge copies; a request
    a breaker or bulkhead refused sent nothing, and takes nothing off the others' retries), job tries
    beyond one per job, and calls to the payment provider beyond one per charge (a saga's retries)."""
    results = run.results
    extra = sum(c.retries + c.hedges for name, c in results.clients.items() if name.startswith("to "))
    extra += sum(j.attempts - j.completed - j.queued - j.running for j in results.job_queues.values())
    extra += max(0, results.services["payment"].calls - sum(run.orders["charges"].values()))
    return max(0, int(extra))


def _hm(t: float) -> str:
    return f"{int(t // HOUR):02d}:{int(t % HOUR // 60):02d}"


def _miss_advice(m: Miss, e: EndpointScore, config: ShopConfig) -> str:
    who = ", ".join(f"{w} ({r}) x{n}" for (w, r), n in m.causes[:3])
    if m.faults:
        found = dict.fromkeys(x for f in m.faults for x in fixes(config, m.route, f))
        during, fix = f"during {', '.join(m.faults)}", "; ".join(found) or TUNE_ADVICE
    else:
        during, fix = "with no fault active", NO_FAULT_ADVICE
    return (f"{m.route} missed {percent(e.target)} ({e.availability:.3%}): {m.bad} bad request{'s' * (m.bad != 1)} "
            f"{_hm(m.start)}-{_hm(m.end)} {during}; failed by {who}. Would have covered it: {fix}.")


def _order_advice(run: DayRun, orders: OrderCheck) -> list:
    out = []
    if orders.lost:
        s, rc = run.orders["statuses"], run.orders["receipts"]
        no_receipt = sum(1 for i in orders.lost if "CONFIRMED" in s.get(i, ()) and not rc.get(i))
        unplaced = len(orders.lost) - no_receipt
        if no_receipt:
            out.append(f"{no_receipt} orders confirmed and charged but their event never reached the receipts "
                       f"(a dual write failed: the broker was down); the outbox (outbox=True) would have kept them")
        if unplaced:
            out.append(f"{unplaced} orders the users were told were accepted were never confirmed by the end "
                       f"(a job or saga still unfinished, or cancelled after the user heard yes)")
    if orders.duplicated:
        charges, rc = run.orders["charges"], run.orders["receipts"]
        twice = sum(1 for i in orders.duplicated if charges.get(i, 0) > 1)
        if twice:
            out.append(f"{twice} orders charged twice: a user (or a job) retried a checkout that had gone through; "
                       f"an idempotency key (idempotency_key=True) finds the first order")
        if len(orders.duplicated) > twice:
            out.append(f"{len(orders.duplicated) - twice} receipts sent twice: a redelivered event; an idempotent "
                       f"consumer (dedupe='transaction') applies each once")
    return out


def _cost_advice(run: DayRun, cost: Cost, pages: int, hurt: int) -> list:
    """Where the money buys little, the largest saving first: a replica that the busiest 5 minutes did
    not need, a cache larger than the catalog, pages beyond the incidents. (Job workers are left out:
    their busy time is not recorded; a day with fewer of them is the test.)"""
    config, results = run.config, run.results
    day = run.day.duration
    found = []                                   # (dollars saved, sentence)
    for name in SLOTS:
        n = getattr(config.replicas, name)
        need = _busiest_need(run, name, day) if n > 1 else None
        if need is not None and need < 0.5 * (n - 1):
            item = cost.items[f"replicas of {name}"]
            found.append((item / n, f"replicas.{name}={n} buys little: its busiest 5 minutes kept {need:.2f} "
                                    f"replicas' worth busy; one fewer saves ${item / n:,.0f} a day"))
    if config.cache is not None and config.cache.capacity > PRODUCTS:
        saved = cost.items["cache memory"] * (1 - PRODUCTS / config.cache.capacity)
        found.append((saved, f"cache.capacity={config.cache.capacity} buys nothing above {PRODUCTS} entries (the "
                             f"catalog has {PRODUCTS} products): {PRODUCTS} saves ${saved:,.0f} a day"))
    if pages > max(2 * hurt, 2):
        found.append(((pages - hurt) * cost.items["pages"] / pages,
                      f"{pages} pages for {hurt} incidents: the alert rule pages for what users barely feel"))
    return [text for _, text in sorted(found, key=lambda f: -f[0])]


def _busiest_need(run: DayRun, name: str, day: float):
    """Replicas' worth of ``name``'s slots busy in the busiest 5 minutes of the day; None if it was idle."""
    results = run.results
    starts = results.services[name].call_start
    starts = starts[starts < day]
    if not starts.size:
        return None
    # seconds a call holds a slot: its work, or for the frontend the whole answer (it waits for the rest)
    hold = float(np.mean(results.between(0.0, day).latency)) if name == "frontend" else WORK[name]
    busiest = np.bincount((starts // 300).astype(np.int64)).max() / 300.0
    return busiest * hold / SLOTS[name]


def scoreboard(score: DayScore, *, bin_width: float = 600.0) -> dict:
    """What a scoreboard picture draws, as data: ``t`` (bin starts, s), per endpoint its ``good`` share
    and ``budget_spent`` bin by bin (:func:`~resilience_sim.metrics.scoring.slo_series`), the day's
    ``faults`` as (label, start, end) to shade, the ``pages`` as (start, end) and the ``cost`` items,
    the most expensive first."""
    if not isinstance(score, DayScore) or score.run is None:
        raise validate.WrongType(f"score must be a DayScore from play_day(...), got {validate.show(score)}")
    window = score.run.results.between(0.0, score.run.day.duration)
    series = {slo.route: slo_series(window, slo, bin_width) for slo in SLOS}
    return {"t": next(iter(series.values()))["t"],
            "good": {route: s["good"] for route, s in series.items()},
            "budget_spent": {route: s["budget_spent"] for route, s in series.items()},
            "faults": [(f.label, f.start, f.end) for f in score.run.day.faults],
            "pages": list(score.alerts), "cost": score.cost.biggest()}


# --- days ----------------------------------------------------------------------------------------------
def play_day(config: ShopConfig, day: ChaosDay | int = VISIBLE_SEED, *, hours: float = 24.0,
             traffic: float = 1.0) -> DayScore:
    """Run ``config`` through one chaos day (a ChaosDay, or the seed of one ``hours`` long) and score it."""
    if not isinstance(day, ChaosDay):
        day = chaos_day(validate.integer("day", day, low=0), hours=hours)
    return score_run(run_day(config, day, traffic=traffic))


def day_summary(config: ShopConfig, *, seed: int, hours: float = 24.0, traffic: float = 1.0) -> dict:
    """:func:`play_day`'s numbers for one seed: a sweep's scenario (importable, so any executor runs it)."""
    return play_day(config, seed, hours=hours, traffic=traffic).summary()


@dataclass(frozen=True)
class HiddenScore:
    """A configuration over days it was not tuned on: the sweep's table (a row per day) and the verdict."""
    config: ShopConfig
    table: SweepTable

    @property
    def passed(self) -> bool:
        """Every day passed (all SLOs met, no order lost or duplicated)."""
        return bool(len(self.table)) and all(self.table.column("passed"))

    def failed_days(self) -> list:
        return [int(s) for s, ok in zip(self.table.column("seed"), self.table.column("passed")) if not ok]

    def __str__(self) -> str:
        days = len(self.table)
        return (f"{self.config.name} on {days} hidden days: {'PASSED' if self.passed else 'FAILED'} "
                f"(failed days: {self.failed_days() or 'none'}); mean cost ${np.mean(self.table.column('cost')):,.0f}")


def hidden_days(config: ShopConfig, seeds=HIDDEN_SEEDS, *, hours: float = 24.0, traffic: float = 1.0,
                executor=None, progress="auto") -> HiddenScore:
    """Score ``config`` on the chaos days of ``seeds`` with :func:`~resilience_sim.sweeps.sweep` (on
    ``executor``: None here, or any ``concurrent.futures.Executor``; ``progress`` as for sweep)."""
    if not isinstance(config, ShopConfig):
        raise validate.WrongType(f"config must be a ShopConfig, got {validate.show(config)}")
    scenario = functools.partial(day_summary, config, hours=hours, traffic=traffic)
    return HiddenScore(config, sweep(scenario, seeds=list(seeds), executor=executor, progress=progress))


@dataclass(frozen=True)
class CapstoneCheck:
    """The capstone's verdict on a configuration: the visible day's score, the hidden days' table, and
    the first hidden day that failed replayed for its feedback (None when all passed)."""
    config: ShopConfig
    visible: DayScore
    hidden: HiddenScore
    explained: DayScore | None

    @property
    def passed(self) -> bool:
        return self.visible.passed and self.hidden.passed

    def lines(self) -> list:
        """What the learner reads: the verdict, then what to fix, visible day first."""
        out = [f"{self.config.name}: {'PASSED' if self.passed else 'NOT YET'}: visible day "
               f"{'passed' if self.visible.passed else 'failed'}, hidden days "
               f"{'all passed' if self.hidden.passed else f'failed on {len(self.hidden.failed_days())} of {len(self.hidden.table)}'}; "
               f"cost ${self.visible.cost.total:,.0f} on the visible day, "
               f"${float(np.mean(self.hidden.table.column('cost'))):,.0f} a hidden day on average"]
        if not self.visible.passed:
            out += [f"visible day: {line}" for line in self.visible.feedback]
        if self.explained is not None:
            out += [f"a hidden day: {line}" for line in self.explained.feedback]
        elif self.passed:
            out += [f"to spend less: {line}" for line in self.visible.feedback]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def check(config: ShopConfig, *, seeds=HIDDEN_SEEDS, hours: float = 24.0, executor=None,
          progress="auto") -> CapstoneCheck:
    """The lab's check: ``config`` on the visible day and on the hidden days of ``seeds`` (the sweep,
    on ``executor``), with the first failed hidden day replayed here for its feedback."""
    visible = play_day(config, VISIBLE_SEED, hours=hours)
    hidden = hidden_days(config, seeds, hours=hours, executor=executor, progress=progress)
    failed = hidden.failed_days()
    explained = play_day(config, failed[0], hours=hours) if failed else None
    return CapstoneCheck(config, visible, hidden, explained)


__all__ = ["check", "CapstoneCheck", "SLOS", "VISIBLE_SEED", "HIDDEN_SEEDS", "ADVICE", "fixes", "DayScore", "HiddenScore", "score_run", "play_day",
           "scoreboard",
           "day_summary", "hidden_days", "ShopConfig", "Dependency", "CacheSettings", "Replicas", "Alerting",
           "ConfigError", "BASELINE", "REFERENCE", "SCALE"]
