"""The source's agent sends libvirt's completed job statistics with a successful migration's
result (the manager learns the fixed cost from them); a job libvirt did not keep, or a failed
reading, leaves them out and the migration still succeeds."""

from __future__ import annotations

import asyncio
from typing import Any

import libvirt
import pytest
from vmgrid.agents import model
from vmgrid.agents.node.actuators import Actuators
from vmgrid.agents.node.hypervisor import HypervisorError
from vmgrid.agents.node.migration import (
    MigrationProgress,
    MigrationRequest,
    job_from_completed_stats,
)

MIB = 1 << 20
COMPLETED = {
    "type": libvirt.VIR_DOMAIN_JOB_COMPLETED,
    "operation": libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN,
    "time_elapsed": 5320,
    "downtime": 142,
    "memory_processed": 201 * MIB,
    "memory_normal_bytes": 199 * MIB,
    "memory_iteration": 4,
    "memory_bps": 47 * MIB,
}
JOB = model.MigrationJob(5320, 201 * MIB, 199 * MIB, 142, 4)


def test_a_completed_jobs_statistics_are_read() -> None:
    assert job_from_completed_stats(COMPLETED) == JOB


@pytest.mark.parametrize(
    "stats",
    [
        {"type": libvirt.VIR_DOMAIN_JOB_NONE},
        {**COMPLETED, "type": libvirt.VIR_DOMAIN_JOB_FAILED},
        {**COMPLETED, "time_elapsed": 0},
        {key: value for key, value in COMPLETED.items() if key != "time_elapsed"},
    ],
)
def test_no_job_is_read_from_what_is_not_a_completed_one(stats: dict[str, int]) -> None:
    assert job_from_completed_stats(stats) is None


def test_missing_figures_read_as_zero() -> None:
    stats = {"type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "time_elapsed": 900}
    assert job_from_completed_stats(stats) == model.MigrationJob(900)


class FakeHost:
    """The hypervisor calls a migration makes; the job statistics as given."""

    simulated = False

    def __init__(self, completed: model.MigrationJob | None | HypervisorError) -> None:
        self.completed = completed
        self.asked: list[tuple[str, str]] = []

    def domain_state(self, vm: str) -> model.VmState:
        return model.VmState.RUNNING

    def migrate(self, vm: str, request: MigrationRequest) -> str:
        return ""

    def migration_progress(self, vm: str) -> MigrationProgress | None:
        return None

    def completed_migration(self, uri: str, vm: str) -> model.MigrationJob | None:
        self.asked.append((uri, vm))
        if isinstance(self.completed, HypervisorError):
            raise self.completed
        return self.completed


def migrated(host: FakeHost) -> model.CommandResult:
    command = model.MigrateCommand("c1", "vm-1", "qemu+tcp://h2/system")

    async def scenario() -> model.CommandResult:
        hv: Any = host
        actuators = Actuators(hv, lambda _result: None)
        actuators.submit(command)
        await actuators.drain()
        final = actuators.cached(command.command_id)
        assert final is not None
        return final

    return asyncio.run(scenario())


def test_the_result_carries_the_destinations_job_statistics() -> None:
    host = FakeHost(JOB)
    result = migrated(host)
    assert result.state is model.CommandState.SUCCEEDED
    assert result.migration_job == JOB
    assert host.asked == [("qemu+tcp://h2/system", "vm-1")]


@pytest.mark.parametrize("completed", [None, HypervisorError("cannot ask libvirt at h2")])
def test_without_statistics_the_migration_still_succeeds(
    completed: HypervisorError | None,
) -> None:
    result = migrated(FakeHost(completed))
    assert result.state is model.CommandState.SUCCEEDED
    assert result.migration_job is None
    assert result.message == "migrated to qemu+tcp://h2/system"
