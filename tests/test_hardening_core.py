"""A simulator that cannot be fooled: absurd magnitudes are computed robustly or refused at once with
the limit in the message, and wrong types are explained (the parameter, what it takes, the value
given), never a crash deep inside numpy or matplotlib, a hang, or a silently wrong number.

Calls that used to hang run through ``immediately``, which fails the test if they take more than a
few seconds instead of hanging the suite."""
import math
import random
import sys
import threading
import time
from fractions import Fraction

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from resilience_sim import (Fixed, LatencySpike, LogNormal, Mixture, OpenLoop, Outage, Service,  # noqa: E402
                            Uniform, Weibull, World, theory)
from resilience_sim.core import distributions, validate  # noqa: E402
from resilience_sim.core.validate import OutOfRange, WrongType  # noqa: E402
from resilience_sim.dashboard import Choice, Dashboard, Slider  # noqa: E402
from resilience_sim.metrics.results import MAX_BINS, ClientStats  # noqa: E402
from resilience_sim.views import plots  # noqa: E402

BIG = sys.float_info.max


def immediately(call, seconds: float = 5.0):
    """Run ``call`` in a thread; fail (rather than hang) if it is not done within ``seconds``.
    Returns ``(value, None)`` or ``(None, exception)``."""
    box = {}

    def target():
        try:
            box["value"] = call()
        except BaseException as exc:   # noqa: BLE001 - handed back to the test
            box["error"] = exc
    thread = threading.Thread(target=target, daemon=True)
    start = time.perf_counter()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it should refuse at once"
    box["elapsed"] = time.perf_counter() - start
    return box.get("value"), box.get("error")


def refuses(call, *words, kind=ValueError):
    """``call`` raises ``kind`` at once, with every one of ``words`` in its message."""
    _, error = immediately(call)
    assert isinstance(error, kind), f"expected {kind.__name__}, got {error!r}"
    for word in words:
        assert word in str(error), f"{word!r} not in: {error}"
    return error


@pytest.fixture(scope="module")
def results():
    world = World(1)
    db = Service(world, "db", latency=0.01)
    Outage(db, [(2, 3)])
    OpenLoop(world, db, 20, duration=10)
    return world.run(until=10)


# --- validate -----------------------------------------------------------------------------------------
def test_boolean_takes_only_true_or_false_and_says_so_in_the_house_format():
    assert validate.boolean("shade", True) is True and validate.boolean("shade", False) is False
    assert validate.boolean("shade", np.True_) is True and validate.boolean("shade", np.bool_(False)) is False
    for value in (1, 0, 1.0, None, "yes", "False", [], np.int64(1)):
        error = refuses(lambda: validate.boolean("shade", value), kind=WrongType)
        hint = " (any non-empty string is truthy: write True or False)" if isinstance(value, str) else ""
        assert str(error) == f"shade must be True or False, got {value!r}{hint}"


def test_a_wrong_type_is_both_a_type_error_and_a_value_error():
    error = refuses(lambda: validate.number("rate", "5"), "rate", "number", "'5'", kind=WrongType)
    assert isinstance(error, TypeError) and isinstance(error, ValueError)
    refuses(lambda: validate.integer("n", None), "n", "whole number", kind=TypeError)
    refuses(lambda: validate.number("rate", np.True_), "rate", kind=TypeError)


def test_an_integer_beyond_any_float_is_refused_as_infinite_not_an_overflow_error():
    refuses(lambda: validate.number("rate", 10 ** 400), "rate", "(401 characters)")
    refuses(lambda: validate.positive("rate", -10 ** 400), "rate", "> 0")
    assert validate.number("limit", 10 ** 400, low=0.0, allow_inf=True) == math.inf
    assert validate.integer("n", Fraction(10 ** 400)) == 10 ** 400       # a whole Fraction, however large
    refuses(lambda: validate.integer("n", Fraction(7, 2)), "n", "whole number")


def test_a_bound_from_above_alone_is_stated_in_the_message():
    refuses(lambda: validate.number("x", 5, high=3), "x must be <= 3", "got 5.0")


