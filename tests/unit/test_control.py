"""Decision triggers and decisions, on a real ClusterState fed with reports."""

from __future__ import annotations

from dataclasses import replace

import pytest
from vmgrid.agents.cluster.decide.control import (
    AutomationLevel,
    ControlConfig,
    Decision,
    TriggerKind,
    decide,
    find_trigger,
    needs_approval,
)
from vmgrid.agents.cluster.decide.maintenance import DrainFallback
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.decide.thinking import CycleRequest, think
from vmgrid.agents.cluster.rules.check import moves_keeping_rules
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.solver_view import to_model
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
from vmgrid.solver.constraints import Gather, Spread
from vmgrid.solver.plan import ActionKind

GIB = 2**30
SECOND = 1_000_000_000


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
        """Report `vms` (name -> CPU millicores, 1 GiB each) every 5 s for `seconds`."""
        for _ in range(seconds // 5 + 1):
            self.sequence += 1
            usage = [
                VmUsage(f"uuid-{n}", n, VmState.RUNNING, 1, cpu, GIB, GIB) for n, cpu in vms.items()
            ]
            host = HostUsage(sum(vms.values()), len(vms) * GIB, 8 * GIB)
            self.state.apply_report(
                node_id, NodeReport(self.now_ns, self.sequence, host, tuple(usage))
            )
            self.now_ns += 5 * SECOND
        return self


def band(**values: float) -> OperatorPolicy:
    """A band as the tests before the operator policy had it; budgets and times off."""
    unlimited = {"migrations_per_cycle": 0, "migrations_per_hour": 0}
    limits = {"migrations_per_node_hour": 0, "min_move_interval_s": 0, "return_after_s": 0}
    return OperatorPolicy(**values, **unlimited, **limits)  # type: ignore[arg-type]


CONFIG = ControlConfig(
    hold_s=20, operator_policy=band(cpu_high=0.85, memory_high=0.85, cpu_low=0.4, memory_low=0.4)
)


def test_node_above_threshold_for_the_hold_time_is_an_overload() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 2000, "b": 1900})
    c.report("n2", {"c": 2500})
    trigger = find_trigger(c.state.snapshot(), CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD
    assert trigger.nodes == ("n1",)


def test_a_short_spike_is_not_an_overload() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 2000}, seconds=30)
    c.report("n1", {"a": 3900}, seconds=5)
    c.report("n2", {"c": 2500}, seconds=35)
    assert find_trigger(c.state.snapshot(), CONFIG) is None


def test_quiet_nodes_held_below_the_low_threshold_ask_for_consolidation() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 200})
    c.report("n2", {"b": 300})
    trigger = find_trigger(c.state.snapshot(), CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.UNDERLOAD


def test_draining_node_with_vms_comes_first() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 3900})
    c.report("n2", {"b": 300})
    c.state.set_draining("n2", True)
    trigger = find_trigger(c.state.snapshot(), CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.DRAIN and trigger.nodes == ("n2",)


def test_overload_decision_moves_a_vm_off_the_hot_node() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 2000, "b": 1900})
    c.report("n2", {"c": 500})
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None
    decision = decide(snapshot, trigger, CONFIG)
    assert decision.plan is not None
    moves = [a for a in decision.plan.actions if a.kind is ActionKind.MIGRATE]
    assert len(moves) == 1 and moves[0].src == "n1" and moves[0].dst == "n2"


def test_drain_empties_the_node_in_maintenance() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 500, "b": 500})
    c.report("n2", {"c": 500})
    c.state.set_draining("n1", True)
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None
    decision = decide(snapshot, trigger, CONFIG)
    assert decision.plan is not None
    assert {(a.subject, a.dst) for a in decision.plan.actions} == {
        ("uuid-a", "n2"),
        ("uuid-b", "n2"),
    }


