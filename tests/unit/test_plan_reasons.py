"""Each action of a decided plan says why, in words and figures (decide/reasons.py), on a real
ClusterState and the real deciders."""

from __future__ import annotations

import re

from vmgrid.agents.cluster.decide.control import ControlConfig, PolicyKind, TriggerKind
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.decide.thinking import CycleRequest, think
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)
from vmgrid.solver.constraints import Spread
from vmgrid.solver.plan import ActionKind

GIB = 2**30
SECOND = 1_000_000_000
CONFIG = ControlConfig(
    hold_s=20,
    operator_policy=OperatorPolicy(cpu_high=0.85, memory_high=0.85, cpu_low=0.4, memory_low=0.4),
)


class Cluster:
    """A ClusterState with a hand-driven clock; nodes have 4 cores and 8 GiB."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * SECOND
        self.state = ClusterState(EventBus("c1"), clock_ns=lambda: self.now_ns)
        self.sequence = 0

    def node(self, node_id: str) -> Cluster:
        identity = NodeIdentity(node_id, node_id, f"test:///{node_id}", simulated=True)
        self.state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
        return self

    def report(self, node_id: str, vms: dict[str, int], seconds: int = 30) -> Cluster:
        for _ in range(seconds // 5 + 1):
            self.sequence += 1
            usage = [
                VmUsage(f"uuid-{n}", n, VmState.RUNNING, 2, cpu, GIB, GIB) for n, cpu in vms.items()
            ]
            host = HostUsage(sum(vms.values()), len(vms) * GIB, 8 * GIB)
            self.state.apply_report(
                node_id, NodeReport(self.now_ns, self.sequence, host, tuple(usage))
            )
            self.now_ns += 5 * SECOND
        return self


def overloaded() -> Cluster:
    c = Cluster().node("n1").node("n2").node("n3")
    c.report("n1", {"a": 2600, "b": 1900})
    c.report("n2", {"c": 2000})
    c.report("n3", {"d": 1500})
    return c


def test_a_relief_move_names_the_node_its_figures_the_threshold_and_the_gain() -> None:
    c = overloaded()
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), CONFIG)
    assert thought.decision is not None and thought.decision.plan is not None
    (move,) = [a for a in thought.decision.plan.actions if a.kind is ActionKind.MIGRATE]
    moved = {"uuid-a": "a", "uuid-b": "b"}[move.subject]
    cores = {"a": "2.6", "b": "1.9"}[moved]
    # n1 uses 4500 of 4000 millicores: 112 %
    assert move.reason.startswith("n1 cpu 112% > 85% for ")
    assert f"move {moved} ({cores} cores, 1024 MiB) to {move.dst} (cpu " in move.reason
    before, after = map(int, re.search(r"\(cpu (\d+)% -> (\d+)%", move.reason).groups())  # type: ignore[union-attr]
    assert after > before
    assert "[vmgrid policy: relieve n1" in move.reason  # the decider's own words stay


def test_the_held_time_is_measured_from_the_history() -> None:
    c = overloaded()
    c.report("n1", {"a": 2600, "b": 1900}, seconds=30)
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), CONFIG)
    assert thought.decision is not None and thought.decision.plan is not None
    seconds = int(re.search(r"for (\d+) s", thought.decision.plan.actions[0].reason).group(1))  # type: ignore[union-attr]
    assert seconds >= 60


def test_the_solver_path_explains_too_and_names_the_rules_involved() -> None:
    c = overloaded()
    c.state.rules.add("spread-ab", Spread(("uuid-a", "uuid-b")))
    config = ControlConfig(
        hold_s=20,
        operator_policy=OperatorPolicy(
            cpu_high=0.85, memory_high=0.85, cpu_low=0.4, memory_low=0.4
        ),
        policy=PolicyKind.SOLVER,
    )
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), config)
    assert thought.decision is not None and thought.decision.plan is not None
    assert thought.decision.trigger.kind is TriggerKind.OVERLOAD
    moves = [a for a in thought.decision.plan.actions if a.kind is ActionKind.MIGRATE]
    assert moves
    for move in moves:
        assert re.search(r"\(cpu \d+% -> \d+%, memory \d+% -> \d+%\)", move.reason)
        if move.subject in ("uuid-a", "uuid-b"):
            assert "rules involved: spread-ab" in move.reason


def test_a_drain_says_the_node_is_in_maintenance() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 500})
    c.report("n2", {"c": 500})
    c.state.set_draining("n1", True)
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), CONFIG)
    assert thought.decision is not None and thought.decision.plan is not None
    (move,) = thought.decision.plan.actions
    assert move.reason.startswith("n1 in maintenance (cpu 12% memory 12%")
    assert "move a (0.5 cores, 1024 MiB) to n2 (cpu 12% -> 25%, memory 12% -> 25%)" in move.reason


def test_destination_figures_add_up_over_the_plans_actions() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 400, "b": 400})
    c.report("n2", {"c": 400})
    c.state.set_draining("n1", True)
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), CONFIG)
    assert thought.decision is not None and thought.decision.plan is not None
    ordered = sorted(thought.decision.plan.actions, key=lambda a: (a.start_s, a.id))
    first, second = (re.search(r"cpu (\d+)% -> (\d+)%", a.reason).groups() for a in ordered)  # type: ignore[union-attr]
    assert first == ("10", "20") and second == ("20", "30")
