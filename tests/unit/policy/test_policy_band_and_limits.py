"""Deciders keep the operator policy: the band, the migration budget and the minimum times.

Both deciders (the vmgrid policy and the solver path) on real ClusterStates; budgets and times
are counted on a MoveHistory, as the loop reads it from the plan journal.
"""

from __future__ import annotations

import pytest
from cluster_builder import Cluster
from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    PolicyKind,
    Trigger,
    TriggerKind,
    decide,
    find_trigger,
)
from vmgrid.agents.cluster.decide.move_limits import MoveHistory, PastMove
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy, updated
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.solver.plan import ActionKind

NOW = 1_000_000.0
UNLIMITED = {
    "migrations_per_cycle": 0,
    "migrations_per_hour": 0,
    "migrations_per_node_hour": 0,
    "min_move_interval_s": 0,
    "return_after_s": 0,
}


def config(policy: PolicyKind = PolicyKind.VMGRID, **changes: object) -> ControlConfig:
    band = updated(OperatorPolicy(), {"cpu_high": 0.75, "cpu_low": 0.4, **UNLIMITED, **changes})
    return ControlConfig(hold_s=20, policy=policy, operator_policy=band)


def decision_for(
    snapshot: ClusterSnapshot, cfg: ControlConfig, history: MoveHistory | None = None
) -> Decision:
    trigger = find_trigger(snapshot, cfg)
    assert trigger is not None
    if cfg.policy is PolicyKind.SOLVER or trigger.kind is TriggerKind.DRAIN:
        return decide(snapshot, trigger, cfg, history)
    return PolicyDecider().decide(snapshot, trigger, cfg, history)


def moves(decision: Decision) -> list[tuple[str, str, str]]:
    assert decision.plan is not None, decision.summary
    return [
        (a.subject, a.src or "", a.dst or "")
        for a in decision.plan.actions
        if a.kind is ActionKind.MIGRATE
    ]


def cpu_after(c: Cluster, moved: list[tuple[str, str, str]]) -> dict[str, float]:
    """Each node's CPU fraction once the moves are done (4-core nodes)."""
    where = {
        f"uuid-{vm}": (node, cpu) for node, vms in c.placement.items() for vm, cpu in vms.items()
    }
    for vm, _, dst in moved:
        where[vm] = (dst, where[vm][1])
    load = dict.fromkeys(c.placement, 0)
    for node, cpu in where.values():
        load[node] += cpu
    return {node: used / 4000 for node, used in load.items()}


def history(*past: tuple[str, str, str, float]) -> MoveHistory:
    """Moves given as (vm, src, dst, seconds ago)."""
    return MoveHistory(tuple(PastMove(v, s, d, NOW - ago) for v, s, d, ago in past), NOW)


def hot_cluster() -> Cluster:
    """n1 at 95 % of 4 cores (above a 75 % band), n2 at 55 %, n3 at 20 %."""
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=1200, b=1000, c=800, d=800).vms("n2", e=1200, f=1000).vms("n3", g=800)
    return c.run()


@pytest.mark.parametrize("kind", [PolicyKind.VMGRID, PolicyKind.SOLVER])
def test_relief_packs_no_node_above_the_band(kind: PolicyKind) -> None:
    c = hot_cluster()
    decision = decision_for(c.state.snapshot(), config(kind))
    assert decision.trigger.kind is TriggerKind.OVERLOAD
    moved = moves(decision)
    assert moved and all(src == "n1" for _, src, _ in moved)
    assert all(f <= 0.75 for f in cpu_after(c, moved).values()), cpu_after(c, moved)


@pytest.mark.parametrize("kind", [PolicyKind.VMGRID, PolicyKind.SOLVER])
def test_consolidation_empties_nodes_below_the_band_and_stops_at_it(kind: PolicyKind) -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=400, b=300).vms("n2", c=1000, d=1000).vms("n3", e=900, f=900).run()
    decision = decision_for(c.state.snapshot(), config(kind))
    assert decision.trigger.kind is TriggerKind.UNDERLOAD
    moved = moves(decision)
    assert {src for _, src, _ in moved} == {"n1"}  # n2 (50 %) and n3 (45 %) are in the band
    after = cpu_after(c, moved)
    assert after["n1"] == 0 and max(after.values()) <= 0.75


def test_nodes_within_the_band_are_not_consolidated() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=1700).vms("n2", c=1800).vms("n3", e=2000).run()
    assert find_trigger(c.state.snapshot(), config()) is None


def test_the_per_cycle_budget_cuts_a_relief_and_the_rest_waits() -> None:
    c = Cluster().node("n1").node("n2").node("n3").node("n4")
    c.vms("n1", a=900, b=900, c=900, d=900).run()  # 90 %: two moves bring it into the band
    decision = decision_for(c.state.snapshot(), config(migrations_per_cycle=1))
    assert len(moves(decision)) == 1


