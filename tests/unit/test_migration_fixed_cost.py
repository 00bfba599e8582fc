"""The manager learns the fixed cost of real live migrations from libvirt's job statistics
(what the source's agent sends with a migration's result): libvirt's job time minus the time
the memory it sent takes at the cap, the median of the last three, bounded, forgotten after
a while; without any, the default stands."""

from __future__ import annotations

import pytest
from vmgrid.agents.cluster.state.migration_estimate import (
    MAX_FIXED_S,
    REAL_MIGRATION_FIXED_S,
    MigrationFixedCost,
    MigrationLink,
    migrate_attributes,
    precopy_seconds,
)
from vmgrid.agents.model import MigrationJob, VmState, VmUsage

MIB = 1 << 20
LINK = MigrationLink(400_000_000)  # libvirt gets 47 MiB/s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(elapsed_s: float, sent_mib: float = 47.0 * 4) -> MigrationJob:
    """A migration that sent `sent_mib` (4 s at the cap by default) in `elapsed_s`."""
    return MigrationJob(round(elapsed_s * 1000), int(sent_mib * MIB), int(sent_mib * MIB), 100, 3)


def learner(clock: Clock | None = None) -> MigrationFixedCost:
    return MigrationFixedCost(monotonic=clock or Clock())


def test_without_any_migration_the_default_stands() -> None:
    assert learner().seconds() == REAL_MIGRATION_FIXED_S


def test_the_fixed_cost_is_the_job_time_beyond_the_memory_sent_at_the_cap() -> None:
    fixed = learner()
    assert fixed.learn(job(6.5), LINK) == pytest.approx(2.5)
    assert fixed.seconds() == pytest.approx(2.5)


def test_the_median_of_the_last_three_follows_a_rise_of_load_at_the_second_migration() -> None:
    fixed = learner()
    for elapsed in (4.2, 4.2, 4.2):  # a quiet machine: 0.2 s beyond the memory
        fixed.learn(job(elapsed), LINK)
    fixed.learn(job(7.6), LINK)  # the load rises: 3.6 s
    assert fixed.seconds() == pytest.approx(0.2)
    fixed.learn(job(7.6), LINK)
    assert fixed.seconds() == pytest.approx(3.6)


def test_one_outlier_among_three_does_not_move_it() -> None:
    fixed = learner()
    for elapsed in (5.0, 45.0, 5.2):  # 1.0, 41.0 and 1.2 s beyond the memory
        fixed.learn(job(elapsed), LINK)
    assert fixed.seconds() == pytest.approx(1.2)


def test_each_sample_is_bounded_to_zero_and_the_maximum() -> None:
    fixed = learner()
    assert fixed.learn(job(3.0), LINK) == 0.0  # faster than the cap (a fuller link): 0, not < 0
    assert fixed.seconds() == 0.0
    assert fixed.learn(job(40_000.0), LINK) == MAX_FIXED_S


def test_a_job_without_time_or_memory_sent_teaches_nothing() -> None:
    fixed = learner()
    assert fixed.learn(MigrationJob(0, 200 * MIB), LINK) is None
    assert fixed.learn(MigrationJob(5000, 0), LINK) is None
    assert fixed.seconds() == REAL_MIGRATION_FIXED_S


def test_old_samples_are_forgotten_and_the_default_comes_back() -> None:
    clock = Clock()
    fixed = learner(clock)
    fixed.learn(job(7.0), LINK)
    clock.now += 1000
    fixed.learn(job(5.0), LINK)
    assert fixed.seconds() == pytest.approx((3.0 + 1.0) / 2)
    clock.now += 900  # the first is now 1900 s old (kept 1800 s), the second 900 s
    assert fixed.seconds() == pytest.approx(1.0)
    clock.now += 1000
    assert fixed.seconds() == REAL_MIGRATION_FIXED_S


def test_the_sent_memory_is_counted_at_the_cap_in_whole_mib_per_second() -> None:
    fixed = learner()
    slow = MigrationLink(100_000_000)  # 11.9 MiB/s: libvirt gets 11
    assert fixed.learn(job(20.0, sent_mib=110), slow) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("window", "max_age_s", "default_s"), [(0, 60.0, 0.7), (3, 0.0, 0.7), (3, 60.0, -1.0)]
)
def test_bad_settings_are_refused_with_their_values(
    window: int, max_age_s: float, default_s: float
) -> None:
    with pytest.raises(ValueError, match=f"window {window} .* max_age_s {max_age_s}"):
        MigrationFixedCost(window, max_age_s, default_s)


def test_a_plan_counts_the_learned_fixed_cost() -> None:
    vm = VmUsage(
        "u1", "web-1", VmState.RUNNING, 1, 100, 256 * MIB, 256 * MIB,
        memory_resident_bytes=235 * MIB,
    )  # fmt: skip
    assert precopy_seconds(vm, LINK) == pytest.approx(5.0 + REAL_MIGRATION_FIXED_S)
    assert precopy_seconds(vm, LINK, fixed_s=3.6) == pytest.approx(8.6)
    assert migrate_attributes(vm, False, LINK, 3.6) == {"migrate": 9}
    assert migrate_attributes(vm, False, LINK) == {"migrate": 6}
    assert migrate_attributes(vm, True, LINK, 3.6) == {}
