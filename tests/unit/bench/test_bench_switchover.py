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
    split = switchover(REPLIES, paused_at=1.005, resumed_at=1.2, downtime_ms=195.0)
    assert split == Switchover(
        gap_ms=250.0,
        downtime_ms=195.0,
        rest_ms=55.0,
        reply_to_pause_ms=5.0,
        pause_to_resume_ms=195.0,
        resume_to_reply_ms=50.0,
    )


def test_a_late_pause_event_still_finds_the_gap_long_enough_for_libvirts_downtime() -> None:
    # the guest answered again at 1.25 s; its pause event reached the bench at 1.4 s, after a
    # later 60 ms gap of a loaded guest (1.33 to 1.39 s), shorter than libvirt's downtime
    replies = [r for r in REPLIES if not 1.33 < r < 1.39]
    split = switchover(replies, paused_at=1.4, resumed_at=1.35, downtime_ms=190.0)
    assert split is not None and split.gap_ms == 250.0 and split.rest_ms == 60.0
    assert split.pause_to_resume_ms is None  # the events fall outside the gap: no split


def test_without_a_resume_event_only_the_gap_is_known() -> None:
    split = switchover(REPLIES, paused_at=1.005, resumed_at=None)
    assert split is not None and split.gap_ms == 250.0 and split.rest_ms is None
    assert split.pause_to_resume_ms is None and split.resume_to_reply_ms is None


@pytest.mark.parametrize("paused_at", [-1.0, None])
def test_no_gap_without_a_reply_before_the_pause_or_without_events(
    paused_at: float | None,
) -> None:
    assert switchover(REPLIES, paused_at, None, 100.0) is None


def test_no_gap_near_libvirts_downtime_means_none_found() -> None:
    assert switchover(REPLIES, 1.005, 1.2, downtime_ms=600.0) is None


def test_libvirts_clock_may_count_a_little_more_than_the_guest_was_silent() -> None:
    split = switchover(REPLIES, paused_at=1.4, resumed_at=None, downtime_ms=280.0)
    assert split is not None and split.gap_ms == 250.0 and split.rest_ms == -30.0


def test_only_gaps_overlapping_the_migration_command_count() -> None:
    replies = [0.0, 0.3, *(0.3 + i / 100 for i in range(1, 200))]  # a 300 ms gap at 0 s
    assert switchover(replies, paused_at=1.0, resumed_at=None, downtime_ms=250.0) is not None
    assert switchover(replies, 1.0, None, 250.0, window=(0.5, 2.0)) is None


def test_background_gap_is_the_longest_inside_the_window() -> None:
    replies = [0.0, 0.01, 0.2, 0.21, 0.5]
    assert background_gap_ms(replies, 0.0, 0.3) == 190.0
    assert background_gap_ms(replies, 0.0, 0.4) == 190.0  # 0.5 is outside: not counted
    assert background_gap_ms(replies, 0.3, 0.4) is None


def test_parts_summarise_the_records_that_have_a_switchover() -> None:
    records = [
        SimpleNamespace(
            switchover={"gap_ms": 250.0, "rest_ms": 55.0, "reply_to_pause_ms": 5.0,
                        "pause_to_resume_ms": 195.0, "resume_to_reply_ms": 50.0},
            downtime_gap_ms=400.0, background_gap_ms=120.0,
        ),
        SimpleNamespace(
            switchover={"gap_ms": 150.0, "rest_ms": 41.0, "reply_to_pause_ms": 9.0,
                        "pause_to_resume_ms": None, "resume_to_reply_ms": None},
            downtime_gap_ms=150.0, background_gap_ms=None,
        ),
        SimpleNamespace(switchover=None, downtime_gap_ms=None, background_gap_ms=80.0),
    ]  # fmt: skip
    parts = downtime_parts(records)
    assert parts["switchovers_seen"] == 2
    assert parts["rest_ms_p50"] == 48.0 and parts["rest_ms_max"] == 55.0
    assert parts["reply_to_pause_ms_p50"] == 7.0 and parts["reply_to_pause_ms_max"] == 9.0
    assert parts["pause_to_resume_ms_p50"] == parts["pause_to_resume_ms_max"] == 195.0
    assert parts["longest_gap_ms_p50"] == 275.0
    assert parts["background_gap_ms_max"] == 120.0
