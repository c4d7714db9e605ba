"""Checks for lab 07, a resilient httpx client that meets an SLO against live services.

The learner writes the pieces of a resilient client around httpx and the course's policy objects
(:class:`~resilience_sim.policies.RetryPolicy`, :class:`~resilience_sim.policies.Countdown`):

1. ``reason_for(status)``: an HTTP status in the course's reasons (None below 400; 429 the one 4xx
   retried, as in :func:`resilience_sim.live.attempts.reason_for_status`), and ``reason_for_error(err)``:
   an httpx failure, or the ``TimeoutError`` of task 3, in them;
2. ``retry_after(headers)``: the seconds a ``Retry-After`` header asks for (a number of seconds,
   fractions accepted, or an HTTP-date, which is in UTC), None when it is absent or unreadable;
3. ``fetch(http, method, url, limit_s, **options)``: one exchange through ``http`` that ends within
   ``limit_s`` seconds of the call, the wait for the headers and the body included: ``(status, headers,
   body)`` whatever the status, ``TimeoutError`` (or httpx's own timeout) when the time runs out,
   httpx's error when the connection breaks;
4. ``call(http, method, url, *, retry, rng, deadline_s, attempt_s=math.inf, idempotency_key=None,
   json=None)``: the retry loop: each attempt gets ``min(attempt_s, what is left of deadline_s)``, and
   ``retry.decide`` (given ``rng`` itself, the last wait as ``previous``, what is left as ``remaining``)
   says whether and when to try again; it returns the last attempt's answer, or raises the last
   attempt's error when that attempt got no answer;
5. ``make_client()`` → ``(http, settings)``: a new ``httpx.Client`` at each call and ``call``'s keyword
   settings that meet the SLO (:data:`SLO`) under the fault mix (:data:`MIX`), at the least extra load,
   over kept-alive connections, and without a retry storm when the catalog is down.

Every live check starts a :class:`~resilience_sim.live.services.Catalog` on 127.0.0.1 whose faults are a
:class:`_Recorder` (HttpFaults that also note when each request arrived and what it met, and can play a
script, one plan per request, so each case is exact), hands the learner's code the check's own httpx
client (which counts what goes through it), and stops everything on the way out. What the checks
measure, they measure at the server (attempts, the gap between a 503 and its retry, connections
accepted, orders created twice) or in the policy (what each ``retry.decide`` was given). Learner code
runs under :data:`~.feedback.CALL_LIMIT_S` a call; a loop that never ends is stopped and the learner's
own line named.
"""
from __future__ import annotations

import contextlib
import email.utils
import json as _json
import linecache
import math
import numbers
import os
import random
import re
import sysconfig
import threading
import time
from collections import Counter, namedtuple
from concurrent.futures import ThreadPoolExecutor

import httpx

from ..core.reasons import REASONS
from ..live.faults import HttpFaults, Plan
from ..live.services import Catalog
from ..policies import Constant, DecorrelatedJitter, RETRYABLE, RetryPolicy
from . import feedback as fb
from .feedback import message_only as _message_only, needs

__all__ = ["reasons", "retry_after", "fetch", "call", "slo", "run_slo", "needs", "MIX", "SLO", "least_load"]

#: The fault mix of the SLO run, as :class:`~resilience_sim.live.faults.HttpFaults` arguments, drawn
#: independently per request and per kind from the catalog's seeded streams.
MIX = {"fail": dict(status=503, rate=0.05, retry_after=0.05),
       "slow": dict(latency=0.05, rate=0.10),
       "trickle": dict(chunk=4, interval=0.05, rate=0.02),       # an item in 12 to 14 chunks: 0.6 to 0.7 s
       "reset": dict(rate=0.02)}
#: The SLO: ``requests`` GETs one after another; at least ``success`` of them answered (status below
#: 400), the p99 of all their times (failures included, nearest rank) at most ``p99_s`` seconds, and at
#: most ``load`` attempts per request reaching the server; then, with the catalog down (every request
#: answered 503), at most ``outage_load`` attempts per request.
SLO = {"requests": 200, "success": 0.99, "p99_s": 0.3, "load": 1.15, "outage_load": 3}
SLO_SEED = 1
#: Requests of the outage that follows the SLO run (the catalog answering 503 to all, no Retry-After).
OUTAGE_REQUESTS = 10
#: Bytes of JSON of the catalog's items 1..200 (those of the SLO run), the fewest and the most.
ITEM_BYTES = (47, 54)
#: attempt_s must clear the +50 ms slowdown by this much: closer, a busy machine decides the verdict.
ATTEMPT_MARGIN_S = 0.03

#: Seconds a deadline may be overrun, on a loaded machine: a chunk's gap (0.05 s) and scheduling. Every
#: case is built so that a wrong answer overruns by at least twice as much.
SLACK_S = 0.2
#: The check's own httpx client waits at most this long on any phase (its default timeout).
HTTP_TIMEOUT_S = 1.0
_TRICKLE = (2, 0.05)              # 2 bytes every 0.05 s: items 3 and 7 (49 and 48 bytes) take about 1.2 s
_BAD = frozenset({"fail", "reset", "trickle", "hang"})          # faults after which only a retry helps
_TIMEOUTS = (TimeoutError, httpx.TimeoutException)


def least_load(mix: dict = MIX) -> float:
    """Attempts per request of a client that retries exactly the attempts that met a 503, a reset or a
    trickle (longer than the p99 bound) and no other, as often as it takes: ``1 / (1 - p)``, ``p`` the
    chance an attempt meets one of them (kinds drawn independently). A limit on attempts lowers it a
    little (three bad draws in a row are rare); a run of 200 requests measures it within a few hundredths."""
    clean = 1.0
    for kind in ("fail", "reset", "trickle"):
        clean *= 1.0 - mix[kind]["rate"]
    return 1.0 / clean


# --- the live bench ---------------------------------------------------------------------------------
_Arrival = namedtuple("_Arrival", "at path kinds tag")


def _plan(*, status=None, retry_after=None, trickle=None, reset=False, hang=None, delay=0.0) -> Plan:
    """One scripted request's plan (the fields of :class:`~resilience_sim.live.faults.Plan`)."""
    plan, kinds = Plan(), []
    if delay:
        plan.delay = delay
        kinds.append("slow")
    if hang is not None:
        plan.hang = hang
        kinds.append("hang")
    if status is not None:
        plan.status, plan.retry_after = status, retry_after
        kinds.append("fail")
    if trickle:
        plan.trickle = trickle
        kinds.append("trickle")
    if reset:
        plan.reset_after = -1
        kinds.append("reset")
    plan.kinds = tuple(kinds)
    return plan


class _Recorder(HttpFaults):
    """The catalog's faults, noting each request as it arrives: ``arrivals`` holds ``(at, path, kinds,
    tag)``, ``at`` its ``time.monotonic()``, ``tag`` what the check set (the request in flight). A script
    (:meth:`play`) gives the next requests their plans in order; after it, the rules apply."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self._notes = threading.Lock()
        self.arrivals: list = []
        self.script: list = []
        self.tag = None

    def play(self, *steps: dict) -> None:
        plans = [_plan(**step) for step in steps]
        with self._notes:
            self.script = plans
            self.arrivals = []

    def plan(self, path: str) -> Plan:
        at = time.monotonic()
        with self._notes:
            scripted = self.script.pop(0) if self.script else None
        plan = super().plan(path) if scripted is None else scripted
        with self._notes:
            self.arrivals.append(_Arrival(at, path, frozenset(plan.kinds), self.tag))
        return plan



class _Bench:
    """A catalog with recorded faults, and the check's own httpx client ``http``, which counts the
    requests sent through it (``sent``). ``case(*script)`` starts a case: no rule, that script, every
    counter at zero."""

    def __init__(self, seed: int = 0, *, timeout: float = HTTP_TIMEOUT_S):
        self.faults = _Recorder(seed)
        self.catalog = Catalog(seed=seed, faults=self.faults)
        self.timeout, self.sent, self.http, self._accepted0 = timeout, 0, None, 0
        self._names = Counter()

    def __enter__(self) -> "_Bench":
        self.catalog.start()
        self.http = httpx.Client(timeout=self.timeout, event_hooks={"request": [self._count]})
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.http.close()
        finally:
            self.catalog.stop()

    def _count(self, request) -> None:
        self.sent += 1

    def url(self, path: str) -> str:
        return self.catalog.url + path

    def unique(self, tag: str) -> str:
        """A name never used on this catalog (an order id, an idempotency key): ``tag-1``, ``tag-2``..."""
        self._names[tag] += 1
        return f"{tag}-{self._names[tag]}"

    def case(self, *script: dict) -> "_Bench":
        self.faults.clear()
        self.faults.play(*script)
        self.catalog.reset_stats()
        self.sent, self._accepted0 = 0, self.catalog.accepted
        return self

    @property
    def requests(self) -> int:
        """Requests that reached the catalog in this case."""
        return len(self.faults.arrivals)

    @property
    def connections(self) -> int:
        return self.catalog.accepted - self._accepted0

    def gap(self) -> float:
        """Seconds between the first two arrivals of the case."""
        a = self.faults.arrivals
        return a[1].at - a[0].at


# --- running the learner's code ----------------------------------------------------------------------
_Ran = namedtuple("_Ran", "value error elapsed started")


def _function(fn, name: str) -> None:
    if not callable(fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.{name}({name}); got {fn!r}, "
                             f"which is not a function")


def _run(fn, name: str, shown: str, args=(), kwargs=None, *, hint=None, stuck: str = "",
         limit: float = fb.CALL_LIMIT_S) -> _Ran:
    """Call the learner's ``fn``: an httpx failure or a ``TimeoutError`` it raises is an answer here
    (``error``), any other exception a message; ``elapsed`` is its wall-clock time from ``started``
    (``time.monotonic()``). A run stopped for its time limit names the learner's own line."""
    advice = hint or (lambda exc: fb.signature_hint(name)(exc))
    value = error = None
    started = time.monotonic()
    try:
        with fb.learner_code(name, shown, advice, stuck=stuck, limit=limit):
            try:
                value = fn(*args, **(kwargs or {}))
            except (httpx.TransportError, TimeoutError) as err:
                error = err
            except NotImplementedError as exc:
                _unwritten(exc, name)
            except ValueError as exc:
                _time_went_back(exc, shown)
                raise
    except fb.TimedOut as stopped:
        raise _at_learners_line(stopped) from None
    return _Ran(value, error, time.monotonic() - started, started)


