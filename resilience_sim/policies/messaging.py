"""A durable message queue's delivery rules: at-least-once, a visibility timeout, dead letters.

``MessageQueue(visibility_timeout=30, max_receives=None, dead_letter=True)`` behaves like an SQS
standard queue (and, with ``dead_letter=False``, like a RabbitMQ quorum queue without a dead-letter
exchange). What holds:

* **nothing is lost silently**: every message sent is, at every moment, waiting (visible, or in
  flight: received and not yet acknowledged), acknowledged, dead-lettered or counted in ``dropped``
  (only with ``dead_letter=False``): ``sent == waiting + acked + len(dead_letters) + dropped``;
* **at least once**: a received message that is not acknowledged within ``visibility_timeout``
  seconds is delivered again (its ``receive_count`` grows); an acknowledgement with a receipt whose
  timeout has passed is refused (returns False), as an SQS FIFO queue refuses an expired receipt
  handle (a standard queue may still delete the message if nobody has received it again since: the
  strict rule here makes "processing longer than the timeout" fail every time, which is the case
  to design for);
* **dead letters**: a message about to be received for the ``max_receives + 1``-th time goes to
  ``dead_letters`` instead (or is dropped, the trap, with ``dead_letter=False``);
* the broker does not dedupe: sending one id twice makes two messages (consumers dedupe).

Messages are delivered oldest-visible first. Driven by ``now`` (finite seconds that never go back).
"""
from __future__ import annotations

import heapq
import math

from ..core import validate
from ._state import Stateful

#: SQS's limits on the visibility timeout: 0 s to 12 h.
MAX_VISIBILITY_TIMEOUT = 12 * 3600.0
#: SQS's limit on ``maxReceiveCount``.
MAX_RECEIVES = 1000


class Delivery:
    """One receive of a message: its ``receipt`` (for ack), ``message_id``, ``body``, ``receive_count``
    (1 the first time) and ``visible_at`` (when it is delivered again unless acknowledged)."""
    __slots__ = ("receipt", "message_id", "body", "receive_count", "visible_at")

    def __init__(self, receipt, message_id, body, receive_count, visible_at):
        self.receipt, self.message_id, self.body = receipt, message_id, body
        self.receive_count, self.visible_at = receive_count, visible_at

    def __repr__(self) -> str:
        return f"Delivery({self.message_id!r}, receive {self.receive_count})"


