"""A service's own slots: FIFO, at most `capacity` busy, a cancelled waiter leaves no trace, and a
call that finds a free slot costs one event (its work), one that waits costs one more."""
import simpy

from resilience_sim import Service, ServiceError, World
from resilience_sim.sim.service import Request


def start_calls(world, svc, n, log, at=0.0):
    def one(i):
        if at:
            yield world.env.timeout(at)
        try:
            yield from svc.call(Request(world.now, "r", i))
            log.append((i, world.now))
        except ServiceError as err:
            log.append((i, err.reason))
        except simpy.Interrupt:
            pass
    return [world.env.process(one(i)) for i in range(n)]


def test_calls_are_served_first_come_first_served_within_capacity():
    world = World(1)
    svc = Service(world, "db", capacity=2, latency=1.0)
    log = []
    start_calls(world, svc, 5, log)
    world.env.run(until=0.5)
    assert (svc.busy, svc.waiting, svc.in_system) == (2, 3, 5)
    world.env.run()
    assert log == [(0, 1.0), (1, 1.0), (2, 2.0), (3, 2.0), (4, 3.0)]
    assert (svc.busy, svc.waiting) == (0, 0)


def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_is_served():
    world = World(1)
    svc = Service(world, "db", capacity=1, latency=1.0)
    log = []
    procs = start_calls(world, svc, 3, log)
    world.env.run(until=0.5)
    procs[1].interrupt("cancelled")
    world.env.run(until=0.6)
    assert svc.waiting == 1
    world.env.run()
    assert [i for i, _ in log] == [0, 2] and log[1] == (2, 2.0)
    assert (svc.busy, svc.waiting) == (0, 0)


def test_a_waiter_cancelled_just_as_its_slot_was_handed_passes_the_slot_on():
    world = World(1)
    svc = Service(world, "db", capacity=1, latency=1.0)
    log = []
    procs = start_calls(world, svc, 3, log)

    def cancel_at_handover():
        yield world.env.timeout(1.0)     # the first call ends now and hands its slot to the second
        procs[1].interrupt("cancelled")
    world.env.process(cancel_at_handover())
    world.env.run()
    assert [i for i, _ in log] == [0, 2] and log[1] == (2, 2.0)
    assert (svc.busy, svc.waiting) == (0, 0)


class CountingEnvironment(simpy.Environment):
    def __init__(self):
        super().__init__()
        self.scheduled = 0

    def schedule(self, event, priority=1, delay=0):
        self.scheduled += 1
        super().schedule(event, priority, delay)


def events_for(n_calls, capacity):
    world = World(1)
    world.env = CountingEnvironment()
    svc = Service(world, "db", capacity=capacity, latency=1.0)
    log = []
    start_calls(world, svc, n_calls, log)
    world.env.run()
    processes = 2 * n_calls              # each caller's process: its start and its end
    return world.env.scheduled - processes


def test_a_call_costs_its_work_plus_one_event_if_it_waits():
    assert events_for(4, capacity=4) == 4            # no waiting: the work timeouts only
    assert events_for(4, capacity=1) == 4 + 3        # three waited, each woken by one event
