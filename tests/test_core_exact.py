"""core (validation, distributions, the event log, load profiles, reasons, records, seeds, timelines) on
small cases worked by hand: exact values and messages, both sides of every boundary, every branch."""
import math
import pickle
import re
import random
from fractions import Fraction

import numpy as np
import pytest

from resilience_sim.core import distributions as dist
from resilience_sim.core import validate
from resilience_sim.core.distributions import (Exponential, Fixed, LogNormal, Mixture, Uniform, Weibull,
                                               as_distribution)
from resilience_sim.core.eventlog import EventLog, check_callback, check_limit, policy_log
from resilience_sim.core.profiles import Constant, Ramp, Spike, Step
from resilience_sim.core.reasons import Outcome, check_reason, check_reasons, outcome_for
from resilience_sim.core.records import Recorder
from resilience_sim.core.seeds import stream_seed
from resilience_sim.core.timeline import Timeline, combine, group_availability
from resilience_sim.core.validate import OutOfRange, WrongType
from resilience_sim.policies.hedging import delay_from_percentile


def message(call) -> str:
    with pytest.raises(ValueError) as err:
        call()
    return str(err.value)


# --- validate ---------------------------------------------------------------------------------------
def test_boolean_takes_python_and_numpy_bools_only():
    assert validate.boolean("on", True) is True and validate.boolean("on", False) is False
    assert validate.boolean("on", np.bool_(True)) is True and type(validate.boolean("on", np.bool_(False))) is bool
    assert message(lambda: validate.boolean("on", 1)) == "on must be True or False, got 1"
    assert message(lambda: validate.boolean("on", "no")) == ("on must be True or False, got 'no' (any "
                                                            "non-empty string is truthy: write True or False)")
    with pytest.raises(WrongType):
        validate.boolean("on", None)


def test_show_cuts_a_repr_past_80_characters():
    assert validate.show("a" * 78) == repr("a" * 78)                 # 80 characters with the quotes
    long = "a" * 79                                                   # 81 with the quotes
    assert validate.show(long) == repr(long)[:60] + "... (81 characters)"
    assert validate.show(10 ** 100) == str(10 ** 100)[:60] + "... (101 characters)"


@pytest.mark.parametrize("kwargs, value, text", [
    (dict(low=0.0), -1, "x must be >= 0 and finite, got -1.0"),
    (dict(low=0.0, low_open=True), 0, "x must be > 0 and finite, got 0.0"),
    (dict(low=0.0, low_open=True, allow_inf=True), -2, "x must be > 0, got -2.0"),
    (dict(low=1.0, allow_inf=True), 0.5, "x must be >= 1, got 0.5"),
    (dict(high=5.0), 6, "x must be <= 5 and finite, got 6.0"),
    (dict(high=5.0, allow_inf=True), 6, "x must be <= 5, got 6.0"),
    (dict(low=0.0, high=1.0), 1.5, "x must be in [0, 1], got 1.5"),
    (dict(low=0.0, high=1.0), -0.5, "x must be in [0, 1], got -0.5"),
    (dict(low=0.0, high=1.0, low_open=True), 0.0, "x must be in (0, 1], got 0.0"),
    (dict(), math.nan, "x must be a number (finite), got nan"),
    (dict(), math.inf, "x must be a number (finite), got inf"),
    (dict(allow_inf=True), math.nan, "x must be a number (not NaN), got nan"),
    (dict(low=Fraction(3, 2)), 1, "x must be >= 1.5 and finite, got 1.0"),
    (dict(low=0.0), 10 ** 400, "x must be a number >= 0 and finite, got " + validate.show(10 ** 400)),
])
def test_number_refuses_with_the_allowed_range_in_words(kwargs, value, text):
    assert message(lambda: validate.number("x", value, **kwargs)) == text


def test_number_accepts_its_bounds_and_any_real_number():
    assert validate.number("x", 0, low=0.0) == 0.0 and validate.number("x", 1, high=1.0) == 1.0
    assert validate.number("x", 1e-300, low=0.0, low_open=True) == 1e-300
    assert validate.number("x", Fraction(1, 4)) == 0.25 and validate.number("x", np.float32(0.5)) == 0.5
    assert validate.number("x", math.inf, allow_inf=True) == math.inf
    assert validate.number("x", 10 ** 400, allow_inf=True) == math.inf
    assert validate.number("x", -10 ** 400, allow_inf=True) == -math.inf
    assert type(validate.number("x", 3)) is float
    for bad in (True, "1", None, [1.0]):
        with pytest.raises(WrongType, match="x must be a number"):
            validate.number("x", bad)


def test_a_bound_no_float_holds_is_shown_as_it_is():
    assert message(lambda: validate.number("x", 1, low=10 ** 400)) == (
        f"x must be >= {validate.show(10 ** 400)} and finite, got 1.0")


def test_positive_non_negative_and_probability_at_their_bounds():
    assert validate.positive("x", 1e-300) == 1e-300 and validate.positive("x", math.inf, allow_inf=True) == math.inf
    assert message(lambda: validate.positive("x", 0)) == "x must be > 0 and finite, got 0.0"
    assert validate.non_negative("x", 0) == 0.0
    assert message(lambda: validate.non_negative("x", -1e-300)) == "x must be >= 0 and finite, got -1e-300"
    assert validate.probability("x", 0) == 0.0 and validate.probability("x", 1) == 1.0
    assert message(lambda: validate.probability("x", 1.0000001)) == "x must be in [0, 1], got 1.0000001"


def test_integer_takes_whole_numbers_in_its_range():
    assert validate.integer("n", 3.0) == 3 and type(validate.integer("n", np.int64(4))) is int
    assert validate.integer("n", 1) == 1 and validate.integer("n", 0, low=0) == 0
    assert validate.integer("n", 5, high=5) == 5
    assert validate.integer("n", Fraction(10 ** 400, 1)) == 10 ** 400
    assert message(lambda: validate.integer("n", 0)) == "n must be a whole number >= 1, got 0"
    assert message(lambda: validate.integer("n", 6, high=5)) == "n must be a whole number in [1, 5], got 6"
    assert message(lambda: validate.integer("n", -1, low=0, high=5)) == "n must be a whole number in [0, 5], got -1"
    assert message(lambda: validate.integer("n", 2.5)) == "n must be a whole number >= 1, got 2.5"
    assert message(lambda: validate.integer("n", math.inf)) == "n must be a whole number >= 1, got inf"
    with pytest.raises(ValueError, match="whole number"):
        validate.integer("n", Fraction(10 ** 400 + 1, 2))
    for bad in (True, "3", None):
        with pytest.raises(WrongType, match="n must be a whole number >= 1"):
            validate.integer("n", bad)


