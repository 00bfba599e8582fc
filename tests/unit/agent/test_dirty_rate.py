"""The agent's dirty-rate calculations (#16): started every few periods, read once after
their window, a short and a longer window in turn; the rate is the short window's, the dirty
set the most any recent window saw."""

from __future__ import annotations

import pytest
from vmgrid.agents.node.dirty_rate import MIB, DirtyFigures, DirtyRates, Reading, reading_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def measured(mib_s: float, window_s: int) -> dict[str, object]:
    """A domain's VIR_DOMAIN_STATS_DIRTYRATE stats after a finished calculation."""
    return {
        "dirtyrate.calc_status": 2,
        "dirtyrate.calc_start_time": 123,
        "dirtyrate.calc_period": window_s,
        "dirtyrate.megabytes_per_second": mib_s,
    }


def test_only_a_finished_calculation_is_a_reading() -> None:
    assert reading_of(measured(12, 1), 5.0) == Reading(12.0, 1, 5.0)
    assert reading_of({"dirtyrate.calc_status": 1, "dirtyrate.calc_period": 1}, 5.0) is None
    assert reading_of({}, 5.0) is None  # no calculation ever started (or a test domain)


def test_calculations_alternate_windows_every_period_and_are_read_once_after_theirs() -> None:
    clock = Clock()
    rates = DirtyRates(every_s=15.0, windows_s=(1, 4), clock=clock)
    assert rates.start_due() == 1 and not rates.read_due
    rates.started(1)
    assert rates.start_due() is None  # one at a time
    clock.now += 1.0
    assert not rates.read_due  # the window and a margin
    clock.now += 0.6
    assert rates.read_due
    rates.read({"u1": measured(12, 1)})
    assert not rates.read_due and rates.start_due() is None  # next one a period after
    clock.now += 13.5
    assert rates.start_due() == 4
    rates.started(4, running=False)  # no guest was running: nothing to read
    assert not rates.read_due
    clock.now += 15.5
    assert rates.start_due() == 1


def test_the_rate_is_the_short_windows_and_the_set_the_most_any_window_saw() -> None:
    clock = Clock()
    rates = DirtyRates(every_s=15.0, windows_s=(1, 4), clock=clock)
    # a load rewriting 12 MiB: 12 MiB in 1 s, the same 12 MiB in 4 s (3 MiB/s)
    rates.started(1)
    rates.read({"rewrites": measured(12, 1), "writes-new": measured(5, 1), "idle": measured(0, 1)})
    clock.now += 15.0
    rates.started(4)
    rates.read({"rewrites": measured(3, 4), "writes-new": measured(5, 4), "idle": measured(0, 4)})
    assert rates.figures("rewrites") == DirtyFigures(12 * MIB, 12 * MIB)
    assert rates.figures("writes-new") == DirtyFigures(5 * MIB, 20 * MIB)
    assert rates.figures("idle") == DirtyFigures(0, 0)
    assert rates.figures("never-measured") is None


def test_readings_grow_stale_and_gone_guests_are_forgotten() -> None:
    clock = Clock()
    rates = DirtyRates(every_s=15.0, windows_s=(1, 4), clock=clock)
    rates.started(1)
    rates.read({"a": measured(8, 1), "b": measured(2, 1)})
    clock.now += 15.0
    rates.started(4)
    rates.read({"a": measured(2, 4)})  # b left the node
    assert rates.figures("b") is None
    assert rates.figures("a") == DirtyFigures(8 * MIB, 8 * MIB)
    clock.now += 15.0 * 4 + 1  # no calculation could run for four periods
    assert rates.figures("a") is None


@pytest.mark.parametrize(("every_s", "windows"), [(15.0, ()), (15.0, (0, 4)), (4.0, (1, 4))])
def test_bad_schedules_are_refused_naming_them(every_s: float, windows: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="dirty-rate windows"):
        DirtyRates(every_s=every_s, windows_s=windows)
