"""HTTP-level faults a live service injects, switchable from Python while requests are in flight.

These are the faults a TCP proxy such as Toxiproxy cannot give (its users have long asked for them):
an error status with ``Retry-After``, "fail the first two requests", added latency per request, a
body that trickles, a connection reset mid-body, a request that is never answered.

``faults = HttpFaults(seed=0)``, then any of (each returns the faults, so calls chain)::

    faults.fail(503, rate=0.3, retry_after=1)       # 30% of requests answered 503, Retry-After: 1
    faults.fail(500, first=2)                        # exactly the next two requests
    faults.slow(LogNormal(0.05, 0.5))                # added latency, drawn per request
    faults.trickle(chunk=16, interval=0.1)           # 16 bytes every 0.1 s, Content-Length correct
    faults.reset(after_bytes=10)                     # headers, 10 bytes of body, then a TCP reset
    faults.hang(seconds=5)                           # read the request, never answer (at most 5 s)

What holds:

* **one rule per kind**: calling ``fail`` again replaces the fail rule (so a slider just calls it
  again); ``clear()`` removes every rule, ``clear("fail")`` one; a ``first=N`` rule removes itself
  once spent. Every rule may be narrowed to ``during=(start, end)`` seconds of the faults' clock
  (zero at :meth:`restart_clock`, which a service calls when it starts) and to ``paths`` (prefixes).
* **the story of one request** (:meth:`plan`): *slow* adds its latency; then *hang* (no answer),
  else *fail* (the error status), else the service's own answer; whatever answer goes out is then
  delivered by *trickle* (in chunks) and cut by *reset* (after ``after_bytes``). A request that hangs
  neither fails nor spends a ``first``.
* **determinism**: each kind draws from its own ``random.Random`` derived from ``seed`` and the
  kind's name, one draw per request in its scope (plus one latency sample when *slow* hits; a
  ``first`` rule draws nothing), whatever the other kinds do. So a fixed sequence of requests meets
  a fixed sequence of faults, and turning on a trickle does not reshuffle which requests fail.
* **thread safety**: rules change and requests draw under one lock; a request's plan is fixed when
  it is drawn, so a switch affects the requests that arrive after it, never one half served.
* ``injected`` counts the faults applied, by kind; ``active()`` describes the rules for a notebook.
"""
from __future__ import annotations

import math
import random
import threading
import time

from ..core import validate
from ..core.distributions import Fixed, as_distribution
from ..core.seeds import stream_seed

#: the kinds of fault, in the order a request meets them
KINDS = ("slow", "hang", "fail", "trickle", "reset")
#: statuses that may carry ``Retry-After`` (RFC 9110 section 10.2.3)
RETRY_AFTER_STATUSES = (429, 503)


def retry_after_header(seconds: float) -> str:
    """``Retry-After``'s value: a whole number prints as one (``"2"``); a fraction (our extension, for
    short demos; RFC 9110 allows whole seconds only) as a plain decimal (``"0.25"``), never ``1e-05``."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return format(seconds, "f").rstrip("0").rstrip(".")


class Plan:
    """What one request meets: ``delay`` seconds first; then ``hang`` (None, or the most seconds to
    hold it, ``math.inf`` for "until the server stops"), else ``status`` (an error to answer, with
    ``retry_after``); then ``trickle`` (``(chunk, interval)``) and ``reset_after`` (bytes of body
    before the reset; -1 for half the body) on the answer. ``kinds`` names the faults applied, in
    that order; :data:`NO_FAULTS` is the plan with none."""
    __slots__ = ("delay", "hang", "status", "retry_after", "trickle", "reset_after", "kinds")

    def __init__(self):
        self.delay, self.hang, self.status, self.retry_after = 0.0, None, None, None
        self.trickle, self.reset_after, self.kinds = None, None, ()

    def __repr__(self) -> str:
        values = ((k, getattr(self, k)) for k in self.__slots__)
        shown = ", ".join(f"{k}={v!r}" for k, v in values if v not in (None, 0.0, ()))
        return f"Plan({shown})"


#: the plan of a request that meets no fault (shared: never changed)
NO_FAULTS = Plan()


class _Rule:
    """One kind's rule: its scope (``rate`` or ``remaining``, ``during``, ``paths``) and settings."""
    __slots__ = ("kind", "rate", "remaining", "during", "paths", "settings", "injected")

    def __init__(self, kind, rate, during, paths, settings, remaining=None):
        self.kind, self.rate, self.remaining = kind, rate, remaining
        self.during, self.paths, self.settings, self.injected = during, paths, settings, 0

    def covers(self, path: str, elapsed: float) -> bool:
        if self.during is not None and not self.during[0] <= elapsed < self.during[1]:
            return False
        return self.paths is None or path.startswith(self.paths)

    def describe(self) -> dict:
        out = {"kind": self.kind, **self.settings}
        latency = out.get("latency")
        if latency is not None:                  # seconds for a fixed latency, else the distribution
            out["latency"] = latency.value if isinstance(latency, Fixed) else repr(latency)
        if self.remaining is not None:
            out["remaining"] = self.remaining
        else:
            out["rate"] = self.rate
        out["during"] = self.during
        out["paths"] = list(self.paths) if self.paths is not None else None
        out["injected"] = self.injected
        return out