def test_numpy_scalars_are_welcome_and_nan_and_inf_are_not():
    assert validate.number("x", np.float32(0.5), low=0.0) == 0.5
    assert validate.integer("n", np.int8(3)) == 3 and validate.integer("n", np.float64(3.0)) == 3
    for bad in (math.nan, np.float64("nan"), math.inf, -math.inf):
        refuses(lambda: validate.number("x", bad, low=0.0), "x")
        refuses(lambda: validate.integer("n", bad), "n", "whole number")


def test_choice_refuses_an_array_with_its_own_message_not_numpys_ambiguity():
    error = refuses(lambda: validate.choice("need", np.array([1, 2]), [1, 2]), "need must be one of [1, 2]")
    assert "ambiguous" not in str(error)


def test_an_index_is_an_int_counted_from_either_end():
    assert validate.index("i", 0, 3) == 0 and validate.index("i", -1, 3) == 2
    assert validate.index("i", np.int64(2), 3) == 2
    for bad in ("1", True, 1.0, None, np.float64(1)):
        refuses(lambda: validate.index("i", bad, 3), "i must be a whole number", kind=WrongType)
    refuses(lambda: validate.index("i", 3, 3), "i must be in [-3, 2]", "got 3", kind=OutOfRange)
    refuses(lambda: validate.index("i", -4, 3), "got -4", kind=IndexError)
    refuses(lambda: validate.index("i", 0, 0), "empty", kind=OutOfRange)


# --- distributions -----------------------------------------------------------------------------------
def test_a_lognormal_whose_mean_no_float_holds_is_refused_with_a_sigma_that_works():
    error = refuses(lambda: LogNormal(0.01, 40), "LogNormal(median=0.01, sigma=40)", "mean", "sigma must be <=")
    bound = float(str(error).split("sigma must be <= ")[1].split()[0])
    assert math.isfinite(LogNormal(0.01, bound).mean)
    refuses(lambda: LogNormal(1.0, 1e200), "sigma must be <=")         # sigma**2 would overflow by itself


def test_a_weibull_whose_mean_no_float_holds_is_refused_with_a_shape_that_works():
    error = refuses(lambda: Weibull(1, 0.001), "Weibull(scale=1, shape=0.001)", "mean", "shape must be >=")
    bound = float(str(error).split("shape must be >= ")[1].split()[0])
    assert math.isfinite(Weibull(1, bound).mean)
    refuses(lambda: Weibull(1, 5e-324), "shape must be >=")


def test_a_latency_spike_with_an_absurd_latency_cannot_be_built():
    # its mean used to overflow inside the spike; now the distribution is refused where it is made
    refuses(lambda: LatencySpike(Service(World(1), "db"), [(1, 2)], extra=LogNormal(0.01, 40)), "sigma must be <=")


def test_a_tiny_scale_brings_a_huge_factor_back_to_a_finite_mean_and_finite_draws():
    lognormal, weibull = LogNormal(1e-300, 50), Weibull(1e-300, 1 / 290)
    assert lognormal.mean == pytest.approx(math.exp(math.log(1e-300) + 50 ** 2 / 2))
    assert weibull.mean == pytest.approx(math.exp(math.log(1e-300) + math.lgamma(291)))
    rng = random.Random(3)
    for dist in (lognormal, weibull, LogNormal(1e300, 5), Weibull(1e300, 0.09)):
        draws = dist.samples(rng, 2000)          # used to raise OverflowError in the far tail
        assert all(d >= 0 for d in draws)


def test_draws_are_the_very_ones_random_gives_so_no_seed_changes():
    for dist, draw in ((LogNormal(0.02, 0.8), lambda r: r.lognormvariate(math.log(0.02), 0.8)),
                       (Weibull(100.0, 1.5), lambda r: r.weibullvariate(100.0, 1.5))):
        a, b = random.Random(7), random.Random(7)
        assert dist.samples(a, 1000) == [draw(b) for _ in range(1000)]