_LIBRARIES = tuple(os.path.abspath(p) + os.sep for p in {
    *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})        # and resilience_sim itself
_STOPPED_AT = re.compile(r" \(It was stopped at `.*?`\.\)")


def _at_learners_line(stopped: fb.TimedOut) -> fb.TimedOut:
    """``stopped`` naming the innermost line of the learner's own code (the time limit may strike inside
    httpx or contextlib, called from it), or no line when none is theirs."""
    up = stopped.__context__                     # the exception that stopped the learner's code
    line, tb = "", getattr(up, "__traceback__", None)
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not os.path.abspath(name).startswith(_LIBRARIES):
            line = fb._without_comment(linecache.getline(name, tb.tb_lineno).strip()) or line
        tb = tb.tb_next
    first, newline, rest = str(stopped).partition("\n")
    first = _STOPPED_AT.sub("", first) + (f" (It was stopped at `{line}`.)" if line else "")
    return fb.TimedOut(first + newline + rest)


def _time_went_back(exc: ValueError, shown: str) -> None:
    """A policy's "now must not go back", said as the fix: a ``now`` taken once and reused."""
    found = re.search(r"this (\w+) was given now=(\S+) last, then now=(\S+)", str(exc))
    if found is None:
        return
    what, last, then = found.groups()
    then = then.rstrip(".")
    raise AssertionError(f"{shown} raised ValueError: the {what} was given now={then} after now={last}, a time "
                         f"before it. A `now` taken earlier was used again: take now = time.monotonic() afresh just "
                         f"before each retry.decide and each countdown call (attempt_timeout, remaining); a policy's "
                         f"clock never goes back.") from None


def _unwritten(exc: NotImplementedError, name: str) -> None:
    """A stub reached from the learner's ``name``: say which function is not written yet (the
    innermost frame), since "call is not written yet" would be wrong when it is fetch."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    inner = tb.tb_frame.f_code.co_name
    if inner in (name, "<module>"):
        raise exc
    raise AssertionError(f"{inner} is not written yet (your {name} calls it): replace the line "
                         f"`raise NotImplementedError(...)` in {inner} with your code and run its cell again") from None


def _s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"


def _raised(err) -> str:
    text = str(err)
    return f"{type(err).__name__}({text!r})" if text else type(err).__name__


def _answer(value, shown: str) -> tuple:
    """``value`` as ``(status, headers, body)``, or a message saying what is wrong with it."""
    if value is None:
        raise AssertionError(f"{shown} returned None: did you forget `return status, headers, body`?")
    if isinstance(value, httpx.Response):
        raise AssertionError(f"{shown} returned the httpx.Response itself; return the tuple "
                             f"(response.status_code, response.headers, body), body being the bytes you read.")
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise AssertionError(f"{shown} should return (status, headers, body), got {value!r}")
    status, headers, body = value
    if isinstance(status, bool) or not isinstance(status, numbers.Integral):
        raise AssertionError(f"{shown} returned {_short(value)}: the first item should be the status, a whole "
                             f"number such as 200; the order is (status, headers, body).")
    if not hasattr(headers, "get"):
        raise AssertionError(f"{shown} returned {_short(value)}: the second item should be the response's "
                             f"headers (response.headers).")
    if isinstance(body, str):
        raise AssertionError(f"{shown} returned the body as text; return the bytes (b''.join(chunks)), which "
                             f"is what came over the wire.")
    if not isinstance(body, (bytes, bytearray)):
        raise AssertionError(f"{shown} returned {_short(value)}: the third item should be the body, bytes.")
    return int(status), headers, bytes(body)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --- task 1: reasons -----------------------------------------------------------------------------------
_STATUS_CASES = [(200, None), (201, None), (204, None), (301, None), (304, None), (399, None),
                 (400, "bad request"), (401, "unauthorized"), (403, "unauthorized"), (404, "not found"),
                 (405, "bad request"), (408, "bad request"), (409, "conflict"), (410, "bad request"),
                 (418, "bad request"), (422, "bad request"), (425, "bad request"), (429, "too many requests"),
                 (499, "bad request"), (500, "error"), (502, "error"),
                 (503, "unavailable"), (504, "error"), (599, "error")]
_ERROR_CASES = [(httpx.ConnectError("connection refused"), "down"), (httpx.ConnectTimeout("connect"), "timeout"),
                (httpx.ReadTimeout("read"), "timeout"), (httpx.WriteTimeout("write"), "timeout"),
                (httpx.PoolTimeout("pool"), "timeout"), (TimeoutError("no time left"), "timeout"),
                (httpx.ReadError("connection reset by peer"), "error"),
                (httpx.RemoteProtocolError("peer closed connection"), "error"),
                (httpx.WriteError("broken pipe"), "error")]
_RETRIED = "RetryPolicy retries it by default"
#: 4xx statuses some clients treat apart, which the table puts with the other 4xx ("bad request")
_OTHER_4XX = {408: "408 Request Timeout: the server gave up waiting for the request", 410: "410 Gone",
              425: "425 Too Early: TLS early data, which httpx never sends"}


def _reason(got, shown: str):
    if got is None or (isinstance(got, str) and got in REASONS):
        return got
    if isinstance(got, str):
        raise AssertionError(f"{shown} gave {got!r}, which is not one of the course's reasons: use those of the "
                             f"table ({', '.join(repr(r) for r in sorted(REASONS))}). RetryPolicy refuses any "
                             f"other with a ValueError.")
    raise AssertionError(f"{shown} should give a reason (a string such as 'not found') or None, got {got!r}")


def _status_cases(fn) -> None:
    got = {status: _reason(fb.call(fn, "reason_for", status), f"reason_for({status})") for status, _ in _STATUS_CASES}
    client = [s for s, want in _STATUS_CASES if want is not None and s < 500 and want not in RETRYABLE]
    if all(got[s] in RETRYABLE for s in client) and all(got[s] not in RETRYABLE for s in (500, 502, 504)):
        raise AssertionError(f"reason_for(404) gave {got[404]!r} and reason_for(500) {got[500]!r}: your test of "
                             f"4xx against 5xx looks inverted. 5xx is the server's trouble (retry it: 'error', "
                             f"503 'unavailable'); 4xx is the request's (never retried, but 429).")
    for status, want in _STATUS_CASES:
        g = got[status]
        if g == want:
            continue
        shown = f"reason_for({status}) gave {g!r}"
        if want is None:
            raise AssertionError(f"{shown}, expected None: a status below 400 is an answer, not a failure.")
        if g is None:
            raise AssertionError(f"{shown}, expected {want!r}: every status from 400 on is a failure.")
        if status == 429:
            raise AssertionError(f"{shown}, expected 'too many requests': 429 asks the client to come back later "
                                 f"(after its Retry-After), so it is the one 4xx that is retried.")
        if want in RETRYABLE and g not in RETRYABLE:
            raise AssertionError(f"{shown}, which is never retried: a {status} is the server's trouble and may pass, "
                                 f"expected {want!r} ({_RETRIED}).")
        if status in _OTHER_4XX:
            retried = f", and {_RETRIED}" if g in RETRYABLE else ""
            raise AssertionError(f"{shown}{retried}; expected 'bad request': the table puts {status} "
                                 f"({_OTHER_4XX[status]}) with the other 4xx, as the course's own client does "
                                 f"(resilience_sim.live.attempts.reason_for_status): only 404 is 'not found', and "
                                 f"429 is the one 4xx retried.")
        if want not in RETRYABLE and g in RETRYABLE:
            raise AssertionError(f"{shown}, and {_RETRIED}: a {status} comes back {status} on every try, so a retry "
                                 f"only adds load. Expected {want!r} (the table), which is never retried.")
        raise AssertionError(f"{shown}, expected {want!r} (see the table).")


def _error_cases(fn) -> None:
    for err, want in _ERROR_CASES:
        shown = f"reason_for_error({_raised(err)})"
        g = _reason(fb.call(fn, "reason_for_error", err), shown)
        if g == want:
            continue
        why = {"timeout": "a timeout of any phase (httpx.TimeoutException, ConnectTimeout included) and the "
                          "TimeoutError of your fetch are 'timeout'",
               "down": "a connection refused or failed (httpx.ConnectError) is 'down'",
               "error": "anything else on the wire (a reset, a broken body: httpx.ReadError, "
                        "RemoteProtocolError, WriteError) is 'error'"}[want]
        raise AssertionError(f"{shown} gave {g!r}, expected {want!r}: {why}.")


@_message_only
def reasons(reason_for, reason_for_error) -> None:
    """Task 1: ``reason_for(status)`` and ``reason_for_error(err)`` give the table's reasons."""
    _function(reason_for, "reason_for")
    _function(reason_for_error, "reason_for_error")
    _status_cases(reason_for)
    _error_cases(reason_for_error)
    fb.ok("reasons: below 400 None; 5xx and 429 retried ('error', 'unavailable', 'too many requests'), other 4xx "
          "never; timeouts 'timeout', a refused connection 'down', a broken one 'error'")


# --- task 2: Retry-After -------------------------------------------------------------------------------
_SECONDS_CASES = [("2", 2.0), ("0.05", 0.05), ("0.25", 0.25), ("0", 0.0), ("120", 120.0), (None, None), ("", None),
                  ("soon", None), ("-1", None), ("2s", None), ("nan", None), ("inf", None)]


def _headers(value) -> httpx.Headers:
    return httpx.Headers({} if value is None else {"Retry-After": value})


def _retry_after_call(fn, value):
    headers = _headers(value)
    shown = "retry_after(headers with no Retry-After)" if value is None else f"retry_after(Retry-After: {value!r})"

    def hint(exc) -> str:
        if isinstance(exc, KeyError):
            return (". A response may come without Retry-After: read it with headers.get('Retry-After'), which "
                    "gives None when it is missing.")
        if isinstance(exc, ValueError) and "int()" in str(exc):
            return (". int() reads whole numbers only, and the services send fractions (our extension to RFC 9110, "
                    "for short demos): use float(), and catch its ValueError for text that is not a number.")
        if isinstance(exc, ValueError):
            return (". A header is the server's text and may be anything: catch the ValueError and return None "
                    "(an unreadable hint is ignored, never obeyed).")
        return fb.signature_hint("retry_after")(exc)
    with fb.learner_code("retry_after", shown, hint):
        got = fn(headers)
    return got, shown


