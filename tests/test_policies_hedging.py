"""Hedged requests: when to hedge, how many, the percentile helper, the logs."""
import math

import numpy as np
import pytest

from resilience_sim.policies import HedgePolicy, delay_from_percentile


def test_hedge_at_and_should_hedge():
    h = HedgePolicy(0.05)
    assert h.hedge_at(10.0) == pytest.approx(10.05)
    assert not h.should_hedge(10.0, 10.04, sent=0)
    assert h.should_hedge(10.0, 10.05, sent=0)
    assert not h.should_hedge(10.0, 99.0, sent=1)    # max_hedges reached
    assert h.hedge_at(10.0, sent=1) == math.inf


def test_several_hedges_are_spaced_by_delay():
    h = HedgePolicy(0.1, max_hedges=3)
    assert [h.hedge_at(0.0, k) for k in range(4)] == pytest.approx([0.1, 0.2, 0.3, math.inf])
    assert not h.should_hedge(0.0, 0.15, sent=1)
    assert h.should_hedge(0.0, 0.2, sent=1)


def test_no_hedging_baselines():
    assert not HedgePolicy(0.1, max_hedges=0).should_hedge(0.0, 100.0, 0)
    assert not HedgePolicy(math.inf).should_hedge(0.0, 1e9, 0)
    assert HedgePolicy(0.0).should_hedge(0.0, 0.0, 0)     # delay 0: send copies at once


def test_logs_hedges_and_winners():
    h = HedgePolicy(0.1)
    h.record_hedge(0.1)
    h.record_winner(0.12, hedge=True)
    h.record_winner(0.3, hedge=False)
    assert h.hedges_sent == 1 and h.hedges_won == 1 and h.finished == 2
    assert h.hedge_times == [0.1] and h.extra_load == 0.5


@pytest.mark.parametrize("p", [0, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy(p):
    xs = list(np.random.default_rng(3).exponential(0.02, 501))
    assert delay_from_percentile(xs, p) == pytest.approx(float(np.percentile(xs, p)))


def test_percentile_small_cases_and_from_latencies():
    assert delay_from_percentile([0.3]) == 0.3
    assert delay_from_percentile([0.1, 0.2, 0.3, 0.4, 0.5], 50) == 0.3
    assert delay_from_percentile([0.1, 0.2], 50) == pytest.approx(0.15)
    h = HedgePolicy.from_latencies([0.01] * 95 + [1.0] * 5, p=90, max_hedges=2)
    assert h.delay == 0.01 and h.max_hedges == 2


@pytest.mark.parametrize("call, words", [
    (lambda: HedgePolicy(-0.1), ["delay", ">= 0"]),
    (lambda: HedgePolicy(math.nan), ["delay"]),
    (lambda: HedgePolicy(0.1, max_hedges=-1), ["max_hedges", "[0, 100]"]),
    (lambda: HedgePolicy(0.1, max_hedges=1.5), ["max_hedges", "whole number"]),
    (lambda: delay_from_percentile([], 95), ["latencies", "at least one"]),
    (lambda: delay_from_percentile(5, 95), ["latencies", "list"]),
    (lambda: delay_from_percentile([0.1, -1], 95), ["latencies[1]", ">= 0"]),
    (lambda: delay_from_percentile([0.1], 101), ["p", "[0, 100]"]),
    (lambda: delay_from_percentile([0.1], math.nan), ["p"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)