def test_means_near_the_largest_float_are_not_infinite():
    assert Uniform(1e308, 1.5e308).mean == pytest.approx(1.25e308)
    assert Mixture([(1, Fixed(1.7e308)), (1, Fixed(1.6e308))]).mean == pytest.approx(1.65e308)


def test_huge_mixture_weights_keep_their_proportions():
    mix = Mixture([(1e308, Fixed(1)), (1e308, Fixed(2)), (5e307, Fixed(3))])
    assert [w for w, _ in mix.parts] == pytest.approx([0.4, 0.4, 0.2])
    assert mix.mean == pytest.approx(1.8)


def test_a_mixture_given_anything_but_a_list_of_pairs_says_what_it_takes():
    for bad in (5, "ab", Fixed(1), None):
        refuses(lambda: Mixture(bad), "parts must be a list of (weight, Distribution) pairs", kind=WrongType)
    refuses(lambda: Mixture((1, Fixed(1))), "parts[0] must be a (weight, Distribution) pair", kind=WrongType)


def test_slow_tail_names_fast_and_slow_not_value():
    refuses(lambda: Mixture.slow_tail(-1, 1, 0.1), "fast must be >= 0")
    refuses(lambda: Mixture.slow_tail(0.01, "1", 0.1), "slow must be", kind=WrongType)


def test_from_percentiles_speaks_of_the_p99_it_was_given():
    refuses(lambda: LogNormal.from_percentiles(1e-300, 1e300), "p99 must be closer to median")
    refuses(lambda: LogNormal.from_percentiles(5e-324, 1e300), "p99 must be closer to median")   # ratio: inf


def test_a_lognormal_quantile_beyond_any_float_is_refused_and_a_finite_one_given():
    assert LogNormal(1e-300, 50).quantile(0.999) == pytest.approx(
        math.exp(math.log(1e-300) + 50 * 3.090232306167813), rel=1e-9)
    refuses(lambda: LogNormal(1e300, 6).quantile(1 - 1e-12), "q must give a quantile a float can hold")


def test_samples_refuses_a_count_it_could_not_finish_and_an_rng_that_is_not_one():
    refuses(lambda: Fixed(1).samples(random.Random(1), 10 ** 10), "n must be a whole number in [0, 10000000]")
    refuses(lambda: Fixed(1).samples(None, 3), "rng must be a random.Random", kind=WrongType)
    refuses(lambda: Fixed(1).samples(np.random.default_rng(1), 3), "rng must be a random.Random", kind=WrongType)
    assert distributions.MAX_SAMPLES == 10 ** 7


def test_as_distribution_refuses_an_unknown_reading_of_numbers():
    refuses(lambda: distributions.as_distribution("x", 1, number_means="fixd"), "number_means must be one of")


# --- theory ------------------------------------------------------------------------------------------------
def test_availability_of_huge_equal_times_is_one_half():
    assert theory.availability(1e308, 1e308) == 0.5
    assert theory.availability(1.5e308, 0.5e308) == pytest.approx(0.75)


def test_availability_sd_survives_times_whose_powers_overflow_or_underflow():
    scale = 1e200
    assert theory.availability_sd(scale, scale, scale) == pytest.approx(theory.availability_sd(1, 1, 1))
    assert theory.availability_sd(1e-200, 1e-200, 1e-200) == pytest.approx(theory.availability_sd(1, 1, 1))


def test_series_given_a_list_says_to_unpack_it():
    refuses(lambda: theory.series([0.9, 0.99]), "series(*values)", kind=WrongType)
    refuses(lambda: theory.parallel(np.array([0.9, 0.99])), "with a star", kind=WrongType)


def test_many_independent_replicas_are_answered_at_once_by_the_closed_form():
    value, error = immediately(lambda: theory.replicas_availability(10 ** 8, 10, 1))
    assert error is None and value == 1.0
    value, error = immediately(lambda: theory.replicas_availability(10 ** 30, 1, 1e6))
    assert error is None and value == pytest.approx(-math.expm1(10 ** 30 * math.log(1e6 / (1e6 + 1))))
    assert theory.replicas_availability(10 ** 400, 10, 1) == 1.0
    assert theory.replicas_availability(10 ** 7, 1.0, 1e9) == pytest.approx(1 - (1e9 / (1 + 1e9)) ** 10 ** 7)
    # the chain and the closed form agree where both apply
    assert theory.replicas_availability(3, 100.0, 25.0) == pytest.approx(1 - 0.2 ** 3)