def _retry_after_cases(fn) -> str:
    """The seconds cases, then HTTP-dates; returns a note on dates ("" when they are read)."""
    for value, want in _SECONDS_CASES:
        got, shown = _retry_after_call(fn, value)
        if want is None:
            if got is not None:
                why = ("float() reads 'nan' and 'inf' too, and a wait of inf never ends: accept finite "
                       "numbers only (math.isfinite)" if value in ("nan", "inf") else
                       "a negative wait is no wait: a hint that is not a number of seconds >= 0 is ignored"
                       if value == "-1" else "a missing or unreadable hint is ignored, never obeyed")
                raise AssertionError(f"{shown} gave {got!r}, expected None: {why}.")
            continue
        if got is None:
            why = (" int() reads whole numbers only: the services send fractions (our extension to RFC 9110, which "
                   "allows whole seconds, for short demos): use float()." if "." in value else
                   " Does `if not seconds` turn a 0 into None? 0 means retry at once." if value == "0" else
                   " Do you read the header named Retry-After? headers.get('Retry-After') (any case matches)."
                   if value == "2" else "")
            raise AssertionError(f"{shown} gave None, expected {fb.fmt(want)}.{why}")
        if isinstance(got, str) or isinstance(got, bool) or not isinstance(got, numbers.Real):
            raise AssertionError(f"{shown} gave {got!r}, expected the number {fb.fmt(want)}: seconds as a float, "
                                 f"not the header's text.")
        if fb.close(float(got), 1000 * want, 1e-9) and want:
            raise AssertionError(f"{shown} gave {fb.fmt(got)}, expected {fb.fmt(want)}: milliseconds? Retry-After "
                                 f"is in seconds, and so is everything RetryPolicy takes.")
        if not fb.close(float(got), want, 1e-9):
            raise AssertionError(f"{shown} gave {fb.fmt(got)}, expected {fb.fmt(want)} (seconds).")
    with _west_of_utc() as hours:
        ahead = email.utils.formatdate(time.time() + 30, usegmt=True)
        past = email.utils.formatdate(time.time() - 30, usegmt=True)
        got_ahead, shown_ahead = _retry_after_call(fn, ahead)
        got_past, shown_past = _retry_after_call(fn, past)
    if got_ahead is None and got_past is None:
        return " (HTTP-dates not read: fine here, the services send seconds)"
    for got, shown, low, high, want in ((got_ahead, shown_ahead, 28.5, 30.5, "about 30"), (got_past, shown_past,
                                                                                         0.0, 0.0, "0")):
        if got is None or isinstance(got, bool) or not isinstance(got, numbers.Real):
            raise AssertionError(f"{shown} gave {got!r}, expected {want}: once you read dates, read both kinds "
                                 f"(a date in the past means: retry now).")
        if got > 1e6:
            raise AssertionError(f"{shown} gave {fb.fmt(got)}, a point in time: return the seconds from now, "
                                 f"email.utils.parsedate_to_datetime(value).timestamp() - time.time().")
        if not low - 1e-9 <= got <= high + 1e-9:
            off = (got - (low + high) / 2) / 3600
            if abs(off) > 0.4 and abs(off - round(off * 2) / 2) < 0.02:
                zone = (f"the check ran it with the clock {hours} hours west of UTC, so that reading the date "
                        f"as local time shows; on a machine set to UTC it hides" if hours else "your time zone")
                hours_off = round(abs(off) * 2) / 2
                raise AssertionError(f"{shown} gave {fb.fmt(got)}, expected {want} seconds: {hours_off:g} hours off, "
                                     f"the time zone ({zone}). An HTTP-date is in GMT (UTC), and time.mktime or "
                                     f"time.strptime read it as local time: email.utils.parsedate_to_datetime(value) "
                                     f"keeps its zone, then .timestamp() - time.time().")
            extra = " A date in the past asks for no wait: max(0.0, ...)." if got < 0 else ""
            raise AssertionError(f"{shown} gave {fb.fmt(got)}, expected {want} seconds.{extra}")
    return ", HTTP-dates (in UTC) as seconds from now"


@contextlib.contextmanager
def _west_of_utc(hours: int = 5):
    """Local time ``hours`` west of UTC inside (POSIX ``TZ``, no daylight saving, no time-zone data
    needed), so that a date read as local time is off by them on every machine; yields ``hours``, or 0
    where ``time.tzset`` does not exist (Windows) and local time stays as it is."""
    if not hasattr(time, "tzset"):
        yield 0
        return
    before = os.environ.get("TZ")
    os.environ["TZ"] = f"WEST+{hours:02d}"
    time.tzset()
    try:
        yield hours
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@_message_only
def retry_after(fn) -> None:
    """Task 2: ``retry_after(headers)`` gives the seconds of a ``Retry-After`` (fractions accepted), None
    when it is missing or not a number of seconds >= 0; HTTP-dates are read or ignored (None)."""
    _function(fn, "retry_after")
    note = _retry_after_cases(fn)
    fb.ok(f"retry_after: '2' and '0.05' as 2 and 0.05 s, a missing or unreadable header (nan, inf, -1, soon) None"
          f"{note}")


# --- task 3: fetch within a limit ----------------------------------------------------------------------
def _fetch_hint(exc) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return (". fetch returns every answer, whatever its status (don't call raise_for_status()): call decides "
                "what a 404 or a 503 means.")
    if isinstance(exc, ValueError) and "Timeout value out of range" in str(exc):
        return (". A timeout below zero: with limit_s <= 0 the time is up already; raise TimeoutError before "
                "sending anything.")
    if isinstance(exc, httpx.StreamConsumed) or isinstance(exc, httpx.ResponseNotRead):
        return (". Read the body once, chunk by chunk, inside `with http.stream(...) as response:`; keep the chunks "
                "and join them.")
    return fb.signature_hint("fetch")(exc)


_FETCH_STUCK = ("a loop with no end, or a wait? fetch sends one request and reads its answer once; it never sleeps "
                "and never retries.")


def _fetch(fn, bench: _Bench, method: str, path: str, limit, **options) -> tuple[_Ran, str]:
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    shown = f"fetch(http, {method!r}, catalog + {path!r}, {fb.fmt(limit)}{extra})"
    ran = _run(fn, "fetch", shown, (bench.http, method, bench.url(path), limit), options, hint=_fetch_hint,
               stuck=_FETCH_STUCK)
    return ran, shown


def _fetch_ok(fn, bench, path, limit, what, **options):
    """A request that must be answered: its (status, headers, body)."""
    ran, shown = _fetch(fn, bench, options.pop("method", "GET"), path, limit, **options)
    if ran.error is not None:
        units = (f" It gave up after {_s(ran.elapsed)}: limit_s is in seconds ({fb.fmt(limit)} s), not milliseconds."
                 if isinstance(ran.error, _TIMEOUTS) else "")
        raise AssertionError(f"{shown} raised {_raised(ran.error)} on {what}.{units}")
    return (*_answer(ran.value, shown), shown, ran)


def _fetch_healthy(fn, bench: _Bench) -> None:
    bench.case()
    for n in (7, 8, 9):
        status, headers, body, shown, _ = _fetch_ok(fn, bench, f"/items/{n}", 1.0, "a healthy answer")
        if status != 200:
            raise AssertionError(f"{shown} gave status {status} for item {n}, which exists: expected 200.")
        if headers.get("Content-Type") != "application/json" or headers.get("content-type") is None:
            raise AssertionError(f"{shown}: headers.get('Content-Type') gave {headers.get('Content-Type')!r}, expected "
                                 f"'application/json'. Return response.headers itself (an httpx.Headers, where a "
                                 f"name matches in any case), not a dict made from it.")
        length = int(headers.get("Content-Length"))
        if len(body) != length:
            raise AssertionError(f"{shown} returned {len(body)} bytes of body, the answer has {length} "
                                 f"(Content-Length): keep every chunk you read and join them, b''.join(chunks).")
        if _json.loads(body).get("id") != n:
            raise AssertionError(f"{shown} returned the body {body!r}, which is not item {n}.")
    if bench.sent < bench.requests:
        raise AssertionError(f"{bench.requests - bench.sent} of the 3 requests fetch made did not go through `http`, "
                             f"the client the check handed it: a new client per request (httpx.get, or "
                             f"httpx.Client() inside fetch) opens a new connection for each one (the server accepted "
                             f"{bench.connections} for 3 requests one after another) and pays the TCP handshake every "
                             f"time. Send through http: `with http.stream(method, url, ...) as response:`.")
    if bench.connections > 1:
        raise AssertionError(f"The server accepted {bench.connections} connections for 3 requests one after another "
                             f"through http: one kept-alive connection should serve them all. Do you close http, or "
                             f"send `Connection: close`?")


def _fetch_errors_are_answers(fn, bench: _Bench) -> None:
    bench.case()
    status, _, _, shown, _ = _fetch_ok(fn, bench, "/items/0", 1.0, "a 404 (item 0 does not exist)")
    if status != 404:
        raise AssertionError(f"{shown} gave status {status}, expected 404 (there is no item 0).")
    bench.case(dict(status=503, retry_after=0.25))
    status, headers, _, shown, _ = _fetch_ok(fn, bench, "/items/7", 1.0, "a 503 with Retry-After: 0.25")
    if status != 503 or headers.get("Retry-After") != "0.25":
        raise AssertionError(f"{shown} gave status {status} and Retry-After {headers.get('Retry-After')!r}, expected 503 "
                             f"and '0.25' (the answer the server sent).")


def _fetch_passes_options(fn, bench: _Bench) -> None:
    bench.case()
    key = bench.unique("fetch")
    options = dict(method="POST", headers={"Idempotency-Key": key}, json={"order": key})
    replayed = []
    for _ in range(2):
        status, headers, _, shown, _ = _fetch_ok(fn, bench, "/orders", 1.0, "an order", **dict(options))
        if status != 201:
            raise AssertionError(f"{shown} gave status {status}, expected 201 (created). Are headers= and json= "
                                 f"handed on to http.stream(method, url, ..., **options)?")
        replayed.append(headers.get("Idempotent-Replayed"))
    created = bench.catalog.stats()["orders_created"]
    if created != 1 or replayed[1] != "true":
        raise AssertionError(f"The same order sent twice with one Idempotency-Key created {created} orders (expected 1, "
                             f"the second answer replayed): fetch lost the headers on the way. Hand **options on to "
                             f"http.stream.")


