"""Power management end to end: a node freed by consolidation is powered off, stays known as
powered off (not lost), and is powered on again when the remaining node runs out of CPU.

The nodes are real agents on the libvirt test driver, in their own processes. The power
commands are real commands the manager runs: "off" kills the node's agent (a node that loses
power stops talking), "on" starts the agent again on an empty test-driver node (a host boots
with no VM running). Every VM carries the same load everywhere: idle at first, two full vCPUs
after a step, which overloads whichever node holds them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_files import start_agent, write_agent_config
from vmgrid.agents.cluster.act.driver import DriverOptions, ManagerDriver
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig, TriggerKind
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.model import VmState
from vmgrid.agents.node.testnode import SimVm
from vmgrid.solver.plan import ActionKind
from waiting import wait_for

pytestmark = pytest.mark.slow

STEP_S = 25.0
"""Seconds after an agent's start at which every VM goes from idle to two busy vCPUs."""
STEP = f'{{ cpu = {{ kind = "step", before = 5, after = 100, at_s = {STEP_S} }} }}'


def power_commands(tmp_path: Path) -> tuple[str, str]:
    """(off, on) command templates; the pid file says which agent process is the node."""
    python = shlex.quote(sys.executable)
    off = f"sh -c 'kill $(cat {tmp_path}/{{node}}.pid)'"
    on = (
        f"sh -c '{python} -m vmgrid.agents.node.main --config {tmp_path}/{{node}}-empty.toml "
        f">> {tmp_path}/{{node}}.log 2>&1 & echo $! > {tmp_path}/{{node}}.pid'"
    )
    return off, on


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[ClusterServer]:
    config = ClusterConfig(
        listen="127.0.0.1:0", insecure=True, report_period_ms=500, heartbeat_timeout_ms=2000
    )
    server = ClusterServer(config)
    await server.start()
    layout = {"n1": ["a", "b"], "n2": ["c"]}
    try:
        for node, names in layout.items():
            vms = [SimVm(name, vcpus=2, memory_mib=1024) for name in names]
            cfg = write_agent_config(
                tmp_path, node, server.address, vms, load=STEP, stem=f"{node}-boot"
            )
            write_agent_config(tmp_path, node, server.address, [], load=STEP, stem=f"{node}-empty")
            agent = start_agent(cfg, tmp_path / f"{node}.log")
            (tmp_path / f"{node}.pid").write_text(str(agent.pid))
        await wait_for(lambda: len(running(server)) == 3, 20)
        yield server
    finally:
        await server.stop(grace_s=0)
        for pid_file in tmp_path.glob("*.pid"):  # only agents this test started
            with contextlib.suppress(ProcessLookupError, ValueError):
                subprocess.run(["kill", pid_file.read_text().strip()], check=False)


def running(server: ClusterServer) -> dict[str, str]:
    """VM name -> node for running VMs; fails when a VM runs twice."""
    where: dict[str, str] = {}
    for view in server.manager.state.views():
        if view.status is not NodeStatus.CONNECTED:
            continue
        for vm in view.vms:
            if vm.state is VmState.RUNNING:
                assert vm.name not in where, (
                    f"{vm.name} runs on {where[vm.name]} and {view.node_id}"
                )
                where[vm.name] = view.node_id
    return where


async def decide_until(loop: ControlLoop, kind: TriggerKind, timeout_s: float):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        decision = await loop.cycle()
        if decision is not None and decision.plan is not None and decision.trigger.kind is kind:
            return decision
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {kind.value} plan within {timeout_s} s")


def test_freed_node_is_powered_off_then_powered_on_when_capacity_is_short(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as server:
            off, on = power_commands(tmp_path)
            options = DriverOptions(
                simulated_time_scale=0.05, power_off_command=off, power_on_command=on
            )
            executor = PlanExecutor(ManagerDriver(server.manager, options), Journal(":memory:"))
            control = ControlConfig(
                period_s=0.5,
                hold_s=1.0,
                cooldown_s=0.0,
                automation=AutomationLevel.AUTOMATIC,
                power_saving=True,
                wake_powered_off=True,
            )
            loop = ControlLoop(server.manager, executor, control)
            state = server.manager.state

            await asyncio.sleep(1.2)  # the underload hold time
            merge = await decide_until(loop, TriggerKind.UNDERLOAD, 10)
            assert merge.plan is not None
            (freed,) = [a.subject for a in merge.plan.actions if a.kind is ActionKind.SHUTDOWN_NODE]
            await wait_for(lambda: loop.running is None, 30)
            assert state.node_status(freed) is NodeStatus.POWERED_OFF
            await asyncio.sleep(3.0)  # past the heartbeat timeout: powered off is not lost
            assert state.node_status(freed) is NodeStatus.POWERED_OFF
            assert sorted(running(server)) == ["a", "b", "c"]
            assert set(running(server).values()) == {({"n1", "n2"} - {freed}).pop()}

            relief = await decide_until(loop, TriggerKind.OVERLOAD, STEP_S + 15)
            assert relief.plan is not None
            kinds = {a.kind for a in relief.plan.actions if a.dst == freed}
            assert kinds == {ActionKind.BOOT_NODE, ActionKind.MIGRATE}, relief.plan.actions
            assert f"power on {freed}" in relief.summary
            await wait_for(lambda: loop.running is None, 60)
            assert state.node_status(freed) is NodeStatus.CONNECTED
            await wait_for(lambda: freed in running(server).values(), 10)
            assert sorted(running(server)) == ["a", "b", "c"]  # each VM once, none lost

    asyncio.run(scenario())