def test_many_replicas_sharing_few_crews_are_refused_at_once_with_the_limit():
    refuses(lambda: theory.replicas_availability(10 ** 8, 10, 1, crews=1), "n must be <= 1,000,000", "crews=1")
    assert theory.MAX_STATES == 10 ** 6


def test_replicas_availability_depends_on_the_ratio_even_where_a_float_cannot_invert_the_times():
    # 1 / 5e-310 is inf: the chain is then built from log(mttr) - log(mttf)
    for crews in (None, 1, 2):
        assert theory.replicas_availability(3, 5e-310, 1e-309, crews=crews) == pytest.approx(
            theory.replicas_availability(3, 5.0, 10.0, crews=crews), rel=1e-9)
    assert theory.replicas_availability(3, 1e308, 1e-308) == 1.0      # used to raise "math domain error"


def test_erlang_c_refuses_more_servers_than_it_can_sum_at_once():
    refuses(lambda: theory.erlang_c(10 ** 30, 1, 1), "servers must be a whole number in [1, 1000000]")
    refuses(lambda: theory.mmc_response_time(10 ** 30, 1, 1), "servers")


def erlang_c_by_erlang_b(c, load):
    """The Erlang C probability through the stable Erlang B recursion (no factorials)."""
    b = 1.0
    for k in range(1, c + 1):
        b = load * b / (k + load * b)
    return c * b / (c - load * (1 - b))


@pytest.mark.parametrize("c, load", [(2000, 1999.0), (1000, 800.0), (5, 4.5), (50, 10.0)])
def test_erlang_c_of_a_heavy_load_is_a_probability_not_nan(c, load):
    assert theory.erlang_c(c, load, 1.0) == pytest.approx(erlang_c_by_erlang_b(c, load), rel=1e-9)


def test_an_error_budget_of_a_billion_requests_is_exact():
    # (1 - 0.9) * 10**9 in floats is 99999999.99999997: the old floor gave one request too few
    assert theory.error_budget(0.9, 10 ** 9) == 10 ** 8
    assert theory.error_budget(0.999, 10 ** 15) == 10 ** 12
    assert theory.error_budget(0.9, 10 ** 400) == 10 ** 399
    assert theory.error_budget(0.999, 5_259_600) == 5259      # the lesson's month, unchanged


def test_fanout_of_a_tiny_slow_share_is_not_zero():
    assert theory.fanout_slow_share(1e-20, 100) == pytest.approx(1e-18)
    assert theory.fanout_slow_share(0.01, 100) == pytest.approx(1 - 0.99 ** 100)
    assert theory.fanout_slow_share(1.0, 3) == 1.0 and theory.fanout_slow_share(0.0, 3) == 0.0
    assert theory.fanout_slow_share(0.1, 10 ** 400) == 1.0


def test_a_mean_time_beyond_any_float_is_refused_not_infinite():
    refuses(lambda: theory.mm1_response_time(5e-324, 1e-323), "arrival_rate must be further below")
    refuses(lambda: theory.littles_law(1e308, 1e308), "arrival_rate * mean_time")


# --- results --------------------------------------------------------------------------------------------
def test_a_request_is_picked_by_an_int_and_anything_else_is_explained(results):
    n = len(results)
    assert results.row(-1) == results.row(n - 1) and results.reason(np.int64(0)) == results.reason(0)
    for method in (results.row, results.reason, results.key):
        for bad in ("1", True, 1.0, None):
            refuses(lambda: method(bad), "i must be a whole number", kind=WrongType)
        refuses(lambda: method(n), f"i must be in [-{n}, {n - 1}]", kind=OutOfRange)


