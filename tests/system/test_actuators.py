"""The agent's libvirt actuators on the real KVM lab, driven through an in-process manager.

One in-process agent per lab host (a real LibvirtHypervisor on the host's session daemon)
dials one in-process cluster manager over loopback gRPC; every command goes through
``manager.send_command`` exactly as the plan executor sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import AgentConfig
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.lab import Lab, LabHost, create_boot_disk, create_overlay

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.timeout(180)]

COMMAND_TIMEOUT_S = 60.0
OK = model.CommandState.SUCCEEDED
GuestFactory = Callable[..., object]


@contextlib.asynccontextmanager
async def cluster(hosts: list[LabHost]) -> AsyncIterator[ClusterServer]:
    """A manager and one agent per host (node id = host name), torn down on exit."""
    config = ClusterConfig(
        listen="127.0.0.1:0", insecure=True, report_period_ms=1000, heartbeat_timeout_ms=10_000
    )
    server = ClusterServer(config)
    await server.start()
    stop = asyncio.Event()
    tasks = []
    try:
        for host in hosts:
            agent_config = AgentConfig(
                node_id=host.name,
                libvirt_uri=host.uri,
                manager=server.address,
                insecure=True,
                report_period_s=1.0,
                heartbeat_period_s=0.5,
                migration_uri=host.migration_uri,
            )
            agent = NodeAgent(agent_config, LibvirtHypervisor(host.uri))
            tasks.append(asyncio.create_task(agent.run(stop)))
        await eventually(lambda: all(_reported(server, h.name) for h in hosts))
        yield server
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await server.stop(grace_s=0)


def _reported(server: ClusterServer, node_id: str) -> bool:
    return node_id in server.manager.state.node_ids() and (
        server.manager.state.view(node_id).usage is not None
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{check.__name__} did not hold within {timeout_s} s")


def nodes_reporting(server: ClusterServer, vm_uuid: str) -> dict[str, model.VmState]:
    """Which nodes report the VM, and in which state."""
    return {
        view.node_id: vm.state
        for view in server.manager.state.views()
        for vm in view.vms
        if vm.uuid == vm_uuid
    }


async def send(server: ClusterServer, node: str, command: model.Command) -> model.CommandResult:
    result = await server.manager.send_command(node, command, COMMAND_TIMEOUT_S)
    assert result.state is OK, result.message
    return result


def test_live_migration_through_the_manager_with_progress(
    lab: Lab, lab_guests: GuestFactory
) -> None:
    host1, host2 = lab.hosts()[:2]
    dom = lab_guests(host1, "act-migrate", "spin", memory_mib=64)
    vm = str(dom.UUIDString())  # type: ignore[attr-defined]

    async def scenario() -> None:
        async with cluster([host1, host2]) as server:
            progress: list[model.CommandResult] = []
            migrate = model.MigrateCommand(
                "mig-1",
                vm,
                destination_uri=host2.uri,
                migration_uri=host2.migration_uri,
                # 1 MiB/s: QEMU skips the guest's zero pages, so only a few MiB are really
                # copied; capped this low the copy lasts long enough for progress reports.
                bandwidth_cap_bps=8 * 1 * (1 << 20),
                auto_converge=True,
            )
            result = await server.manager.send_command(
                "host1", migrate, COMMAND_TIMEOUT_S, progress.append
            )
            assert result.state is OK, result.message
            assert not result.simulated and result.message.startswith("migrated to ")
            running = [p for p in progress if p.state is model.CommandState.RUNNING]
            assert any(p.data_processed_bytes > 0 for p in running), progress

            def only_host2_runs_it() -> bool:
                return nodes_reporting(server, vm) == {"host2": model.VmState.RUNNING}

            await eventually(only_host2_runs_it)
            again = model.MigrateCommand("mig-2", vm, host2.uri, migration_uri=host2.migration_uri)
            retried = await send(server, "host1", again)
            assert retried.message == f"already running on {host2.uri}"

    asyncio.run(scenario())


def test_suspend_resume_save_restore(lab: Lab, lab_guests: GuestFactory) -> None:
    host = lab.hosts()[0]
    vm = str(lab_guests(host, "act-save", "spin").UUIDString())  # type: ignore[attr-defined]
    image = str(lab.guest_dir / "act-save.img")

    async def scenario() -> None:
        async with cluster([host]) as server:

            def state_is(expected: model.VmState) -> Callable[[], bool]:
                return lambda: nodes_reporting(server, vm).get("host1") is expected

            await send(server, "host1", model.SuspendCommand("sr-1", vm))
            await eventually(state_is(model.VmState.PAUSED))
            await send(server, "host1", model.ResumeCommand("sr-2", vm))
            await eventually(state_is(model.VmState.RUNNING))
            saved = await send(server, "host1", model.SaveCommand("sr-3", vm, image))
            assert saved.message == f"saved to {image}"
            await eventually(state_is(model.VmState.SHUT_OFF))
            restored = await send(server, "host1", model.RestoreCommand("sr-4", image))
            assert restored.vm_uuid == vm
            await eventually(state_is(model.VmState.RUNNING))

    try:
        asyncio.run(scenario())
    finally:
        Path(image).unlink(missing_ok=True)


def test_snapshot_create_revert_delete_on_a_qcow2_guest(lab: Lab, lab_guests: GuestFactory) -> None:
    host = lab.hosts()[0]
    base = create_boot_disk(lab.guest_dir / "act-snap.raw", "idle")
    overlay = create_overlay(base, lab.guest_dir / "act-snap.qcow2")
    vm = str(lab_guests(host, "act-snap", "idle", disk=overlay).UUIDString())  # type: ignore[attr-defined]

    async def scenario() -> None:
        async with cluster([host]) as server:
            taken = await send(server, "host1", model.CreateSnapshotCommand("sn-1", vm, "s1"))
            assert taken.message == "snapshot s1 taken"
            listed = await send(server, "host1", model.ListSnapshotsCommand("sn-2", vm))
            assert listed.snapshot_names == ("s1",)
            await send(server, "host1", model.RevertSnapshotCommand("sn-3", vm, "s1"))
            await send(server, "host1", model.RevertSnapshotCommand("sn-4", vm, "s1"))
            deleted = await send(server, "host1", model.DeleteSnapshotCommand("sn-5", vm, "s1"))
            assert deleted.message == "snapshot s1 deleted"
            unnamed = model.CreateSnapshotCommand("sn-6", vm, "")
            refused = await server.manager.send_command("host1", unnamed, COMMAND_TIMEOUT_S)
            assert refused.state is model.CommandState.FAILED

    asyncio.run(scenario())
