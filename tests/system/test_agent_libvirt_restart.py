"""The agent survives a libvirtd restart on a real lab host and reconnects by itself.

An in-process agent (real LibvirtHypervisor on the host's session daemon) reports a running
KVM guest to an in-process manager; the host's libvirtd is stopped (SIGTERM, as `systemctl
restart libvirtd` does; the QEMU guest keeps running) and started again on the same
directory. The agent must turn degraded while libvirtd is gone, then reconnect on its own
(close callback + retry with backoff) and send fresh reports with the guest's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

import pytest
from vmgrid.agents import model
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import AgentConfig
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.lab import Lab, procs

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.timeout(240)]

GuestFactory = Callable[..., object]


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.1)


def stop_libvirtd(lab: Lab, name: str) -> None:
    """SIGTERM the host's libvirtd only (not its guests) and wait until it is gone."""
    host = next(h for h in lab.hosts() if h.name == name)
    os.kill(host.pid, signal.SIGTERM)
    assert procs.wait_gone(host.record, 30.0), f"libvirtd of {name} did not stop"


def test_agent_turns_degraded_then_reconnects_after_libvirtd_restarts(
    lab: Lab, lab_guests: GuestFactory
) -> None:
    host = lab.hosts()[-1]
    domain = lab_guests(host, "restart-vm", "spin", memory_mib=64)
    vm_uuid = str(domain.UUIDString())  # type: ignore[attr-defined]

    async def scenario() -> None:
        config = ClusterConfig(
            listen="127.0.0.1:0", insecure=True, report_period_ms=1000, heartbeat_timeout_ms=60_000
        )
        server = ClusterServer(config.validate())
        await server.start()
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
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        state = server.manager.state

        def vm_state() -> model.VmState | None:
            if host.name not in state.node_ids():
                return None
            found = [vm for vm in state.view(host.name).vms if vm.uuid == vm_uuid]
            return found[0].state if found else None

        try:
            await eventually(lambda: vm_state() is model.VmState.RUNNING, "guest reported")
            assert agent.degraded_reason == ""

            await asyncio.to_thread(stop_libvirtd, lab, host.name)
            await eventually(lambda: agent.degraded_reason != "", "agent degraded")
            assert host.uri in agent.degraded_reason  # names what it lost
            assert not task.done()

            restarted_at_ns = time.time_ns()
            await asyncio.to_thread(lab.restart_host, host.name)
            await eventually(lambda: agent.degraded_reason == "", "agent reconnected")
            sequence = state.view(host.name).last_sequence

            def fresh_report_with_the_guest() -> bool:
                view = state.view(host.name)
                report = agent.last_report
                return (
                    view.last_sequence > sequence
                    and report is not None
                    and report.sent_at_unix_ns > restarted_at_ns
                    and vm_state() is model.VmState.RUNNING
                )

            await eventually(fresh_report_with_the_guest, "fresh report after the restart")
            report = agent.last_report
            assert report is not None
            guest = next(vm for vm in report.vms if vm.uuid == vm_uuid)
            assert guest.memory_allocated_bytes == 64 * 2**20 and not guest.simulated
            # The reconnected agent still gets events: a pause shows in the manager.
            await asyncio.to_thread(host.connect().lookupByUUIDString(vm_uuid).suspend)
            await eventually(lambda: vm_state() is model.VmState.PAUSED, "pause seen")
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
            await server.stop(grace_s=0)

    asyncio.run(scenario())