def test_index_counts_from_either_end_and_names_the_length():
    assert [validate.index("i", i, 3) for i in (0, 2, -1, -3)] == [0, 2, 2, 0]
    with pytest.raises(OutOfRange) as err:
        validate.index("i", 3, 3)
    assert str(err.value) == "i must be in [-3, 2], got 3 (there are 3 items)"
    with pytest.raises(OutOfRange, match=r"i must be in \[-1000, 999\], got -1001 \(there are 1,000 items\)"):
        validate.index("i", -1001, 1000)
    assert message(lambda: validate.index("i", 0, 0)) == (
        "i cannot index an empty sequence (there are no items), got 0")
    for bad in (1.0, True, "1"):
        with pytest.raises(WrongType, match=r"i must be a whole number \(an int\) in \[0, 3\)"):
            validate.index("i", bad, 3)
    assert validate.index("i", np.int64(-2), 3) == 1
    assert message(lambda: validate.index("i", 1.0, 3)) == (
        "i must be a whole number (an int) in [0, 3) or a negative one counting from the end, got 1.0")


def test_text_function_and_choice():
    assert validate.text("s", "") == "" and validate.text("s", "a", empty=False) == "a"
    assert message(lambda: validate.text("s", "", empty=False)) == "s must be a non-empty string, got ''"
    assert message(lambda: validate.text("s", 3)) == "s must be a string, got 3"
    assert validate.function("f", None, optional=True) is None and validate.function("f", len) is len
    assert message(lambda: validate.function("f", None)) == "f must be a function, got None"
    assert message(lambda: validate.function("f", 3, optional=True)) == "f must be a function (or None), got 3"
    assert validate.choice("c", 2.0, [1, 2]) == 2.0 and validate.choice("c", "a", ("a", "b")) == "a"
    assert message(lambda: validate.choice("c", "z", ("a", "b"))) == "c must be one of ['a', 'b'], got 'z'"
    with pytest.raises(ValueError):
        validate.choice("c", True, [1])
    with pytest.raises(ValueError):
        validate.choice("c", 1, [True])
    assert validate.choice("c", True, [True, 1]) is True
    with pytest.raises(ValueError, match="c must be one of"):
        validate.choice("c", np.array([1, 2]), [1, 2])


def test_windows_are_sorted_disjoint_pairs():
    assert validate.windows("w", [(0, 1), [1, 2.5]]) == ((0.0, 1.0), (1.0, 2.5))
    assert message(lambda: validate.windows("w", "01")) == "w must be a list of (start, end) pairs, got '01'"
    assert message(lambda: validate.windows("w", 5)) == "w must be a list of (start, end) pairs, got 5"
    assert message(lambda: validate.windows("w", [])) == (
        "w must hold at least one (start, end) window, got an empty list")
    assert message(lambda: validate.windows("w", [(0, 1), (2, 3, 4)])) == (
        "w[1] must be a (start, end) pair, got (2, 3, 4)")
    assert message(lambda: validate.windows("w", [(-1, 1)])) == "w[0] start must be >= 0 and finite, got -1.0"
    assert message(lambda: validate.windows("w", [(1, 1)])) == "w[0] end must be > 1 and finite, got 1.0"
    assert message(lambda: validate.windows("w", [(0, 2), (1.5, 3)])) == (
        "w[1] must start at or after the previous window's end (2), got start 1.5")


# --- distributions --------------------------------------------------------------------------------------
def test_limit_rounds_to_four_figures_the_safe_way():
    assert dist._limit(1.23456, up=False) == "1.234" and dist._limit(1.23456, up=True) == "1.235"
    assert dist._limit(1.23449, up=True) == "1.235" and dist._limit(1.23449, up=False) == "1.234"
    assert dist._limit(1234.5, up=True) == "1235" and dist._limit(1234.4, up=True) == "1235"
    assert dist._limit(0.000123456, up=False) == "0.0001234"
    assert dist._limit(2.0, up=True) == "2" and dist._limit(2.0, up=False) == "2"
    # the step is one in the fourth figure: 1e5 here (a step of 1.6e5 would give 1.236e+08 and 1.233e+08)
    assert dist._limit(123440000.0, up=True) == "1.235e+08" and dist._limit(123460000.0, up=False) == "1.234e+08"


class Stub(random.Random):
    """A random generator whose every draw is a given value."""

    def __init__(self, value):
        super().__init__(0)
        self.value = value

    def random(self):
        return self.value

    def normalvariate(self, mu=0.0, sigma=1.0):
        return self.value


def test_each_distribution_draws_what_random_itself_would():
    a, b = random.Random(7), random.Random(7)
    assert Exponential(2.0).samples(a, 3) == [b.expovariate(0.5) for _ in range(3)]
    assert Uniform(1.0, 3.0).samples(a, 3) == [b.uniform(1.0, 3.0) for _ in range(3)]
    assert LogNormal(2.0, 0.5).samples(a, 3) == [b.lognormvariate(math.log(2.0), 0.5) for _ in range(3)]
    assert Weibull(2.0, 1.5).samples(a, 3) == pytest.approx([b.weibullvariate(2.0, 1.5) for _ in range(3)],
                                                            rel=1e-12)
    assert Fixed(0.25).samples(a, 2) == [0.25, 0.25] and Fixed(0.25).samples(a, 0) == []
    assert a.random() == b.random()                      # the same number of draws from each
    with pytest.raises(WrongType, match="rng must be a random.Random"):
        Fixed(1.0).samples(np.random.default_rng(1), 1)
    with pytest.raises(ValueError, match="n must be a whole number in"):
        Fixed(1.0).samples(a, dist.MAX_SAMPLES + 1)


