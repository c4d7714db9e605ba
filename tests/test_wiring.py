"""A service's dependencies are real: a declared client's policies and partitions apply to every
``ask`` with no ``caller=`` to forget; a dependency that does not exist is refused before the run;
every failure reason belongs to the one vocabulary."""
import pytest

from resilience_sim import Client, OpenLoop, Outage, Partition, Service, ServiceError, World
from resilience_sim.policies import ConstantBackoff, RetryPolicy


def api_over_db(world, *, through_client=True, call_directly=False, **client_args):
    db = Service(world, "db", capacity=20, latency=0.01)
    dep = Client(world, db, name="db-client", **client_args) if through_client else db

    def handler(svc, req):
        if call_directly:
            return (yield from dep.call(req))
        return (yield from svc.ask("db", req))
    api = Service(world, "api", capacity=20, latency=0.001, dependencies=[dep], handler=handler)
    return api, db, dep


@pytest.mark.parametrize("through_client, call_directly", [(False, False), (True, False), (True, True)])
def test_a_partition_applies_to_every_call_without_a_caller_argument(through_client, call_directly):
    world = World(1)
    api, db, _ = api_over_db(world, through_client=through_client, call_directly=call_directly)
    Partition(api, db, [(10, 20)])
    OpenLoop(world, api, 20, duration=30)
    results = world.run(until=31)
    # before the fix, a client called without caller=svc switched the partition off: 1.0 here
    assert results.between(10, 20).request_availability() == 0.0
    assert results.between(10, 20).reasons() == {"partition": len(results.between(10, 20))}
    assert results.between(0, 10).request_availability() == 1.0


def test_ask_goes_through_the_declared_clients_policies():
    world = World(1)
    retry = RetryPolicy(3, ConstantBackoff(0.01))
    api, db, client = api_over_db(world, retry=retry)
    Outage(db, [(5.0, 5.5)])
    OpenLoop(world, api, 20, duration=10)
    results = world.run(until=11)
    assert results.client("db-client").requests == len(results)
    assert results.client("db-client").attempts > len(results)      # retries during the outage
    assert client.owner is api


def test_a_dependency_named_but_absent_is_refused_before_any_time_passes():
    world = World(1)
    api = Service(world, "api", dependencies=["dbb"], handler=lambda svc, req: (yield from svc.ask("dbb", req)))
    OpenLoop(world, api, 5, duration=5)
    with pytest.raises(ValueError, match=r"'dbb', which is not a service of this world"):
        world.run(until=10)
    assert world.now == 0


def test_asking_for_an_undeclared_dependency_names_the_declared_ones():
    world = World(1)
    Service(world, "db")
    api = Service(world, "api", dependencies=["db"])
    with pytest.raises(ValueError, match=r"dependency must be one of \['db'\] for 'api', got 'cache'"):
        api.ask("cache", None)


def test_a_dict_names_dependencies_and_one_client_serves_one_caller():
    world = World(1)
    db = Service(world, "db")
    client = Client(world, db, name="to-db")
    a = Service(world, "a", dependencies={"store": client})
    assert a.dependencies == ("store",)
    Service(world, "b", dependencies=[client])
    with pytest.raises(ValueError, match="declared by both 'a' and 'b'"):
        world.run(until=1)
    with pytest.raises(ValueError, match="dependencies of 'c' name 'db' twice"):
        Service(world, "c", dependencies=["db", db])


def test_a_dependency_from_another_world_is_refused():
    other = Service(World(2), "db")
    world = World(1)
    Service(world, "api", dependencies=[other])
    with pytest.raises(ValueError, match="another World"):
        world.run(until=1)


def test_failure_reasons_come_from_one_vocabulary():
    assert ServiceError("db", "timeout").outcome.name == "TIMED_OUT"
    assert ServiceError("db", "circuit open").outcome.name == "REJECTED"
    with pytest.raises(ValueError, match=r"reason must be a known reason, one of \[.*'timeout'.*\]; got 'timout'"):
        ServiceError("db", "timout")