def _fetch_in_time(ran: _Ran, shown: str, limit: float, what: str, advice: str) -> None:
    if ran.error is None:
        raise AssertionError(f"{shown} returned after {_s(ran.elapsed)}, {_s(ran.elapsed - limit)} past its limit, "
                             f"{what}. {advice}")
    if not isinstance(ran.error, _TIMEOUTS):
        raise AssertionError(f"{shown} raised {_raised(ran.error)} after {_s(ran.elapsed)}, {what}; expected a "
                             f"TimeoutError once its {fb.fmt(limit)} s were up.")
    if ran.elapsed > limit + SLACK_S:
        raise AssertionError(f"{shown} raised {_raised(ran.error)} only after {_s(ran.elapsed)}, {what}: "
                             f"{_s(ran.elapsed - limit)} past its limit. {advice}")


def _fetch_deadline(fn, bench: _Bench) -> None:
    bench.case(dict(delay=0.1))
    _fetch_ok(fn, bench, "/items/7", 0.6, "an answer that came after 0.1 s")
    bench.case(dict(trickle=_TRICKLE))
    ran, shown = _fetch(fn, bench, "GET", "/items/7", 0.3)
    first = 1.0                                     # the limit of every earlier fetch of this check
    kept = (f"It stopped after about {_s(first)}, the limit_s of the first fetch the check made: does fetch keep "
            f"a limit from an earlier call (a global, a default argument)? Use this call's limit_s."
            if ran.error is not None and abs(ran.elapsed - first) < 0.15 else "")
    _fetch_in_time(ran, shown, 0.3, "on a body that came 2 bytes every 0.05 s (1.2 s in all)", kept or
                   "httpx's timeouts are per phase and per read: a read that brings 2 bytes every 0.05 s never trips "
                   "them. Stream the body (`for chunk in response.iter_bytes():`) and check the time after each "
                   "chunk.")
    delay, limit = 0.4, 0.5
    bench.case(dict(delay=delay, trickle=_TRICKLE))
    ran, shown = _fetch(fn, bench, "GET", "/items/7", limit)
    late = ran.elapsed > delay + limit - 0.05
    _fetch_in_time(ran, shown, limit, f"on an answer whose headers came after {_s(delay)}, then a body of 2 bytes "
                   f"every 0.05 s", (f"It stopped about {_s(limit)} after the headers came: your clock started "
                                     f"then. " if late else "")
                   + "limit_s counts from the call, the wait for the headers included: take until = "
                     "time.monotonic() + limit_s before http.stream, not inside its block.")
    bench.case(dict(hang=1.5))
    ran, shown = _fetch(fn, bench, "GET", "/items/7", 0.3)
    own = HTTP_TIMEOUT_S - 0.1 <= ran.elapsed <= HTTP_TIMEOUT_S + 0.4
    _fetch_in_time(ran, shown, 0.3, "on a server that never answered",
                   ("That is the check's client's own timeout (1 s): yours was never applied. " if own else "")
                   + "Pass timeout=limit_s to http.stream so that connecting, sending and the wait for the "
                     "headers are bounded too.")


def _fetch_reset(fn, bench: _Bench) -> None:
    bench.case(dict(reset=True))
    ran, shown = _fetch(fn, bench, "GET", "/items/7", 1.0)
    if ran.error is None:
        body = ran.value[2] if isinstance(ran.value, (tuple, list)) and len(ran.value) == 3 else ran.value
        raise AssertionError(f"{shown} returned {_short(body)} although the connection was reset halfway through the "
                             f"body: let httpx's error (ReadError, RemoteProtocolError) go up, so that call can "
                             f"retry; never return half an answer.")
    if isinstance(ran.error, TimeoutError):
        raise AssertionError(f"{shown} raised {_raised(ran.error)} when the connection was reset: raise TimeoutError "
                             f"only when time runs out, and let httpx's own error go up as it is.")


def _fetch_no_time(fn, bench: _Bench) -> None:
    for limit in (0.0, -0.01):
        bench.case()
        ran, shown = _fetch(fn, bench, "GET", "/items/7", limit)
        if ran.error is None:
            raise AssertionError(f"{shown} returned an answer with no time left: with limit_s <= 0, raise "
                                 f"TimeoutError at once (a deadline already passed is not a new chance).")
        if not isinstance(ran.error, _TIMEOUTS):
            raise AssertionError(f"{shown} raised {_raised(ran.error)}; with limit_s <= 0 raise TimeoutError at once.")


@_message_only
def fetch(fn) -> None:
    """Task 3: ``fetch(http, method, url, limit_s, **options)``: answers whole and through ``http`` (one
    connection), error statuses returned, options handed on, a trickle, slow headers then a trickle, and a
    hang cut at ``limit_s`` from the call, a reset raised, no time left a ``TimeoutError``."""
    _function(fn, "fetch")
    with _Bench() as bench:
        _fetch_healthy(fn, bench)
        _fetch_errors_are_answers(fn, bench)
        _fetch_passes_options(fn, bench)
        _fetch_deadline(fn, bench)
        _fetch_reset(fn, bench)
        _fetch_no_time(fn, bench)
    fb.ok("fetch: answers read whole through one connection, 404 and 503 returned, a trickle (1.2 s) and a hang cut "
          "at their 0.3 s, slow headers then a trickle cut 0.5 s after the call, a reset raised, no time left a "
          "TimeoutError")


# --- task 4: the retry loop ----------------------------------------------------------------------------
_CALL_STUCK = ("your loop did not end: does it stop when retry.decide returns None, and does the attempt number "
               "grow by one at each turn? (Or a wait longer than the deadline: retry.decide refuses one when you "
               "pass remaining=.)")


_Asked = namedtuple("_Asked", "now attempt rng previous remaining wait")


class _Policy(RetryPolicy):
    """A RetryPolicy that shows as the learner would write it, and notes in ``asked`` what each
    ``decide`` was given and gave (an :class:`_Asked` per call that returned)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[_Asked] = []

    def decide(self, now, attempt, reason, rng=None, **options):
        wait = super().decide(now, attempt, reason, rng, **options)
        self.asked.append(_Asked(now, attempt, rng, options.get("previous"), options.get("remaining"), wait))
        return wait

    def __repr__(self) -> str:
        return f"RetryPolicy({self.max_attempts}, {self.backoff!r})"


def _call_hint(exc) -> str:
    """What a failure inside the learner's call means, when the policy's or httpx's words do not say it."""
    text = str(exc)
    if isinstance(exc, ValueError) and text.startswith("rng must be"):
        return (". Hand retry.decide the rng that call was given, retry.decide(now, n, reason, rng, ...): a jittered "
                "backoff draws from it, and the check seeds it so that a run can be repeated.")
    if isinstance(exc, ValueError) and re.match(r"attempt must be a whole number >= 1, got (0|-)", text):
        return (". Off by one: decide(now, n, ...) takes the number of the attempt that just failed, 1 for the first "
                "(count the attempt before you send it).")
    if isinstance(exc, TypeError) and "Header value must be str or bytes" in text:
        return (". With idempotency_key=None send no Idempotency-Key header at all: headers = {'Idempotency-Key': "
                "idempotency_key} if idempotency_key else {}.")
    return fb.signature_hint("call")(exc)


def _call(fn, bench: _Bench, method: str, path: str, *, retry=None, deadline_s=2.0, seed=1, rng=None,
          limit=fb.CALL_LIMIT_S, stuck=_CALL_STUCK, **extra) -> tuple[_Ran, str]:
    retry = retry if retry is not None else _Policy(3, Constant(0.02))
    kwargs = dict(retry=retry, rng=rng or random.Random(seed), deadline_s=deadline_s, **extra)
    shown_kw = "".join(f", {k}={'rng' if k == 'rng' else repr(v) if not isinstance(v, float) else fb.fmt(v)}"
                       for k, v in kwargs.items())
    shown = f"call(http, {method!r}, catalog + {path!r}{shown_kw})"
    ran = _run(fn, "call", shown, (bench.http, method, bench.url(path)), kwargs, hint=_call_hint, stuck=stuck,
               limit=limit)
    return ran, shown


def _call_answer(ran: _Ran, shown: str, what: str, deadline_s: float = 2.0) -> tuple:
    if ran.error is not None:
        units = (f" deadline_s is in seconds ({fb.fmt(deadline_s)} s here), not milliseconds."
                 if isinstance(ran.error, _TIMEOUTS) and ran.elapsed < 0.05 * deadline_s else "")
        raise AssertionError(f"{shown} raised {_raised(ran.error)} after {_s(ran.elapsed)} on {what}.{units}")
    return _answer(ran.value, shown)


def _attempts(bench: _Bench) -> str:
    n = bench.requests
    return f"{n} attempt{'s' * (n != 1)}"


def _call_healthy(fn, bench: _Bench) -> None:
    bench.case()
    for n in (3, 4, 5):
        ran, shown = _call(fn, bench, "GET", f"/items/{n}")
        status, _, body = _call_answer(ran, shown, "a healthy answer")
        if status != 200 or _json.loads(body).get("id") != n:
            raise AssertionError(f"{shown} gave status {status} and body {body!r}, expected 200 and item {n}.")
    if bench.requests != 3:
        raise AssertionError(f"3 healthy calls reached the server {bench.requests} times: one attempt each.")
    if bench.sent < bench.requests:
        raise AssertionError(f"{bench.requests - bench.sent} of the 3 requests did not go through `http`, the client "
                             f"the check handed call: a new client per request (httpx.get, or httpx.Client() inside "
                             f"call or fetch) opens a new connection each time (the server accepted "
                             f"{bench.connections} for 3 calls one after another). Hand http on to fetch.")
    bench.case(dict(delay=0.1))
    ran, shown = _call(fn, bench, "GET", "/items/3", deadline_s=1.0)
    _call_answer(ran, shown, "an answer that takes 0.1 s", deadline_s=1.0)


def _call_client_errors(fn, bench: _Bench) -> None:
    for script, path, status in ((dict(status=400), "/items/3", 400), ({}, "/items/0", 404),
                                 (dict(status=403), "/items/3", 403)):
        bench.case(script)
        ran, shown = _call(fn, bench, "GET", path)
        if bench.requests > 1:
            raise AssertionError(f"{shown} retried a {status}: the server saw {_attempts(bench)}. A {status} is an "
                                 f"answer about the request, the same on every try; only 429 and 5xx are retried "
                                 f"(reason_for gives a reason that retry.decide refuses: pass it on).")
        got = _call_answer(ran, shown, f"a {status}")
        if got[0] != status:
            raise AssertionError(f"{shown} gave status {got[0]}, expected the server's {status}.")


