"""The pre-copy migration estimate: rounds, convergence and the fixed cost."""

from __future__ import annotations

import pytest
from vmgrid.solver.migration_time import PrecopyInput, estimate, naive_seconds
from vmgrid.solver.model import ModelError


def test_an_idle_guest_sends_its_resident_memory_once_plus_the_fixed_cost() -> None:
    result = estimate(PrecopyInput(resident_mib=100, rate_mib_s=50, fixed_s=1.5))
    assert result.rounds == 1
    assert result.converges
    assert result.sent_mib == pytest.approx(100)
    assert result.seconds == pytest.approx(1.5 + 2.0)
    assert result.downtime_s == 0


def test_dirtying_adds_rounds_that_shrink_geometrically() -> None:
    # 100 MiB at 50 MiB/s dirtying 10 MiB/s: rounds of 100, 20, 4 MiB, 0.8 MiB stop-and-copy
    result = estimate(PrecopyInput(resident_mib=100, rate_mib_s=50, dirty_mib_s=10))
    assert result.converges
    assert result.rounds == 2  # after the 20 MiB round, 4 MiB < 50 x 0.3 = 15 MiB remains
    assert result.sent_mib == pytest.approx(100 + 20 + 4)
    assert result.seconds == pytest.approx((100 + 20 + 4) / 50)
    assert result.downtime_s == pytest.approx(4 / 50)


def test_a_small_working_set_bounds_what_a_long_round_dirties() -> None:
    unbounded = estimate(PrecopyInput(resident_mib=200, rate_mib_s=20, dirty_mib_s=8))
    bounded = estimate(
        PrecopyInput(resident_mib=200, rate_mib_s=20, dirty_mib_s=8, working_set_mib=4)
    )
    assert bounded.seconds < unbounded.seconds
    assert bounded.sent_mib == pytest.approx(200 + 4)  # 4 MiB fits the 6 MiB threshold


def test_a_guest_dirtying_faster_than_the_limit_allows_never_converges() -> None:
    # a 30 MiB working set rewritten constantly: every round leaves 30 MiB > 50 x 0.3
    result = estimate(
        PrecopyInput(resident_mib=100, rate_mib_s=50, dirty_mib_s=60, working_set_mib=30)
    )
    assert not result.converges
    assert result.rounds == 30


def test_the_naive_estimate_is_memory_over_the_rate() -> None:
    assert naive_seconds(256, 32) == 8.0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"resident_mib": 10, "rate_mib_s": 0}, "rate_mib_s = 0"),
        ({"resident_mib": -1, "rate_mib_s": 1}, "resident_mib -1"),
        ({"resident_mib": 1, "rate_mib_s": 1, "max_rounds": 0}, "max_rounds 0"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(ModelError, match=named):
        PrecopyInput(**kwargs)  # type: ignore[arg-type]