def test_means_of_each_distribution():
    assert Fixed(2.5).mean == 2.5 and Exponential(3.0).mean == 3.0
    assert Uniform(1.0, 3.0).mean == 2.0 and Uniform(1e308, 1.5e308).mean == 1.25e308
    assert LogNormal(2.0, 1.0).mean == pytest.approx(2 * math.exp(0.5), rel=1e-15)
    assert LogNormal(1e-300, 40).mean == pytest.approx(math.exp(math.log(1e-300) + 800), rel=1e-12)
    assert Weibull(2.0, 1.0).mean == pytest.approx(2.0) and Weibull(1.0, 0.5).mean == pytest.approx(2.0)
    assert Weibull(1e-300, 0.006).mean == pytest.approx(math.exp(math.log(1e-300) + math.lgamma(1 + 1 / 0.006)),
                                                        rel=1e-9)


def test_a_draw_beyond_the_largest_float_is_infinite():
    assert LogNormal(1.0, 1.0).sample(Stub(710.0)) == math.inf
    assert LogNormal(1.0, 1.0).sample(Stub(709.0)) == pytest.approx(math.exp(709.0), rel=1e-15)
    assert LogNormal(1.0, 1.0).sample(Stub(dist._LOG_MAX)) == math.exp(dist._LOG_MAX) < math.inf   # the last one
    # u = 2^-53: x = 53 log 2 = 36.7; x ** (1 / 0.004) = e^900 overflows, so in logs: e^(-690.8 + 900.8)
    w = Weibull(1e-300, 0.004)
    assert w.sample(Stub(1 - 2 ** -53)) == pytest.approx(math.exp(math.log(1e-300) + 250 * math.log(53 * math.log(2))),
                                                          rel=1e-9)
    assert w.sample(Stub(0.5)) == pytest.approx(1e-300 * math.log(2) ** 250, rel=1e-9)


def test_a_uniform_accepts_equal_ends_and_refuses_a_high_below_its_low():
    assert Uniform(2.0, 2.0).mean == 2.0
    assert message(lambda: Uniform(2.0, 1.0)) == "high must be >= 2 and finite, got 1.0"
    assert message(lambda: Uniform(-1.0, 1.0)) == "low must be >= 0 and finite, got -1.0"


def test_lognormal_quantiles_and_percentiles():
    ln = LogNormal(2.0, 0.5)
    assert ln.quantile(0.5) == pytest.approx(2.0, rel=1e-15)
    assert ln.quantile(0.8413447460685429) == pytest.approx(2.0 * math.exp(0.5), rel=1e-9)   # one sigma up
    assert LogNormal.from_percentiles(2.0, 2.0 * math.exp(2.3263478740408408)).sigma == pytest.approx(1.0)
    # median 1e300, sigma 6: the 99th percentile is 1e300 e^(6 * 2.326) = 1.15e306; the 99.99th, e^(690.8
    # + 6 * 3.719) = e^713, is past the largest float
    assert LogNormal(1e300, 6.0).quantile(0.99) == pytest.approx(1e300 * math.exp(6 * 2.3263478740408408), rel=1e-9)
    with pytest.raises(ValueError, match="q must give a quantile a float can hold"):
        LogNormal(1e300, 6.0).quantile(0.9999)
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\)"):
        ln.quantile(1.0)
    with pytest.raises(ValueError, match="p99 must be closer to median"):
        LogNormal.from_percentiles(1.0, 1e308)
    with pytest.raises(ValueError, match="p99 must be > 2"):
        LogNormal.from_percentiles(2.0, 2.0)
    # p99 / median overflows: the spread is then log(p99) - log(median) = 1381.6, sigma 593.871
    assert "sigma=593.871)" in message(lambda: LogNormal.from_percentiles(1e-300, 1e300))


def test_weibull_refusal_gives_the_smallest_shape_that_works():
    shape = dist._weibull_min_shape(1.0)
    assert math.lgamma(1 + 1 / shape) == pytest.approx(dist._LOG_MAX, rel=1e-12)
    assert dist._weibull_min_shape(1e-100) < shape        # a smaller scale allows a smaller shape
    with pytest.raises(ValueError, match=r"shape must be >= 0\.005861 for this scale"):
        Weibull(1.0, 0.005)
    assert Weibull(1.0, 0.00587).mean < math.inf


def test_a_mixture_picks_a_part_by_the_cumulative_weights():
    mix = Mixture([(1, Fixed(1.0)), (2, Fixed(2.0)), (1, Fixed(3.0))])
    assert [w for w, _ in mix.parts] == [0.25, 0.5, 0.25] and mix.mean == 2.0
    assert [mix.sample(Stub(u)) for u in (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999)] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert Mixture([(0, Fixed(1.0)), (1, Fixed(2.0))]).sample(Stub(0.0)) == 2.0
    huge = Mixture([(1e308, Fixed(1.0)), (1e308, Fixed(3.0))])
    assert [w for w, _ in huge.parts] == [0.5, 0.5] and huge.mean == 2.0
    assert Mixture([(0.5, Fixed(1e308)), (0.5, Fixed(1.5e308))]).mean == pytest.approx(1.25e308, rel=1e-15)
    assert repr(Mixture([(1, Fixed(1)), (3, Fixed(2))])) == (
        "Mixture([(0.25, Fixed(value=1)), (0.75, Fixed(value=2))])")
    assert message(lambda: Mixture([])) == "parts must hold at least one (weight, distribution) pair, got none"
    assert message(lambda: Mixture([(0, Fixed(1.0))])) == "parts weights must sum to a number > 0, got 0"
    with pytest.raises(WrongType, match=r"parts\[1\] must be a \(weight, Distribution\) pair"):
        Mixture([(1, Fixed(1.0)), (1, 2.0)])
    with pytest.raises(WrongType, match="parts must be a list"):
        Mixture(Fixed(1.0))
    with pytest.raises(WrongType, match="parts must be a list"):
        Mixture(3)


