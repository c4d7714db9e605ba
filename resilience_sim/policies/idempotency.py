"""End-user retries with an idempotency key, with the semantics people meet in payment APIs (Stripe,
the IETF ``Idempotency-Key`` draft).

``keys = IdempotencyKeys(retention=86400)``; for each request carrying a key,
``decision = keys.begin(key, params, now)`` says:

* ``NEW``: run it, then ``keys.finish(key, response, now)`` stores the response (errors too: a stored
  500 is replayed), or ``keys.abandon(key, now)`` when it never began (a validation failure);
* ``REPLAY``: the first request with this key and these ``params`` has finished: answer its stored
  ``response`` again, without running anything;
* ``CONFLICT``: the key was used with other ``params`` (the draft's 422): an error, nothing runs;
* ``IN_FLIGHT``: the first request is still running (the draft's 409): refuse; nothing is stored, so
  the caller may safely retry later.

What holds: a key runs at most once within its retention; a key older than ``retention`` seconds
(counted from its first use) is forgotten, and its reuse is a new request.
"""
from __future__ import annotations

from ..core import validate
from ._state import Stateful

NEW, REPLAY, CONFLICT, IN_FLIGHT = "new", "replay", "conflict", "in flight"
#: Longest a key may be kept: 30 days.
MAX_RETENTION = 30 * 86400.0


class IdempotencyKeys(Stateful):
    """Counters: ``new``, ``replayed``, ``conflicts``, ``in_flight_refusals``."""

    def __init__(self, retention: float = 86400.0):
        self.retention = validate.number("retention", retention, low=0.0, high=MAX_RETENTION, low_open=True)
        self.reset()

    def reset(self) -> None:
        """No keys, counters zero, no clock, no owner."""
        self._forget()
        self._keys: dict = {}          # key -> [params, first used at, response, finished]
        self.new = self.replayed = self.conflicts = self.in_flight_refusals = 0

    def begin(self, key, params, now: float) -> tuple:
        """``(decision, response)`` for a request with ``key`` and ``params`` (any value compared with
        ==); ``response`` is the stored one for REPLAY, else None."""
        now = self._tick(now)
        entry = self._keys.get(_key(key))
        if entry is not None and now - entry[1] > self.retention:
            del self._keys[key]
            entry = None
        if entry is None:
            self._keys[key] = [params, now, None, False]
            self.new += 1
            return NEW, None
        if entry[0] != params:
            self.conflicts += 1
            return CONFLICT, None
        if not entry[3]:
            self.in_flight_refusals += 1
            return IN_FLIGHT, None
        self.replayed += 1
        return REPLAY, entry[2]

    def _running(self, key, what: str) -> list:
        entry = self._keys.get(_key(key))
        if entry is None or entry[3]:
            raise ValueError(f"key must be one begin() answered NEW and not yet finished or abandoned, got {key!r} "
                             f"({what} it once, after begin)")
        return entry

    def finish(self, key, response, now: float) -> None:
        """The request of ``key`` ended with ``response``: stored, and replayed for every retry."""
        self._tick(now)
        entry = self._running(key, "finish")
        entry[2], entry[3] = response, True

    def abandon(self, key, now: float) -> None:
        """The request of ``key`` never began (say, it failed validation): nothing is stored."""
        self._tick(now)
        self._running(key, "abandon")
        del self._keys[key]

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"IdempotencyKeys(retention={self.retention:g}, keys={len(self._keys)})"


def _key(key):
    try:
        hash(key)
    except TypeError:
        raise validate.WrongType(f"key must be hashable (a string such as a UUID), got {validate.show(key)}") from None
    if key is None:
        raise ValueError("key must not be None: a request without an idempotency key cannot be deduplicated "
                         "(the IETF draft answers 400)")
    return key


__all__ = ["IdempotencyKeys", "NEW", "REPLAY", "CONFLICT", "IN_FLIGHT"]
