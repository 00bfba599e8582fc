"""The switchover's share of a migration's ping gaps, from reply times and libvirt's events."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from vmgrid.bench.migration_switchover import (
    Switchover,
    background_gap_ms,
    downtime_parts,
    switchover,
)

# replies every 10 ms, then none from 1.00 s (paused at 1.005 s) to 1.25 s (resumed at 1.2 s)
REPLIES = [i / 100 for i in range(101)] + [1.25 + i / 100 for i in range(50)]


def test_the_gap_around_the_pause_splits_at_the_pause_and_the_resume() -> None:
    split = switchover(REPLIES, paused_at=1.005, resumed_at=1.2)
    assert split == Switchover(
        gap_ms=250.0, reply_to_pause_ms=5.0, pause_to_resume_ms=195.0, resume_to_reply_ms=50.0
    )


def test_without_a_resume_event_only_the_gap_and_its_start_are_known() -> None:
    split = switchover(REPLIES, paused_at=1.005, resumed_at=None)
    assert split is not None and split.gap_ms == 250.0
    assert split.pause_to_resume_ms is None and split.resume_to_reply_ms is None


@pytest.mark.parametrize("paused_at", [-1.0, 5.0])
def test_no_gap_when_no_reply_comes_before_or_after_the_pause(paused_at: float) -> None:
    assert switchover(REPLIES, paused_at, None) is None


def test_background_gap_is_the_longest_inside_the_window() -> None:
    replies = [0.0, 0.01, 0.2, 0.21, 0.5]
    assert background_gap_ms(replies, 0.0, 0.3) == 190.0
    assert background_gap_ms(replies, 0.0, 0.4) == 190.0  # 0.5 is outside: not counted
    assert background_gap_ms(replies, 0.3, 0.4) is None


def test_parts_summarise_the_records_that_have_a_switchover() -> None:
    records = [
        SimpleNamespace(
            switchover={"gap_ms": 250.0, "reply_to_pause_ms": 5.0,
                        "pause_to_resume_ms": 195.0, "resume_to_reply_ms": 50.0},
            downtime_gap_ms=400.0, background_gap_ms=120.0,
        ),
        SimpleNamespace(
            switchover={"gap_ms": 150.0, "reply_to_pause_ms": 9.0,
                        "pause_to_resume_ms": None, "resume_to_reply_ms": None},
            downtime_gap_ms=150.0, background_gap_ms=None,
        ),
        SimpleNamespace(switchover=None, downtime_gap_ms=None, background_gap_ms=80.0),
    ]  # fmt: skip
    parts = downtime_parts(records)
    assert parts["switchovers_seen"] == 2
    assert parts["reply_to_pause_ms_p50"] == 7.0 and parts["reply_to_pause_ms_max"] == 9.0
    assert parts["pause_to_resume_ms_p50"] == parts["pause_to_resume_ms_max"] == 195.0
    assert parts["longest_gap_ms_p50"] == 275.0
    assert parts["background_gap_ms_max"] == 120.0
