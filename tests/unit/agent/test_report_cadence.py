"""Agents report at their own phase of the period (cadence.py): spread over node ids, and a
report made in between (woken by a reconnection or a VM event) does not move the later ones."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vmgrid.agents.node.cadence import MIN_GAP_SHARE, next_report_in_s, report_phase_s


def _off_phase(t: float, period: float, phase: float) -> float:
    """Distance from `t` to the nearest instant phase + k * period."""
    d = (t - phase) % period
    return min(d, period - d)


@pytest.mark.parametrize("pattern", ["bench-{:05d}", "node{}", "c1-n{:03d}"])
def test_phases_of_many_nodes_fill_the_period_evenly(pattern: str) -> None:
    period = 3.0
    phases = [report_phase_s(pattern.format(i), period) for i in range(2000)]
    assert all(0 <= p < period for p in phases)
    tenths = [0] * 10
    for p in phases:
        tenths[int(p / period * 10)] += 1
    assert min(tenths) >= 150 and max(tenths) <= 250, tenths  # 200 each if even


def test_a_node_keeps_its_phase_across_restarts_and_scales_with_the_period() -> None:
    assert report_phase_s("n7", 2.0) == report_phase_s("n7", 2.0)
    assert math.isclose(report_phase_s("n7", 4.0), 2 * report_phase_s("n7", 2.0))
    assert report_phase_s("n7", 2.0) != report_phase_s("n8", 2.0)


@given(
    st.floats(0.1, 10.0),
    st.floats(0.0, 1.0, exclude_max=True),
    st.floats(0.0, 1e6),
)
def test_next_report_falls_on_the_phase_at_least_a_tenth_away(
    period: float, phase_share: float, now: float
) -> None:
    phase = phase_share * period
    wait = next_report_in_s(now, period, phase)
    assert MIN_GAP_SHARE * period - 1e-6 <= wait <= (1 + MIN_GAP_SHARE) * period + 1e-6
    assert _off_phase(now + wait, period, phase) < 1e-6 * max(1.0, now)


def test_reports_woken_in_between_do_not_move_the_regular_ones() -> None:
    """An agent simulated on a clock: it reports at once when woken (hello ack, VM event),
    and its regular reports stay at phase + k * period; one due within a tenth of a period
    after a woken report is skipped (the woken one stands for it)."""
    period, phase = 1.0, 0.3
    wakes = [2.71, 2.75, 5.25, 9.25]
    reports, now = [0.0], 0.0  # the first report goes out at start
    pending = list(wakes)
    while now < 12:
        due = now + next_report_in_s(now, period, phase)
        now = pending.pop(0) if pending and pending[0] < due else due
        reports.append(round(now, 9))
    regular = [t for t in reports[1:] if t not in wakes]
    assert regular == pytest.approx([k + 0.3 for k in range(13) if k not in (5, 9)])
    assert set(wakes) <= set(reports)