def test_a_mixture_draws_once_to_choose_and_once_from_its_part():
    a, b = random.Random(3), random.Random(3)
    mix = Mixture([(0.5, Exponential(1.0)), (0.5, Fixed(9.0))])
    draws = [mix.sample(a) for _ in range(20)]
    expected = []
    for _ in range(20):
        expected.append(b.expovariate(1.0) if b.random() < 0.5 else 9.0)
    assert draws == expected


def test_slow_tail_and_as_distribution():
    tail = Mixture.slow_tail(0.01, 1.0, 0.25)
    assert [(w, d.value) for w, d in tail.parts] == [(0.75, 0.01), (0.25, 1.0)]
    assert as_distribution("latency", 0.5, number_means="fixed") == Fixed(0.5)
    assert as_distribution("latency", 0.5, number_means="exponential") == Exponential(0.5)
    assert as_distribution("latency", tail, number_means="fixed") is tail
    assert message(lambda: as_distribution("latency", -1, number_means="fixed")) == (
        "latency must be >= 0 and finite, got -1.0")
    assert message(lambda: as_distribution("latency", 0, number_means="exponential")) == (
        "latency must be > 0 and finite, got 0.0")
    with pytest.raises(ValueError, match="p_slow"):
        Mixture.slow_tail(0.01, 1.0, 1.5)


# --- the event log -----------------------------------------------------------------------------------
def test_an_event_log_keeps_the_newest_and_counts_all():
    seen = []
    log = EventLog(2, on_event=lambda e: seen.append((e, len(log))), key=lambda e: e % 2)
    for i in range(5):
        log.append(i)
    assert list(log) == [3, 4] and log.total == 5 and log.dropped == 3 and log.limit == 2
    assert seen == [(0, 1), (1, 2), (2, 2), (3, 2), (4, 2)]          # called after the entry is kept
    assert log.counts == {0: 3, 1: 2}
    assert log[0] == 3 and log[-1] == 4 and log[0:5] == [3, 4] and 4 in log and 2 not in log
    assert list(reversed(log)) == [4, 3]
    assert log == [3, 4] and log == (3, 4) and log != [3] and log != [4, 3] and (log == "34") is False
    other = EventLog(None)
    other.append(3)
    other.append(4)
    assert log == other


def test_an_unbounded_or_empty_log_and_its_repr_and_pickle():
    everything = EventLog(None)
    for i in range(5):
        everything.append(i)
    assert everything.limit is None and everything.dropped == 0 and len(everything) == 5
    assert repr(everything) == "EventLog([..., 2, 3, 4], limit=None, total=5, dropped=0)"
    nothing = EventLog(0)
    nothing.append("x")
    assert len(nothing) == 0 and nothing.total == 1 and nothing.counts == {}
    three = EventLog(3)
    for i in range(3):
        three.append(i)
    assert repr(three) == "EventLog([0, 1, 2], limit=3, total=3, dropped=0)"
    copy = pickle.loads(pickle.dumps(three))
    assert copy == three and copy.total == 3 and copy.limit == 3


def test_log_limits_and_callbacks_are_checked():
    assert check_limit("limit", None) is None and check_limit("limit", 0) == 0
    assert check_limit("limit", 10 ** 9) == 10 ** 9
    allowed = "a whole number >= 0 and <= 1,000,000,000 (entries kept) or None (keep all)"
    assert message(lambda: check_limit("limit", -1)) == f"limit must be {allowed}, got -1"
    assert message(lambda: check_limit("limit", 10 ** 9 + 1)) == f"limit must be {allowed}, got 1000000001"
    with pytest.raises(WrongType, match=re.escape(f"limit must be {allowed}, got '10'")):
        check_limit("limit", "10")
    assert check_callback("f", None) is None and check_callback("f", print) is print
    assert message(lambda: check_callback("f", 3)) == "f must be a function (entry) or None, got 3"


def test_a_policy_log_calls_back_with_its_kind():
    got = []
    log = policy_log("trips", 1, lambda kind, entry: got.append((kind, entry)))
    log.append(1)
    log.append(2)
    assert got == [("trips", 1), ("trips", 2)] and list(log) == [2]
    assert policy_log("trips").limit == 10_000 and policy_log("trips").on_event is None
    with pytest.raises(ValueError, match=r"on_event must be a function \(kind, entry\) or None"):
        policy_log("trips", 5, on_event=3)
    with pytest.raises(ValueError, match="log_limit must be"):
        policy_log("trips", -1)


# --- load profiles -----------------------------------------------------------------------------------
def test_profiles_at_their_boundaries():
    assert Constant(3.0)(100.0) == 3.0 and Constant(3.0).peak == 3.0
    ramp = Ramp(2.0, 6.0, 4.0)
    assert [ramp(t) for t in (0.0, 1.0, 3.999, 4.0, 10.0)] == pytest.approx([2.0, 3.0, 5.999, 6.0, 6.0])
    assert ramp.peak == 6.0 and Ramp(6.0, 2.0, 4.0).peak == 6.0 and Ramp(6.0, 2.0, 4.0)(1.0) == 5.0
    step = Step(1.0, 5.0, 2.0)
    assert [step(t) for t in (0.0, 1.999, 2.0, 9.0)] == [1.0, 1.0, 5.0, 5.0]
    assert step.peak == 5.0 and Step(5.0, 1.0, 2.0).peak == 5.0
    spike = Spike(1.0, 10.0, 2.0, 3.0)
    assert [spike(t) for t in (1.999, 2.0, 4.999, 5.0)] == [1.0, 10.0, 10.0, 1.0] and spike.peak == 10.0
    assert message(lambda: Ramp(0, 0, 1.0)) == "start or end must be > 0 requests per second, got both 0"
    assert Ramp(0, 1.0, 1.0)(0.5) == 0.5 and Ramp(1.0, 0, 1.0)(0.5) == 0.5
    assert message(lambda: Step(0, 0, 1.0)) == "before or after must be > 0 requests per second, got both 0"
    assert Step(0, 1.0, 1.0)(1.0) == 1.0 and Step(1.0, 0, 1.0)(0.0) == 1.0
    assert message(lambda: Spike(2.0, 2.0, 0.0, 1.0)) == "peak_rate must be > 2 and finite, got 2.0"
    with pytest.raises(ValueError, match="duration"):
        Spike(1.0, 2.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="duration"):
        Ramp(1.0, 2.0, 0.0)
    assert Spike(0.0, 2.0, 0.0, 1.0)(0.0) == 2.0


