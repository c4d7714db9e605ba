"""The plot helpers draw what they say, labelled, from a run's results."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resilience_sim import LatencySpike, OpenLoop, Outage, Service, World, plots  # noqa: E402


def run():
    world = World(2)
    api = Service(world, "api", capacity=20, latency=0.01)
    db = Service(world, "db", capacity=20, latency=0.01)
    Outage(api, [(20, 30)])
    LatencySpike(db, [(40, 45)], extra=0.2)
    OpenLoop(world, api, 20, duration=60)
    return world.run(until=60)


def test_availability_over_time_shades_each_fault_kind_once():
    results = run()
    fig, ax = plt.subplots()
    plots.availability_over_time(results, ax=ax, bin_width=5)
    labels = [p.get_label() for p in ax.patches if not p.get_label().startswith("_")]
    assert labels == ["outage", "latency spike"]
    assert ax.get_xlabel() == "time (s)" and "%" in ax.get_ylabel()
    line = ax.lines[0]
    assert min(line.get_ydata()) == 0.0 and max(line.get_ydata()) == 100.0
    plt.close(fig)


def test_latency_distribution_marks_percentiles():
    results = run()
    fig, ax = plt.subplots()
    plots.latency_distribution(results, ax=ax)
    assert [t.get_text() for t in ax.texts] == ["p50", "p99"]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "latency (ms)"
    plt.close(fig)


def test_service_timeline_draws_down_periods_in_red():
    results = run()
    fig, ax = plt.subplots()
    plots.service_timeline(results, ["api", "db"], ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["api", "db"]
    bars = ax.collections
    assert len(bars) == 3              # two "up" backgrounds and api's one outage
    assert list(bars[1].get_paths()[0].vertices[:, 0].min(keepdims=True)) == [20.0]
    plt.close(fig)
