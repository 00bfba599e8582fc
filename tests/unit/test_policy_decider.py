"""The manager's production decider: vmgrid's DecisionPolicy on a real ClusterState.

Also checks that the manager's adapter and the replay's adapter give the policy the very same
snapshot, and so the same moves, for the same cluster.
"""

from __future__ import annotations

import numpy as np
from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    PolicyKind,
    Trigger,
    TriggerKind,
    find_trigger,
)
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.policy_view import VmIds, plan_moves, to_policy_snapshot
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
from vmgrid.solver.decision import DecisionPolicy, Move
from vmgrid.solver.plan import ActionKind
from vmgrid.solver.replay import datacenter as dc
from vmgrid.solver.replay.engine import Simulator
from vmgrid.solver.replay.trace import Workload
from vmgrid.solver.replay.vmgrid_adapter import VmgridPolicy

MIB = 2**20
GIB = 2**30
SECOND = 1_000_000_000


def band(**values: float) -> OperatorPolicy:
    """A band as the tests before the operator policy had it; budgets and times off."""
    unlimited = {"migrations_per_cycle": 0, "migrations_per_hour": 0}
    limits = {"migrations_per_node_hour": 0, "min_move_interval_s": 0, "return_after_s": 0}
    return OperatorPolicy(**values, **unlimited, **limits)  # type: ignore[arg-type]


CONFIG = ControlConfig(
    hold_s=20, operator_policy=band(cpu_high=0.85, memory_high=0.85, cpu_low=0.4, memory_low=0.4)
)