# --- reasons, records, seeds ------------------------------------------------------------------------------
def test_each_reason_has_its_outcome():
    assert outcome_for("deadline") is Outcome.TIMED_OUT and outcome_for("unfinished") is Outcome.TIMED_OUT
    assert outcome_for("circuit open") is Outcome.REJECTED and outcome_for("error") is Outcome.FAILED
    assert check_reason("r", "shed") == "shed"
    assert message(lambda: check_reason("r", "oops")).startswith("r must be a known reason, one of [")
    with pytest.raises(ValueError, match="r must be a known reason"):
        check_reason("r", 3)
    assert check_reasons("r", ["error", "timeout"]) == frozenset({"error", "timeout"})
    assert message(lambda: check_reasons("r", "error")) == "r must be a set of reasons, got the string 'error' (write {'error'})"
    assert message(lambda: check_reasons("r", 3)) == "r must be a set of reasons, got 3"


class Req:
    def __init__(self, start, attempts=1, route="", key=None, age=0.0):
        self.start, self.attempts, self.route, self.key, self.age = start, attempts, route, key, age


def test_a_recorder_codes_names_and_keys_on_first_use():
    rec = Recorder()
    assert rec.code("") == 0 and rec.code("error") == 1 and rec.code("db") == 2 and rec.code("error") == 1
    assert rec.names == ["", "error", "db"]
    assert rec.key_code(None) == 0 and rec.key_code("k") == 1 and rec.key_code(7) == 2 and rec.key_code("k") == 1
    rec.add(Req(1.0, attempts=2, route="/a", key="k", age=0.5), 3.0, Outcome.FAILED, "error", "db")
    rec.add(Req(2.0, route="/b"), 2.5, Outcome.OK, "", "api")
    cols = rec.columns()
    assert cols["start"].tolist() == [1.0, 2.0] and cols["end"].tolist() == [3.0, 2.5]
    assert cols["outcome"].tolist() == [2, 0] and cols["reason"].tolist() == [1, 0]
    assert cols["attempts"].tolist() == [2, 1] and cols["key"].tolist() == [1, 0]
    assert cols["age"].tolist() == [0.5, 0.0]
    assert [rec.names[c] for c in cols["answered_by"]] == ["db", "api"]
    assert [rec.names[c] for c in cols["route"]] == ["/a", "/b"]
    assert len(rec) == 2 and rec.nbytes == 2 * 33
    assert Recorder().columns()["reason"].dtype == np.uint16 and len(Recorder().columns()["start"]) == 0


def test_unfinished_requests_become_timed_out_rows_that_end_at_the_cut():
    rec = Recorder()
    a, b = Req(1.0, attempts=3, route="/x", key="k", age=2.0), Req(4.0)
    rec.pending[a] = None
    rec.pending[b] = None
    rows = rec.unfinished_rows(10.0)
    assert rows["start"].tolist() == [1.0, 4.0] and rows["end"].tolist() == [10.0, 10.0]
    assert rows["outcome"].tolist() == [Outcome.TIMED_OUT] * 2
    assert [rec.names[c] for c in rows["reason"]] == ["unfinished"] * 2
    assert rows["attempts"].tolist() == [3, 1] and rows["answered_by"].tolist() == [0, 0]
    assert [rec.names[c] for c in rows["route"]] == ["/x", ""] and rows["key"].tolist() == [1, 0]
    assert rows["age"].tolist() == [2.0, 0.0] and len(rec) == 0


def test_stream_seeds_are_fixed_64_bit_numbers_per_seed_and_name():
    assert stream_seed(0, "x") == 12263839751488262191
    assert stream_seed(1, "x") == 11810257271822177834
    assert stream_seed(1, "service/db/latency") == 15521173063183527619


# --- timelines ---------------------------------------------------------------------------------------------
def test_a_timeline_keeps_its_down_windows_and_cancels_a_flap_at_one_instant():
    tl = Timeline("db")
    tl.mark(2.0, False)
    tl.mark(4.0, True)
    tl.mark(6.0, False)
    tl.mark(6.0, True)              # down and up at the same instant: nothing happened
    tl.mark(8.0, False)
    assert tl.changes == [(2.0, False), (4.0, True), (8.0, False)]
    assert tl.down_windows(10.0) == [(2.0, 4.0), (8.0, 10.0)]
    assert tl.down_windows(8.0) == [(2.0, 4.0)] and tl.down_windows(3.0) == [(2.0, 3.0)]
    assert tl.availability(10.0) == pytest.approx(0.6)                     # 4 s down of 10
    assert tl.availability(10.0, since=3.0) == pytest.approx(1 - 3 / 7)     # 1 + 2 s down of 7
    assert tl.up_at([1.0, 2.0, 3.999, 4.0, 9.0]).tolist() == [True, False, False, True, False]
    assert tl.up_at([]).tolist() == []
    again = Timeline()
    again.mark(1.0, False)
    again.mark(1.0, False)
    assert again.changes == [(1.0, False), (1.0, False)] and again.down_windows(2.0) == [(1.0, 2.0)]


def test_timelines_combine_in_series_and_in_parallel():
    a, b = Timeline("a"), Timeline("b")
    for t, up in ((1.0, False), (3.0, True)):
        a.mark(t, up)
    for t, up in ((2.0, False), (5.0, True)):
        b.mark(t, up)
    assert combine([a, b], 10.0) == [(1.0, 5.0)]
    assert combine([a, b], 10.0, need="any") == [(2.0, 3.0)]
    assert group_availability([a, b], 10.0) == pytest.approx(0.6)
    assert group_availability([a, b], 10.0, need="any", since=2.5) == pytest.approx(1 - 0.5 / 7.5)
    c = Timeline("c")
    c.mark(3.0, False)
    c.mark(4.0, True)
    # a's end and c's start at one instant: the end is counted first, so two windows that touch
    assert combine([a, c], 10.0) == [(1.0, 3.0), (3.0, 4.0)]
    assert message(lambda: combine([a], 1.0, need="some")) == "need must be one of ['all', 'any'], got 'some'"
    assert message(lambda: combine([], 1.0)) == "timelines must hold at least one timeline, got none"