def test_consolidation_below_the_minimum_gain_is_dropped() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n1", {"a": 1000, "b": 1000}, seconds=30)
    c.report("n2", {"c": 1000, "d": 1000, "e": 1000}, seconds=30)
    c.state.set_draining("n1", False)
    snapshot = c.state.snapshot()
    quiet = ControlConfig(
        hold_s=20,
        operator_policy=band(cpu_high=0.95, memory_high=0.95, cpu_low=0.9, memory_low=0.9),
    )
    trigger = find_trigger(snapshot, quiet)
    assert trigger is not None and trigger.kind is TriggerKind.UNDERLOAD
    decision = decide(snapshot, trigger, quiet)  # 5 cores of demand do not fit one 4-core node
    assert decision.plan is None and "would free no node" in decision.summary


def test_vm_demand_is_the_peak_of_the_recent_window() -> None:
    c = Cluster().node("n1")
    c.report("n1", {"a": 3000}, seconds=10)
    c.report("n1", {"a": 100}, seconds=10)
    model = to_model(c.state.snapshot())
    assert model.vms["uuid-a"].demand["cpu"] == 3000


@pytest.mark.parametrize(
    ("level", "kinds", "expected"),
    [
        (AutomationLevel.AUTOMATIC, {ActionKind.MIGRATE}, False),
        (AutomationLevel.MANUAL, {ActionKind.BOOT_VM}, True),
        (AutomationLevel.PARTIAL, {ActionKind.BOOT_VM}, False),
        (AutomationLevel.PARTIAL, {ActionKind.BOOT_VM, ActionKind.MIGRATE}, True),
    ],
)
def test_automation_levels(level: AutomationLevel, kinds: set[ActionKind], expected: bool) -> None:
    from vmgrid.agents.cluster.decide.control import Trigger
    from vmgrid.solver.model import Model
    from vmgrid.solver.plan import Action, Plan

    actions = tuple(Action(i, k, "v", "n1", "n2", 0, 1, "r") for i, k in enumerate(kinds))
    empty = Model({}, {})
    decision = Decision(Trigger(TriggerKind.OVERLOAD, (), ""), Plan(empty, empty, actions), "")
    assert needs_approval(decision, level) is expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_gain_nodes", 0, "min_gain_nodes: 0 must be >= 1"),
        ("hold_s", -1, "hold_s: -1 must be >= 0"),
    ],
)
def test_bad_control_settings_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ControlConfig(**{field: value})  # type: ignore[arg-type]


def _gathered_pair_draining() -> Cluster:
    """n1 in maintenance runs a and b (gathered by rule r1) and c; n2 and n3 have room."""
    c = Cluster().node("n1").node("n2").node("n3")
    c.report("n1", {"a": 500, "b": 500, "c": 500})
    c.report("n2", {"d": 500})
    c.report("n3", {"e": 500})
    c.state.rules.add("r1", Gather(("uuid-a", "uuid-b")))
    c.state.set_draining("n1", True)
    return c


def _drain(c: Cluster, config: ControlConfig = CONFIG) -> Decision:
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, config)
    assert trigger is not None and trigger.kind is TriggerKind.DRAIN
    return decide(snapshot, trigger, config)


def test_drain_moves_the_other_vms_and_names_the_gathered_pair_it_cannot_move() -> None:
    decision = _drain(_gathered_pair_draining())
    assert decision.plan is not None
    assert [(a.kind, a.subject, a.src) for a in decision.plan.actions] == [
        (ActionKind.MIGRATE, "uuid-c", "n1")
    ]
    assert set(decision.held) == {"uuid-a", "uuid-b"}
    why = "rule r1 gather(uuid-a,uuid-b) keeps a and b together at every instant"
    assert why in decision.held["uuid-a"]
    assert f"2 VM(s) stay on n1: {why}" in decision.summary
    assert "live migration moves one VM at a time" in decision.summary