class Cluster:
    """A ClusterState with a hand-driven clock; nodes have 4 cores unless told otherwise."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * SECOND
        self.state = ClusterState(EventBus("c1"), clock_ns=lambda: self.now_ns)
        self.sequence = 0

    def node(self, node_id: str, cpu: int = 4000, memory: int = 8 * GIB) -> Cluster:
        identity = NodeIdentity(node_id, node_id, f"test:///{node_id}", simulated=True)
        self.state.node_connected(NodeHello(identity, NodeCapacity(cpu, memory, 10**9)), 1)
        return self

    def report(
        self, node_id: str, vms: dict[str, int], seconds: int = 30, memory: int = GIB
    ) -> Cluster:
        """Report `vms` (name -> CPU millicores, `memory` each) every 5 s for `seconds`."""
        for _ in range(seconds // 5 + 1):
            self.sequence += 1
            usage = [
                VmUsage(f"uuid-{n}", n, VmState.RUNNING, 1, cpu, memory, memory)
                for n, cpu in vms.items()
            ]
            host = HostUsage(sum(vms.values()), len(vms) * memory, 8 * GIB)
            self.state.apply_report(
                node_id, NodeReport(self.now_ns, self.sequence, host, tuple(usage))
            )
            self.now_ns += 5 * SECOND
        return self


def migrations(decision_plan: object) -> set[tuple[str, str | None, str | None]]:
    actions = getattr(decision_plan, "actions", ())
    return {(a.subject, a.src, a.dst) for a in actions if a.kind is ActionKind.MIGRATE}


def test_policy_is_the_default_decider() -> None:
    assert ControlConfig().policy is PolicyKind.VMGRID


def test_held_overload_is_relieved_by_the_policy_with_a_reasoned_plan() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.report("n1", {"a": 2600, "b": 1900})
    c.report("n2", {"c": 2000})
    c.report("n3", {"d": 1500})
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD
    decision = PolicyDecider().decide(snapshot, trigger, CONFIG)
    assert decision.plan is not None
    moved = migrations(decision.plan)
    assert len(moved) == 1 and next(iter(moved))[1] == "n1"
    assert all("vmgrid policy: relieve n1" in a.reason for a in decision.plan.actions)
    assert decision.summary.startswith("vmgrid policy: relieve n1")


def test_a_vm_asking_a_whole_node_is_relieved_without_headroom() -> None:
    c = Cluster().node("n1", cpu=1000).node("n2", cpu=1000)
    c.report("n1", {"a": 0, "b": 0}, seconds=10)
    c.report("n1", {"a": 1000, "b": 1000})  # a load step: the spread makes any headroom huge
    c.report("n2", {}, seconds=40)
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD
    decision = PolicyDecider().decide(snapshot, trigger, CONFIG)
    assert decision.plan is not None and decision.stats["no_headroom_relief"] is True
    assert {(src, dst) for _, src, dst in migrations(decision.plan)} == {("n1", "n2")}


def test_light_nodes_are_consolidated_all_or_nothing() -> None:
    c = Cluster().node("n1").node("n2").node("n3")
    c.report("n1", {"a": 300, "b": 200})
    c.report("n2", {"c": 400})
    c.report("n3", {"d": 1200})
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.UNDERLOAD
    decision = PolicyDecider().decide(snapshot, trigger, CONFIG)
    assert decision.plan is not None
    sources = {src for _, src, _ in migrations(decision.plan)}
    emptied = {n for n in ("n1", "n2", "n3") if not decision.plan.dst.hosted(n)}
    assert sources and sources <= emptied
    assert "consolidate: free" in decision.summary


def test_a_move_that_overflows_memory_is_skipped_and_named() -> None:
    c = Cluster().node("n1").node("n2", memory=2 * GIB)
    c.report("n1", {"a": 2600, "b": 1900}, memory=GIB)
    c.report("n2", {"c": 500}, memory=3 * GIB // 2)
    snapshot = c.state.snapshot()
    view = to_policy_snapshot(snapshot, VmIds(), 0)
    vm = view.vm_uuids.index("uuid-b")
    result = plan_moves(snapshot, view, [Move(vm, int(view.snapshot.vm_id[vm]), 0, 1, "overload")])
    assert result.plan is None and result.moves == ()
    assert result.skipped == ("b -> n2: needs 1024 MiB, n2 has 512 MiB free within the band",)


def test_vm_ids_stay_stable_across_cycles_whatever_the_node_order() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n2", {"x": 100})
    c.report("n1", {"y": 100})
    ids = VmIds()
    first = to_policy_snapshot(c.state.snapshot(), ids, 0)
    c.state.set_draining("n1", True)
    second = to_policy_snapshot(c.state.snapshot(), ids, 1)
    assert (
        dict(zip(first.vm_uuids, first.snapshot.vm_id.tolist(), strict=True))["uuid-x"]
        == (dict(zip(second.vm_uuids, second.snapshot.vm_id.tolist(), strict=True))["uuid-x"])
    )
    assert second.node_ids == ("n2",)  # a draining node receives nothing


def test_an_overload_shorter_than_the_hold_is_not_held_even_with_sparse_reports() -> None:
    c = Cluster().node("n1").node("n2")
    c.report("n2", {"c": 2000}, seconds=60)
    c.report("n1", {"a": 100}, seconds=30)
    c.now_ns += 10 * SECOND  # a gap: the window [last-20 s, last] holds only the new samples
    c.report("n1", {"a": 3900}, seconds=10)
    assert find_trigger(c.state.snapshot(), CONFIG) is None
    c.report("n1", {"a": 3900}, seconds=15)
    trigger = find_trigger(c.state.snapshot(), CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD


# -- the manager's path and the replay's path give the policy the same inputs ---------------

DEMAND = [1500.0, 1700.0, 300.0, 900.0, 250.0, 1200.0, 1000.0, 400.0]
HOSTS = [0, 0, 1, 1, 2, 2, 0, 3]
HISTORY = [
    [d if k == 0 else round(d * (1 + 0.05 * ((k * (i + 1)) % 3 - 1))) for k in range(6)]
    for i, d in enumerate(DEMAND)
]
"""Each VM's readings, newest first (the newest is its demand)."""