class HttpFaults:
    """The switchable HTTP faults of one service (see the module docstring for what holds).

    ``clock`` (``time.monotonic`` by default) is what ``during`` windows are read from; a test may
    pass a function it controls."""

    def __init__(self, seed: int = 0, *, clock=time.monotonic):
        self.seed = validate.integer("seed", seed, low=0)
        self._clock = validate.function("clock", clock)
        self._lock = threading.Lock()
        self._rules: dict[str, _Rule] = {}
        self._rngs = {kind: random.Random(stream_seed(self.seed, kind)) for kind in KINDS}
        self._injected = dict.fromkeys(KINDS, 0)
        self._zero = self._clock()

    # -- the clock ----------------------------------------------------------------------------------

    def restart_clock(self) -> "HttpFaults":
        """Make now the zero that ``during`` windows count from (a service does it when it starts)."""
        with self._lock:
            self._zero = self._clock()
        return self

    @property
    def elapsed(self) -> float:
        """Seconds since the clock's zero."""
        return self._clock() - self._zero

    # -- switching faults on and off ----------------------------------------------------------------

    def fail(self, status: int = 500, *, rate: float = 1.0, first: int | None = None,
             retry_after: float | None = None, during=None, paths=None) -> "HttpFaults":
        """Answer ``status`` (an error, 400-599) instead of the service, to a share ``rate`` of the
        requests, or to exactly the next ``first`` ones (give one or the other). ``retry_after``
        (seconds >= 0, 429 and 503 only) is sent as ``Retry-After``."""
        status = validate.integer("status", status, low=400, high=599)
        rate = validate.probability("rate", rate)
        if first is not None:
            first = validate.integer("first", first, low=1)
            if rate != 1.0:
                raise ValueError(f"rate must be left at 1.0 when first is given (first={first} fails exactly "
                                 f"the next {first} requests), got rate={rate!r}: give one or the other")
        if retry_after is not None:
            if status not in RETRY_AFTER_STATUSES:
                raise ValueError(f"retry_after goes with status 429 or 503 only (RFC 9110), got status {status}")
            retry_after = validate.non_negative("retry_after", retry_after)
        settings = {"status": status, "retry_after": retry_after}
        return self._set(_Rule("fail", rate, _window(during), _prefixes(paths), settings, first))

    def slow(self, latency, *, rate: float = 1.0, during=None, paths=None) -> "HttpFaults":
        """Add ``latency`` before the answer: seconds, or a Distribution drawn per request (a share
        ``rate`` of the requests)."""
        latency = as_distribution("latency", latency, number_means="fixed")
        return self._set(_Rule("slow", validate.probability("rate", rate), _window(during), _prefixes(paths),
                               {"latency": latency}))

    def trickle(self, *, chunk: int = 16, interval: float = 0.1, rate: float = 1.0, during=None,
                paths=None) -> "HttpFaults":
        """Send the body ``chunk`` bytes at a time, each after ``interval`` seconds (headers at once,
        with the full Content-Length): a per-read timeout longer than ``interval`` never trips, while
        the whole answer takes about ``ceil(size / chunk) * interval``."""
        settings = {"chunk": validate.integer("chunk", chunk, low=1),
                    "interval": validate.positive("interval", interval)}
        return self._set(_Rule("trickle", validate.probability("rate", rate), _window(during), _prefixes(paths),
                               settings))

    def reset(self, *, rate: float = 1.0, after_bytes: int | None = None, during=None,
              paths=None) -> "HttpFaults":
        """Send the headers and ``after_bytes`` bytes of the body (None: half of it), then reset the
        connection (SO_LINGER (1, 0) and close: the client reads ECONNRESET). A body no longer than
        ``after_bytes`` goes out whole before the reset, which a client may then not notice."""
        if after_bytes is not None:
            after_bytes = validate.integer("after_bytes", after_bytes, low=0)
        return self._set(_Rule("reset", validate.probability("rate", rate), _window(during), _prefixes(paths),
                               {"after_bytes": after_bytes}))

    def hang(self, *, rate: float = 1.0, seconds: float | None = None, during=None, paths=None) -> "HttpFaults":
        """Read the request and never answer: until the server stops, or for at most ``seconds``,
        after which the connection is closed without an answer. Clearing the rule does not release
        a request already hanging (its plan is fixed); stopping the service does."""
        if seconds is not None:
            seconds = validate.positive("seconds", seconds)
        return self._set(_Rule("hang", validate.probability("rate", rate), _window(during), _prefixes(paths),
                               {"seconds": seconds}))

    def clear(self, kind: str | None = None) -> "HttpFaults":
        """Remove every rule, or the rule of one ``kind``. Counters stay (see :meth:`reset_counts`)."""
        if kind is not None:
            validate.choice("kind", kind, KINDS)
        with self._lock:
            if kind is None:
                self._rules = {}
            else:
                self._rules = {k: r for k, r in self._rules.items() if k != kind}
        return self

    def _set(self, rule: _Rule) -> "HttpFaults":
        with self._lock:
            self._rules = {**self._rules, rule.kind: rule}    # a new dict: a reader never sees one half made
        return self

    # -- what is on, what was done ------------------------------------------------------------------

    def active(self) -> list[dict]:
        """One dict per rule that is on, in the order a request meets them."""
        rules = self._rules
        return [rules[k].describe() for k in KINDS if k in rules]

    @property
    def injected(self) -> dict[str, int]:
        """Faults applied so far, by kind (every kind present)."""
        with self._lock:
            return dict(self._injected)

    def reset_counts(self) -> "HttpFaults":
        with self._lock:
            self._injected = dict.fromkeys(KINDS, 0)
        return self

    # -- one request --------------------------------------------------------------------------------

    def plan(self, path: str) -> Plan:
        """Draw what the request for ``path`` meets (:data:`NO_FAULTS` when nothing applies)."""
        if not self._rules:
            return NO_FAULTS
        with self._lock:
            rules = self._rules
            elapsed = self._clock() - self._zero
            hits = {}
            for kind in KINDS:
                rule = rules.get(kind)
                if rule is None or not rule.covers(path, elapsed):
                    continue
                if rule.remaining is not None:
                    hit = True
                else:
                    hit = self._rngs[kind].random() < rule.rate
                if hit:
                    hits[kind] = rule
            if not hits:
                return NO_FAULTS
            if "hang" in hits:
                hits.pop("fail", None)
            plan, kinds = Plan(), []
            for kind, rule in hits.items():
                settings = rule.settings
                if kind == "slow":
                    latency = settings["latency"]
                    plan.delay = latency.value if isinstance(latency, Fixed) else latency.sample(self._rngs["slow"])
                elif kind == "hang":
                    plan.hang = settings["seconds"] if settings["seconds"] is not None else math.inf
                elif kind == "fail":
                    plan.status, plan.retry_after = settings["status"], settings["retry_after"]
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules = {k: r for k, r in rules.items() if k != "fail"}
                elif kind == "trickle":
                    plan.trickle = (settings["chunk"], settings["interval"])
                else:
                    plan.reset_after = -1 if settings["after_bytes"] is None else settings["after_bytes"]
                rule.injected += 1
                self._injected[kind] += 1
                kinds.append(kind)
            plan.kinds = tuple(kinds)
            return plan

    def __repr__(self) -> str:
        on = ", ".join(self._rules) or "none"
        return f"HttpFaults(seed={self.seed}, on: {on})"


