"""The capstone's scoreboard picture (views/scoreboard.py): it draws a scoreboard dict in four labelled
panels (faults and pages, good share, budget burn, cost), a bar per fault in its kind's colour and a bar
per item that cost anything, the most expensive on top; two boards side by side keep the cost items in
one order; the endpoints' legend covers no data (the house check of tests/test_figure_legends.py); bad
input is refused by name."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402
from test_figure_legends import covered  # noqa: E402

from resilience_sim.lessons.capstone import BASELINE, SLOS, play_day, scoreboard  # noqa: E402
from resilience_sim.sim.chaos import FAULT_KINDS  # noqa: E402
from resilience_sim.views import scoreboard as sb  # noqa: E402

TARGETS = {s.route: s.target for s in SLOS}
HOUR = 3600.0


def synthetic_board(bins: int = 24, width: float = HOUR) -> dict:
    """A day of ``bins`` bins: browse dips to 50% in bin 5 (a search outage's hour), the rest all good."""
    t = np.arange(bins) * width
    good = {"browse": np.ones(bins), "search": np.ones(bins), "checkout": np.ones(bins)}
    good["browse"][5] = 0.5
    spent = {r: np.cumsum(1.0 - g) / 0.2 for r, g in good.items()}
    return {"t": t, "good": good, "budget_spent": spent,
            "faults": [("search down (search)", 5 * width, 6 * width), ("broker crash (broker)", 9 * width, 9.5 * width)],
            "pages": [(5.2 * width, 6.1 * width)],
            "cost": [("lost orders", 2000.0), ("replicas of frontend", 24.0), ("pages", 150.0), ("extra calls", 0.0)]}


@pytest.fixture(scope="module")
def engine_board():
    return scoreboard(play_day(BASELINE, 4, hours=2), bin_width=600.0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def legend_problems(fig) -> list:
    fig.canvas.draw()
    return [f"{ax.get_title()!r}: {what}" for legend in fig.legends for ax in fig.axes for what in covered(ax, legend)]


def test_it_draws_the_engines_board_in_four_labelled_panels(engine_board):
    axes = sb.draw(engine_board, targets=TARGETS, title="baseline")
    assert set(axes) == {"faults", "good", "budget", "cost"}
    assert axes["budget"].get_xlabel() == "time of day (h)" and axes["cost"].get_xlabel() == "dollars over the day"
    assert axes["good"].get_ylabel() == "good requests (%, nines scale)" and axes["budget"].get_ylabel() == "error budget spent (%)"
    assert all(axes[p].get_title() for p in axes)
    assert [line.get_label() for line in axes["good"].lines if not line.get_label().startswith("_")] == \
        [s.route for s in SLOS]
    fault_labels = [t.get_text() for t in axes["faults"].get_yticklabels()]
    assert fault_labels == [f[0] for f in engine_board["faults"]] + [f"pages ({len(engine_board['pages'])})"]


def test_each_fault_is_a_bar_in_its_kinds_colour_over_its_window():
    board = synthetic_board()
    ax = sb.fault_rows(board)
    bars = ax.collections[:2]
    for bar, (label, start, end) in zip(bars, board["faults"]):
        (x, w), = [(p.vertices[:, 0].min(), np.ptp(p.vertices[:, 0])) for p in bar.get_paths()]
        assert (x, x + w) == pytest.approx((start / HOUR, end / HOUR))
        assert tuple(bar.get_facecolor()[0]) == to_rgba(sb.FAULT_COLORS[label.partition(" (")[0]])
    assert ax.get_xlim() == (0.0, 24.0)


def test_every_kind_of_chaos_fault_has_its_own_colour():
    assert set(FAULT_KINDS) <= set(sb.FAULT_COLORS)
    assert len({sb.FAULT_COLORS[k] for k in FAULT_KINDS}) == len(FAULT_KINDS)


def test_the_good_share_and_the_budget_follow_the_board_in_percent():
    board = synthetic_board()
    good = sb.good_share(board, targets=TARGETS)
    browse = next(line for line in good.lines if line.get_label() == "browse")
    assert browse.get_ydata()[5] == pytest.approx(50.0) and browse.get_ydata()[4] == pytest.approx(99.99)  # 100%: top
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == pytest.approx(99.9) for line in good.lines)
    budget = sb.budget_burn(board)
    spent = next(line for line in budget.lines if line.get_label() == "browse").get_ydata()
    assert spent[0] == 0 and spent[-1] == pytest.approx(250.0) and budget.get_ylim()[1] > 250.0


def test_the_slo_lines_stand_apart_on_the_nines_scale_even_when_a_day_fell_to_zero():
    board = synthetic_board()
    board["good"]["browse"][5] = 0.0
    ax = sb.good_share(board, targets=TARGETS)
    ax.figure.canvas.draw()
    to_pixels = ax.transData.transform
    slo_y = sorted(to_pixels((0, 100 * s.target))[1] for s in SLOS)        # 99.5, 99.9, 99.95%
    height = ax.bbox.height
    assert min(b - a for a, b in zip(slo_y, slo_y[1:])) > 0.05 * height      # apart, by 5% of the panel
    assert to_pixels((0, 0.0))[1] == pytest.approx(ax.bbox.y0)                # and 0% still on the panel
    browse = next(line for line in ax.lines if line.get_label() == "browse")
    top = to_pixels((0, browse.get_ydata()[0]))[1]                            # a bin at 100%
    assert slo_y[-1] < top < ax.bbox.y1 - 0.03 * height                       # above the SLOs, below the edge


def test_no_endpoint_line_shares_a_colour_with_a_faults_shading():
    routes = sb.route_colors([s.route for s in SLOS] + ["other"])
    assert not {to_rgba(c) for c in routes.values()} & {to_rgba(c) for c in sb.FAULT_COLORS.values()}


def test_a_short_fault_is_shaded_wide_enough_to_see_and_from_its_start():
    board = synthetic_board()
    board["faults"] = [("broker crash (broker)", 9 * HOUR, 9 * HOUR + 60.0)]   # one minute of a 24-hour day
    ax = sb.budget_burn(board)
    (shading,) = [p for p in ax.patches if p.get_alpha() == sb.SHADE_ALPHA]
    assert shading.get_x() == pytest.approx(9.0) and shading.get_width() == pytest.approx(24 * sb.SHADE_MIN_WIDTH)
    assert sb.SHADE_ALPHA >= 0.25


@pytest.mark.parametrize("amount, text", [(9.6, "$9.60"), (0.624, "$0.62"), (48.0, "$48"), (202.4, "$202"),
                                          (58_000.0, "$58,000"), (0.0, "$0")])
def test_money_is_written_as_the_prose_writes_it(amount, text):
    assert sb.money(amount) == text


def test_the_cost_bars_say_cents_where_the_prose_does():
    board = {**synthetic_board(), "cost": [("replicas of job workers", 48.0), ("cache memory", 9.6)]}
    ax = sb.cost_bars(board)
    assert [t.get_text() for t in ax.texts] == ["$48", "$9.60"] and ax.get_title() == "cost: $57.60"


def test_the_cost_shows_what_cost_anything_the_most_expensive_on_top():
    ax = sb.cost_bars(synthetic_board())
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == ["lost orders", "pages", "replicas of frontend"]          # extra calls cost $0: left out
    widths = [p.get_width() for p in ax.patches]
    assert widths == [2000.0, 150.0, 24.0] and ax.get_title() == "cost: $2,174"
    assert ax.get_ylim()[0] > ax.get_ylim()[1]                                # first row on top


def test_two_boards_side_by_side_keep_the_cost_items_in_one_order(engine_board):
    other = synthetic_board()
    axes = sb.compare({"baseline": engine_board, "other": other}, targets=TARGETS)
    rows = [[p.get_width() for p in axes[("cost", n)].patches] for n in ("baseline", "other")]
    assert len(rows[0]) == len(rows[1])
    names = [t.get_text() for t in axes[("cost", "baseline")].get_yticklabels()]
    amounts = dict(other["cost"])
    assert rows[1] == [amounts.get(n, 0.0) for n in names]
    assert all(t.get_text() == "" for t in axes[("cost", "other")].get_yticklabels())


@pytest.mark.parametrize("how", ["draw", "compare"])
def test_the_legend_covers_no_data(engine_board, how):
    if how == "draw":
        axes = sb.draw(engine_board, targets=TARGETS, title="baseline")
    else:
        axes = sb.compare({"baseline": engine_board, "again": engine_board}, targets=TARGETS)
    fig = next(iter(axes.values())).figure
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    assert legend_problems(fig) == []


def test_the_legend_check_catches_a_legend_laid_over_the_lines(engine_board):
    axes = sb.draw(engine_board)
    legend = axes["good"].legend(loc="upper right")           # where the good shares run, at 100%
    axes["good"].figure.canvas.draw()
    assert covered(axes["good"], legend)


@pytest.mark.parametrize("make, name", [
    (lambda: sb.draw([1, 2]), "board"),
    (lambda: sb.draw({"t": [0, 1]}), "board"),
    (lambda: sb.draw({**synthetic_board(), "t": np.zeros(1)}), r"board\['t'\]"),
    (lambda: sb.draw(synthetic_board(), fig="figure"), "fig"),
    (lambda: sb.good_share(synthetic_board(), targets=[0.999]), "targets"),
    (lambda: sb.good_share(synthetic_board(), targets={"browse": 1.5}), "targets"),
    (lambda: sb.draw(synthetic_board(), title=3), "title"),
    (lambda: sb.compare({}), "boards"),
])
def test_bad_input_is_refused_by_name(make, name):
    with pytest.raises((ValueError, TypeError), match=name):
        make()


def test_a_days_plan_draws_from_plain_tuples_before_any_run():
    pieces = [(0.0, HOUR, 0.5), (HOUR, 2 * HOUR, 2.0)]
    faults = [("db failover (db)", 600.0, 700.0)]
    ax = sb.traffic(pieces, faults=faults, scale=300)
    stairs = next(p for p in ax.patches if isinstance(p, StepPatch))
    assert list(stairs.get_data().values) == [150.0, 600.0] and ax.get_xlim() == (0.0, 2.0)
    rows = sb.fault_timeline(faults, 2 * HOUR, ax=plt.figure().subplots())
    assert [t.get_text() for t in rows.get_yticklabels()] == ["db failover (db)", "pages (0)"]
    with pytest.raises(TypeError, match=r"faults\[0\]"):
        sb.fault_timeline([("db", 1)], HOUR)
    with pytest.raises(ValueError, match="pieces"):
        sb.traffic([])
    with pytest.raises(TypeError, match=r"pieces\[1\]"):
        sb.traffic([(0, 1, 2), (1, 2)])
