"""Shapes of systems the lessons build again and again: a chain of services, each calling the next,
and a fan-out, a root that calls many leaves at once and waits for all of them.

The handlers are plain generators a learner can read (``inspect.getsource(forward)``): a chain link
asks its one dependency; a fan-out root asks all of them with :meth:`Service.ask_all`.
"""
from __future__ import annotations

from ..core import validate
from .service import Service


def forward(svc, req):
    """A handler that calls the service's one dependency and returns its answer."""
    return (yield from svc.ask(svc.dependencies[0], req))


def wait_for_all(svc, req):
    """A root's handler: call every dependency at once, answer when all have answered, fail if any failed."""
    answers = yield from svc.ask_all(svc.dependencies, req)   # parallel: the request waits for its slowest leaf
    for ok, value in answers:
        if not ok:
            raise value


def chain(world, names, *, latency, capacity: int) -> list[Service]:
    """Services called in a line: ``names[0]`` calls ``names[1]``, which calls ``names[2]``... with
    :func:`forward`; the last one answers by itself, so any failure deeper down reaches the first
    one's callers. ``latency`` is every service's own work, or a list of one per service."""
    names = list(names)
    if not names:
        raise ValueError("names must hold at least one service name, got none")
    latencies = list(latency) if isinstance(latency, (list, tuple)) else [latency] * len(names)
    if len(latencies) != len(names):
        raise ValueError(f"latency must be one value or one per service ({len(names)}), got {len(latencies)}")
    services = []
    for here, there, work in zip(names, names[1:] + [None], latencies):
        links = {} if there is None else dict(dependencies=[there], handler=forward)
        services.append(Service(world, here, capacity=capacity, latency=work, **links))
    return services


def fanout(world, n: int, leaf_latency, *, capacity: int = 10_000, wrap=None, handler=wait_for_all) -> Service:
    """A root (no work of its own) with ``n`` leaves called ``leaf-1``... ``leaf-n``; by default it
    calls them all at once and answers when all have answered (it fails if any leaf fails).

    ``wrap(leaf)`` gives what the root calls instead of each leaf (a :class:`~.probes.CallLog`, a
    hedging :class:`~.client.Client`...); ``handler(svc, req)`` replaces the root's handler (e.g.
    one that calls one leaf after another)."""
    n = validate.integer("n", n, low=1)
    leaves = [Service(world, f"leaf-{i + 1}", capacity=capacity, latency=leaf_latency) for i in range(n)]
    targets = leaves if wrap is None else [wrap(leaf) for leaf in leaves]
    return Service(world, "root", capacity=capacity, latency=0.0,
                   dependencies={leaf.name: target for leaf, target in zip(leaves, targets)}, handler=handler)
