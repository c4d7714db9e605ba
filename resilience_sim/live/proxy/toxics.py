"""Toxiproxy's toxics: each type's attributes and checks, and what it does to the data on one link.

A :class:`Toxic` is what the API shows and changes: name, type, stream, toxicity, attributes. A
:class:`Stage` is one toxic at work on one *link* (one direction of one connection). A link passes
each chunk, timestamped when the proxy read it, through its active stages in order, each handing on
what it lets through with ``emit``; a stage may wait on ``link.wait`` (woken early, returning False,
when the toxic is updated or removed or a later toxic is added or removed: what it holds then goes on
at once), end the link with :class:`EndLink` (an ordinary close) or the connection with
:class:`ResetLink` (a TCP reset). What holds per type (units as Toxiproxy's, §6 of the spec):

* ``latency`` (ms, ``jitter`` ms): a chunk leaves at arrival + latency + U{-jitter..jitter-1}, or at
  once if that moment has passed; order is kept, so a burst of chunks is shifted once, not per chunk;
* ``bandwidth`` (``rate`` KB/s = bytes/ms): a time debt of len/rate per chunk, a long chunk going out
  in rate*100-byte pieces every 100 ms; the timer's error is carried to the next chunk;
* ``slow_close`` (``delay`` ms): data unchanged; the close that follows the source's EOF waits delay;
* ``timeout`` (ms): every chunk is dropped; the link closes once ``timeout`` ms pass with no chunk
  (the clock restarts on each), never by itself with 0; an EOF closes at once; removing the toxic
  closes the link (:attr:`Stage.closes_when_removed`);
* ``reset_peer`` (``timeout`` ms): nothing until the first chunk or EOF, which is dropped; ``timeout``
  ms later (not interruptible) the connection is reset;
* ``slicer`` (``average_size``, ``size_variation`` bytes, ``delay`` µs): each chunk cut recursively
  at its midpoint ± variation until a piece is at most average + variation long, ``delay`` µs after
  each piece;
* ``limit_data`` (``bytes``): chunks pass until ``bytes`` have passed on this link (the crossing chunk
  truncated), then the link closes; the count survives updates;
* ``noop``: passes everything.

Attributes are whole numbers; values Toxiproxy accepts but cannot honour (a rate <= 0, a slicer that
could cut outside its piece) and negative durations or sizes are refused with a 400 naming the
attribute and its range, as is a toxicity outside [0, 1].
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from ...core import validate
from .errors import ApiError, cannot_unmarshal

STREAMS = ("upstream", "downstream")
INT64 = 2 ** 63


class EndLink(Exception):
    """A stage ends its link with an ordinary close (FIN); the other link follows."""


class ResetLink(Exception):
    """A stage ends the whole connection with a TCP reset (RST) to client and upstream."""


class LinkGone(Exception):
    """The link was ended from outside (the proxy stopped, the connection closed): stop at once."""


class Stage:
    """One toxic at work on one link: pass-through unless overridden.

    ``active`` is this link's toxicity draw (made by the link each time the stage (re)starts);
    ``generation`` counts those restarts and the removal, which wake a stage waiting in ``link.wait``.
    ``deadline`` (monotonic seconds) is when the link closes by itself, for the timeout toxic only.
    """
    closes_when_removed = False
    deadline: float | None = None

    def __init__(self, toxic: "Toxic", link):
        self.toxic, self.link = toxic, link
        self.active = self.removed = False
        self.generation = 0

    @property
    def runs(self) -> bool:
        return self.active and not self.removed

    def start(self, now: float) -> None:
        """Called (under the link's lock) whenever the stage (re)starts."""

    def chunk(self, data: bytes, arrived: float, emit) -> None:
        emit(data, arrived)

    def end(self, emit_end) -> None:
        """The source reached EOF (after every chunk before it passed this stage)."""
        emit_end()


class Latency(Stage):
    def chunk(self, data, arrived, emit):
        attrs = self.toxic.attributes
        delay, jitter = attrs["latency"], attrs["jitter"]
        if jitter:
            delay += self.link.rng.randint(-jitter, jitter - 1)
        release = arrived + max(delay, 0) / 1000
        self.link.wait(release, self)
        emit(data, release)


class Bandwidth(Stage):
    def start(self, now):
        self.debt = 0.0                      # seconds this stage still owes the rate

    def chunk(self, data, arrived, emit):
        rate = self.toxic.attributes["rate"]             # bytes per millisecond
        piece = rate * 100                               # what 100 ms of the rate carries
        self.debt += len(data) / rate / 1000
        while len(data) > piece:
            if not self.link.wait(time.monotonic() + 0.1, self):
                break                                    # restarted: the rest goes on at once
            emit(data[:piece], arrived)
            data, self.debt = data[piece:], self.debt - 0.1
        else:
            began = time.monotonic()
            if self.link.wait(began + self.debt, self):
                self.debt -= time.monotonic() - began    # the timer's error, carried forward
            else:
                self.debt = 0.0
        emit(data, arrived)


class SlowClose(Stage):
    def end(self, emit_end):
        self.link.wait(time.monotonic() + self.toxic.attributes["delay"] / 1000, self)
        emit_end()


class Timeout(Stage):
    closes_when_removed = True

    def start(self, now):
        self._rearm(now)

    def _rearm(self, now):
        ms = self.toxic.attributes["timeout"]
        self.deadline = now + ms / 1000 if ms > 0 else None

    def chunk(self, data, arrived, emit):
        self._rearm(time.monotonic())                    # dropped; the silence starts again

    def end(self, emit_end):
        raise EndLink


class ResetPeer(Stage):
    def chunk(self, data, arrived, emit):
        self._reset()

    def end(self, emit_end):
        self._reset()

    def _reset(self):
        ms = self.toxic.attributes["timeout"]
        self.link.wait(time.monotonic() + ms / 1000, self, interruptible=False)
        raise ResetLink


class Slicer(Stage):
    def chunk(self, data, arrived, emit):
        attrs = self.toxic.attributes
        cuts = self._cuts(0, len(data), attrs["average_size"], attrs["size_variation"])
        pause = attrs["delay"] / 1_000_000
        for low, high in zip(cuts, cuts[1:]):
            emit(data[low:high], arrived)
            if pause and not self.link.wait(time.monotonic() + pause, self):
                if high < len(data):
                    emit(data[high:], arrived)           # restarted: the rest goes on at once
                return

    def _cuts(self, start: int, end: int, average: int, variation: int) -> list[int]:
        """The boundaries of the slices of ``[start, end)``, in order, both ends included."""
        if end - start - average <= variation:
            return [start, end]
        middle = start + (end - start) // 2
        if variation:
            middle += self.link.rng.randint(-variation, variation - 1)
        return self._cuts(start, middle, average, variation)[:-1] + self._cuts(middle, end, average, variation)


class LimitData(Stage):
    def __init__(self, toxic, link):
        super().__init__(toxic, link)
        self.passed = 0                                  # bytes let through on this link, kept across updates

    def chunk(self, data, arrived, emit):
        remaining = self.toxic.attributes["bytes"] - self.passed
        if remaining > 0:
            part = data[:remaining]
            emit(part, arrived)
            self.passed += len(part)
            remaining -= len(part)
        if remaining <= 0:
            raise EndLink


@dataclass(frozen=True)
class ToxicType:
    """A registered toxic type: its attributes in Toxiproxy's order, its stage, its Go struct name
    (which Toxiproxy's decode errors name) and the range each attribute must be in."""
    name: str
    struct: str
    attributes: tuple[str, ...]
    stage: type
    lows: tuple[int, ...] = ()
    unit: str = ""

    def check(self, attrs: dict) -> None:
        """Refuse (400) attributes this toxic cannot honour, naming the attribute and its range."""
        try:
            for attribute, low in zip(self.attributes, self.lows):
                validate.integer(f"{self.name}.{attribute}", attrs[attribute], low=low)
            if self.name == "slicer":
                validate.integer("slicer.size_variation", attrs["size_variation"], low=0,
                                 high=attrs["average_size"] - 1)
        except ValueError as err:
            raise ApiError(f"{err}{self.unit}", 400) from None


TYPES: dict[str, ToxicType] = {t.name: t for t in (
    ToxicType("latency", "LatencyToxic", ("latency", "jitter"), Latency, (0, 0), " (milliseconds)"),
    ToxicType("bandwidth", "BandwidthToxic", ("rate",), Bandwidth, (1,),
              " (KB/s; a rate of 0 would never deliver anything)"),
    ToxicType("slow_close", "SlowCloseToxic", ("delay",), SlowClose, (0,), " (milliseconds)"),
    ToxicType("timeout", "TimeoutToxic", ("timeout",), Timeout, (0,), " (milliseconds; 0 never closes)"),
    ToxicType("reset_peer", "ResetToxic", ("timeout",), ResetPeer, (0,), " (milliseconds)"),
    ToxicType("slicer", "SlicerToxic", ("average_size", "size_variation", "delay"), Slicer, (1, 0, 0),
              " (bytes, bytes, microseconds; size_variation must stay below average_size)"),
    ToxicType("limit_data", "LimitDataToxic", ("bytes",), LimitData, (0,), " (bytes)"),
    ToxicType("noop", "NoopToxic", (), Stage),
)}


def decode_attributes(kind: ToxicType, raw, current: dict) -> dict:
    """``current`` with the type's attributes found in ``raw`` (a decoded JSON object, or None)
    merged in, as Go decodes JSON into the toxic's struct: unknown keys and nulls are ignored; a
    value that is not an integer is a 400 in the decoder's words."""
    if raw is None:
        return dict(current)
    if not isinstance(raw, dict):
        raise cannot_unmarshal(raw, "ToxicWrapper", "attributes", "toxics.Toxic")
    merged = dict(current)
    for attribute in kind.attributes:
        value = raw.get(attribute)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not -INT64 <= value < INT64:
            raise cannot_unmarshal(value, kind.struct, attribute, "int64")
        merged[attribute] = value
    return merged


def float32(value: float) -> float:
    """``value`` rounded to a 32-bit float, as Toxiproxy stores a toxicity."""
    return struct.unpack("f", struct.pack("f", value))[0]


def float32_json(value: float):
    """The shortest decimal that reads back as the same 32-bit float, as Go prints it: ``1`` for 1.0."""
    if value == int(value):
        return int(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if float32(float(text)) == value:
            return float(text)
    return value


class Toxic:
    """A toxic as the API shows it; ``direction`` is the stream matched case-insensitively, ``stream``
    the string the client sent (Toxiproxy echoes it)."""

    def __init__(self, name: str, kind: ToxicType, stream: str, toxicity: float, attributes: dict):
        self.name, self.kind, self.stream = name, kind, stream
        self.direction = stream.lower()
        self.toxicity, self.attributes = toxicity, attributes

    @property
    def type(self) -> str:
        return self.kind.name

    def to_json(self) -> dict:
        return {"attributes": {a: self.attributes[a] for a in self.kind.attributes}, "name": self.name,
                "type": self.type, "stream": self.stream, "toxicity": float32_json(self.toxicity)}


def check_toxicity(value) -> float:
    """A toxicity in [0, 1] as a 32-bit float; a 400 otherwise (Toxiproxy takes any number)."""
    try:
        fits = not isinstance(value, bool) and isinstance(value, (int, float)) and abs(float(value)) <= 3.4e38
    except OverflowError:            # an integer beyond any float
        fits = False
    if not fits:
        raise cannot_unmarshal(value, "ToxicWrapper", "toxicity", "float32")
    try:
        return float32(validate.probability("toxicity", value))
    except ValueError as err:
        raise ApiError(f"{err} (the share of connections the toxic applies to)", 400) from None