def _simulator() -> Simulator:
    names = tuple(f"vm{i}" for i in range(len(DEMAND)))
    workload = Workload("handmade", names, np.full((len(DEMAND), 13), 0.1))
    sim = Simulator(workload, host_count=5)
    for i, host in enumerate(HOSTS):
        sim.vm_host[i] = host
        sim.host_vms[host].append(i)
        sim.requested[i] = DEMAND[i]
        sim.vm_history[i, :6] = np.array(HISTORY[i]) / sim.vm_mips[i]
        sim.vm_history_len[i] = 6
    return sim


def _manager_cluster(sim: Simulator) -> Cluster:
    c = Cluster()
    for h in range(sim.host_count):
        c.node(f"h{h}", cpu=int(sim.host_total[h]), memory=64 * GIB)
    for k in range(6):  # oldest first; the newest reading is the demand
        for h in range(sim.host_count):
            vms = {f"v{i}": int(HISTORY[i][5 - k]) for i in range(len(DEMAND)) if HOSTS[i] == h}
            c.sequence += 1
            usage = tuple(
                VmUsage(
                    f"uuid-v{i}",
                    f"v{i}",
                    VmState.RUNNING,
                    1,
                    int(HISTORY[i][5 - k]),
                    int(sim.vm_ram_mb[i]) * MIB,
                    int(sim.vm_ram_mb[i]) * MIB,
                )
                for i in range(len(DEMAND))
                if HOSTS[i] == h
            )
            host = HostUsage(sum(vms.values()), 0, 64 * GIB)
            c.state.apply_report(f"h{h}", NodeReport(c.now_ns, c.sequence, host, usage))
        c.now_ns += 5 * SECOND
    return c


def test_manager_and_replay_adapters_give_the_policy_the_same_snapshot_and_moves() -> None:
    sim = _simulator()
    c = _manager_cluster(sim)
    ids = VmIds()
    for i in range(len(DEMAND)):
        ids.of(f"uuid-v{i}")
    nodes = [f"h{h}" for h in range(sim.host_count)]
    view = to_policy_snapshot(
        c.state.snapshot(),
        ids,
        sim.step,
        vm_limit_millicores={n: int(sim.host_pe[h]) for h, n in enumerate(nodes)},
        watts={
            n: (
                float(dc.POWER_TABLE[sim.host_type[h], 0]),
                float(dc.POWER_TABLE[sim.host_type[h], -1]),
            )
            for h, n in enumerate(nodes)
        },
    )
    replay = VmgridPolicy()
    theirs = replay.snapshot(sim)
    ours = view.snapshot
    for name in (
        "host_capacity_millicores",
        "host_vm_limit_millicores",
        "host_idle_w",
        "host_peak_w",
        "vm_id",
        "vm_host",
        "vm_demand_millicores",
        "vm_history_len",
        "vm_ram_mib",
    ):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), err_msg=name)
    np.testing.assert_allclose(
        ours.vm_history_millicores[:, :6], theirs.vm_history_millicores[:, :6], rtol=1e-3, atol=1
    )
    manager_moves = DecisionPolicy().decide(ours).moves
    replay_moves = replay.decide(sim)
    assert manager_moves, "the scenario must make the policy move something"
    assert [(m.vm_id, m.destination) for m in manager_moves] == list(replay_moves)
    plan = plan_moves(c.state.snapshot(), view, manager_moves).plan
    assert plan is not None
    expected = {(f"uuid-v{m.vm_id}", nodes[m.source], nodes[m.destination]) for m in manager_moves}
    assert migrations(plan) == expected


def test_a_trigger_without_eligible_nodes_decides_nothing() -> None:
    c = Cluster().node("n1")
    c.report("n1", {"a": 100})
    c.state.set_draining("n1", True)
    trigger = Trigger(TriggerKind.UNDERLOAD, ("n1",), "test")
    decision = PolicyDecider().decide(c.state.snapshot(), trigger, CONFIG)
    assert decision.plan is None and "no node can host VMs" in decision.summary
