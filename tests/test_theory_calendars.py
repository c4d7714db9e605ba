"""The two calendars of ``theory.downtime`` and the sampling checks the notebooks lean on."""
import math

import pytest

from resilience_sim import theory
from resilience_sim.lessons import availability as av

DAY = 86400.0


def test_the_average_calendar_is_the_default_and_keeps_its_numbers():
    assert theory.downtime(0.999, "month") == theory.downtime(0.999, "month", "average")
    assert math.isclose(theory.downtime(0.999, "month") / 60, 43.83)
    assert math.isclose(theory.downtime(0.999, "year") / 3600, 8.766)
    assert theory.SECONDS_PER is theory.CALENDARS["average"]
    assert math.isclose(theory.CALENDARS["average"]["quarter"], 365.25 / 4 * DAY)


def test_the_sre_calendar_counts_a_365_day_year_a_90_day_quarter_and_a_30_day_month():
    sre = theory.CALENDARS["sre"]
    assert (sre["year"], sre["quarter"], sre["month"]) == (365 * DAY, 90 * DAY, 30 * DAY)
    assert math.isclose(theory.downtime(0.999, "month", "sre") / 60, 43.2)
    assert math.isclose(theory.downtime(0.999, "year", "sre") / 3600, 8.76)


@pytest.mark.parametrize("calendar", ["average", "sre"])
def test_both_calendars_share_the_week_day_and_hour(calendar):
    periods = theory.CALENDARS[calendar]
    assert (periods["week"], periods["day"], periods["hour"]) == (7 * DAY, DAY, 3600.0)
    assert math.isclose(theory.downtime(0.9999, "hour", calendar), 0.36)


def test_an_unknown_calendar_or_period_is_refused_by_name():
    with pytest.raises(ValueError, match=r"calendar must be one of \['average', 'sre'\], got 'julian'"):
        theory.downtime(0.99, "month", "julian")
    with pytest.raises(ValueError, match="period must be one of"):
        theory.downtime(0.99, "fortnight", "sre")


def test_the_sre_books_table_is_reproduced_cell_for_cell_but_its_one_rounding_slip():
    sre = av.sre_table_check("sre")
    assert len(sre.cells) == 48 and sre.matches == 47
    (a, period, book, ours, exact), = sre.differences
    assert (a, period, book, ours) == (0.99999, "day", "0.87 seconds", "0.86 seconds") and math.isclose(exact, 0.864)
    assert av.sre_table_check("average").matches == 32


def test_a_cell_is_written_in_the_books_unit_and_decimals_rounding_half_up():
    assert av.as_printed(0.995, "year", "1.83 days") == "1.83 days"        # 1.825 exactly: half up
    assert av.as_printed(0.995, "day", "7.20 minutes") == "7.20 minutes"
    assert av.as_printed(0.9, "quarter", "9 days") == "9 days"


def test_within_sampling_error_passes_chance_and_fails_a_bias():
    assert theory.within_sampling_error(0.52, 0.5, 1000)          # 1.3 standard deviations
    assert not theory.within_sampling_error(0.60, 0.5, 1000)      # 6.3 standard deviations
    assert theory.within_sampling_error(0.60, 0.5, 1000, sds=7)
    with pytest.raises(ValueError, match="measured"):
        theory.within_sampling_error(1.5, 0.5, 10)


def test_quantile_sd_is_the_share_sd_over_the_density():
    assert math.isclose(theory.quantile_sd(0.99, 1000, 0.5), math.sqrt(0.99 * 0.01 / 1000) / 0.5)
    with pytest.raises(ValueError, match="density"):
        theory.quantile_sd(0.99, 1000, 0.0)
