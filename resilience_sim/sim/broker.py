"""A message broker in simulated time: a durable :class:`~resilience_sim.policies.MessageQueue` behind
a service.

``broker = Broker(world, MessageQueue(visibility_timeout=30, max_receives=5))``; publishers call
``yield from broker.publish(req, message_id, body)``, consumers ``delivery = yield from
broker.receive(req)`` and ``yield from broker.ack(req, delivery.receipt)``. Each is a call to
``broker.service`` (so faults apply to it); a message is enqueued at the end of the broker's work for
``publish`` (a crash before that point loses the publish, never a stored message), and the reply takes
``reply_latency`` seconds: a publisher that crashes in between published without knowing, and will
publish again.
"""
from __future__ import annotations

from ..core import validate
from ..policies import MessageQueue, claim
from .service import Request, Service


class Broker:
    """Counters are the queue's (``broker.queue.sent``, ``dead_letters``...)."""

    def __init__(self, world, queue: MessageQueue, *, name: str = "broker", capacity: int = 100,
                 latency=0.002, reply_latency: float = 0.0005):
        if not isinstance(queue, MessageQueue):
            raise validate.WrongType(f"queue must be a MessageQueue, got {validate.show(queue)}")
        self.service = Service(world, name, capacity=capacity, latency=latency)
        claim(world, queue=queue)
        self.world, self.env, self.name, self.queue = world, world.env, name, queue
        self.reply_latency = validate.non_negative("reply_latency", reply_latency)

    def _call(self, req):
        yield from self.service.call(req or Request._unchecked(self.env.now, "", None))

    def _reply(self):
        if self.reply_latency > 0:
            yield self.env.timeout(self.reply_latency)

    def publish(self, req, message_id, body=None):
        """Enqueue a message (a simpy generator); ServiceError if the broker is down or crashed first."""
        yield from self._call(req)
        self.queue.send(message_id, body, self.env.now)
        yield from self._reply()

    def receive(self, req):
        """The next visible message's :class:`~resilience_sim.policies.messaging.Delivery`, or None."""
        yield from self._call(req)
        delivery = self.queue.receive(self.env.now)
        yield from self._reply()
        return delivery

    def ack(self, req, receipt):
        """Acknowledge a delivery: True, or False when its visibility timeout had passed."""
        yield from self._call(req)
        done = self.queue.ack(receipt, self.env.now)
        yield from self._reply()
        return done

    def __repr__(self) -> str:
        return f"Broker({self.name!r}, {self.queue!r})"


__all__ = ["Broker"]