def _call_attempts(fn, bench: _Bench) -> None:
    """Three calls in a row with one policy against a server that answers 500: 3 attempts each. Run first
    in the check, so that an attempt counter kept from call to call shows as counts that change."""
    retry = _Policy(3, Constant(0.02))
    counts = []
    for turn in range(3):
        bench.case()
        bench.faults.fail(500)
        ran, shown = _call(fn, bench, "GET", "/items/3", retry=retry)
        counts.append(bench.requests)
        if len(set(counts)) > 1:
            raise AssertionError(f"{shown}, called {len(counts)} times in a row with one policy against a server that "
                                 f"answers 500 every time, made {' attempts, then '.join(map(str, counts))}: does call "
                                 f"keep something from one call to the next (an attempt counter or the last wait in a "
                                 f"global, a default argument, an attribute)? Start each call afresh.")
        n = counts[-1]
        if n == 0:
            _call_answer(ran, shown, "a server that answers 500 every time")      # says why, if it raised
            raise AssertionError(f"{shown} returned {_short(ran.value)} without sending anything: send each attempt "
                                 f"with fetch(http, method, url, limit, ...).")
        if n == 1:
            raise AssertionError(f"{shown} made 1 attempt against a server that answers 500 every time: a 500 is "
                                 f"retried ({_RETRIED}). {_why_stopped(retry)}")
        if n != 3:
            off = (" Off by one: decide(now, attempt, ...) takes the number of the attempt that just failed, 1 for "
                   "the first call, so the first decide gets 1." if n in (2, 4) else
                   " Does your loop stop when retry.decide returns None?" if n > 4 else "")
            raise AssertionError(f"{shown} made {n} attempts against a server that answers 500 every time; "
                                 f"RetryPolicy(3, ...) allows 3 in all (the first call counts).{off}")
        status, *_ = _call_answer(ran, shown, "three 500s")
        if status != 500:
            raise AssertionError(f"{shown} gave status {status}, expected 500: when retry.decide says stop, return "
                                 f"the last answer.")


def _why_stopped(retry: RetryPolicy) -> str:
    """What the policy's own log says about the learner's first decide (the check's policy is fresh)."""
    if not retry.refusals and not retry.retries:
        return "You never asked retry.decide: ask it after each failed attempt."
    _, attempt, reason, why = retry.refusals[0]
    return {"deadline": "retry.decide refused for the deadline: the remaining= you gave it was shorter than a 0.02 s "
                        "wait, with 2 s to go. deadline_s is in seconds (2 s here), not milliseconds; remaining is "
                        "what is left of it, countdown.remaining(now).",
            "not retryable": f"You told retry.decide the reason was {reason!r}, which is not retried: a 500 is "
                             f"'error' (reason_for(500)).",
            "not idempotent": "You passed idempotent=False for a GET: GET is idempotent, retried freely.",
            "max attempts": f"You passed attempt={attempt} to the first retry.decide: it takes the number of this "
                            f"call's attempt that just failed, 1 for its first (a counter kept from earlier calls "
                            f"starts too high)."}[why]


def _call_retry_after(fn, bench: _Bench) -> None:
    for status, wait in ((503, 0.25), (429, 0.15)):
        bench.case(dict(status=status, retry_after=wait))
        ran, shown = _call(fn, bench, "GET", "/items/3")
        if bench.requests == 1:
            raise AssertionError(f"{shown} did not retry a {status} with Retry-After: {fb.fmt(wait)} (the server saw "
                                 f"1 attempt); {status} is retried ({_RETRIED}).")
        got = _call_answer(ran, shown, f"a {status} then an answer")
        if got[0] != 200:
            raise AssertionError(f"{shown} gave status {got[0]}; the retry was answered 200.")
        gap = bench.gap()
        if gap < 0.98 * wait:
            raise AssertionError(f"{shown}: the server answered {status} with Retry-After: {fb.fmt(wait)}, and your retry "
                                 f"came {_s(gap)} later. Honour it: retry.decide(..., retry_after=retry_after(headers)) "
                                 f"waits at least that long (the backoff here is only 0.02 s).")


def _decide_contract(asked: list, rng, shown: str) -> None:
    """What one call gave ``retry.decide``: the ``rng`` it was given, and as ``previous`` None at first,
    then the wait the last decide gave (a wait measured around the sleep passes too)."""
    for i, a in enumerate(asked):
        if a.rng is not rng:
            given = "rng=None" if a.rng is None else f"another generator ({type(a.rng).__name__})"
            raise AssertionError(f"{shown}: retry.decide was given {given}, not the rng that call was given. Hand rng "
                                 f"on as it is, retry.decide(now, n, reason, rng, ...): the check seeds it so that a "
                                 f"run can be repeated, and a random.Random() of your own draws other waits every run.")
        want = None if i == 0 else asked[i - 1].wait
        if want is None and a.previous is None:
            continue
        if i == 0:
            raise AssertionError(f"{shown}: its first retry.decide got previous={fb.fmt(a.previous)}, a wait from an "
                                 f"earlier call (kept in a global, a default argument, an attribute?). Each call starts "
                                 f"afresh: previous = None until this call has waited once.")
        if a.previous is None:
            raise AssertionError(f"{shown}: retry.decide number {i + 1} got previous=None after a wait of "
                                 f"{fb.fmt(want)}. Pass the wait you slept last, previous=wait: decorrelated jitter "
                                 f"draws each wait from [base, 3 × previous], and with None it never grows past "
                                 f"3 × base.")
        if not math.isclose(a.previous, want, rel_tol=0.25, abs_tol=0.02):
            raise AssertionError(f"{shown}: retry.decide number {i + 1} got previous={fb.fmt(a.previous)}, but the "
                                 f"wait before it was {fb.fmt(want)}: previous is the wait you slept last.")


def _call_jitter(fn, bench: _Bench) -> None:
    """Two calls in a row with one DecorrelatedJitter policy against a server that answers 500: the
    seeded rng reaches decide, ``previous`` chains the waits within a call and starts afresh at the next,
    and each wait is slept."""
    base, cap = 0.02, 0.2
    retry = _Policy(3, DecorrelatedJitter(base, cap))
    for seed in (7, 8):
        bench.case()
        bench.faults.fail(500)
        rng, before = random.Random(seed), len(retry.asked)
        ran, shown = _call(fn, bench, "GET", "/items/3", retry=retry, rng=rng)
        asked = retry.asked[before:]
        _decide_contract(asked, rng, shown)
        twin, waits = random.Random(seed), [a.wait for a in asked if a.wait is not None]
        drawn = [min(cap, twin.uniform(base, 3 * (base if a.previous is None else a.previous)))
                 for a in asked if a.wait is not None]
        if waits != drawn:
            raise AssertionError(f"{shown}: retry.decide gave the waits {', '.join(map(fb.fmt, waits))}, but rng, "
                                 f"seeded {seed}, gives {', '.join(map(fb.fmt, drawn))}: does call draw from rng itself, "
                                 f"or seed it again? Leave rng to retry.decide.")
        gaps = [b.at - a.at for a, b in zip(bench.faults.arrivals, bench.faults.arrivals[1:])]
        short = [(gap, wait) for gap, wait in zip(gaps, waits) if gap < 0.95 * wait - 0.002]
        if short:
            gap, wait = short[0]
            raise AssertionError(f"{shown}: retry.decide said wait {fb.fmt(wait)} s, and the next attempt came "
                                 f"{_s(gap)} later: sleep what it gives, time.sleep(wait) (seconds).")
        _call_answer(ran, shown, "three 500s")


def _call_idempotent_methods(fn, bench: _Bench) -> None:
    for method in ("PUT", "DELETE"):
        bench.case(dict(status=503), {})                # then the route's answer: 405, the catalog has none
        retry = _Policy(3, Constant(0.02))
        ran, shown = _call(fn, bench, method, "/items/3", retry=retry)
        if bench.requests == 1:
            why = (f"You passed idempotent=False for a {method}. " if retry.refused["not idempotent"] else "")
            raise AssertionError(f"{shown} did not retry a 503 (the server saw 1 attempt). {why}{method} is idempotent "
                                 f"(RFC 9110, section 9.2.2): sending it twice leaves the server as sending it once, so "
                                 f"it is retried like a GET: idempotent=method in IDEMPOTENT (GET, HEAD, OPTIONS, PUT, "
                                 f"DELETE); only POST needs a key.")
        _call_answer(ran, shown, f"a 503, then the catalog's answer to a {method}")


def _call_transport_errors(fn, bench: _Bench) -> None:
    bench.case()
    bench.faults.reset()
    ran, shown = _call(fn, bench, "GET", "/items/3")
    n = bench.requests
    if n != 3:
        raise AssertionError(f"{shown} made {n} attempt{'s' * (n != 1)} against a server that resets every "
                             f"connection halfway through the body; RetryPolicy(3, ...) allows 3. A broken "
                             f"connection is retried: reason_for_error(err) gives the reason to hand to retry.decide.")
    if ran.error is None:
        raise AssertionError(f"{shown} returned {_short(ran.value)} after 3 resets: when no attempt got an answer, "
                             f"raise the last error (`raise err`), so that the caller sees what happened.")


def _call_retry_after_past_deadline(fn, bench: _Bench) -> None:
    bench.case(dict(status=503, retry_after=5))
    ran, shown = _call(fn, bench, "GET", "/items/3", deadline_s=0.4, limit=1.0, stuck=(
        "it was still at it: the server asked for 5 s (Retry-After: 5) with only 0.4 s of the deadline left. Pass "
        "remaining= to retry.decide: it refuses a wait that would outlast the deadline, and you return the 503."))
    if bench.requests > 1:
        raise AssertionError(f"{shown}: the server asked for 5 s (Retry-After: 5) and you retried after "
                             f"{_s(bench.gap())}, against its wish. Pass remaining= to retry.decide: a wait longer "
                             f"than what is left of the deadline is refused, and call returns the 503 at once.")
    if ran.elapsed > 0.2:
        raise AssertionError(f"{shown} took {_s(ran.elapsed)} to give up: the server asked for 5 s, more than the 0.4 s "
                             f"left, so there is nothing to wait for. retry.decide(..., remaining=...) returns None "
                             f"at once: return the 503.")
    got = _call_answer(ran, shown, "a 503 asking for 5 s")
    if got[0] != 503:
        raise AssertionError(f"{shown} gave status {got[0]}, expected the server's 503.")


