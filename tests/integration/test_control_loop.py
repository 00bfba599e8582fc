"""The manager's decision loop on real agents (libvirt test driver, separate processes).

Three idle nodes with two VMs each: in automatic mode the manager consolidates them onto fewer
nodes through simulated migrations, and every VM ends running on exactly one node. In manual
mode the same decision waits for approval and nothing moves until it is approved.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_files import idle_pair, start_agent, write_agent_config
from vmgrid.agents.cluster.act.driver import DriverOptions, ManagerDriver
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import ActionState, Journal, PlanState
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig, find_trigger
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.decide.maintenance import DrainFallback
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.model import VmState
from vmgrid.agents.node.testnode import SimVm
from vmgrid.solver.constraints import Gather
from waiting import wait_for

pytestmark = pytest.mark.slow

NODES = ("n1", "n2", "n3")


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, vms: dict[str, list[SimVm]] | None = None
) -> AsyncIterator[ClusterServer]:
    """Three agents, each node with its idle pair unless `vms` says otherwise."""
    vms = vms or {node: idle_pair(node) for node in NODES}
    config = ClusterConfig(
        listen="127.0.0.1:0", insecure=True, report_period_ms=500, heartbeat_timeout_ms=5000
    )
    server = ClusterServer(config)
    await server.start()
    agents: list[subprocess.Popen[bytes]] = []
    try:
        for node in NODES:
            cfg = write_agent_config(tmp_path, node, server.address, vms[node])
            agents.append(start_agent(cfg, tmp_path / f"{node}.log"))
        count = sum(len(v) for v in vms.values())
        await wait_for(lambda: placement(server) and len(placement(server)) == count, 20)
        yield server
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(timeout=20)
        await server.stop(grace_s=0)


def placement(server: ClusterServer) -> dict[str, str]:
    """VM uuid -> node, for running VMs; raises if a VM runs on two nodes."""
    seen: Counter[str] = Counter()
    where: dict[str, str] = {}
    for view in server.manager.state.views():
        if view.status is not NodeStatus.CONNECTED:
            continue
        for vm in view.vms:
            if vm.state is VmState.RUNNING:
                seen[vm.uuid] += 1
                where[vm.uuid] = view.node_id
    twice = [uuid for uuid, n in seen.items() if n > 1]
    assert not twice, f"VMs running twice: {twice}"
    return where


def control(level: AutomationLevel, fallback: DrainFallback) -> ControlConfig:
    return ControlConfig(
        period_s=0.5, hold_s=1.0, cooldown_s=0.0, automation=level, drain_fallback=fallback
    )


def make_loop(
    server: ClusterServer, level: AutomationLevel, fallback: DrainFallback = DrainFallback.NONE
) -> ControlLoop:
    driver = ManagerDriver(server.manager, DriverOptions(simulated_time_scale=0.05))
    executor = PlanExecutor(driver, Journal(":memory:"))
    return ControlLoop(server.manager, executor, control(level, fallback))


async def underload_held(server: ClusterServer, loop: ControlLoop) -> None:
    """Until the nodes' reports span the underload hold time (on their own clocks), so that
    a cycle finds the trigger: a fixed sleep of the hold time is not enough when reports
    arrive late on a loaded host."""
    await wait_for(lambda: find_trigger(server.manager.state.snapshot(), loop.config), 30)


def test_idle_cluster_is_consolidated_without_losing_or_duplicating_a_vm(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path) as server:
            before = placement(server)
            assert len(set(before.values())) == 3
            loop = make_loop(server, AutomationLevel.AUTOMATIC)
            await underload_held(server, loop)
            decision = await loop.cycle()
            assert decision is not None and decision.plan is not None, decision
            assert "consolidate" in decision.summary
            await wait_for(lambda: loop.running is None, 60)
            await wait_for(lambda: len(set(placement(server).values())) < 3, 10)
            after = placement(server)
            assert set(after) == set(before)  # every VM still runs, exactly once

    asyncio.run(scenario())


def test_manual_mode_waits_for_approval_before_moving_anything(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path) as server:
            before = placement(server)
            loop = make_loop(server, AutomationLevel.MANUAL)
            await underload_held(server, loop)
            decision = await loop.cycle()
            assert decision is not None and decision.plan is not None
            assert len(loop.pending) == 1 and loop.running is None
            await asyncio.sleep(1.0)
            assert placement(server) == before
            (plan_id,) = loop.pending
            report = await loop.approve(plan_id)
            assert report.state is PlanState.SUCCEEDED, report.messages
            await wait_for(lambda: len(set(placement(server).values())) < 3, 10)
            assert set(placement(server)) == set(before)

    asyncio.run(scenario())


def test_drain_moves_vms_away_and_undrain_brings_them_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path) as server:
            before = placement(server)
            on_n1 = {uuid for uuid, node in before.items() if node == "n1"}
            loop = make_loop(server, AutomationLevel.MANUAL)  # a drain needs no approval
            loop.drain("n1")
            decision = await loop.cycle()
            assert decision is not None and decision.plan is not None, decision
            assert not loop.pending
            await wait_for(lambda: loop.running is None, 60)
            await wait_for(lambda: "n1" not in placement(server).values(), 10)
            assert set(placement(server)) == set(before)
            loop.undrain("n1")
            decision = await loop.cycle()
            assert decision is not None and decision.summary.startswith("undrain n1"), decision
            await wait_for(lambda: loop.running is None, 60)
            await wait_for(
                lambda: {u for u, n in placement(server).items() if n == "n1"} == on_n1, 10
            )
            assert set(placement(server)) == set(before)

    asyncio.run(scenario())


def test_a_drain_moves_what_it_can_and_suspends_a_gathered_pair_in_place(tmp_path: Path) -> None:
    """n1 runs a gathered pair and a third VM: the drain migrates the third and, with the
    suspend fallback, pauses the pair where it is; the applier refuses nothing."""
    vms = {node: [SimVm(f"{node}-vm0", vcpus=1, memory_mib=1024)] for node in NODES}
    vms["n1"] = [SimVm(f"n1-vm{i}", vcpus=1, memory_mib=1024) for i in range(3)]

    async def scenario() -> None:
        async with cluster(tmp_path, vms) as server:
            state = server.manager.state
            uuid = {vm.name: vm.uuid for view in state.views() for vm in view.vms}
            state.rules.add("pair", Gather((uuid["n1-vm0"], uuid["n1-vm1"])))
            loop = make_loop(server, AutomationLevel.MANUAL, DrainFallback.SUSPEND)
            loop.drain("n1")
            decision = await loop.cycle()
            assert decision is not None and decision.plan is not None, decision
            assert "keeps n1-vm0 and n1-vm1 together at every instant" in decision.summary
            await wait_for(lambda: loop.running is None, 60)
            (plan,) = loop.executor.journal.plans()
            assert plan.state is PlanState.SUCCEEDED, plan
            assert {r.state for r in plan.actions} == {ActionState.SUCCEEDED}
            await wait_for(lambda: placement(server).get(uuid["n1-vm2"], "n1") != "n1", 10)
            paused = {vm.name for vm in state.view("n1").vms if vm.state is VmState.PAUSED}
            assert paused == {"n1-vm0", "n1-vm1"}

    asyncio.run(scenario())