def test_a_timeseries_of_too_many_bins_is_refused_at_once_with_a_bin_width_that_works(results):
    error = refuses(lambda: results.timeseries(1e-9), "at most 1,000,000 bins", "10,000,000,000", "bin_width >=")
    least = float(str(error).split("bin_width >= ")[1])
    assert len(results.timeseries(least)["t"]) <= MAX_BINS


def test_each_bins_p99_is_the_percentile_of_that_bins_answers(results):
    series = results.timeseries(0.5)
    ok = results.outcome <= 1
    for b, t in enumerate(series["t"]):
        inside = ok & (results.start >= t) & (results.start < t + 0.5)
        if inside.any():
            assert series["p99"][b] == np.percentile(results.latency[inside], 99)
        else:
            assert math.isnan(series["p99"][b])


def test_latency_percentiles_want_a_list_of_numbers_and_a_true_or_false(results):
    refuses(lambda: results.latency_percentiles("50"), "ps must be a list of percentiles", kind=WrongType)
    refuses(lambda: results.latency_percentiles(99), "ps must be a list", kind=WrongType)
    refuses(lambda: results.latency_percentiles([50, 101]), "ps[1] must be in (0, 100]")
    refuses(lambda: results.latency_percentiles(successful=None), "successful must be True or False")
    refuses(lambda: results.mean_latency(successful="yes"), "successful must be True or False")
    refuses(lambda: results.reasons(unanswered_only="no"), "unanswered_only must be True or False")
    assert list(results.latency_percentiles((50, 99))) == [50, 99]         # keys as given


def test_names_given_as_a_list_are_explained_with_the_star(results):
    for call in (lambda: results.time_availability(["db"]), lambda: results.calls_per_request(["db"]),
                 lambda: results.client(["api->db"]), lambda: results.only(["users"])):
        refuses(call, "must be a name (a string)", "*names", kind=WrongType)
    refuses(lambda: results.time_availability("nope"), "service must be one of ['db']")


def test_a_breaker_state_asked_at_nan_is_refused_not_read_as_the_last_state():
    stats = ClientStats("c", 1, 1, 0.0, {}, 0, 0, ((0.0, "closed"), (5.0, "open")), ())
    assert list(stats.breaker_state_at([1.0, 6.0])) == [0, 2]
    refuses(lambda: stats.breaker_state_at([1.0, math.nan]), "times must be finite")
    refuses(lambda: stats.breaker_state_at("soon"), "times must be a number", kind=WrongType)


# --- plots -----------------------------------------------------------------------------------------------
def test_a_histogram_wants_a_whole_number_of_bars(results):
    for bad in (0, 2.5, "60", 10 ** 9):
        refuses(lambda: plots.latency_distribution(results, bins=bad), "bins must be a whole number in [1, 10000]")
    ax = plots.latency_distribution(results, bins=1, percentiles=())
    assert len(ax.texts) == 0 and len(ax.lines) == 0                     # no percentile markers asked
    plt.close("all")


def test_plots_name_the_percentiles_parameter_they_were_given(results):
    refuses(lambda: plots.latency_distribution(results, percentiles="99"), "percentiles must be a list",
            kind=WrongType)
    refuses(lambda: plots.latency_distribution(results, percentiles=(50, 0)), "percentiles[1]")


def test_plots_say_what_ax_and_results_must_be(results):
    refuses(lambda: plots.latency_distribution(results, ax=5), "ax must be a matplotlib Axes", kind=WrongType)
    _, axes = plt.subplots(1, 2)
    refuses(lambda: plots.availability_over_time(results, ax=axes), "pass one, e.g. axes[0]", kind=WrongType)
    world = World(1)
    refuses(lambda: plots.latency_distribution(world), "world.run(until=...)", kind=WrongType)

    class Run:
        pass
    run = Run()
    run.results = results
    refuses(lambda: plots.service_timeline(run), "pass its .results", kind=WrongType)
    plt.close("all")


