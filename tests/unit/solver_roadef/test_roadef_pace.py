"""The pace of the search: CP-SAT step limits follow the share of a core the search gets."""

from __future__ import annotations

import time

from vmgrid.solver.roadef.pace import Pace


def test_a_fresh_pace_leaves_limits_as_they_are() -> None:
    assert Pace().slowdown == 1.0


def test_time_the_thread_does_not_run_raises_the_slowdown_up_to_its_bound() -> None:
    pace = Pace()
    pace.begin()
    time.sleep(0.1)  # wall time passes, the thread gets no CPU: as if other work held the cores
    pace.end()
    first = pace.slowdown
    assert 1.5 < first <= Pace.MAX_SLOWDOWN
    for _ in range(4):
        pace.begin()
        time.sleep(0.06)
        pace.end()
    assert first < pace.slowdown == Pace.MAX_SLOWDOWN


def test_spans_too_short_to_measure_are_ignored() -> None:
    pace = Pace()
    pace.begin()
    time.sleep(Pace.MIN_SPAN / 5)
    pace.end()
    assert pace.share == 1.0 and pace.slowdown == 1.0