def _call_deadline(fn, bench: _Bench) -> None:
    deadline = 0.6
    retry = _Policy(5, Constant(0.4))
    bench.case(dict(status=503), dict(trickle=_TRICKLE))
    ran, shown = _call(fn, bench, "GET", "/items/3", retry=retry, deadline_s=deadline)
    if ran.elapsed > deadline + SLACK_S:
        raise AssertionError(f"{shown} took {_s(ran.elapsed)}, {_s(ran.elapsed - deadline)} past its deadline: a 503, "
                             f"a wait of 0.4 s, then a body that trickles for 1.2 s. The deadline covers the whole "
                             f"call, waits and attempts: hand fetch what is left of it.{_remaining_hint(retry, ran)}")
    if ran.error is None:
        raise AssertionError(f"{shown} returned {_short(ran.value)}; its last attempt ran out of time: if the last "
                             f"attempt got no answer, raise its error (the earlier 503 is not the answer to this call).")
    if not isinstance(ran.error, _TIMEOUTS):
        raise AssertionError(f"{shown} raised {_raised(ran.error)}; expected the TimeoutError of its last attempt.")


def _remaining_hint(retry: _Policy, ran: _Ran) -> str:
    """Why a call ran past its deadline, from what its decides were given."""
    deadline = 0.6
    for a in retry.asked:
        left = max(0.0, deadline - (a.now - ran.started))
        if a.remaining is None:
            return " Pass remaining= to retry.decide: it refuses a wait that would outlast the deadline."
        if a.remaining > 100 * deadline:
            return f" remaining={fb.fmt(a.remaining)}: milliseconds? remaining is in seconds, like deadline_s."
        if a.remaining > left + 0.1:
            return (f" The retry.decide {_s(a.now - ran.started)} into the call got remaining={fb.fmt(a.remaining)}, "
                    f"with {_s(left)} left: remaining is what is left of the deadline at that moment, "
                    f"countdown.remaining(now), not the whole deadline_s.")
    if 0.95 < ran.elapsed < 1.3:
        return (" Each attempt seems to get the whole deadline_s: give it what is left, "
                "countdown.attempt_timeout(now, attempt_s).")
    return ""


def _call_attempt_limit(fn, bench: _Bench) -> None:
    bench.case(dict(trickle=_TRICKLE), {})
    ran, shown = _call(fn, bench, "GET", "/items/3", deadline_s=1.5, attempt_s=0.2)
    if bench.requests == 1 or ran.elapsed > 0.2 + 0.02 + SLACK_S:
        raise AssertionError(f"{shown} took {_s(ran.elapsed)} with {_attempts(bench)}: the first attempt met a body "
                             f"that trickles for 1.2 s. Each attempt gets at most attempt_s (here 0.2 s) of what is "
                             f"left, min(attempt_s, until - now); then a timeout is retried like any failure.")
    got = _call_answer(ran, shown, "a trickle, then an answer")
    if got[0] != 200:
        raise AssertionError(f"{shown} gave status {got[0]}; the second attempt was answered 200.")


def _call_post(fn, bench: _Bench) -> None:
    bench.case(dict(reset=True), {})
    body = {"order": bench.unique("lab")}
    ran, shown = _call(fn, bench, "POST", "/orders", json=body)
    stats = bench.catalog.stats()
    if bench.requests > 1 and stats["duplicate_orders"] == 0:
        raise AssertionError(f"{shown} retried a POST that its caller gave no idempotency key ({_attempts(bench)}); "
                             f"the server created the order once and replayed it, so your call seems to send a key of "
                             f"its own. The task: without idempotency_key, a POST is sent once and never retried, "
                             f"whatever call could add, since only the caller knows which requests are the same order "
                             f"(a key made inside call is new at each call, a user's second click included). Pass "
                             f"idempotent=False and idempotency_key (None here) to retry.decide, which then refuses.")
    if bench.requests > 1:
        raise AssertionError(f"{shown} retried a POST without an idempotency key: the server created order "
                             f"{body['order']!r} {stats['orders_created']} times (duplicate_orders = "
                             f"{stats['duplicate_orders']}). The reset came after the order was made; only the answer "
                             f"was lost. A POST is not idempotent: pass idempotent=False (for POST) and the "
                             f"idempotency_key to retry.decide, which then refuses.")
    if ran.error is None:
        raise AssertionError(f"{shown} returned {_short(ran.value)} when its only attempt was reset: raise the error.")
    bench.case(dict(reset=True), {})
    body = {"order": bench.unique("lab")}
    key = f"key-{body['order']}"
    ran, shown = _call(fn, bench, "POST", "/orders", json=body, idempotency_key=key)
    stats = bench.catalog.stats()
    if stats["orders_created"] > 1:
        raise AssertionError(f"{shown} created order {body['order']!r} {stats['orders_created']} times: the retry did "
                             f"not carry the key. Send headers={{'Idempotency-Key': idempotency_key}} on every "
                             f"attempt, the same key each time, so that the server replays its first answer.")
    if bench.requests == 1:
        raise AssertionError(f"{shown} did not retry the reset POST although it has an idempotency key: with one, a "
                             f"retry is safe (the server replays its first answer). Pass idempotency_key to "
                             f"retry.decide.")
    got = _call_answer(ran, shown, "a reset, then the replayed answer")
    if got[0] != 201 or stats["replayed"] != 1:
        raise AssertionError(f"{shown} gave status {got[0]} with {stats['replayed']} answer(s) replayed; expected 201, "
                             f"the first answer replayed once.")


@_message_only
def call(fn) -> None:
    """Task 4: ``call(http, method, url, *, retry, rng, deadline_s, attempt_s=math.inf,
    idempotency_key=None, json=None)`` against scripted faults: ``max_attempts`` attempts, the same on
    later calls; one connection, seconds; no 4xx retried; resets retried then raised; a POST retried only
    with its key, PUT and DELETE freely; Retry-After honoured, and refused when past the deadline; the
    seeded ``rng`` and the last wait (``previous``) handed to decide, nothing kept from call to call; one
    overall deadline; ``attempt_s``. The quick cases come first, the ones that wait last."""
    _function(fn, "call")
    _needs(fn)
    with _Bench() as bench:
        _call_attempts(fn, bench)
        _call_healthy(fn, bench)
        _call_client_errors(fn, bench)
        _call_transport_errors(fn, bench)
        _call_post(fn, bench)
        _call_idempotent_methods(fn, bench)
        _call_retry_after(fn, bench)
        _call_jitter(fn, bench)
        _call_retry_after_past_deadline(fn, bench)
        _call_deadline(fn, bench)
        _call_attempt_limit(fn, bench)
    fb.ok("call: 3 attempts of RetryPolicy(3, ...), 3 times; one connection; 400, 403 and 404 never retried; resets "
          "retried then raised; a POST retried only with its key, no order twice; PUT and DELETE retried; Retry-After "
          "honoured (0.25 s, 0.15 s), refused past the deadline; rng and previous handed to decide (decorrelated "
          "jitter); a 0.6 s deadline held over a wait and a trickle; attempt_s cut a trickle")


def _needs(fn) -> None:
    """Tasks 1 and 2 must pass (quietly) when the learner's call can see them: "task N is not done yet"."""
    names = getattr(fn, "__globals__", {})
    steps = [(1, "reasons(reason_for, reason_for_error)",
              lambda: (_status_cases(names["reason_for"]), _error_cases(names["reason_for_error"])),
              ("reason_for", "reason_for_error")),
             (2, "retry_after(retry_after)", lambda: _retry_after_cases(names["retry_after"]), ("retry_after",))]
    for number, shown, cases, needed in steps:
        if all(callable(names.get(n)) for n in needed):
            fb.earlier_task(number, shown, cases)


# --- task 5: the SLO ----------------------------------------------------------------------------------
_Row = namedtuple("_Row", "index ok ended latency")
_SETTINGS = ("retry", "deadline_s", "attempt_s")


def _settings(made) -> tuple[httpx.Client, dict]:
    if not isinstance(made, (tuple, list)) or len(made) != 2:
        raise AssertionError(f"make_client() should return (http, settings), got {_short(made)}")
    http, settings = made
    if isinstance(http, httpx.AsyncClient):
        raise AssertionError("make_client() returned an httpx.AsyncClient; the lab's call is synchronous: "
                             "httpx.Client(...).")
    if not isinstance(http, httpx.Client):
        raise AssertionError(f"make_client() should return an httpx.Client first, made once and used for every "
                             f"request (its connection pool), got {_short(http)}")
    if http.is_closed:
        raise AssertionError("make_client() returned a closed httpx.Client. A `with httpx.Client() as http:` block "
                             "closes it on the way out, and every run closes the client it was given, so a client "
                             "made once, outside make_client, is closed after the first run. Make a new one inside "
                             "make_client, `http = httpx.Client()`, and return it (the run closes it at the end).")
    if not isinstance(settings, dict):
        raise AssertionError(f"make_client() should return (http, settings), settings a dict of call's keyword "
                             f"arguments such as {{'retry': ..., 'deadline_s': 0.5}}; got {_short(settings)}")
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise AssertionError(f"settings has {unknown}; the run passes rng itself, and settings may hold "
                             f"{', '.join(_SETTINGS)}.")
    for name in ("retry", "deadline_s"):
        if name not in settings:
            raise AssertionError(f"settings has no {name!r}: an SLO run needs a retry policy and a deadline.")
    if not isinstance(settings["retry"], RetryPolicy):
        raise AssertionError(f"settings['retry'] should be a RetryPolicy, got {_short(settings['retry'])}")
    for name in ("deadline_s", "attempt_s"):
        if name not in settings:
            continue
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 or math.isnan(value):
            raise AssertionError(f"settings[{name!r}] should be a number of seconds > 0, got {value!r}")
        if name == "deadline_s" and math.isinf(value):
            raise AssertionError("settings['deadline_s'] is infinite: an SLO on the p99 needs a deadline.")
        if value >= 10 and not math.isinf(value):
            raise AssertionError(f"settings[{name!r}] = {fb.fmt(value)}: seconds, not milliseconds (the p99 bound is "
                                 f"{fb.fmt(SLO['p99_s'])} s).")
    return http, settings


