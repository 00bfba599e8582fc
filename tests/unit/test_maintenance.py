"""Maintenance mode: drain fallback, drain history read back from the journal, power saving."""

from __future__ import annotations

from vmgrid.agents.cluster.act.driver import locate_vm
from vmgrid.agents.cluster.act.journal import ActionState, Journal, PlanState
from vmgrid.agents.cluster.decide.control import ControlConfig, TriggerKind, decide, find_trigger
from vmgrid.agents.cluster.decide.maintenance import (
    DrainFallback,
    drained_from,
    fallback_actions,
    keeping_rules,
    return_actions,
    unsettled,
)
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
from vmgrid.solver.constraints import Gather, Spread
from vmgrid.solver.plan import Action, ActionKind

GIB = 2**30
SECOND = 1_000_000_000


def cluster(placement: dict[str, dict[str, VmState]], cpu: int = 100) -> ClusterState:
    """Nodes of 4 cores and 8 GiB reporting their VMs (1 GiB each) for 30 s."""
    now = [1_000 * SECOND]
    state = ClusterState(EventBus("c1"), clock_ns=lambda: now[0])
    for node in placement:
        identity = NodeIdentity(node, node, "tcp://x", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
    for seq in range(1, 8):
        for node, vms in placement.items():
            usage = tuple(
                VmUsage(uuid, uuid, st, 1, cpu, GIB, GIB) for uuid, st in sorted(vms.items())
            )
            host = HostUsage(cpu * len(vms), len(vms) * GIB, 8 * GIB)
            state.apply_report(node, NodeReport(now[0], seq, host, usage))
        now[0] += 5 * SECOND
    return state


RUN = VmState.RUNNING
CONFIG = ControlConfig()


def migrate(aid: int, vm: str, src: str, dst: str) -> Action:
    return Action(aid, ActionKind.MIGRATE, vm, src, dst, 0, 1, "test")


def test_fallback_suspends_or_shuts_down_only_running_vms_of_the_drained_node() -> None:
    snap = cluster({"n1": {"a": RUN, "b": VmState.PAUSED}, "n2": {"c": RUN}}).snapshot()
    suspend = fallback_actions(snap, ("n1",), DrainFallback.SUSPEND)
    assert [(a.kind, a.subject, a.src) for a in suspend] == [(ActionKind.SUSPEND, "a", "n1")]
    shutdown = fallback_actions(snap, ("n1",), DrainFallback.SHUTDOWN)
    assert [a.kind for a in shutdown] == [ActionKind.SHUTDOWN_VM]
    assert fallback_actions(snap, ("n1",), DrainFallback.NONE) == ()
    assert fallback_actions(snap, ("n1",), DrainFallback.SUSPEND, only={"zz"}) == ()


def test_drain_history_comes_from_succeeded_drain_actions_until_an_undrain() -> None:
    journal = Journal(":memory:")
    journal.record_plan(
        "p1", [migrate(0, "a", "n1", "n2"), migrate(1, "b", "n1", "n3")], origin="drain"
    )
    journal.finish_action("p1", 0, ActionState.SUCCEEDED)
    journal.finish_action("p1", 1, ActionState.FAILED)
    journal.set_plan_state("p1", PlanState.FAILED)
    journal.record_plan("p2", [migrate(0, "c", "n1", "n2")], origin="overload")
    journal.finish_action("p2", 0, ActionState.SUCCEEDED)
    assert drained_from(journal, "n1") == {"a": ActionKind.MIGRATE}
    journal.record_plan("p3", [migrate(0, "a", "n2", "n1")], origin="undrain")
    assert drained_from(journal, "n1") == {}


def test_return_plan_migrates_resumes_and_boots_what_the_drain_moved() -> None:
    snap = cluster(
        {
            "n1": {"s": VmState.PAUSED, "o": VmState.SHUT_OFF},
            "n2": {"a": RUN, "gone-elsewhere": RUN},
        }
    ).snapshot()
    drained = {
        "a": ActionKind.MIGRATE,
        "s": ActionKind.SUSPEND,
        "o": ActionKind.SHUTDOWN_VM,
        "deleted": ActionKind.MIGRATE,
    }
    actions = return_actions(snap, "n1", drained)
    assert [(a.kind, a.subject, a.src, a.dst) for a in actions] == [
        (ActionKind.MIGRATE, "a", "n2", "n1"),
        (ActionKind.RESUME, "s", "n1", "n1"),
        (ActionKind.BOOT_VM, "o", None, "n1"),
    ]


def test_drain_trigger_ignores_a_node_whose_vms_are_already_suspended() -> None:
    state = cluster({"n1": {"a": VmState.PAUSED}, "n2": {"c": RUN}})
    state.set_draining("n1", True)
    trigger = find_trigger(state.snapshot(), ControlConfig(hold_s=1000))
    assert trigger is None


def test_power_saving_powers_off_the_node_a_consolidation_frees() -> None:
    state = cluster({"n1": {"a": RUN}, "n2": {"b": RUN}, "n3": {"c": RUN}})
    config = ControlConfig(hold_s=20, power_saving=True)
    trigger = find_trigger(state.snapshot(), config)
    assert trigger is not None and trigger.kind is TriggerKind.UNDERLOAD
    decision = decide(state.snapshot(), trigger, config)
    assert decision.plan is not None, decision.summary
    moved_from = {a.src for a in decision.plan.of_kind(ActionKind.MIGRATE)}
    offs = decision.plan.of_kind(ActionKind.SHUTDOWN_NODE)
    assert moved_from and {a.subject for a in offs} == moved_from
    for off in offs:
        leaving = {a.id for a in decision.plan.actions if a.src == off.subject and a is not off}
        assert leaving <= set(off.depends_on)
    without = decide(state.snapshot(), trigger, ControlConfig(hold_s=20))
    assert without.plan is not None and not without.plan.of_kind(ActionKind.SHUTDOWN_NODE)


def test_undrain_migrates_back_from_where_the_vm_runs_not_its_stale_definition() -> None:
    # After a live migration libvirt keeps the shut-off definition on the source node.
    state = cluster({"n1": {"a": VmState.SHUT_OFF}, "n2": {"a": RUN}})
    actions = return_actions(state.snapshot(), "n1", {"a": ActionKind.MIGRATE})
    assert [(a.kind, a.src, a.dst) for a in actions] == [(ActionKind.MIGRATE, "n2", "n1")]


def test_driver_locates_the_running_copy_of_a_vm_defined_on_two_nodes() -> None:
    state = cluster({"n1": {"a": VmState.SHUT_OFF}, "n2": {"a": RUN}})
    assert locate_vm(state, "a")[0] == "n2"
    assert locate_vm(cluster({"n1": {"b": VmState.SHUT_OFF}}), "b")[0] == "n1"


def test_undrain_waits_while_reports_still_show_a_migrated_vm_on_its_old_node() -> None:
    drained = {"a": ActionKind.MIGRATE}
    stale = cluster({"n1": {"a": RUN}, "n2": {}}).snapshot()
    assert return_actions(stale, "n1", drained) == ()
    assert unsettled(stale, "n1", drained)
    fresh = cluster({"n1": {}, "n2": {"a": RUN}}).snapshot()
    assert not unsettled(fresh, "n1", drained)


def test_undrain_leaves_a_gathered_pair_where_it_is_and_says_which_rule() -> None:
    state = cluster({"n1": {}, "n2": {"a": RUN, "b": RUN}, "n3": {"c": RUN}})
    state.rules.add("pair", Gather(("a", "b")))
    drained = {"a": ActionKind.MIGRATE, "b": ActionKind.MIGRATE, "c": ActionKind.MIGRATE}
    snap = state.snapshot()
    kept, refused = keeping_rules(snap, return_actions(snap, "n1", drained))
    assert [(a.id, a.subject, a.dst) for a in kept] == [(0, "c", "n1")]
    assert len(refused) == 2 and all("rule pair gather(a,b)" in r for r in refused)
    thought = think(snap, CycleRequest("n1", tuple(drained.items())), PolicyDecider(), CONFIG)
    assert thought.decision is not None and thought.decision.plan is not None
    assert [a.subject for a in thought.decision.plan.actions] == ["c"]
    assert "2 stay where they are: a on n1 would break rule pair" in thought.decision.summary


def test_undrain_sends_back_only_one_of_two_spread_vms_to_the_same_node() -> None:
    state = cluster({"n1": {}, "n2": {"a": RUN}, "n3": {"b": RUN}})
    state.rules.add("apart", Spread(("a", "b")))
    drained = {"a": ActionKind.MIGRATE, "b": ActionKind.MIGRATE}
    snap = state.snapshot()
    kept, refused = keeping_rules(snap, return_actions(snap, "n1", drained))
    assert [a.subject for a in kept] == ["a"] and len(refused) == 1 and "apart" in refused[0]