def test_every_migration_of_a_drain_passes_the_appliers_rule_check_in_order() -> None:
    c = _gathered_pair_draining()
    c.state.rules.add("r2", Spread(("uuid-c", "uuid-d")))
    decision = _drain(c)
    assert decision.plan is not None
    moves = [(a.subject, a.dst or "") for a in decision.plan.actions]
    model = to_model(c.state.snapshot())
    kept, refused = moves_keeping_rules(c.state.rules.kept(), model, moves)
    assert moves and not refused and kept == moves
    assert moves == [("uuid-c", "n3")]  # the spread keeps c away from d on n2


def test_a_drain_left_with_held_vms_only_plans_nothing_and_says_why() -> None:
    c = _gathered_pair_draining()
    c.report("n1", {"a": 500, "b": 500})  # c has left
    decision = _drain(c)
    assert decision.plan is None
    assert decision.summary.startswith("drain: no VM can move")
    assert "2 VM(s) stay on n1: rule r1 gather" in decision.summary


@pytest.mark.parametrize(
    ("fallback", "kind"),
    [(DrainFallback.SUSPEND, ActionKind.SUSPEND), (DrainFallback.SHUTDOWN, ActionKind.SHUTDOWN_VM)],
)
def test_the_drain_fallback_applies_to_held_vms_beside_the_migrations(
    fallback: DrainFallback, kind: ActionKind
) -> None:
    c = _gathered_pair_draining()
    config = replace(CONFIG, drain_fallback=fallback)
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), config)
    decision = thought.decision
    assert decision is not None and decision.plan is not None
    actions = {(a.kind, a.subject) for a in decision.plan.actions}
    assert actions == {(ActionKind.MIGRATE, "uuid-c"), (kind, "uuid-a"), (kind, "uuid-b")}
    assert len({a.id for a in decision.plan.actions}) == 3
    held = [a for a in decision.plan.actions if a.kind is kind]
    assert all("rule r1 gather" in a.reason for a in held)
    assert f"drain fallback: {fallback.value} 2 VM(s) held by a rule" in decision.summary


def test_held_vms_get_the_fallback_once_nothing_else_can_move() -> None:
    c = _gathered_pair_draining()
    c.report("n1", {"a": 500, "b": 500})
    config = replace(CONFIG, drain_fallback=DrainFallback.SHUTDOWN)
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), config)
    assert thought.decision is not None and thought.decision.plan is not None
    assert {a.subject for a in thought.decision.plan.actions} == {"uuid-a", "uuid-b"}
    assert "stay on n1: rule r1 gather" in thought.decision.summary


def test_a_broken_gather_holds_nothing() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.report("n1", {"a": 500, "c": 500})
    c.report("n2", {"b": 500})
    c.report("n3", {"e": 500})
    c.state.rules.add("r1", Gather(("uuid-a", "uuid-b")))
    c.state.set_draining("n1", True)
    decision = _drain(c)
    assert decision.plan is not None and not decision.held
    assert {a.subject for a in decision.plan.actions} == {"uuid-a", "uuid-c"}


def test_consolidation_goes_on_while_a_drain_waits_on_held_vms_only() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.report("n1", {"a": 500, "b": 500})
    c.report("n2", {"c": 300})
    c.report("n3", {"e": 300})
    c.state.rules.add("r1", Gather(("uuid-a", "uuid-b")))
    c.state.set_draining("n1", True)
    config = replace(CONFIG, automation=AutomationLevel.AUTOMATIC)
    thought = think(c.state.snapshot(), CycleRequest(), PolicyDecider(), config)
    decision = thought.decision
    assert decision is not None and decision.plan is not None, decision
    assert decision.trigger.kind is TriggerKind.UNDERLOAD and "n1" not in decision.trigger.nodes
    assert {a.subject for a in decision.plan.actions} in ({"uuid-c"}, {"uuid-e"})
    assert "meanwhile drain: no VM can move" in decision.summary
    assert "stay on n1: rule r1 gather" in decision.summary
    cooling = think(c.state.snapshot(), CycleRequest(cooling_down=True), PolicyDecider(), config)
    assert cooling.decision is not None and cooling.decision.plan is None