def test_plot_options_are_checked_by_name(results):
    refuses(lambda: plots.availability_over_time(results, shade="no"), "shade must be True or False")
    refuses(lambda: plots.availability_over_time(results, color="notacolour"), "color must be a matplotlib colour")
    refuses(lambda: plots.availability_over_time(results, label=5), "label must be a string", kind=WrongType)
    refuses(lambda: plots.shade_faults(plt.gca(), results, alpha=2), "alpha must be in [0, 1]")
    plt.close("all")


def test_services_and_kinds_given_as_one_string_are_refused_not_split_into_letters(results):
    refuses(lambda: plots.service_timeline(results, "db"), "services must be a list of service names", kind=WrongType)
    refuses(lambda: plots.service_timeline(results, []), "services must name at least one")
    refuses(lambda: plots.shade_faults(plt.gca(), results, kinds="outage"), "kinds must be a list", kind=WrongType)
    refuses(lambda: plots.shade_faults(plt.gca(), results, kinds=["outgae"]), "kinds[0] must be one of")
    plt.close("all")


def test_availability_over_time_of_a_short_view_covers_the_views_own_window(results):
    view = results.between(9.9, 10)          # the default bin was until / 60 = 0.17 s, wider than the view
    ax = plots.availability_over_time(view)
    assert ax.get_xlim() == (9.9, 10)
    plt.close("all")


# --- dashboards --------------------------------------------------------------------------------------------
def test_a_slider_says_which_field_has_the_wrong_type():
    refuses(lambda: Slider(5, "rate", "req/s", 0, 1, 0.5), "name must be a string", kind=WrongType)
    refuses(lambda: Slider("rate", 5, "req/s", 0, 1, 0.5), "label must be a string", kind=WrongType)
    refuses(lambda: Slider("rate", "rate", None, 0, 1, 0.5), "unit must be a string", kind=WrongType)
    refuses(lambda: Slider("rate", "rate", "", 0, 1, 0, integer="yes"), "integer must be True or False")
    refuses(lambda: Slider("rate", "rate", "", "0", 1, 0.5), "low must be a number", kind=WrongType)
    refuses(lambda: Slider("rate", "rate", "", -1e308, 1e308, 0), "high - low must be a finite range")
    refuses(lambda: Slider("class", "rate", "", 0, 1, 0.5), "name must be a Python identifier")


def test_a_choice_says_what_its_options_must_be():
    refuses(lambda: Choice(5, "mode", (("a", 1), ("b", 2)), 1), "name must be a string", kind=WrongType)
    refuses(lambda: Choice("mode", "mode", 5, 1), "options must be a list of at least two", kind=WrongType)
    refuses(lambda: Choice("mode", "mode", "ab", "a"), "options must be a list", kind=WrongType)
    refuses(lambda: Choice("mode", "mode", (("a", 1), ("a", 2)), 1), "distinct texts")
    refuses(lambda: Choice("mode", "mode", (("a", 1), ("b", 1)), 1), "distinct values")
    refuses(lambda: Choice("mode", "mode", (("a", np.array([1])), ("b", 2)), 3), "default must be one of")


def test_a_dashboard_says_which_argument_has_the_wrong_type():
    def compute(rate):
        return rate

    def draw(ax, result):
        ax.plot([result])
    slider = Slider("rate", "rate", "req/s", 1, 10, 5)
    for kwargs, words in [
            (dict(compute=5), ["compute must be a function"]),
            (dict(draw=None), ["draw must be a function"]),
            (dict(sliders=slider), ["sliders must be a list", "put it in a list"]),
            (dict(sliders=[slider, "rate"]), ["sliders[1] must be a Slider or Choice"]),
            (dict(sliders=5), ["sliders must be a list"]),
            (dict(variants=["without", "with"]), ["variants must be a dict"]),
            (dict(variants={1: {}}), ["variants keys (the panel titles) must be strings"]),
            (dict(summary=5), ["summary must be a function (or None)"]),
            (dict(title=5), ["title must be a string"]),
            (dict(figsize=5), ["figsize must be a (width, height) pair"]),
            (dict(figsize=("9", 3)), ["figsize width must be a number"]),
            (dict(figsize=(1e6, 3)), ["figsize * dpi must be at most 4000 pixels"]),
            (dict(sharey="no"), ["sharey must be True or False"])]:
        args = {"compute": compute, "draw": draw, "sliders": [slider], **kwargs}
        refuses(lambda: Dashboard(args.pop("compute"), args.pop("draw"), args.pop("sliders"), **args), *words)


