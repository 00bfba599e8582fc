"""The manager learns a real migration's fixed cost from the job statistics its source's agent
sends with the result, over a real node link: the next operator migration's estimate, and the
decision loop's view of the cluster, count the learned cost instead of the default."""

from __future__ import annotations

import asyncio
import time

import grpc.aio
import pytest
from node_link_harness import StreamAgent
from test_node_link_malformed import run
from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.driver import DriverOptions, ManagerDriver
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.state.migration_estimate import REAL_MIGRATION_FIXED_S, MigrationLink
from vmgrid.agents.cluster.state.solver_view import ViewOptions, to_model
from vmgrid.agents.common import node_codec as codec
from vmgrid.solver.plan import Action, ActionKind

MIB = 1 << 20
LINK = MigrationLink(400_000_000)  # libvirt gets 47 MiB/s
VM_MIB = 256  # what the harness's VMs use: the estimate counts it all, none dirtied


def real(node_id: str) -> m.NodeIdentity:
    return m.NodeIdentity(
        node_id,
        node_id,
        f"tcp://{node_id}",
        simulated=False,
        peer_uri=f"qemu+tcp://{node_id}/system",
    )


async def migrate_once(
    driver: ManagerDriver, source: StreamAgent, action: Action, cid: str, result: m.CommandResult
) -> bool:
    """Run `action` through the driver; the source answers its command with `result`."""
    task = asyncio.ensure_future(driver.execute(action, cid, lambda _a, _f: None))
    command = codec.decode_command((await source.recv()).command)
    assert isinstance(command, m.MigrateCommand) and command.command_id == cid
    source.send(command_result=codec.encode_command_result(result))
    return (await asyncio.wait_for(task, 10)).succeeded


def test_a_migrations_job_statistics_teach_the_manager_its_fixed_cost() -> None:
    async def scenario(server: ClusterServer, channel: grpc.aio.Channel) -> None:
        n1, n2 = StreamAgent(channel, "n1"), StreamAgent(channel, "n2")
        await n1.hello(real("n1"))
        await n2.hello(real("n2"))
        n1.report("vm-1")
        n2.report()
        state = server.manager.state
        deadline = time.monotonic() + 5
        while not any(vm.uuid == "vm-1" for view in state.views() for vm in view.vms):
            assert time.monotonic() < deadline, "the report never arrived"
            await asyncio.sleep(0.02)
        driver = ManagerDriver(
            server.manager, DriverOptions(migration_bandwidth_bps=LINK.bandwidth_bps)
        )
        action = Action(0, ActionKind.MIGRATE, "vm-1", "n1", "n2", 0, 6, "test")
        assert driver.estimated_seconds(action) == pytest.approx(
            VM_MIB / 47 + REAL_MIGRATION_FIXED_S
        )

        # a failed migration, even with figures, teaches nothing
        failed = m.CommandResult(
            "p1/0/0", m.CommandState.FAILED, 1.0, "migration of vm-1 failed: timeout",
            migration_job=m.MigrationJob(60_000, 10 * MIB),
        )  # fmt: skip
        assert not await migrate_once(driver, n1, action, "p1/0/0", failed)
        assert state.migration_fixed.seconds() == REAL_MIGRATION_FIXED_S

        # 188 MiB sent (4 s at 47 MiB/s) in 9 s: 5 s beyond the memory
        job = m.MigrationJob(9000, 188 * MIB, 180 * MIB, 250, 3)
        done = m.CommandResult(
            "p2/0/0", m.CommandState.SUCCEEDED, 1.0, "migrated", migration_job=job
        )
        assert await migrate_once(driver, n1, action, "p2/0/0", done)
        assert state.migration_fixed.seconds() == pytest.approx(5.0)
        assert driver.estimated_seconds(action) == pytest.approx(VM_MIB / 47 + 5.0)
        snapshot = state.snapshot()
        assert snapshot.migration_fixed_s == pytest.approx(5.0)
        model = to_model(snapshot, ViewOptions(migration_link=LINK))
        assert model.vms["vm-1"].duration_s("migrate") == round(VM_MIB / 47 + 5.0)

        # an agent from before sends no figures: the learned cost stays
        older = m.CommandResult("p3/0/0", m.CommandState.SUCCEEDED, 1.0, "migrated")
        assert await migrate_once(driver, n1, action, "p3/0/0", older)
        assert state.migration_fixed.seconds() == pytest.approx(5.0)
        n1.close()
        n2.close()

    run(scenario)
