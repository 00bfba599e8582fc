"""Undrain of a node the manager powered off: power it on first, then bring the VMs back."""

from __future__ import annotations

import asyncio

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.executor import (
    READY,
    Check,
    Observed,
    Outcome,
    PlanExecutor,
    ProgressCallback,
)
from vmgrid.agents.cluster.act.journal import ActionState, Journal
from vmgrid.agents.cluster.decide.control import ControlConfig
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.decide.maintenance import DRAIN_ORIGIN
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.decide.thinking import CycleRequest, think
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.solver.plan import Action, ActionKind


def cluster_with_n1_off() -> ClusterState:
    state = ClusterState(EventBus("c1"))
    for node in ("n1", "n2"):
        hello = m.NodeHello(m.NodeIdentity(node, node, ""), m.NodeCapacity(8000, 2**34, 10**10))
        state.node_connected(hello, 1)
    vm = m.VmUsage("a", "a", m.VmState.RUNNING, 1, 100, 2**30, 2**30)
    state.apply_report("n1", m.NodeReport(1, 1, m.HostUsage(0, 0, 2**34)))
    state.apply_report("n2", m.NodeReport(1, 1, m.HostUsage(100, 2**30, 2**34), (vm,)))
    state.mark_powered_off("n1")
    return state


def request() -> CycleRequest:
    return CycleRequest(returning="n1", drained=(("a", ActionKind.MIGRATE),))


def test_undrain_powers_the_node_on_before_the_vms_go_back() -> None:
    snapshot = cluster_with_n1_off().snapshot()
    thought = think(snapshot, request(), PolicyDecider(), ControlConfig(wake_powered_off=True))
    assert thought.run_now and thought.decision is not None and thought.decision.plan is not None
    boot, back = thought.decision.plan.actions
    assert (boot.kind, boot.subject, boot.dst) == (ActionKind.BOOT_NODE, "n1", "n1")
    assert (back.kind, back.subject, back.src, back.dst) == (ActionKind.MIGRATE, "a", "n2", "n1")
    assert boot.id in back.depends_on
    assert "power it on" in thought.decision.summary


def test_undrain_without_a_power_on_command_says_so_and_moves_nothing() -> None:
    snapshot = cluster_with_n1_off().snapshot()
    # Without a power-on command the runtime runs the loop with wake_powered_off off.
    config = ControlConfig(wake_powered_off=False)
    thought = think(snapshot, request(), PolicyDecider(), config)
    assert thought.decision is not None and thought.decision.plan is None
    assert not thought.run_now
    assert "no power_on_command" in thought.decision.summary


def test_undrain_of_a_node_powered_on_by_hand_brings_the_vms_back() -> None:
    async def scenario() -> None:
        manager = ClusterManager(ClusterConfig(cluster_id="c1"))
        state = manager.state
        for node in ("n1", "n2"):
            hello = m.NodeHello(m.NodeIdentity(node, node, ""), m.NodeCapacity(8000, 2**34, 10**10))
            state.node_connected(hello, 1)
        vm = m.VmUsage("a", "a", m.VmState.RUNNING, 1, 100, 2**30, 2**30)
        state.apply_report("n2", m.NodeReport(1, 1, m.HostUsage(100, 2**30, 2**34), (vm,)))
        journal = Journal(":memory:")
        drain = Action(0, ActionKind.MIGRATE, "a", "n1", "n2", 0, 1, "drain")
        journal.record_plan("p-drain", [drain], origin=DRAIN_ORIGIN)
        journal.finish_action("p-drain", 0, ActionState.SUCCEEDED, "moved")
        no_power_on = ControlConfig(wake_powered_off=False)  # as the runtime runs it
        loop = ControlLoop(manager, PlanExecutor(Idle(), journal), no_power_on)
        state.set_draining("n1", True)
        await loop.cycle()  # the loop sees n1 in maintenance (nothing runs there)
        state.mark_powered_off("n1")
        loop.undrain("n1")
        decision = await loop.cycle()
        assert decision is not None and decision.plan is None
        assert "power it on by hand" in decision.summary
        assert await loop.cycle() is None  # parked, not retried while off
        hello = m.NodeHello(m.NodeIdentity("n1", "n1", ""), m.NodeCapacity(8000, 2**34, 10**10))
        state.node_connected(hello, 2)  # powered on by hand
        state.apply_report("n1", m.NodeReport(2, 1, m.HostUsage(0, 0, 2**34)))
        decision = await loop.cycle()
        assert decision is not None and decision.plan is not None
        moves = [(a.kind, a.subject, a.src, a.dst) for a in decision.plan.actions]
        assert moves == [(ActionKind.MIGRATE, "a", "n2", "n1")]

    asyncio.run(scenario())


class Idle:
    """A driver whose actions wait for ever (the test only looks at decisions)."""

    def check(self, action: Action) -> Check:
        return READY

    async def execute(self, action: Action, cid: str, progress: ProgressCallback) -> Outcome:
        await asyncio.Event().wait()
        return Outcome(True, "never")

    async def abort(self, action: Action, cid: str) -> None:
        return None

    def observe(self, action: Action) -> Observed:
        return Observed.NOT_DONE
