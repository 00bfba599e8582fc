"""N+1: can the cluster lose each node and restart its HA VMs elsewhere? On a real
ClusterState, with the HA monitor's own placement (ha.restart_target)."""

from __future__ import annotations

from vmgrid.agents.cluster.jobs.capacity import n_plus_one
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.jobs.restart_placement import restart_reason, restart_target
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
from vmgrid.solver.constraints import Ban, Spread

GIB = 2**30


def cluster(layout: dict[str, dict[str, int]], memory_gib: int = 4) -> ClusterState:
    """Nodes of 4 cores and `memory_gib` GiB; VMs name -> GiB, 500 millicores each."""
    state = ClusterState(EventBus("c1"))
    for node, vms in layout.items():
        identity = NodeIdentity(node, node, f"test:///{node}", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(4000, memory_gib * GIB, 10**9)), 1)
        usage = tuple(
            VmUsage(f"uuid-{n}", n, VmState.RUNNING, 1, 500, g * GIB, g * GIB)
            for n, g in vms.items()
        )
        host = HostUsage(500 * len(vms), sum(vms.values()) * GIB, memory_gib * GIB)
        state.apply_report(node, NodeReport(1, 1, host, usage))
    return state


def member(name: str, node: str, memory_gib: int, priority: int = 0) -> Member:
    return Member(
        f"uuid-{name}", "job-1", name, node, "<domain/>", "", priority, 500, memory_gib * 1024, 0
    )


def test_every_node_passes_when_the_others_have_room() -> None:
    state = cluster({"n1": {"a": 1}, "n2": {"b": 1}, "n3": {}})
    result = n_plus_one(state.snapshot(), [member("a", "n1", 1), member("b", "n2", 1)])
    assert result.ok
    by_node = {c.node: c for c in result.nodes}
    assert by_node["n1"].vms == 1 and by_node["n1"].ok
    assert "restart on" in by_node["n1"].reason
    assert by_node["n3"].vms == 0 and by_node["n3"].reason == "n3 holds no HA VM"


def test_a_node_whose_vms_fit_nowhere_fails_and_names_them() -> None:
    state = cluster({"n1": {"a": 3, "b": 1}, "n2": {"c": 2}}, memory_gib=4)
    members = [member("a", "n1", 3, priority=5), member("b", "n1", 1), member("c", "n2", 2)]
    result = n_plus_one(state.snapshot(), members)
    assert not result.ok
    by_node = {c.node: c for c in result.nodes}
    lost_n1 = by_node["n1"]
    # n2 has 2 GiB free: b (1 GiB) fits but a (3 GiB), first by HA priority, does not
    assert not lost_n1.ok and lost_n1.vms == 2
    assert lost_n1.unplaced == ("uuid-a",)
    assert "no node has 3072 MiB free for a" in lost_n1.reason
    # n1 is full (4 of 4 GiB): c cannot go there either
    assert by_node["n2"].unplaced == ("uuid-c",)


def test_members_placed_earlier_use_the_room_later_ones_needed() -> None:
    state = cluster({"n1": {"a": 2, "b": 2}, "n2": {}, "n3": {"x": 1}}, memory_gib=4)
    members = [member("a", "n1", 2, priority=1), member("b", "n1", 2)]
    lost = {c.node: c for c in n_plus_one(state.snapshot(), members).nodes}["n1"]
    assert lost.ok, lost.reason
    assert lost.reason == "its 2 HA VM(s) restart on n2 (1), n3 (1)"


def test_a_restart_that_would_break_a_rule_fails_the_node_and_names_the_rule() -> None:
    state = cluster({"n1": {"a": 1}, "n2": {"b": 1}})
    state.rules.add("spread-ab", Spread(("uuid-a", "uuid-b")))
    result = n_plus_one(state.snapshot(), [member("a", "n1", 1), member("b", "n2", 1)])
    by_node = {c.node: c for c in result.nodes}
    assert not result.ok
    assert not by_node["n1"].ok and by_node["n1"].unplaced == ()
    assert "a on n2 would break spread-ab" in by_node["n1"].reason


def test_every_member_of_a_node_is_checked_against_every_rule() -> None:
    state = cluster({"n1": {"a": 1, "b": 1}, "n2": {"c": 1}}, memory_gib=8)
    state.rules.add("apart-ac", Spread(("uuid-a", "uuid-c")))
    state.rules.add("b-not-n2", Ban(("uuid-b",), ("n2",)))
    members = [member("a", "n1", 1, priority=2), member("b", "n1", 1), member("c", "n2", 1)]
    lost = {c.node: c for c in n_plus_one(state.snapshot(), members).nodes}["n1"]
    assert not lost.ok and lost.unplaced == ()
    assert lost.reason == "a on n2 would break apart-ac; b on n2 would break b-not-n2"


def test_a_rule_that_some_node_keeps_steers_the_restart_there() -> None:
    state = cluster({"n1": {"a": 1}, "n2": {}, "n3": {}}, memory_gib=8)
    state.rules.add("ban-a-n2", Ban(("uuid-a",), ("n2",)))
    lost = {c.node: c for c in n_plus_one(state.snapshot(), [member("a", "n1", 1)]).nodes}
    assert lost["n1"].ok and lost["n1"].reason == "its 1 HA VM(s) restart on n3 (1)"


def test_the_ha_restart_reason_gives_the_figures_of_its_choice() -> None:
    state = cluster({"n1": {"a": 1}, "n2": {"b": 1}, "n3": {}})
    model = to_model(state.snapshot())
    a = member("a", "n1", 1, priority=3)
    placement = restart_target(model, state.rules.kept(), a)
    assert placement.node == "n3"
    assert restart_reason(model, a, placement) == (
        "n1 failed (fenced): restart a (0.5 cores, 1024 MiB, HA priority 3) on n3, the node "
        "with most free memory that keeps the rules (memory 0% -> 25%, cpu 0% -> 12%)"
    )