class MessageQueue(Stateful):
    """Counters: ``sent``, ``received`` (deliveries), ``redelivered`` (deliveries after the first),
    ``acked``, ``dropped``; ``waiting`` (visible or in flight) and ``in_flight`` now; ``dead_letters``
    lists ``(message_id, body, receive_count)``."""

    def __init__(self, *, visibility_timeout: float = 30.0, max_receives: int | None = None,
                 dead_letter: bool = True):
        self.visibility_timeout = validate.number("visibility_timeout", visibility_timeout, low=0.0,
                                                  high=MAX_VISIBILITY_TIMEOUT)
        self.max_receives = (None if max_receives is None else
                             validate.integer("max_receives", max_receives, low=1, high=MAX_RECEIVES))
        self.dead_letter = validate.boolean("dead_letter", dead_letter)
        self.reset()

    def reset(self) -> None:
        """Empty, counters zero, no clock, no owner."""
        self._forget()
        self._ready: list = []            # heap of (visible_at, seq, message, version); stale entries skipped
        self._receipts: dict = {}         # receipt -> message, for deliveries not yet settled
        self._stale: set = set()          # receipts superseded by a later receive (or a dead letter)
        self._seq = 0
        self.waiting = 0
        self.sent = self.received = self.redelivered = self.acked = self.dropped = 0
        self.dead_letters: list = []

    @property
    def in_flight(self) -> int:
        """Deliveries received and neither acknowledged nor timed out (as of the latest call)."""
        now = self._now
        return sum(1 for m in self._receipts.values() if m.visible_at > now)

    def _push(self, message, visible_at: float) -> None:
        self._seq += 1
        message.version += 1
        message.visible_at = visible_at
        heapq.heappush(self._ready, (visible_at, self._seq, message, message.version))

    def send(self, message_id, body, now: float) -> None:
        """Enqueue a message (visible at once)."""
        now = self._tick(now)
        self._push(_Message(message_id, body), now)
        self.waiting += 1
        self.sent += 1

    def receive(self, now: float) -> Delivery | None:
        """The oldest visible message, now in flight for ``visibility_timeout`` s; None if none is visible."""
        now = self._tick(now)
        ready = self._ready
        while ready and ready[0][0] <= now:
            _, _, message, version = heapq.heappop(ready)
            if message.done or version != message.version:       # acknowledged, or moved by extend()
                continue
            if self._receipts.pop(message.receipt, None) is not None:     # the old receipt is stale from now on
                self._stale.add(message.receipt)
            if self.max_receives is not None and message.count >= self.max_receives:
                message.done = True
                self.waiting -= 1
                if self.dead_letter:
                    self.dead_letters.append((message.id, message.body, message.count))
                else:
                    self.dropped += 1
                continue
            self._seq += 1
            message.count += 1
            message.receipt = (message.id, self._seq)
            self._push(message, now + self.visibility_timeout)
            self._receipts[message.receipt] = message
            self.received += 1
            self.redelivered += message.count > 1
            return Delivery(message.receipt, message.id, message.body, message.count, message.visible_at)
        return None

    def ack(self, receipt, now: float) -> bool:
        """Delete the message of ``receipt``: True, or False when its visibility timeout has passed
        (it may be delivered again; the work done for it may be done twice). A receipt this queue
        never gave, or one already acknowledged, is refused with a ValueError."""
        now = self._tick(now)
        message = self._receipts.get(_receipt(receipt))
        if message is None and receipt in self._stale:
            return False                          # delivered again since: too late
        if message is None:
            raise ValueError(f"receipt must be one this queue gave and not yet acknowledged, got {receipt!r} "
                             f"(acknowledge each delivery once, with the receipt receive() returned)")
        if now > message.visible_at:
            return False
        del self._receipts[receipt]
        message.done = True
        self.waiting -= 1
        self.acked += 1
        return True

    def extend(self, receipt, now: float, timeout: float) -> float:
        """Keep an in-flight delivery invisible for ``timeout`` more seconds from ``now`` (SQS's
        ChangeMessageVisibility); returns when it becomes visible again."""
        now = self._tick(now)
        timeout = validate.number("timeout", timeout, low=0.0, high=MAX_VISIBILITY_TIMEOUT)
        message = self._receipts.get(_receipt(receipt))
        if message is None or now > message.visible_at:
            raise ValueError(f"receipt must be of a delivery still in flight, got {receipt!r}")
        self._push(message, now + timeout)
        return message.visible_at

    def next_visible(self) -> float:
        """When the next message becomes visible (``math.inf`` when none waits)."""
        ready = self._ready
        while ready and (ready[0][2].done or ready[0][3] != ready[0][2].version):
            heapq.heappop(ready)
        return ready[0][0] if ready else math.inf

    def __repr__(self) -> str:
        return (f"MessageQueue(visibility_timeout={self.visibility_timeout:g}, max_receives={self.max_receives}, "
                f"dead_letter={self.dead_letter})")


class _Message:
    __slots__ = ("id", "body", "count", "receipt", "version", "visible_at", "done")

    def __init__(self, message_id, body):
        self.id, self.body = message_id, body
        self.count, self.receipt, self.version, self.visible_at, self.done = 0, None, 0, 0.0, False


def _receipt(receipt):
    try:
        hash(receipt)
    except TypeError:
        raise validate.WrongType(f"receipt must be a receipt from receive(), got {validate.show(receipt)}") from None
    return receipt


__all__ = ["MessageQueue", "Delivery", "MAX_VISIBILITY_TIMEOUT", "MAX_RECEIVES"]