def test_a_dashboards_render_takes_fresh_as_true_or_false():
    dash = Dashboard(lambda rate: rate, lambda ax, result: ax.plot([result]),
                     [Slider("rate", "rate", "req/s", 1, 10, 5)])
    assert dash.render(fresh=True) == dash.render()
    refuses(lambda: dash.render(fresh="yes"), "fresh must be True or False", kind=WrongType)


# --- fuzzed inputs: validate, distributions, event logs -----------------------------------------------------
def test_a_bound_given_as_a_fraction_is_stated_as_a_decimal_not_a_format_error():
    refuses(lambda: Uniform(Fraction(3, 2), 1), "high must be >= 1.5 and finite, got 1.0")
    assert Uniform(Fraction(3, 2), 2).mean == 1.75
    refuses(lambda: validate.number("x", 5, high=Fraction(1, 3)), "x must be <= 0.333333")


def test_choice_does_not_take_true_for_the_option_one_nor_one_for_true():
    refuses(lambda: validate.choice("mode", True, [1, 2]), "mode must be one of [1, 2], got True")
    refuses(lambda: validate.choice("flag", 1, [True, False]), "flag must be one of [True, False], got 1")
    assert validate.choice("mode", 2.0, [1, 2]) == 2
    assert validate.choice("flag", np.bool_(False), [True, False]) == np.bool_(False)
    refuses(lambda: Choice("mode", "Mode", (("one", 1), ("two", 2)), True), "default must be one of the option values")
    refuses(lambda: Choice("mode", "Mode", (("one", 1), ("two", 2)), 1).check(True), "mode must be one of [1, 2]")


def test_as_distribution_wants_the_name_it_speaks_of_as_a_non_empty_string():
    refuses(lambda: distributions.as_distribution(None, 1, number_means="fixed"), "name must be a string",
            kind=WrongType)
    refuses(lambda: distributions.as_distribution("", 1, number_means="fixed"), "name must be a non-empty string")
    refuses(lambda: distributions.as_distribution("latency", -1, number_means="fixed"), "latency must be")


@pytest.mark.parametrize("dist", [distributions.Exponential(1.0), LogNormal(1.0, 0.5), Uniform(0.0, 1.0),
                                  Weibull(1.0, 1.5), Mixture([(0.5, Fixed(0.1)), (0.5, Fixed(0.2))])])
def test_a_draw_from_something_that_is_not_a_random_generator_names_rng(dist):
    for rng in (None, "rng", 1, True, [random.Random(1)], random.Random):
        refuses(lambda: dist.sample(rng), "rng must be a random.Random", "got", kind=WrongType)
    assert dist.sample(random.Random(7)) == dist.sample(random.Random(7))     # the good path is untouched


def test_a_real_random_generators_own_error_is_not_disguised_as_a_wrong_rng():
    class Broken(random.Random):
        def expovariate(self, rate):
            raise TypeError("broken inside")
    refuses(lambda: distributions.Exponential(1.0).sample(Broken(1)), "broken inside", kind=TypeError)


def test_a_log_limit_past_a_billion_is_refused_with_the_limit_not_a_c_overflow():
    from resilience_sim.core.eventlog import MAX_LIMIT, EventLog, policy_log
    from resilience_sim.policies import CircuitBreaker
    for limit in (10 ** 30, 10 ** 400, MAX_LIMIT + 1):
        refuses(lambda: EventLog(limit), "limit must be a whole number >= 0 and <= 1,000,000,000")
        refuses(lambda: policy_log("trips", limit), "log_limit must be a whole number >= 0")
        refuses(lambda: CircuitBreaker(consecutive_failures=3, log_limit=limit), "log_limit must be",
                "or None (keep all)")
    refuses(lambda: EventLog("10"), "limit must be a whole number", kind=WrongType)
    assert EventLog(MAX_LIMIT).limit == MAX_LIMIT and EventLog(None).limit is None


