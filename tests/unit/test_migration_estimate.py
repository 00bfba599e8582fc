"""The manager's estimate of an operator migration: the pre-copy model at the cap libvirt is
given, in whole seconds on the plan's action."""

from __future__ import annotations

import pytest
from vmgrid.agents.cluster.act.driver import (
    DriverOptions,
    real_migration_seconds,
    simulated_migration_seconds,
)
from vmgrid.agents.cluster.operator.dry_run import single_migration
from vmgrid.agents.cluster.state.migration_estimate import REAL_MIGRATION_FIXED_S
from vmgrid.agents.model import VmState, VmUsage

MIB = 1 << 20


def vm(memory_mib: int) -> VmUsage:
    return VmUsage("u1", "web-1", VmState.RUNNING, 1, 100, memory_mib * MIB, memory_mib * MIB)


def test_a_real_migration_costs_its_memory_at_the_whole_mib_cap_plus_the_fixed_cost() -> None:
    options = DriverOptions(migration_bandwidth_bps=400_000_000)  # libvirt gets 47 MiB/s
    assert real_migration_seconds(vm(235), options) == pytest.approx(5.0 + REAL_MIGRATION_FIXED_S)


def test_dirtying_lengthens_the_estimate() -> None:
    options = DriverOptions(migration_bandwidth_bps=400_000_000)
    idle = real_migration_seconds(vm(256), options)
    assert real_migration_seconds(vm(256), options, dirty_mib_s=20) > idle * 1.3


def test_a_lower_downtime_limit_adds_rounds_for_a_dirtying_guest() -> None:
    default = DriverOptions(migration_bandwidth_bps=400_000_000)
    tight = DriverOptions(migration_bandwidth_bps=400_000_000, migration_max_downtime_ms=50)
    assert real_migration_seconds(vm(256), tight) == real_migration_seconds(vm(256), default)
    assert real_migration_seconds(vm(256), tight, dirty_mib_s=20) > real_migration_seconds(
        vm(256), default, dirty_mib_s=20
    )


def test_a_simulated_migration_waits_memory_over_bandwidth_scaled() -> None:
    options = DriverOptions(migration_bandwidth_bps=1_000_000_000, simulated_time_scale=0.5)
    assert simulated_migration_seconds(vm(1000), options) == pytest.approx(
        1000 * MIB * 8 / 1e9 * 0.5
    )


@pytest.mark.parametrize(("seconds", "end_s"), [(0.2, 1), (5.4, 5), (5.6, 6), (61.0, 61)])
def test_the_operator_action_lasts_the_estimate_in_whole_seconds(
    seconds: float, end_s: int
) -> None:
    action = single_migration("u1", "n1", "n2", "operator request", seconds)
    assert (action.start_s, action.end_s) == (0, end_s)


def measured(resident_mib: int, dirty_mib_s: int = 0, dirty_set_mib: int = 0) -> VmUsage:
    """A 256 MiB guest with what its agent measured (#16)."""
    return VmUsage(
        "u1", "web-1", VmState.RUNNING, 1, 100, 256 * MIB, 256 * MIB,
        memory_resident_bytes=resident_mib * MIB,
        memory_dirty_bytes_per_second=dirty_mib_s * MIB,
        memory_dirty_set_bytes=dirty_set_mib * MIB,
    )  # fmt: skip


def test_the_reported_resident_memory_is_what_crosses_not_the_used_memory() -> None:
    options = DriverOptions(migration_bandwidth_bps=400_000_000)  # 47 MiB/s
    assert real_migration_seconds(measured(188), options) == pytest.approx(
        4.0 + REAL_MIGRATION_FIXED_S
    )
    assert real_migration_seconds(measured(0), options) == real_migration_seconds(vm(256), options)
    # a figure above the allocation (a stale one after a resize) counts the allocation
    assert real_migration_seconds(measured(400), options) == real_migration_seconds(
        vm(256), options
    )


def test_the_reported_dirty_rate_adds_rounds_and_the_dirty_set_bounds_them() -> None:
    options = DriverOptions(migration_bandwidth_bps=400_000_000)
    idle = real_migration_seconds(measured(188), options)
    # 12 MiB/s over a 4 s first round: 48 MiB to send again, then 12 (under 14 MiB: stop)
    unbounded = real_migration_seconds(measured(188, 12), options)
    assert unbounded == pytest.approx(idle + 48 / 47 + 12.26 / 47, abs=0.01)
    # the same rate rewriting one 12 MiB set: the stop-and-copy takes it after one round
    bounded = real_migration_seconds(measured(188, 12, 12), options)
    assert bounded == pytest.approx(idle + 12 / 47)
    # an explicit rate overrides the reported one
    assert real_migration_seconds(measured(188, 12), options, dirty_mib_s=0) == idle


def test_the_estimate_takes_a_given_fixed_cost() -> None:
    options = DriverOptions(migration_bandwidth_bps=400_000_000)
    assert real_migration_seconds(measured(188), options, fixed_s=3.0) == pytest.approx(7.0)