def _count_requests(http: httpx.Client) -> list:
    """Count the requests sent through ``http`` from now on (one more event hook); the count is ``[n]``."""
    sent = [0]
    hooks = http.event_hooks

    def counted(request):
        sent[0] += 1
    http.event_hooks = {**hooks, "request": [*hooks.get("request", []), counted]}
    return sent


def _made(make_client) -> tuple[httpx.Client, dict]:
    """The learner's ``make_client()``, run and its answer checked: ``(http, settings)``."""
    _function(make_client, "make_client")
    with fb.learner_code("make_client", "make_client()"):
        made = make_client()
    return _settings(made)


def _made_anew(make_client) -> tuple[httpx.Client, dict]:
    """``make_client()`` run twice, a new client each time (every run closes the client it was given):
    the first answer; the second client closed."""
    http, settings = _made(make_client)
    try:
        other, _ = _made(make_client)
    except BaseException:
        http.close()
        raise
    if other is http:
        raise AssertionError("make_client() returned the same httpx.Client twice: it was made once, outside "
                             "make_client (at cell level?). Every run closes the client it was given, so the next "
                             "run would get a closed one. Make the client inside make_client, `http = "
                             "httpx.Client()`, so that each call returns a new one.")
    other.close()
    return http, settings


def _no_storm(settings: dict) -> None:
    """Settings whose verdict the fault mix alone would not give, or would leave to the machine."""
    retry, per = settings["retry"], settings.get("attempt_s", math.inf)
    if isinstance(retry.backoff, Constant) and retry.backoff.base == 0:
        raise AssertionError(f"settings['retry'] = {retry!r} retries at once: each retry leaves as soon as an attempt "
                             f"fails. Against a service that is down that is a retry storm, attempts as fast as the "
                             f"round trip allows, which keep it down. Wait before a retry (FullJitter(base=0.01, "
                             f"cap=0.05), say); a 503's Retry-After makes the wait longer when the server asks.")
    slow = MIX["slow"]["latency"]
    floor = round(slow + ATTEMPT_MARGIN_S, 6)
    if slow <= per < floor:
        raise AssertionError(f"attempt_s={fb.fmt(per)} sits just above the +50 ms slowdown: a slowed answer comes "
                             f"50 ms plus the round trip and the machine's own delays after the request, about 51 ms "
                             f"on an idle machine and 60 or more on a busy one, so whether your cuts turn those "
                             f"answers into retries (and the load over its bound) would depend on the machine, not on "
                             f"your client. Leave a margin: attempt_s of at least {fb.fmt(floor)} s.")


@contextlib.contextmanager
def _learner_sender(made: tuple, call_fn, seed: int):
    """``send(url) -> _Ran`` with the learner's client and call; ``send.asked[i]`` holds what each
    ``retry.decide`` of request ``i`` was given (:class:`_Asked`); closes the learner's http after."""
    http, settings = made
    retry, asked = settings["retry"], []
    decide = retry.decide

    def watched(now, attempt, reason, rng=None, **options):
        wait = decide(now, attempt, reason, rng, **options)
        if asked:
            asked[-1].append(_Asked(now, attempt, rng, options.get("previous"), options.get("remaining"), wait))
        return wait
    retry.decide = watched                    # on this policy only, for this run
    try:
        sent = _count_requests(http)
        rng = random.Random(seed)
        shown_kw = ", ".join(f"{k}={v!r}" for k, v in settings.items())

        def send(url: str) -> _Ran:
            path = url.split("/", 3)[-1]
            shown = f"call(http, 'GET', catalog + '/{path}', rng=rng, {shown_kw})"
            asked.append([])
            ran = _run(call_fn, "call", shown, (http, "GET", url), dict(rng=rng, **settings), hint=_call_hint,
                       stuck=_CALL_STUCK)
            _decide_contract(asked[-1], rng, shown)
            if ran.error is None:
                _answer(ran.value, shown)
            return ran
        send.settings, send.sent, send.asked = settings, sent, asked
        yield send
    finally:
        vars(retry).pop("decide", None)
        http.close()


@contextlib.contextmanager
def _plain_sender(seed: int):
    """The unprotected client: one httpx.Client, ``http.get(url)`` with its default timeouts, no retry."""
    with httpx.Client() as http:
        sent = _count_requests(http)

        def send(url: str) -> _Ran:
            started = time.monotonic()
            try:
                r = http.get(url)
                return _Ran((r.status_code, r.headers, r.content), None, time.monotonic() - started, started)
            except httpx.TransportError as err:
                return _Ran(None, err, time.monotonic() - started, started)
        send.settings, send.sent = {}, sent
        yield send


@contextlib.contextmanager
def _course_sender(seed: int, base_url: str, settings: dict):
    """The course's ResilientClient (resilience_sim.live.client), given a learner's settings."""
    from ..live.client import ResilientClient       # only here: the lab does not depend on it otherwise
    from ..policies import Deadline, Timeout
    options = dict(deadline=Deadline(settings["deadline_s"]), retry=settings["retry"], seed=seed)
    if "attempt_s" in settings and not math.isinf(settings["attempt_s"]):
        options["timeout"] = Timeout(settings["attempt_s"])
    with ResilientClient(base_url, **options) as client:
        sent = _count_requests(client.http)

        def send(url: str) -> _Ran:
            started = time.monotonic()
            reply = client.get(url[len(base_url):])
            value = (reply.status, reply.headers, reply.content) if reply.ok else None
            error = None if reply.ok else TimeoutError(reply.reason)
            return _Ran(value, error, time.monotonic() - started, started)
        send.settings, send.sent = settings, sent
        yield send