def test_the_hourly_budget_is_counted_across_cycles() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=400, b=300).vms("n2", c=1000, d=1000).vms("n3", e=900, f=900).run()
    cfg = config(migrations_per_hour=4)
    spent = history(*(("x", "n2", "n3", 600.0 * i) for i in range(1, 4)))  # 3 in the last hour
    decision = decision_for(c.state.snapshot(), cfg, spent)
    assert decision.plan is None  # emptying n1 takes 2 moves, 1 is left: n1 goes whole or not
    assert "budget of 4 migrations per hour spent" in decision.summary
    older = history(*(("x", "n2", "n3", 1800.0 + 600 * i) for i in range(1, 4)))  # 2 fell out
    assert len(moves(decision_for(c.state.snapshot(), cfg, older))) == 2


def test_the_per_node_budget_keeps_moves_off_a_busy_node() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=400, b=300).vms("n2", c=1000, d=1000).vms("n3", e=900, f=900).run()
    cfg = config(migrations_per_node_hour=2)
    busy = history(("x", "n3", "n2", 300.0), ("y", "n3", "n2", 600.0))  # n2 and n3 spent
    decision = decision_for(c.state.snapshot(), cfg, busy)
    assert decision.plan is None
    assert "has had 2 of its 2 migrations this hour" in decision.summary
    assert moves(decision_for(c.state.snapshot(), cfg, history()))  # without them, n1 goes


def test_a_vm_moved_recently_is_not_moved_again_by_rebalancing() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=400, b=300).vms("n2", c=1000, d=1000).vms("n3", e=900, f=900).run()
    cfg = config(min_move_interval_s=1800)
    recent = history(("uuid-a", "n3", "n1", 600.0))
    decision = decision_for(c.state.snapshot(), cfg, recent)
    assert decision.plan is None
    assert "a: moved 10 min ago, stays 30 min (min_move_interval_s)" in decision.summary
    later = history(("uuid-a", "n3", "n1", 1900.0))
    assert {vm for vm, _, _ in moves(decision_for(c.state.snapshot(), cfg, later))} == {
        "uuid-a",
        "uuid-b",
    }


def test_a_vm_is_not_moved_back_to_a_node_it_left_recently() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=400).vms("n2", c=1000, d=1000).vms("n3", e=1000, f=1100).run()
    cfg = config(return_after_s=1800)
    first = moves(decision_for(c.state.snapshot(), cfg))
    assert len(first) == 1
    _, _, back = first[0]  # where a would go: make it the node a left
    left = history(("uuid-a", back, "n1", 660.0))
    decision = decision_for(c.state.snapshot(), cfg, left)
    assert decision.plan is None
    assert f"a -> {back}: left it 11 min ago, may return after 30 min" in decision.summary
    long_ago = history(("uuid-a", back, "n1", 1860.0))
    assert moves(decision_for(c.state.snapshot(), cfg, long_ago)) == first


def test_overload_relief_may_move_a_recent_vm_and_says_why() -> None:
    c = hot_cluster()
    cfg = config(min_move_interval_s=1800, return_after_s=1800)
    past = history(*((f"uuid-{v}", "n3", "n1", 300.0) for v in "abcd"))
    decision = decision_for(c.state.snapshot(), cfg, past)
    assert decision.plan is not None
    reasons = [a.reason for a in decision.plan.actions if a.kind is ActionKind.MIGRATE]
    assert reasons and all("overload relief overrides the minimum time" in r for r in reasons)
    assert any("left n3 5 min ago" in r for r in reasons if "n3" in r) or all(
        "moved 5 min ago" in r for r in reasons
    )


def test_a_drain_spreads_the_node_over_several_targets_within_the_band() -> None:
    c = Cluster().node("n1").node("n2").node("n3").node("n4")
    c.vms("n1", a=300, b=300, c=300, d=300, e=300, f=300).vms("n2", g=200).run()
    c.state.set_draining("n1", True)
    decision = decision_for(c.state.snapshot(), config())
    assert decision.trigger.kind is TriggerKind.DRAIN
    moved = moves(decision)
    targets = [dst for _, _, dst in moved]
    assert len(moved) == 6 and len(set(targets)) == 3
    assert max(targets.count(t) for t in set(targets)) == 2
    assert max(cpu_after(c, moved).values()) <= 0.75


def rebalance(c: Cluster, cfg: ControlConfig, cycles: int) -> tuple[list[str], list[Decision]]:
    """Run decision cycles, doing each plan's moves at once; the moves and the decisions."""
    past: list[tuple[str, str, str, float]] = []
    decisions = []
    decider = PolicyDecider()
    for cycle in range(cycles):
        snapshot = c.state.snapshot()
        trigger = find_trigger(snapshot, cfg)
        if trigger is None:
            break
        decision = decider.decide(snapshot, trigger, cfg, history(*past))
        decisions.append(decision)
        if decision.plan is None:
            continue
        moved = moves(decision)
        after = cpu_after(c, moved)
        assert all(after[dst] <= 0.75 for _, _, dst in moved)  # never packed above the band
        for vm, src, dst in moved:
            name = vm.removeprefix("uuid-")
            c.placement[dst][name] = c.placement[src].pop(name)
            past.append((vm, src, dst, 60.0 * (cycles - cycle)))
        c.run()
    return [vm for vm, _, _, _ in past], decisions