# --- fuzzed inputs: window metrics, breaker states, widgets ------------------------------------------------------
def test_window_metrics_take_a_results_a_timeline_and_a_finite_non_empty_window(results):
    from resilience_sim.metrics.windows import availability_between, batch_means, quality_series, time_down
    world = World(2)
    refuses(lambda: availability_between(world, 0, 1), "results must be a Results", "run the world first",
            kind=WrongType)
    refuses(lambda: quality_series(None, 1.0), "results must be a Results", kind=WrongType)
    refuses(lambda: batch_means([results], "db"), "results must be a Results", kind=WrongType)
    refuses(lambda: time_down(results, 0, 1), "timeline must be a Timeline", kind=WrongType)
    timeline = results.services["db"].timeline
    for call in (lambda lo, hi: availability_between(results, lo, hi), lambda lo, hi: time_down(timeline, lo, hi)):
        refuses(lambda: call(True, 5), "lo must be a number", kind=WrongType)
        refuses(lambda: call(1, "5"), "hi must be a number", kind=WrongType)
        refuses(lambda: call(math.nan, 5), "lo must be a number (finite)")
        refuses(lambda: call(1, 10 ** 400), "hi must be a number (finite)")
        refuses(lambda: call(5, 5), "hi must be > lo (5.0)")
    assert time_down(timeline, 0, 10) == 1.0 and time_down(timeline, 2.5, 7) == 0.5
    assert math.isnan(availability_between(results, -1e308, -1e300))         # a window outside the run: empty


def test_quality_series_is_bounded_in_bins_as_timeseries_is(results):
    from resilience_sim.metrics.windows import quality_series
    for width in (5e-324, 1e-300, 1e-6):
        error = refuses(lambda: quality_series(results, width), f"bin_width must give at most {MAX_BINS:,} bins",
                        "use bin_width >= ")
        assert len(quality_series(results, float(str(error).rsplit(">= ", 1)[1]))["t"]) <= MAX_BINS
    assert len(quality_series(results, 1e308)["t"]) == 1


def test_batch_means_bounds_its_slices_and_cuts_its_work_into_chunks_that_change_nothing(results, monkeypatch):
    from resilience_sim.metrics import windows
    refuses(lambda: windows.batch_means(results, "db", batches=10 ** 30),
            "batches must be a whole number in [2, 1000000]")
    whole = windows.batch_means(results, "db", batches=50)
    monkeypatch.setattr(windows, "_CELLS", 3)                 # one slice at a time
    assert windows.batch_means(results, "db", batches=50) == whole


def test_a_breaker_state_is_asked_at_numbers_not_text():
    stats = ClientStats("c", 1, 1, 0.0, {}, 0, 0, ((0.0, "closed"), (5.0, "open")), ())
    for times in (["1"], b"1", [None], [[1.0], [2.0, 3.0]], [True], np.array(["1.0"])):
        refuses(lambda: stats.breaker_state_at(times), "times must be a number or a list", kind=WrongType)
    assert list(stats.breaker_state_at([1, Fraction(11, 2), 10 ** 30])) == [0, 2, 2]
    assert list(stats.breaker_state_at([])) == [] and stats.breaker_state_at(6).tolist() == 2
    refuses(lambda: stats.breaker_state_at([10 ** 400]), "times must be finite")


def test_a_widgets_label_width_is_a_whole_number_of_pixels():
    slider, choice = Slider("rate", "Rate", "rps", 0, 10, 5), Choice("mode", "Mode", (("one", 1), ("two", 2)), 1)
    for control in (slider, choice):
        for bad in ("190", None, True, 0.5, -1, 2001, math.inf):
            refuses(lambda: control.widget(bad), "label_px must be a whole number in [0, 2000]")
        assert control.widget(150.0).style.description_width == "150px"