def _p(values, q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class _SloRun:
    """One bounded run of :data:`SLO` ``requests`` GETs under :data:`MIX`, recorded per request."""

    def __init__(self, seed: int = SLO_SEED, requests: int = SLO["requests"], mix: dict = MIX):
        self.seed, self.n, self.mix = seed, requests, mix
        self.rows: list[_Row] = []
        self.arrivals: list = []
        self.stopped = ""

    def run(self, make_sender, *, stop_early: bool = False, workers: int = 1, outage: int = 0) -> "_SloRun":
        """The run; then, unless it was stopped, ``outage`` requests with the catalog down (503 to all, no
        Retry-After), stopped once they made more than ``SLO["outage_load"]`` attempts per request."""
        self.outage: list = []
        with _Bench(self.seed) as bench:
            bench.case()
            faults = bench.faults
            mix = self.mix
            faults.fail(**mix["fail"]).slow(**mix["slow"]).trickle(**mix["trickle"]).reset(**mix["reset"])
            with make_sender(bench) as send:
                self.settings = send.settings
                if workers == 1:
                    self._sequential(bench, send, stop_early)
                else:
                    self._parallel(bench, send, workers)
                self.through_http = send.sent[0]
                self.arrivals = list(faults.arrivals)
                self.connections = bench.connections
                if outage and not self.stopped:
                    self._down(bench, send, outage)
        return self

    def _down(self, bench, send, n):
        bench.case()
        bench.faults.fail(503)
        for i in range(n):
            bench.faults.tag = ("outage", i)
            send(bench.url(f"/items/{1 + i}"))
            self.outage.append(len(bench.faults.arrivals) - sum(self.outage))
            if sum(self.outage) > SLO["outage_load"] * len(self.outage):
                break

    def _sequential(self, bench, send, stop_early):
        allowed_failures = self.n - math.ceil(SLO["success"] * self.n)
        allowed_slow = self.n - math.ceil(0.99 * self.n)
        for i in range(self.n):
            bench.faults.tag = i
            self.rows.append(self._row(i, send(bench.url(f"/items/{1 + i}"))))
            if not stop_early:
                continue
            failed = sum(not r.ok for r in self.rows)
            slow = sum(r.latency > SLO["p99_s"] for r in self.rows)
            if send.sent[0] < len(bench.faults.arrivals):
                self.stopped = "bypass"
            elif failed > allowed_failures:
                self.stopped = "failures"
            elif slow > allowed_slow:
                self.stopped = "p99"
            elif len(bench.faults.arrivals) > SLO["load"] * self.n:
                self.stopped = "load"
            elif i >= 19 and bench.connections > _connections_needed(bench.faults.arrivals, i + 1) + _CONNECTION_SLACK:
                self.stopped = "connections"
            if self.stopped:
                break

    def _parallel(self, bench, send, workers):
        with ThreadPoolExecutor(workers) as pool:
            runs = list(pool.map(send, [bench.url(f"/items/{1 + i}") for i in range(self.n)]))
        self.rows = [self._row(i, ran) for i, ran in enumerate(runs)]

    @staticmethod
    def _row(i: int, ran: _Ran) -> _Row:
        if ran.error is not None:
            return _Row(i, False, _raised(ran.error), ran.elapsed)
        status = ran.value[0]
        return _Row(i, status < 400, f"status {status}", ran.elapsed)

    # -- figures --------------------------------------------------------------------------------------
    def met(self, i: int) -> list:
        """The faults each attempt of request ``i`` met, in order (a sequential run only)."""
        return [a.kinds for a in self.arrivals if a.tag == i]

    def avoidable(self) -> int:
        """Retries after an attempt that met no fault needing one (only the slowdown, or nothing)."""
        by_request: dict = {}
        for a in self.arrivals:
            by_request.setdefault(a.tag, []).append(a.kinds)
        return sum(1 for kinds in by_request.values() for k in kinds[:-1] if not k & _BAD)

    def figures(self) -> dict:
        done = len(self.rows)
        latencies = [r.latency for r in self.rows]
        faults = Counter(kind for a in self.arrivals for kind in a.kinds)
        return {"requests": done, "succeeded": sum(r.ok for r in self.rows),
                "success": sum(r.ok for r in self.rows) / done, "p50": _p(latencies, 0.5), "p99": _p(latencies, 0.99),
                "attempts": len(self.arrivals), "load": len(self.arrivals) / done,
                "connections": self.connections, "through_http": self.through_http, "faults": dict(faults),
                "failures": dict(Counter(r.ended for r in self.rows if not r.ok)), "stopped": self.stopped,
                "outage_load": sum(self.outage) / len(self.outage) if self.outage else None}


def _met_text(kinds_per_attempt: list) -> str:
    names = {"fail": "503", "slow": "+50 ms", "trickle": "a trickle", "reset": "a reset", "hang": "a hang"}
    parts = [" and ".join(names[k] for k in sorted(kinds, key=list(names).index)) or "no fault"
             for kinds in kinds_per_attempt]
    return ", then ".join(parts) if parts else "nothing (it never reached the server)"


def _longest_wait(backoff) -> float:
    """The longest wait ``backoff`` can give before a retry (its cap, or its constant)."""
    return getattr(backoff, "cap", getattr(backoff, "base", 0.0))


#: Connections beyond those a run needs that the SLO check lets pass (a pool may open one early).
_CONNECTION_SLACK = 5


def _connections_needed(arrivals: list, requests: int) -> int:
    """Connections a client that keeps them alive needs: one, and one more after each closed one (a
    retry follows every attempt cut short; a reset closes one whatever comes next)."""
    return 1 + (len(arrivals) - requests) + sum("reset" in a.kinds for a in arrivals)


def _slo_verdict(run: _SloRun) -> dict:
    fig = run.figures()
    s, n = run.settings, fig["requests"]
    retry, deadline, per = s["retry"], s["deadline_s"], s.get("attempt_s", math.inf)
    where = f" (the check stopped after request {n} of {run.n})" if run.stopped else ""
    if fig["through_http"] < fig["attempts"]:
        raise AssertionError(f"{fig['attempts'] - fig['through_http']} of the {fig['attempts']} attempts did not go "
                             f"through the http that make_client returned{where}: a new client per request (the "
                             f"server accepted {fig['connections']} connections). Send through the http call is given.")
    failed = [r for r in run.rows if not r.ok]
    if run.stopped == "failures" or fig["success"] < SLO["success"]:
        allowed = run.n - math.ceil(SLO["success"] * run.n)
        lines = [f"  request {r.index}: met {_met_text(run.met(r.index))}; ended with {r.ended} after "
                 f"{_s(r.latency)}" for r in failed[:4]]
        hints = []
        if retry.max_attempts == 1:
            hints.append("max_attempts=1 never retries: each 503, reset or trickle is a failure.")
        trickled = [r for r in failed if any("trickle" in k for k in run.met(r.index))]
        if trickled and per >= deadline:
            hints.append(f"A trickle took the whole deadline ({fb.fmt(deadline)} s) and left no time to retry: give "
                         f"each attempt less (attempt_s) so that a retry fits before the deadline.")
        elif trickled and deadline - per < per:
            hints.append(f"An attempt cut at attempt_s={fb.fmt(per)} leaves {_s(deadline - per)} of the "
                         f"{fb.fmt(deadline)} s deadline, too little for another attempt: give the deadline room "
                         f"for a retry after a cut.")
        if any(len(run.met(r.index)) >= retry.max_attempts > 1 for r in failed):
            hints.append(f"{retry.max_attempts} bad attempts in a row used them all: one more attempt costs nothing "
                         f"while attempts succeed (only a failed one is retried).")
        if not hints:
            hints.append("Look at what they met, and at what was left of the deadline for a retry.")
        raise AssertionError(f"{len(failed)} of {n} requests failed{where}; the SLO allows {allowed} in {run.n} "
                             f"({SLO['success']:.0%} succeed):\n" + "\n".join(lines) + "\n" + " ".join(hints))
    if run.stopped == "p99" or fig["p99"] > SLO["p99_s"]:
        slowest = sorted(run.rows, key=lambda r: -r.latency)[:4]
        lines = [f"  request {r.index}: {_s(r.latency)}, met {_met_text(run.met(r.index))}" for r in slowest]
        hints = []
        if any("trickle" in k for r in slowest for k in run.met(r.index)) and per >= SLO["p99_s"]:
            fast, slow = _trickle_s()
            hints.append(f"A trickle takes {fb.fmt(fast)} to {fb.fmt(slow)} s (an item is {ITEM_BYTES[0]} to "
                         f"{ITEM_BYTES[1]} bytes), and attempt_s={fb.fmt(per)} lets an attempt wait for all of it: cut "
                         f"it well below the bound, and retry.")
        wait = _longest_wait(retry.backoff)
        if wait >= SLO["p99_s"] / 3:
            hints.append(f"Your backoff may wait {fb.fmt(wait)} s before a retry, a good part of the bound: a "
                         f"shorter one (the 503s ask for {fb.fmt(MIX['fail']['retry_after'])} s).")
        raise AssertionError(f"p99 = {_s(fig['p99'])}{where}, over the SLO's {fb.fmt(SLO['p99_s'])} s. The slowest "
                             f"requests:\n" + "\n".join(lines) + ("\n" + " ".join(hints) if hints else ""))
    if run.stopped == "load" or fig["load"] > SLO["load"]:
        avoidable = run.avoidable()
        why = (f" {avoidable} of your retries followed an attempt that met no fault needing one (only the +50 ms "
               f"slowdown, or nothing): attempt_s={fb.fmt(per)} cuts answers that were on their way." if avoidable
               else "")
        raise AssertionError(f"{fig['attempts']} attempts for {n} requests{where}, {fig['load']:.3f} per request: more "
                             f"than the SLO's {SLO['load']:g}. With one retry for each 503, reset and trickle, and no "
                             f"other, it is about {least_load():.3f} on average.{why}")
    needed = _connections_needed(run.arrivals, n)
    if run.stopped == "connections" or fig["connections"] > needed + _CONNECTION_SLACK:
        raise AssertionError(f"The server accepted {fig['connections']} connections for {n} requests one after another"
                             f"{where}: "
                             f"a new connection, and its TCP handshake, for nearly every request. Only a closed "
                             f"connection needs a new one (after a reset, or an attempt cut short and retried: "
                             f"{needed} at most in this run). One httpx.Client keeps its connection alive between "
                             f"requests, unless told not to: no `Connection: close` header, no "
                             f"max_keepalive_connections=0.")
    if run.outage and fig["outage_load"] > SLO["outage_load"]:
        down, attempts = len(run.outage), sum(run.outage)
        cap = (f" RetryPolicy({retry.max_attempts}, ...) allows {retry.max_attempts} attempts a request: keep "
               f"max_attempts at {SLO['outage_load']} or below (the first attempt counts)."
               if retry.max_attempts > SLO["outage_load"] else "")
        raise AssertionError(f"With the catalog down (every request answered 503, no Retry-After), your client made "
                             f"{attempts} attempts for {down} request{'s' * (down > 1)}, {fig['outage_load']:.3g} per "
                             f"request; the SLO allows {SLO['outage_load']}. Against a service that is down every retry "
                             f"is load it cannot serve, and a client that multiplies its requests keeps it down (a "
                             f"retry storm): the SLO run's faults pass, but an outage does not.{cap}")
    return fig


def _trickle_s() -> tuple[float, float]:
    """Seconds a trickle of :data:`MIX` takes to deliver the smallest and the largest item of the run."""
    chunk, interval = MIX["trickle"]["chunk"], MIX["trickle"]["interval"]
    return tuple(round(math.ceil(size / chunk) * interval, 6) for size in ITEM_BYTES)


@_message_only
def slo(make_client, call_fn, *, seed: int = SLO_SEED) -> dict:
    """Task 5: ``make_client()`` (a new client at each call) and ``call`` meet :data:`SLO` over one run of
    200 GETs under :data:`MIX` (stopped as soon as the SLO is missed): success, p99, attempts per request
    and kept-alive connections, with the requests that failed or were slowest shown with the faults they
    met; then attempts per request with the catalog down. Settings that retry at once, or an attempt_s
    that only a quiet machine lets pass, are refused before the run. Returns the run's figures (as
    :func:`run_slo`, with ``outage_load``)."""
    _function(make_client, "make_client")
    _function(call_fn, "call")
    _needs(call_fn)
    made = _made_anew(make_client)
    try:
        _no_storm(made[1])
    except AssertionError:
        made[0].close()
        raise
    run = _SloRun(seed).run(lambda bench: _learner_sender(made, call_fn, seed), stop_early=True,
                            outage=OUTAGE_REQUESTS)
    fig = _slo_verdict(run)
    avoidable = run.avoidable()
    extra = ("every retry after a 503, a reset or a trickle" if not avoidable else
             f"{avoidable} retr{'ies' if avoidable > 1 else 'y'} after an attempt that met none of them")
    fb.ok(f"SLO met: {fig['succeeded']}/{fig['requests']} answered ({fig['success']:.1%}), p99 {_s(fig['p99'])} "
          f"(bound {fb.fmt(SLO['p99_s'])} s), {fig['load']:.3f} attempts per request (bound {SLO['load']:g}; "
          f"{extra}), {fig['connections']} connections (kept alive); with the catalog down, {fig['outage_load']:.3g} "
          f"attempts per request (bound {SLO['outage_load']})")
    return fig


@_message_only
def run_slo(make_client, call_fn=None, *, seed: int = SLO_SEED, requests: int = SLO["requests"],
            mix: dict = MIX) -> dict:
    """One full run of the SLO scenario (``mix``: another fault mix, in :data:`MIX`'s shape), its figures
    as a dict (no verdict): ``requests``, ``succeeded``,
    ``success``, ``p50``, ``p99``, ``attempts``, ``load``, ``connections``, ``faults`` (met, by kind),
    ``failures`` (how they ended). ``make_client`` may be ``"plain"`` (one httpx.Client, ``http.get``, no
    deadline, no retry) or ``("course", make_client)`` (the course's ResilientClient with the settings of
    your ``make_client``, its http closed unused); those two run on 4 threads, a learner's client one
    request after another."""
    if isinstance(make_client, str) or isinstance(make_client, tuple):
        kind, theirs = (make_client, None) if isinstance(make_client, str) else (make_client + (None,))[:2]
        if kind == "plain":
            def sender(bench):
                return _plain_sender(seed)
        elif kind == "course" and theirs is not None:
            http, settings = _made(theirs)
            http.close()

            def sender(bench):
                return _course_sender(seed, bench.catalog.url, settings)
        else:
            raise ValueError(f"make_client must be your function, 'plain' or ('course', make_client), got "
                             f"{make_client!r}")
        return _SloRun(seed, requests, mix).run(sender, workers=4).figures()
    _function(make_client, "make_client")
    _function(call_fn, "call")
    return _SloRun(seed, requests, mix).run(lambda bench: _learner_sender(_made(make_client), call_fn, seed)).figures()
