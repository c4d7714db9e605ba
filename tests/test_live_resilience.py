"""A resilience test as CI would run it: under an injected fault mix the protected client keeps its SLO
(answered >= 97%, p99 <= 400 ms) and plain httpx misses it; steady state checked before, faults always
rolled back. Bounded: about 100 requests a run, a second each."""
import httpx

from resilience_sim.core.profiles import Constant
from resilience_sim.live.client import ResilientClient
from resilience_sim.live.experiment import Action, Experiment, Probe
from resilience_sim.live.load import run_load
from resilience_sim.live.services import Catalog
from resilience_sim.policies import FullJitter, RetryBudget, RetryPolicy
from live_support import no_leaks

SLO = (0.97, 0.400)


def measure(catalog, protected: bool):
    def call_plain(key):
        return http.get(f"{catalog.url}/items/{key}")

    with httpx.Client() as http:
        if not protected:
            report = run_load(call_plain, Constant(100), duration=1.0, max_requests=500, seed=3, workers=32,
                              key=lambda rng: rng.randrange(1, 1000))
        else:
            with ResilientClient(catalog.url, deadline=0.3, timeout=0.1, retry=RetryPolicy(3, FullJitter(0.01, 0.1)),
                                 budget=RetryBudget(0.3), http=http) as client:
                report = run_load(lambda key: client.get(f"/items/{key}"), Constant(100), duration=1.0,
                                  max_requests=500, seed=3, workers=32, key=lambda rng: rng.randrange(1, 1000),
                                  clients=[client])
    r = report.results
    return r.request_availability(), r.latency_percentiles((99,))[99]


def experiment(catalog, protected: bool):
    inject = Action("503s and a slow tail", lambda: catalog.faults.fail(503, rate=0.1, retry_after=0.02)
                    .slow(0.3, rate=0.05))
    return Experiment("catalog faults", steady_state=[Probe("SLO", lambda: measure(catalog, protected),
                                                            lambda v: v[0] >= SLO[0] and v[1] <= SLO[1])],
                      method=[inject], rollbacks=[Action("clear", catalog.faults.clear)]).run()


def test_the_protected_client_keeps_its_slo_under_faults_and_plain_httpx_does_not():
    with no_leaks(settle=3.0):
        with Catalog(seed=5) as catalog:
            plain = experiment(catalog, protected=False)
            protected = experiment(catalog, protected=True)
            assert not catalog.faults.active()              # rolled back
    assert plain.steady_before and not plain.hypothesis_held, str(plain)
    assert plain.after[0].value[0] < 0.95, str(plain)       # the 503s reach the users
    assert protected.hypothesis_held, str(protected)
