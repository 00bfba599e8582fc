"""Undrain of a node the manager powered off: power it on first, then bring the VMs back."""

from __future__ import annotations

from vmgrid.agents import model as m
from vmgrid.agents.cluster.control import ControlConfig
from vmgrid.agents.cluster.events import EventBus
from vmgrid.agents.cluster.policy_decider import PolicyDecider
from vmgrid.agents.cluster.state import ClusterState
from vmgrid.agents.cluster.thinking import CycleRequest, think
from vmgrid.solver.plan import ActionKind


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
    thought = think(snapshot, request(), PolicyDecider(), ControlConfig())
    assert thought.decision is not None and thought.decision.plan is None
    assert not thought.run_now
    assert "no power_on_command" in thought.decision.summary