# --- percentiles of observed latencies (policies.hedging, the core group's brief) ------------------------
@pytest.mark.parametrize("p, expected", [
    (0, 1.0), (50, 2.5), (90, 3.7), (100, 4.0), (25, 1.75), (1, 1.03),
])
def test_delay_from_percentile_interpolates_between_order_statistics(p, expected):
    # sorted 1, 2, 3, 4: the p-th percentile sits at position 3 p / 100
    assert delay_from_percentile([4.0, 1.0, 3.0, 2.0], p) == pytest.approx(expected, rel=1e-12)


def test_delay_from_percentile_of_one_value_and_the_default_95th():
    assert delay_from_percentile([0.3]) == 0.3 and delay_from_percentile([0.3], 0) == 0.3
    assert delay_from_percentile([float(i) for i in range(21)]) == pytest.approx(19.0)     # 20 * 0.95
    with pytest.raises(ValueError, match="at least one"):
        delay_from_percentile([])
    with pytest.raises(ValueError, match=r"latencies\[1\]"):
        delay_from_percentile([1.0, -1.0])
    with pytest.raises(ValueError, match="latencies must be a list"):
        delay_from_percentile(3.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 100\]"):
        delay_from_percentile([1.0], 101)


# --- every parameter's refusal names it and its range ------------------------------------------------------
LIMIT = "a whole number >= 0 and <= 1,000,000,000 (entries kept) or None (keep all)"
REFUSALS = [
    (lambda: Constant(0), "rate must be > 0 and finite, got 0.0"),
    (lambda: Ramp(-1, 1, 1), "start must be >= 0 and finite, got -1.0"),
    (lambda: Ramp(1, -1, 1), "end must be >= 0 and finite, got -1.0"),
    (lambda: Ramp(1, 1, 0), "duration must be > 0 and finite, got 0.0"),
    (lambda: Step(-1, 1, 1), "before must be >= 0 and finite, got -1.0"),
    (lambda: Step(1, -1, 1), "after must be >= 0 and finite, got -1.0"),
    (lambda: Step(1, 1, -1), "at must be >= 0 and finite, got -1.0"),
    (lambda: Spike(-1, 1, 0, 1), "base must be >= 0 and finite, got -1.0"),
    (lambda: Spike(1, 1, 0, 1), "peak_rate must be > 1 and finite, got 1.0"),
    (lambda: Spike(1, math.inf, 0, 1), "peak_rate must be a number > 1 and finite, got inf"),
    (lambda: Spike(0, 1, -1, 1), "at must be >= 0 and finite, got -1.0"),
    (lambda: Spike(0, 1, 0, 0), "duration must be > 0 and finite, got 0.0"),
    (lambda: Fixed(-1), "value must be >= 0 and finite, got -1.0"),
    (lambda: Exponential(0), "mean must be > 0 and finite, got 0.0"),
    (lambda: Uniform(-1, 1), "low must be >= 0 and finite, got -1.0"),
    (lambda: Uniform(2, 1), "high must be >= 2 and finite, got 1.0"),
    (lambda: Uniform(1, math.inf), "high must be a number >= 1 and finite, got inf"),
    (lambda: LogNormal(0, 1), "median must be > 0 and finite, got 0.0"),
    (lambda: LogNormal(1, 0), "sigma must be > 0 and finite, got 0.0"),
    (lambda: LogNormal(1, 1).quantile(0), "q must be in (0, 1], got 0.0"),
    (lambda: LogNormal(1, 1).quantile(1.5), "q must be in (0, 1], got 1.5"),
    (lambda: LogNormal(1, 1).quantile(1.0), "q must be in (0, 1) (the 1-quantile of a log-normal is infinite), "
                                            "got 1.0"),
    (lambda: LogNormal.from_percentiles(0, 1), "median must be > 0 and finite, got 0.0"),
    (lambda: LogNormal.from_percentiles(1, 0.5), "p99 must be > 1 and finite, got 0.5"),
    (lambda: Weibull(0, 1), "scale must be > 0 and finite, got 0.0"),
    (lambda: Weibull(1, 0), "shape must be > 0 and finite, got 0.0"),
    (lambda: Mixture([(-1, Fixed(1.0))]), "parts[0] weight must be >= 0 and finite, got -1.0"),
    (lambda: Mixture([(1, Fixed(1.0)), (math.nan, Fixed(1.0))]), "parts[1] weight must be a number >= 0 and "
                                                                  "finite, got nan"),
    (lambda: Mixture.slow_tail(-1, 1, 0.5), "fast must be >= 0 and finite, got -1.0"),
    (lambda: Mixture.slow_tail(1, -1, 0.5), "slow must be >= 0 and finite, got -1.0"),
    (lambda: Mixture.slow_tail(1, 1, -0.5), "p_slow must be in [0, 1], got -0.5"),
    (lambda: Fixed(1.0).samples(random.Random(1), -1), "n must be a whole number in [0, 10000000], got -1"),
    (lambda: as_distribution("", 1.0, number_means="fixed"), "name must be a non-empty string, got ''"),
    (lambda: as_distribution("x", 1.0, number_means="poisson"), "number_means must be one of ['fixed', "
                                                                 "'exponential'], got 'poisson'"),
    (lambda: EventLog(-1), f"limit must be {LIMIT}, got -1"),
    (lambda: EventLog(on_event=3), "on_event must be a function (entry) or None, got 3"),
    (lambda: EventLog(key=3), "key must be a function (entry) or None, got 3"),
    (lambda: policy_log("x", 10 ** 10), f"log_limit must be {LIMIT}, got 10000000000"),
]


@pytest.mark.parametrize("call, text", REFUSALS)
def test_a_refusal_names_the_parameter_and_its_range(call, text):
    assert message(call) == text


