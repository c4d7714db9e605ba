"""The capstone shop's settings: what the learner fills in, checked once, with named errors.

The learner's starting points, ``BASELINE`` and ``REFERENCE``, are in :mod:`resilience_sim.lessons.capstone`.
A :class:`ShopConfig` is frozen (a value: two equal configurations score the same on the same day,
and a configuration can be a sweep's parameter). Each part is a small frozen dataclass:

* :class:`Dependency`: how the frontend calls one dependency (catalog, recommendations, search, the
  SQL search fallback, the orders service): per-attempt ``timeout``, ``retries`` with a full-jitter
  backoff from ``backoff`` seconds, a retry ``budget`` (a share of requests), a consecutive-failure
  ``breaker`` and a ``bulkhead`` (calls in flight at most). None (or 0 retries) switches a pattern off.
* :class:`CacheSettings`: the catalog cache's ``ttl``, how long past it a value may be served when
  the catalog fails (``stale``: stale-if-error) and its ``capacity`` in entries (memory has a price).
* :class:`Replicas`: instances of each service (each brings its slots, and costs by the hour).
* :class:`Alerting`: a multi-window burn-rate page to the on-call for ``slo`` (None: nobody is
  paged); every page has a price, and so has an incident that no page caught.
* writes: the ``outbox`` (else a dual write: commit, then publish), the consumer's ``dedupe``, an
  ``idempotency_key`` on checkout (a retried POST finds its order) and ``deferred_checkout`` ("we
  will email your receipt": 202 at once, the order placed by a durable job queue's workers); the saga's
  retries of a step ``honour_retry_after`` (wait as long as the payment provider's 503 says).

Bad values raise :class:`ConfigError` (a ValueError) naming the field, e.g.
``ConfigError: catalog.timeout must be > 0 s or None, got -1``.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields, replace

from ..core import validate

#: The dependencies the frontend calls, each with its :class:`Dependency` settings.
DEPENDENCIES = ("catalog", "recommendations", "search", "sql_search", "orders")
#: How the consumer meets duplicate order events (see :mod:`resilience_sim.sim.consumer`).
DEDUPES = ("transaction", "separate", "none")


class ConfigError(ValueError):
    """A setting of the shop is out of range; the message names it (``catalog.timeout``)."""


def _known(name: str, part, prefix: str = "") -> None:
    """Refuse a setting ``part`` does not have, naming the closest one it has."""
    names = [f.name for f in fields(part)]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        raise ConfigError(f"{prefix}{name} is not a setting{hint}; the settings are {', '.join(prefix + n for n in names)}")


def _check(path: str, check, *args, **kwargs):
    """``check(path, ...)`` with its error re-raised as a ConfigError naming ``path``."""
    try:
        return check(path, *args, **kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None


def _optional_positive(path: str, value, unit: str = "s"):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ConfigError(f"{path} must be > 0 {unit} or None, got {value!r}")
    return float(value)


def _optional_count(path: str, value, low: int = 1, high: int = 10_000):
    if value is None:
        return None
    return _check(path, validate.integer, value, low=low, high=high)


@dataclass(frozen=True)
class Dependency:
    """How one dependency is called (see the module docstring); the defaults are no patterns at all."""
    timeout: float | None = None
    retries: int = 0
    backoff: float = 0.05
    budget: float | None = None
    breaker: int | None = None
    open_for: float = 10.0
    bulkhead: int | None = None

    def checked(self, name: str) -> "Dependency":
        _optional_positive(f"{name}.timeout", self.timeout)
        _check(f"{name}.retries", validate.integer, self.retries, low=0, high=10)
        _check(f"{name}.backoff", validate.positive, self.backoff)
        if self.budget is not None:
            _check(f"{name}.budget", validate.number, self.budget, low=0.0, high=1.0, low_open=True)
        _optional_count(f"{name}.breaker", self.breaker)
        _check(f"{name}.open_for", validate.positive, self.open_for)
        _optional_count(f"{name}.bulkhead", self.bulkhead)
        return self


@dataclass(frozen=True)
class CacheSettings:
    """The catalog cache: fresh for ``ttl`` s, served stale up to ``stale`` s more when the catalog
    fails, at most ``capacity`` entries."""
    ttl: float = 60.0
    stale: float = 0.0
    capacity: int = 1000

    def checked(self) -> "CacheSettings":
        _check("cache.ttl", validate.positive, self.ttl)
        _check("cache.stale", validate.non_negative, self.stale)
        _check("cache.capacity", validate.integer, self.capacity, low=1, high=1_000_000)
        return self


@dataclass(frozen=True)
class Replicas:
    """Instances of each service; ``workers``: the deferred checkout's job workers."""
    frontend: int = 1
    catalog: int = 1
    recommendations: int = 1
    search: int = 1
    sql_search: int = 1
    orders: int = 1
    workers: int = 1

    def checked(self) -> "Replicas":
        for f in fields(self):
            _check(f"replicas.{f.name}", validate.integer, getattr(self, f.name), low=1, high=100)
        return self


