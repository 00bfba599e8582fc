"""Measured traffic in the cluster manager: flows resolved to VM pairs across nodes, heavy
pairs handed to the deciders as soft networkAffinity terms, and hard rules still winning."""

from __future__ import annotations

import pytest
from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    TriggerKind,
    decide,
    find_trigger,
)
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.cluster.state.traffic import TRAFFIC_ORIGIN, ClusterTraffic
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.solver.constraints.network import NetworkAffinity
from vmgrid.solver.constraints.spread import Spread

GIB = 2**30
SECOND = 1_000_000_000
MBIT = 125_000  # bytes/s


def mac(vm: str) -> str:
    return f"52:54:00:00:00:{ord(vm):02x}"


def matrix(local: list[str], flows: list[tuple[str, str, int]]) -> TrafficMatrix:
    ends = tuple(TrafficEndpoint(f"uuid-{v}", mac(v), f"10.0.0.{ord(v)}") for v in local)
    return TrafficMatrix(
        True, "", 30_000, ends, tuple(TrafficFlow(mac(s), mac(d), r) for s, d, r in flows)
    )


class Cluster:
    """A ClusterState fed with reports; nodes have 4 cores and 8 GiB; VMs 1.5 cores, 1 GiB."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * SECOND
        self.state = ClusterState(EventBus("c1"), clock_ns=lambda: self.now_ns)
        self.sequence = 0

    def node(self, node_id: str) -> Cluster:
        identity = NodeIdentity(node_id, node_id, f"test:///{node_id}", simulated=True)
        self.state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
        return self

    def report(self, node_id: str, vms: list[str], traffic: TrafficMatrix | None) -> None:
        for _ in range(7):
            self.sequence += 1
            usage = tuple(VmUsage(f"uuid-{n}", n, VmState.RUNNING, 2, 1500, GIB, GIB) for n in vms)
            host = HostUsage(1500 * len(vms), len(vms) * GIB, 8 * GIB)
            report = NodeReport(self.now_ns, self.sequence, host, usage, traffic=traffic)
            self.state.apply_report(node_id, report)
            self.now_ns += 5 * SECOND


CONFIG = ControlConfig(
    hold_s=20,
    operator_policy=OperatorPolicy(
        cpu_high=0.85,
        memory_high=0.85,
        cpu_low=0.4,
        memory_low=0.4,
        migrations_per_cycle=0,
        migrations_per_hour=0,
        migrations_per_node_hour=0,
        min_move_interval_s=0,
        return_after_s=0,
    ),
)

# one VM per node; a and c talk heavily (a -> c reported by both ends' nodes), b and d little
FLOWS = [("a", "c", 40 * MBIT), ("c", "a", 10 * MBIT), ("b", "d", MBIT // 10)]


def scattered(measured: bool) -> Cluster:
    c = Cluster()
    for n in ("n1", "n2", "n3", "n4"):
        c.node(n)
    for n, vm in zip(("n1", "n2", "n3", "n4"), "abcd", strict=True):
        mine = [f for f in FLOWS if vm in f[:2]]
        c.report(n, [vm], matrix([vm], mine) if measured else None)
    return c


def test_flows_resolve_to_vm_pairs_across_nodes_without_double_counting() -> None:
    traffic = ClusterTraffic()
    traffic.apply("n1", matrix(["a"], [("a", "c", 40 * MBIT), ("c", "a", 10 * MBIT)]))
    traffic.apply("n3", matrix(["c"], [("a", "c", 40 * MBIT), ("c", "a", 10 * MBIT)]))
    [pair] = traffic.pairs()
    assert (pair.vm_a, pair.vm_b, pair.mbit) == ("uuid-a", "uuid-c", 50)


def test_a_peer_known_only_by_its_address_is_resolved_by_ip() -> None:
    traffic = ClusterTraffic()
    traffic.apply("n1", matrix(["a"], []))
    router = "52:54:00:ff:ff:ff"
    flow = TrafficFlow(router, mac("c"), 8 * MBIT, src_ip=f"10.0.0.{ord('a')}")
    traffic.apply("n3", TrafficMatrix(True, "", 30_000, matrix(["c"], []).endpoints, (flow,)))
    assert [(p.vm_a, p.vm_b, p.mbit) for p in traffic.pairs()] == [("uuid-a", "uuid-c", 8)]


def test_unavailable_nodes_yield_no_terms_and_say_why() -> None:
    traffic = ClusterTraffic()
    traffic.apply("n1", TrafficMatrix.unavailable("the libvirt test driver carries no traffic"))
    assert traffic.soft_rules() == ()
    assert "test driver" in traffic.unavailable()["n1"]


def test_heavy_pairs_reach_the_deciders_as_soft_terms_with_the_rules() -> None:
    snapshot = scattered(measured=True).state.snapshot()
    terms = [r for r in snapshot.rules if r.origin == TRAFFIC_ORIGIN]
    assert [r.constraint for r in terms] == [NetworkAffinity((("uuid-a", "uuid-c", 50),))]
    assert all(r.constraint.max_crossing_mbit is None for r in terms)  # soft: forbids nothing


def _hosts(decision) -> dict[str, str]:
    return {vm.name: vm.host for vm in decision.plan.dst.vms.values()}


def test_a_heavy_pair_is_co_located_when_consolidation_leaves_the_choice() -> None:
    c = scattered(measured=True)
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None and trigger.kind is TriggerKind.UNDERLOAD
    decision = decide(snapshot, trigger, CONFIG)
    hosts = _hosts(decision)
    assert len(set(hosts.values())) == 2  # the same packing as without traffic
    assert hosts["uuid-a"] == hosts["uuid-c"]
    assert decision.plan is not None and decision.plan.migrations == 2


def test_a_hard_rule_wins_over_measured_traffic() -> None:
    c = scattered(measured=True)
    c.state.rules.add("keep-apart", Spread(("uuid-a", "uuid-c")))
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None
    hosts = _hosts(decide(snapshot, trigger, CONFIG))
    assert len(set(hosts.values())) == 2
    assert hosts["uuid-a"] != hosts["uuid-c"]


@pytest.mark.parametrize("measured", [False, True])
def test_terms_change_which_vms_share_nodes_not_how_many_moves(measured: bool) -> None:
    c = scattered(measured=measured)
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, CONFIG)
    assert trigger is not None
    decision = decide(snapshot, trigger, CONFIG)
    assert decision.plan is not None and decision.plan.migrations == 2


def test_terms_follow_new_matrices_and_age_out() -> None:
    clock = [0.0]
    traffic = ClusterTraffic(monotonic=lambda: clock[0])
    traffic.apply("n1", matrix(["a", "c"], [("a", "c", 8 * MBIT)]))
    [rule] = traffic.soft_rules()
    assert rule.constraint == NetworkAffinity((("uuid-a", "uuid-c", 8),))
    traffic.apply("n1", matrix(["a", "c"], [("a", "c", 16 * MBIT)]))
    [rule] = traffic.soft_rules()
    assert rule.constraint == NetworkAffinity((("uuid-a", "uuid-c", 16),))
    clock[0] += 120.0  # three 30 s windows and 60 s have passed without a report
    assert traffic.soft_rules() == ()
