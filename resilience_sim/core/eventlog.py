"""A bounded log of events with exact counts: where every policy writes down what it decided.

A policy in a ten-minute simulation can keep everything; the same policy in a live client that runs
for days must not. An :class:`EventLog` keeps the newest ``limit`` entries and counts all of them.

What holds:

* **bounded**: at most ``limit`` entries are kept, the newest (default :data:`DEFAULT_LIMIT`, more than
  any lesson's run records); ``limit=None`` keeps everything (fine for a simulation that ends),
  ``limit=0`` keeps nothing (counts and callback only);
* **counts exact**: ``total`` counts every entry ever appended and ``dropped`` those no longer kept
  (``total == len(log) + dropped``); with ``key``, ``counts[key(entry)]`` counts every entry ever
  appended by key. So a count read from the log stays right after old entries have left it;
* **reads like the list it replaced**: iteration oldest first, ``len``, indexing (negative too),
  slicing (a slice is a list), ``in``, ``tuple(log)``, and ``==`` with a list or tuple holding the
  same entries (``count(x)`` and ``index(x)`` are the list's, over the entries kept);
* **callback**: ``on_event(entry)`` is called once for every appended entry, synchronously, in the
  order of the appends, after the entry is stored and counted (so the callback sees it in the log).
  It should be quick and must not raise: an exception reaches the caller of ``append`` (nothing is
  swallowed) and the entry stays logged.

:func:`policy_log` is what a policy builds its logs with: its callback receives ``(kind, entry)``,
``kind`` being the name of the log (``"trips"``...), so one callback can export all of a policy's logs.
"""
from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from functools import partial

from . import validate

#: Entries a log keeps unless told otherwise: far above what a lesson records, small enough for days.
DEFAULT_LIMIT = 10_000


#: Most entries a bounded log may be asked to keep: a billion is already more memory than a laptop has
#: (a deque cannot even be given a bound past 9.2e18); ``None`` is the way to say "keep everything".
MAX_LIMIT = 10 ** 9


def check_limit(name: str, limit) -> int | None:
    """``limit`` as a whole number in [0, :data:`MAX_LIMIT`], or ``None`` (unbounded); else a
    ``ValueError`` (a ``WrongType`` for a value that is not a number) naming ``name``."""
    if limit is None:
        return None
    allowed = f"a whole number >= 0 and <= {MAX_LIMIT:,} (entries kept) or None (keep all)"
    try:
        return validate.integer(name, limit, low=0, high=MAX_LIMIT)
    except validate.WrongType:
        raise validate.WrongType(f"{name} must be {allowed}, got {validate.show(limit)}") from None
    except ValueError:
        raise ValueError(f"{name} must be {allowed}, got {validate.show(limit)}") from None


def check_callback(name: str, fn, takes: str = "(entry)"):
    """``fn`` if it is callable or ``None``; else a ``ValueError`` naming ``name``."""
    if fn is not None and not callable(fn):
        raise ValueError(f"{name} must be a function {takes} or None, got {fn!r}")
    return fn


class EventLog(Sequence):
    """The newest ``limit`` entries of a stream of events, and exact counts of all of them."""
    __slots__ = ("_items", "total", "counts", "_key", "on_event")

    def __init__(self, limit: int | None = DEFAULT_LIMIT, *, on_event=None, key=None):
        self._items: deque = deque(maxlen=check_limit("limit", limit))
        self.on_event = check_callback("on_event", on_event)
        self._key = check_callback("key", key)
        self.total = 0
        self.counts: Counter = Counter()   # by key(entry), over every entry ever appended (empty without key)

    @property
    def limit(self) -> int | None:
        return self._items.maxlen

    @property
    def dropped(self) -> int:
        """Entries appended but no longer kept."""
        return self.total - len(self._items)

    def append(self, entry) -> None:
        """Log one event: keep it (dropping the oldest when full), count it, then call ``on_event``."""
        self._items.append(entry)
        self.total += 1
        if self._key is not None:
            self.counts[self._key(entry)] += 1
        if self.on_event is not None:
            self.on_event(entry)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def __reversed__(self):
        return reversed(self._items)

    def __contains__(self, entry) -> bool:
        return entry in self._items

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self._items)[index]
        return self._items[index]

    def __eq__(self, other):
        if isinstance(other, (EventLog, list, tuple)):
            return len(self) == len(other) and list(self._items) == list(other)
        return NotImplemented

    __hash__ = None   # mutable, like the list it replaced

    def __getstate__(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        shown = list(self._items)[-3:]
        more = "..., " if len(self._items) > 3 else ""
        return (f"EventLog([{more}{', '.join(map(repr, shown))}], limit={self.limit}, "
                f"total={self.total}, dropped={self.dropped})")


def policy_log(kind: str, log_limit: int | None = DEFAULT_LIMIT, on_event=None, key=None) -> EventLog:
    """The log ``kind`` of a policy built with ``log_limit=`` and ``on_event=``: a bounded
    :class:`EventLog` whose callback is ``on_event(kind, entry)``."""
    log_limit = check_limit("log_limit", log_limit)
    on_event = check_callback("on_event", on_event, "(kind, entry)")
    return EventLog(log_limit, on_event=None if on_event is None else partial(on_event, kind), key=key)


__all__ = ["EventLog", "DEFAULT_LIMIT", "MAX_LIMIT", "policy_log", "check_limit", "check_callback"]