def test_every_bound_admits_its_own_value():
    assert Fixed(0).mean == 0 and Uniform(0, 0).mean == 0.0 and Ramp(0, 1, 1e-300).peak == 1
    assert Step(0, 1, 0)(0) == 1 and Spike(0, 1e-300, 0, 1e-300)(0) == 1e-300
    assert Mixture([(0, Fixed(1.0)), (1e-300, Fixed(2.0))]).mean == 2.0
    assert Fixed(1.0).samples(random.Random(1), dist.MAX_SAMPLES // 10 ** 6) == [1.0] * 10
    assert EventLog(0).limit == 0 and EventLog(10 ** 9).limit == 10 ** 9


# --- the last bits of each boundary (mutants that survived the run above) -----------------------------------
FLOAT_MAX = 1.7976931348623157e308          # sys.float_info.max; _LOG_MAX is its log, 709.782712893384


def test_a_sample_from_something_that_is_not_a_random_shows_it():
    # kills _not_an_rng__mutmut_2 (shows None for the rng)
    assert message(lambda: Exponential(1.0).sample("abc")) == (
        "rng must be a random.Random (world.rng('name'), or random.Random(seed)), got 'abc'")


@pytest.mark.parametrize("scale", [1e308, 6.613343458508713e307, 1.0, 1e-100, 1e-300])
def test_the_smallest_weibull_shape_puts_the_mean_at_the_largest_float(scale):
    # target = _LOG_MAX - log(scale): 0.587 for 1e308 (k = 1/shape in (1, 2): kills lo = 2.0 at the start,
    # mutmut_5, which answers 0.5); 1.0 for e^(_LOG_MAX - 1) (k = 2.2 in (2, 4): kills lgamma(2 + hi) in the
    # doubling, mutmut_9, which stops at [1, 2] and answers 0.5); 709.8, 940.0, 1400.6 (k up to 297)
    target = dist._LOG_MAX - math.log(scale)
    assert math.lgamma(1 + 1 / dist._weibull_min_shape(scale)) == pytest.approx(target, rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("scale", [1e300, 1e-100, 1e-300])
def test_a_weibull_limit_met_exactly_is_the_limit(scale):
    # at these scales a float k has lgamma(1 + k) equal to the target to the last bit: that k is allowed
    # (the mean is then the largest float), so the bisection keeps it (kills `<` in the bisection, mutmut_26,
    # which ends one float below it, where lgamma(1 + k) < target)
    target = dist._LOG_MAX - math.log(scale)
    assert math.lgamma(1 + 1 / dist._weibull_min_shape(scale)) == target


def test_a_mean_exactly_at_the_largest_float_is_allowed():
    # log(max) + sigma^2 / 2 rounds to _LOG_MAX itself (5e-17 is below half a step of 709.8, 5.7e-14):
    # allowed (kills `>=` in LogNormal.__post_init__, mutmut_22); the mean, max * e^(5e-17), is max
    assert LogNormal(FLOAT_MAX, 1e-8).mean == FLOAT_MAX
    # log(max) + lgamma(2) = _LOG_MAX + 0: allowed (kills `>=` in Weibull.__post_init__, mutmut_23)
    assert Weibull(FLOAT_MAX, 1.0).mean == FLOAT_MAX


def test_a_quantile_that_overflows_only_in_the_product_is_worked_out_in_logs():
    # sigma 1e-7, q just above 1/2: spread = 1e-7 * 2.5e-8 = 2.5e-15; max * e^2.5e-15 overflows, but
    # log(max) + 2.5e-15 rounds to _LOG_MAX, whose exp, 1.7976931348622732e308, a float holds (kills `>=`
    # on the log, mutmut_29, which refuses it, and exp(None), mutmut_30)
    assert LogNormal(FLOAT_MAX, 1e-7).quantile(0.50000001) == math.exp(dist._LOG_MAX) == 1.7976931348622732e308


def test_percentiles_close_together_give_the_spread_of_their_ratio():
    # p99 / median = 1.000001: log of the ratio is 9.999995e-07 to the last bit; log(p99) - log(median)
    # (690.8 - 690.8) loses 7 figures, 9.999995427e-07 (kills the overflow branch taken always, mutmut_23)
    ln = LogNormal.from_percentiles(1e300, 1.000001e300)
    assert ln.sigma == pytest.approx(math.log(1.000001e300 / 1e300) / 2.3263478740408408,
                                       rel=1e-12, abs=0)


def test_repr_of_a_log_of_four_shows_the_last_three_after_dots():
    # kills `> 4` in EventLog.__repr__ (mutmut_10), which would show [1, 2, 3]
    four = EventLog(None)
    for i in range(4):
        four.append(i)
    assert repr(four) == "EventLog([..., 1, 2, 3], limit=None, total=4, dropped=0)"


def test_a_ramp_at_its_duration_is_its_end_even_where_the_line_overflows():
    # (1.5e308 - 0) * 2.0 / 2.0 overflows to inf: at t == duration the ramp is end itself (kills `>`, mutmut_3)
    assert Ramp(0.0, 1.5e308, 2.0)(2.0) == 1.5e308 and Ramp(0.0, 1.5e308, 2.0)(3.0) == 1.5e308


def test_a_recorder_keeps_each_key_by_its_code():
    # kills keys.append(None) in key_code (mutmut_5)
    rec = Recorder()
    assert [rec.key_code(k) for k in ("k", 7, "k", (1, 2))] == [1, 2, 1, 3]
    assert rec.keys == [None, "k", 7, (1, 2)]


def test_up_at_compares_float32_times_as_float64():
    # float32(0.1) = 0.10000000149011612, below the down mark at 0.1000000015 (so up); compared in float32
    # the mark would round to the same float32 and the time be down (kills dtype=None and no dtype in
    # np.asarray, up_at mutmut_3 and mutmut_5)
    tl = Timeline()
    tl.mark(0.1000000015, False)
    tl.mark(1.0, True)
    assert tl.up_at(np.array([0.1, 0.5], dtype=np.float32)).tolist() == [True, False]


def test_up_at_sees_a_window_still_open_at_the_last_time_however_late():
    # past 2**53 a float's step is 2, so "the last time + 1" would round back to the last time and end
    # the open window before it (the component read as up)
    tl = Timeline()
    tl.mark(2.0 ** 53, False)
    assert tl.up_at([2.0 ** 53 - 1, 2.0 ** 53]).tolist() == [True, False]
    assert tl.up_at([1e308]).tolist() == [False]


def test_only_numpy_bools_stand_for_bools():
    # a numpy number is not a bool (kills `or` for `and` in _is_bool, mutmut_2, which takes every numpy
    # scalar); nor is it an option True in choice
    assert message(lambda: validate.boolean("on", np.int64(1))) == "on must be True or False, got np.int64(1)"
    assert message(lambda: validate.boolean("on", np.float64(0.0))) == "on must be True or False, got np.float64(0.0)"
    assert message(lambda: validate.choice("c", np.int64(1), [True])) == "c must be one of [True], got np.int64(1)"


def test_a_numpy_1_bool_named_bool_underscore_is_a_bool():
    # numpy 1.x names its bool type "bool_" (numpy 2, "bool"): a stand-in of that name and module is
    # taken as a bool (kills the "bool_" name changed, _is_bool mutmut_11 and mutmut_12)
    old_bool = type("bool_", (), {"__module__": "numpy", "__bool__": lambda self: True})
    assert validate.boolean("on", old_bool()) is True


def test_record_columns_have_their_unsigned_types():
    # outcome uint8, the codes and attempts uint16, key uint32 (kills the signed typecodes "b", "h", "i"
    # in Recorder.__init__, mutmut_12, 20, 24, 28, 32): the largest of each is kept as it is
    rec = Recorder()
    rec.add(Req(1.0, attempts=65535, key="k"), 2.0, 255, "error", "db")
    cols = rec.columns()
    assert {name: col.dtype for name, col in cols.items()} == {
        "start": np.float64, "end": np.float64, "outcome": np.uint8, "reason": np.uint16,
        "attempts": np.uint16, "answered_by": np.uint16, "route": np.uint16, "key": np.uint32, "age": np.float32}
    assert cols["outcome"].tolist() == [255] and cols["attempts"].tolist() == [65535]


def test_a_key_first_seen_in_a_row_gets_the_next_code():
    # kills setdefault(key, None) and setdefault(key) in Recorder.add (mutmut_25, 27: no code for a new
    # key) and `!=` for `==` (mutmut_28: an old key added again)
    rec = Recorder()
    for key in ("a", "b", "a", None, "b"):
        rec.add(Req(1.0, key=key), 2.0, Outcome.OK, "", "db")
    assert rec.columns()["key"].tolist() == [1, 2, 1, 0, 2] and rec.keys == [None, "a", "b"]
    assert rec.key_code("b") == 2 and rec.key_code("c") == 3


def test_unfinished_rows_have_the_types_of_the_columns():
    # whole-number times and an empty pending set too: each column has the dtype of columns() (kills each
    # dtype dropped in unfinished_rows: start, end, outcome, ... would be int64 or float64)
    rec = Recorder()
    expected = {name: col.dtype for name, col in rec.columns().items()}
    rec.pending[Req(1, attempts=2, route="/x", key="k")] = None
    for rows in (rec.unfinished_rows(10), Recorder().unfinished_rows(10)):
        assert {name: col.dtype for name, col in rows.items()} == expected


def test_the_columns_of_an_empty_recorder_do_not_hold_it():
    # a numpy view of an empty array("d") would export its buffer, and the array could not grow while the
    # view lives (BufferError): an empty column is a fresh np.empty (kills `or True`, columns mutmut_4)
    rec = Recorder()
    cols = rec.columns()
    rec.add(Req(1.0), 2.0, Outcome.OK, "", "db")
    assert len(cols["start"]) == 0 and rec.columns()["start"].tolist() == [1.0]


def test_a_reason_set_names_itself_for_an_unknown_member():
    # kills check_reason(None, r) in check_reasons (mutmut_4), which would say "None must be..."
    assert message(lambda: check_reasons("retry_on", ["error", "oops"])).startswith(
        "retry_on must be a known reason, one of [")


def test_a_policy_log_counts_by_its_key():
    # kills the key dropped in policy_log (mutmut_21, mutmut_24)
    log = policy_log("trips", 2, key=lambda e: e % 2)
    for i in range(5):
        log.append(i)
    assert log.counts == {0: 3, 1: 2} and list(log) == [3, 4]


def test_a_mixture_refusal_shows_an_example():
    # kills the example changed or dropped (Mixture.__init__ mutmut_1 to 4)
    assert message(lambda: Mixture(3)) == ("parts must be a list of (weight, Distribution) pairs, "
                                           "e.g. Mixture([(0.99, Fixed(0.01)), (0.01, Fixed(1.0))]), got 3")


def test_a_mixture_draw_at_or_past_the_last_bound_comes_from_the_last_part():
    # u = 1.0 is not below the last bound, 1.0: the last part draws, from the same rng (Stub's normal
    # draw is 1.0, so e^1) (kills sample(None), parts[+1], parts[-2], parts[-1][2]: Mixture.sample
    # mutmut_8 to 11)
    mix = Mixture([(1, Fixed(1.0)), (1, Fixed(2.0)), (1, LogNormal(1.0, 1.0))])
    assert mix.sample(Stub(1.0)) == math.e


def test_a_second_down_mark_does_not_move_the_start_of_the_window():
    # an up mark while up opens nothing, a down mark while down moves nothing: down from 2 to 4 (kills
    # `or` for `and` in down_windows, mutmut_4, which gives [(3.0, 4.0)])
    tl = Timeline()
    for t, up in ((1.0, True), (2.0, False), (3.0, False), (4.0, True)):
        tl.mark(t, up)
    assert tl.down_windows(10.0) == [(2.0, 4.0)]


def test_a_timeline_keeps_its_name():
    # kills the default name changed ("XXXX", Timeline.__init__ mutmut_1) and the name dropped (mutmut_2)
    assert Timeline().name == "" and Timeline("db").name == "db"