def _window(during) -> tuple[float, float] | None:
    """``during`` as a (start, end) pair of seconds, 0 <= start < end (end may be ``math.inf``)."""
    if during is None:
        return None
    if isinstance(during, (str, bytes)) or not hasattr(during, "__len__") or len(during) != 2:
        raise validate.WrongType(f"during must be a (start, end) pair of seconds, e.g. (1.0, 3.0), "
                                 f"got {validate.show(during)}")
    start = validate.non_negative("during start", during[0])
    end = validate.number("during end", during[1], low=start, low_open=True, allow_inf=True)
    return (start, end)


def _prefixes(paths) -> tuple[str, ...] | None:
    """``paths`` as a tuple of prefixes, each starting with "/" (one string is one prefix)."""
    if paths is None:
        return None
    items = [paths] if isinstance(paths, str) else paths
    try:
        items = list(items)
    except TypeError:
        raise validate.WrongType(f"paths must be a path prefix such as '/orders' or a list of them, "
                                 f"got {validate.show(paths)}") from None
    if not items:
        raise ValueError("paths must hold at least one prefix (None means every path), got an empty list")
    for i, prefix in enumerate(items):
        validate.text(f"paths[{i}]", prefix)
        if not prefix.startswith("/"):
            raise ValueError(f"paths[{i}] must start with '/' (a path prefix such as '/orders'), got {prefix!r}")
    return tuple(items)


__all__ = ["HttpFaults", "Plan", "NO_FAULTS", "KINDS", "RETRY_AFTER_STATUSES", "retry_after_header"]
