"""`explain`: why a VM is where it is, on a real ClusterState and a real (in-memory) journal."""

from __future__ import annotations

import time

import pytest
from vmgrid.agents.cluster.act.journal import ActionState, Journal
from vmgrid.agents.cluster.decide.control import ControlConfig, Decision
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.decide.reasons import explained
from vmgrid.agents.cluster.operator import dry_run
from vmgrid.agents.cluster.operator.explain import PLACING, explain, resolve_vm
from vmgrid.agents.cluster.rules.check import moves_keeping_rules
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, NotFound
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)
from vmgrid.solver.constraints import Ban, Gather, Spread
from vmgrid.solver.plan import Action, ActionKind

GIB = 2**30
SECOND = 1_000_000_000
CONFIG = ControlConfig(
    hold_s=20,
    operator_policy=OperatorPolicy(cpu_high=0.85, memory_high=0.85, cpu_low=0.4, memory_low=0.4),
)


def cluster(layout: dict[str, dict[str, int]]) -> ClusterState:
    """Nodes of 4 cores and 8 GiB, reporting for 30 s; VMs name -> millicores, 1 GiB each."""
    now = [1_000 * SECOND]
    state = ClusterState(EventBus("c1"), clock_ns=lambda: now[0])
    for node in layout:
        identity = NodeIdentity(node, node, f"test:///{node}", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
    for seq in range(1, 8):
        for node, vms in layout.items():
            usage = tuple(
                VmUsage(f"uuid-{n}", n, VmState.RUNNING, 1, c, GIB, GIB) for n, c in vms.items()
            )
            host = HostUsage(sum(vms.values()), len(vms) * GIB, 8 * GIB)
            state.apply_report(node, NodeReport(now[0], seq, host, usage))
        now[0] += 5 * SECOND
    return state


def test_a_vm_is_found_by_uuid_or_name_and_unknown_ones_are_named() -> None:
    snapshot = cluster({"n1": {"web": 500}, "n2": {}}).snapshot()
    assert resolve_vm(snapshot, "web")[0] == "n1"
    assert resolve_vm(snapshot, "uuid-web")[0] == "n1"
    with pytest.raises(NotFound, match="'nope'"):
        resolve_vm(snapshot, "nope")
    with pytest.raises(InvalidArgument, match="no VM given"):
        resolve_vm(snapshot, "")


def test_an_ambiguous_name_asks_for_the_uuid() -> None:
    state = cluster({"n1": {"web": 500}, "n2": {}})
    twin = VmUsage("uuid-twin", "web", VmState.RUNNING, 1, 100, GIB, GIB)
    state.apply_report("n2", NodeReport(2_000 * SECOND, 99, HostUsage(100, GIB, 8 * GIB), (twin,)))
    with pytest.raises(
        InvalidArgument, match="ambiguous.*uuid-web.*uuid-twin|ambiguous.*uuid-twin.*uuid-web"
    ):
        resolve_vm(state.snapshot(), "web")


def test_the_last_placing_action_in_the_journal_explains_how_it_got_there() -> None:
    state = cluster({"n1": {"web": 500}, "n2": {"db": 500}})
    journal = Journal(":memory:")
    older = Action(0, ActionKind.BOOT_VM, "uuid-web", None, "n2", 0, 1, "start of web")
    journal.record_plan("p-old", [older], origin="submission")
    journal.finish_action("p-old", 0, ActionState.SUCCEEDED)
    time.sleep(0.01)
    reason = "n2 cpu 97% > 85% for 25 s: move web (0.5 cores, 1024 MiB) to n1 (cpu 0% -> 12%)"
    moved = Action(0, ActionKind.MIGRATE, "uuid-web", "n2", "n1", 0, 1, reason)
    journal.record_plan("p-new", [moved], origin="loop")
    journal.finish_action("p-new", 0, ActionState.SUCCEEDED)
    other = Action(0, ActionKind.SUSPEND, "uuid-web", "n1", None, 0, 1, "operator")
    journal.record_plan("p-pause", [other], origin="operator")  # does not place it
    last = journal.last_vm_action("uuid-web", PLACING)
    result = explain(state.snapshot(), "web", last, CONFIG)
    assert result.node == "n1" and result.vm_uuid == "uuid-web"
    assert result.last_action is not None and result.last_action.plan_id == "p-new"
    assert result.last_action.origin == "loop"
    assert result.last_action.state is ActionState.SUCCEEDED
    assert "Last placed by plan p-new (loop, migrate n2 -> n1, succeeded) at " in result.text
    assert reason in result.text


def test_without_a_journal_entry_it_says_the_vm_was_found_there() -> None:
    state = cluster({"n1": {"web": 500}, "n2": {}})
    result = explain(state.snapshot(), "web", None, CONFIG)
    assert result.last_action is None
    assert "no plan that placed it: it was on n1 when the manager first saw it" in result.text


def test_rules_naming_the_vm_are_listed_with_whether_they_hold() -> None:
    state = cluster({"n1": {"web": 500, "web2": 500}, "n2": {"db": 500}})
    state.rules.add("apart", Spread(("uuid-web", "uuid-web2")))
    state.rules.add("not-n2", Ban(("uuid-web",), ("n2",)))
    state.rules.add("db-only", Ban(("uuid-db",), ("n1",)))
    state.report_impossible("not-n2", "no node with room keeps it")
    snapshot = state.snapshot()
    result = explain(
        snapshot, "web", None, CONFIG, rules=state.rules.rules(), impossible=state.rules.impossible
    )
    states = {s.rule.rule_id: s.state for s in result.rules}
    assert states == {"apart": "violated", "not-n2": "impossible"}
    assert "Rules that name it: apart spread" in result.text


def test_next_gives_the_thresholds_and_the_headroom_left() -> None:
    state = cluster({"n1": {"web": 2000}, "n2": {"db": 2000}})
    result = explain(state.snapshot(), "web", None, CONFIG)
    # n1: cpu 50 %, memory 12 %: 35 points below the 85 % overload threshold
    assert result.next.startswith("n1 is at cpu 50%, memory 12%")
    assert "above the band (cpu 85% or memory 85%) held for 20 s (35% of headroom left)" in (
        result.next
    )
    assert "below cpu 40% and memory 40%" in result.next
    assert "it is below now" not in result.next


def test_next_of_a_vm_a_rule_keeps_on_a_draining_node_names_the_rule_and_the_fallback() -> None:
    state = cluster({"n1": {"web": 500, "db": 500, "cache": 500}, "n2": {}})
    state.rules.add("pair", Gather(("uuid-web", "uuid-db")))
    state.set_draining("n1", True)
    result = explain(state.snapshot(), "web", None, CONFIG)
    assert result.next == (
        "n1 is in maintenance, but it stays: rule pair gather(uuid-web,uuid-db) keeps web and "
        "db together at every instant: live migration moves one VM at a time; the drain "
        "fallback (none) applies to it"
    )
    other = explain(state.snapshot(), "cache", None, CONFIG)
    assert other.next.startswith("n1 is in maintenance: the drain moves it off")


def test_next_names_a_trigger_holding_now_on_its_node() -> None:
    state = cluster({"n1": {"web": 3900}, "n2": {"db": 500}})
    result = explain(state.snapshot(), "web", None, CONFIG)
    assert result.next.startswith(
        "the loop's overload trigger holds now (n1 above the band (CPU 85 % / memory 85 %) for 20 s)"
    )


def test_next_names_a_plan_waiting_for_approval_that_moves_it() -> None:
    state = cluster({"n1": {"web": 500}, "n2": {}})
    move = Action(0, ActionKind.MIGRATE, "uuid-web", "n1", "n2", 0, 1, "consolidate")
    result = explain(state.snapshot(), "web", None, CONFIG, pending=[("rec-1", [move])])
    assert result.next == "plan rec-1 waits for approval and would move it to n2: consolidate"


def test_next_runs_the_decision_dry_when_a_trigger_holds_on_its_node() -> None:
    state = cluster({"n1": {"web": 2600, "api": 1900}, "n2": {"db": 500}, "n3": {"x": 500}})
    snapshot = state.snapshot()
    decision = explained(
        snapshot, dry_run.propose(snapshot, CONFIG, policy=PolicyDecider()), CONFIG
    )
    assert decision.plan is not None
    moved = {a.subject for a in decision.plan.actions}

    def preview() -> Decision:
        return decision

    for name in ("web", "api"):
        result = explain(snapshot, name, None, CONFIG, preview=preview)
        assert result.next.startswith("the loop's overload trigger holds now (n1 above the band")
        if f"uuid-{name}" in moved:
            assert "decided now, it would migrate it: n1 cpu 112% > 85% for " in result.next
        else:
            others = len(decision.plan.actions)
            assert f"decided now, it would move {others} other VM(s), not this one" in result.next
    assert moved & {"uuid-web", "uuid-api"}  # the relief takes one of n1's VMs


def test_an_operators_balance_plan_keeps_the_rules_holding_now() -> None:
    state = cluster({"n1": {"a": 1500, "b": 1500, "c": 500}, "n2": {"d": 100}, "n3": {}})
    state.rules.add("pair", Gather(("uuid-a", "uuid-b")))
    state.rules.add("apart", Spread(("uuid-c", "uuid-d")))
    decision = dry_run.propose(state.snapshot(), CONFIG, "balance")
    assert decision.plan is not None, decision.summary
    moves = [(a.subject, a.dst or "") for a in decision.plan.actions]
    snapshot = state.snapshot()
    kept, refused = moves_keeping_rules(snapshot.rules, to_model(snapshot), moves)
    assert moves and kept == moves and not refused


def test_the_operators_single_move_of_a_gathered_vm_finds_no_node() -> None:
    state = cluster({"n1": {"a": 500, "b": 500}, "n2": {}})
    state.rules.add("pair", Gather(("uuid-a", "uuid-b")))
    with pytest.raises(FailedPrecondition, match="no node can take VM uuid-a away from n1"):
        dry_run.placement_for(state.snapshot(), "uuid-a", "n1", 2.0)