@dataclass(frozen=True)
class Alerting:
    """Page the on-call when the user requests' error ratio burns the budget of ``slo`` too fast
    (the Workbook's 1 h/5 min at 14.4x and 6 h/30 min at 6x); None: nobody is paged."""
    slo: float | None = None

    def checked(self) -> "Alerting":
        if self.slo is not None:
            _check("alerting.slo", validate.number, self.slo, low=0.5, high=0.9999)
        return self


@dataclass(frozen=True)
class ShopConfig:
    """Everything the learner sets (see :mod:`resilience_sim.sim.shop_config`)."""
    catalog: Dependency = Dependency()
    recommendations: Dependency = Dependency()
    search: Dependency = Dependency()
    sql_search: Dependency = Dependency()
    orders: Dependency = Dependency()
    cache: CacheSettings | None = None
    recommendations_fallback: bool = False
    search_fallback: bool = False
    replicas: Replicas = Replicas()
    alerting: Alerting = Alerting()
    outbox: bool = False
    dedupe: str = "none"
    idempotency_key: bool = False
    deferred_checkout: bool = False
    honour_retry_after: bool = False
    name: str = field(default="custom", compare=False)

    def __post_init__(self):
        for dep in DEPENDENCIES:
            value = getattr(self, dep)
            if not isinstance(value, Dependency):
                raise ConfigError(f"{dep} must be a Dependency(...), got {validate.show(value)}")
            value.checked(dep)
        if self.cache is not None and not isinstance(self.cache, CacheSettings):
            raise ConfigError(f"cache must be a CacheSettings(...) or None, got {validate.show(self.cache)}")
        if self.cache is not None:
            self.cache.checked()
        for part, kind in (("replicas", Replicas), ("alerting", Alerting)):
            value = getattr(self, part)
            if not isinstance(value, kind):
                raise ConfigError(f"{part} must be a {kind.__name__}(...), got {validate.show(value)}")
            value.checked()
        for flag in ("recommendations_fallback", "search_fallback", "outbox", "idempotency_key",
                     "deferred_checkout", "honour_retry_after"):
            _check(flag, validate.boolean, getattr(self, flag))
        if not isinstance(self.dedupe, str) or self.dedupe not in DEDUPES:
            raise ConfigError(f"dedupe must be one of {DEDUPES}, got {validate.show(self.dedupe)}")

    def changes(self, other: "ShopConfig") -> list:
        """The settings where ``other`` and this configuration differ, one field at a time:
        ``(path, other's value, this value)``, e.g. ``("catalog.timeout", None, 0.5)``, in field order;
        a part that one side has and the other has not (the cache) is one row for the whole part."""
        if not isinstance(other, ShopConfig):
            raise ConfigError(f"other must be a ShopConfig(...), got {validate.show(other)}")
        out = []
        for f in fields(self):
            if f.name == "name":
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine == theirs:
                continue
            if hasattr(mine, "__dataclass_fields__") and hasattr(theirs, "__dataclass_fields__"):
                out += [(f"{f.name}.{g.name}", getattr(theirs, g.name), getattr(mine, g.name)) for g in fields(mine)
                        if getattr(mine, g.name) != getattr(theirs, g.name)]
            else:
                out.append((f.name, theirs, mine))
        return out

    def with_(self, **changes) -> "ShopConfig":
        """A copy with ``changes`` (checked again); ``catalog={"timeout": 0.5}`` changes one field of a part."""
        out = {}
        for key, value in changes.items():
            _known(key, self)
            current = getattr(self, key)
            if isinstance(value, dict) and current is not None and hasattr(current, "__dataclass_fields__"):
                for sub in value:
                    _known(sub, current, f"{key}.")
                value = replace(current, **value)
            out[key] = value
        return replace(self, **out)


__all__ = ["ShopConfig", "Dependency", "CacheSettings", "Replicas", "Alerting", "ConfigError", "DEPENDENCIES",
           "DEDUPES"]