def failed_over() -> Cluster:
    """n1 failed: its VMs restarted on n2 (95 %); n3 and n4 are up and empty."""
    c = Cluster().node("n2").node("n3").node("n4")
    return c.vms("n2", a=630, b=630, c=630, d=630, e=630, f=630).run()


def test_after_a_failover_the_loop_rebalances_within_the_budget() -> None:
    c = failed_over()
    moved, decisions = rebalance(c, config(migrations_per_cycle=1, migrations_per_hour=3), 4)
    assert len(moved) == 2 and all(len(moves(d)) == 1 for d in decisions[:2])
    assert sum(c.placement["n2"].values()) / 4000 <= 0.75


def test_after_a_failover_a_spent_hourly_budget_makes_relief_wait() -> None:
    c = failed_over()
    moved, decisions = rebalance(c, config(migrations_per_cycle=1, migrations_per_hour=1), 3)
    assert len(moved) == 1
    assert decisions[-1].plan is None
    assert "budget of 1 migrations per hour spent" in decisions[-1].summary


def test_triggers_follow_the_band_per_resource() -> None:
    c = Cluster().node("n1", memory=2 * 2**30).node("n2")
    c.vms("n1", a=100, b=100).vms("n2", c=2000).run()  # n1: 2 of 2 GiB in use
    trigger = find_trigger(c.state.snapshot(), config())
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD and trigger.nodes == ("n1",)
    assert "memory 85 %" in trigger.reason


def test_a_relief_trigger_is_refused_nothing_when_the_policy_is_unlimited() -> None:
    trigger = Trigger(TriggerKind.OVERLOAD, ("n1",), "test")
    c = hot_cluster()
    decision = PolicyDecider().decide(c.state.snapshot(), trigger, config())
    assert decision.stats["waiting"] == []


def test_a_broken_rule_frees_a_recent_vm_from_the_minimum_time_on_the_solver_path() -> None:
    from vmgrid.solver.constraints import Ban

    c = Cluster().node("n1").node("n2").node("n3")
    c.vms("n1", a=400, b=300).vms("n2", c=1000, d=1000).vms("n3", e=900, f=900).run()
    cfg = config(PolicyKind.SOLVER, min_move_interval_s=1800)
    recent = history(("uuid-a", "n3", "n1", 300.0))  # a stays: n1 cannot be emptied
    held = decision_for(c.state.snapshot(), cfg, recent)
    assert held.plan is None and "would free no node" in held.summary
    c.state.rules.add("not-on-n1", Ban(("uuid-a",), ("n1",)))
    freed = decision_for(c.state.snapshot(), cfg, recent)
    assert sorted((vm, src) for vm, src, _ in moves(freed)) == [("uuid-a", "n1"), ("uuid-b", "n1")]
    assert freed.plan is not None
    [reason] = [a.reason for a in freed.plan.actions if a.subject == "uuid-a"]
    assert "rule not-on-n1 overrides the minimum time (moved 5 min ago)" in reason


def test_relief_of_a_node_not_held_above_the_band_keeps_the_minimum_times() -> None:
    """An underload cycle in which the policy also relieves a node that is above the band but
    not for the hold time: nothing needs that move yet, so a recent VM stays."""
    c = hot_cluster()
    cfg = config(min_move_interval_s=1800)
    recent = history(*((f"uuid-{v}", "n3", "n1", 300.0) for v in "abcd"))
    underload = Trigger(TriggerKind.UNDERLOAD, ("n3",), "n3 below the band")
    decision = PolicyDecider().decide(c.state.snapshot(), underload, cfg, recent)
    assert decision.plan is None or all(
        a.subject not in {f"uuid-{v}" for v in "abcd"} for a in decision.plan.actions
    )
    assert any("min_move_interval_s" in w for w in decision.stats["waiting"])  # type: ignore[attr-defined]


def test_held_relief_does_not_send_a_vm_back_where_another_node_has_room() -> None:
    c = Cluster().node("n1").node("n2").node("n3").node("n4")
    c.vms("n1", a=1200, b=1000, c=800, d=800).vms("n2", e=200).vms("n3", f=200).vms("n4", g=200)
    c.run()
    cfg = config(return_after_s=1800)
    first = [m for m in moves(decision_for(c.state.snapshot(), cfg)) if m[1] == "n1"]
    assert len(first) == 1
    vm, _, dst = first[0]
    came_from = history((vm, dst, "n1", 600.0))  # the VM left that node 10 min ago
    again = decision_for(c.state.snapshot(), cfg, came_from)
    [(src, elsewhere)] = [(s, d) for v, s, d in moves(again) if v == vm]
    assert src == "n1" and elsewhere not in (dst, "n1")
    assert max(cpu_after(c, moves(again)).values()) <= 0.75
