"""Cross-cluster traffic (#16): clusters report measured external flows and their VMs'
addresses, the coordinator resolves them into pairs of VMs in two clusters, groups them for the
grid planner and gathers a heavy split pair."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import MalformedMessage
from vmgrid.coordinator.planning import measured_topology, planner_input
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.traffic import CrossPair, resolve_external
from vmgrid.solver import grid

TOPOLOGY = Path(__file__).parents[2] / "data" / "coordinator" / "topology-three.graphml"
GIB = 2**30
CAPACITY = m.Capacity(10_000, 32 * GIB, 10**10)
ROUTER = "52:54:00:ff:ff:ff"
MBYTE = 1_000_000


def mac(vm: str) -> str:
    return f"52:54:00:00:00:{ord(vm[0]):02x}"


def ip(vm: str) -> str:
    return f"10.0.0.{ord(vm[0])}"


def summary(
    vms: str,
    flows: tuple[m.ExternalFlow, ...] = (),
    addresses: str = "",
    cpu_used: int = 1_000,
) -> m.ClusterSummary:
    return m.ClusterSummary(
        1, 1_700_000_000_000_000_000, CAPACITY, m.Capacity(cpu_used, GIB, 10**8),
        tuple(m.VmDemand(v, memory_bytes=GIB, cpu_millicores=500) for v in vms),
        health=m.ClusterHealth(nodes_total=2),
        external_flows=flows,
        vm_addresses=tuple(m.VmAddress(v, mac(v), ip(v)) for v in addresses),
    )  # fmt: skip


def record(cluster_id: str, s: m.ClusterSummary | None) -> m.ClusterRecord:
    return m.ClusterRecord(m.ClusterHello(cluster_id, CAPACITY), m.ClusterState.CONNECTED, 1, s)


def talking_grid(rate_a: int = 15 * MBYTE, rate_x: int = 12 * MBYTE) -> list[m.ClusterRecord]:
    """a (c1) talks with x (c2): c1 sees x's MAC (a stretched layer 2), c2 sees a behind a
    router (the router's MAC, a's IP)."""
    c1 = summary("ab", (m.ExternalFlow("a", mac("x"), ip("x"), rate_a),), addresses="a")
    c2 = summary("xy", (m.ExternalFlow("x", ROUTER, ip("a"), rate_x),), addresses="x")
    return [record("c1", c1), record("c2", c2)]


def test_external_flows_resolve_into_one_pair_keeping_the_larger_figure() -> None:
    assert resolve_external(talking_grid()) == [CrossPair(15 * MBYTE, "a", "c1", "x", "c2")]
    assert resolve_external(talking_grid(rate_a=1, rate_x=3)) == [
        CrossPair(3, "a", "c1", "x", "c2")
    ]


def test_unknown_ambiguous_and_same_cluster_peers_resolve_to_nothing() -> None:
    flows = (
        m.ExternalFlow("a", ROUTER, "192.0.2.9", MBYTE),  # nobody's address
        m.ExternalFlow("a", "52:54:00:99:99:99", ip("z"), MBYTE),  # z's IP: two clusters claim it
        m.ExternalFlow("a", mac("b"), "", MBYTE),  # b is in c1 itself (its node measured nothing)
    )
    c1 = summary("ab", flows, addresses="ab")
    z_in_c2 = m.VmAddress("z", mac("z"), ip("z"))
    z_in_c3 = m.VmAddress("zz", "52:54:00:00:01:01", ip("z"))
    c2 = replace(summary("z"), vm_addresses=(z_in_c2,))
    c3 = replace(summary("q"), vm_addresses=(z_in_c3,))
    records = [record("c1", c1), record("c2", c2), record("c3", c3), record("c4", None)]
    assert resolve_external(records) == []


def test_resolved_pair_groups_across_clusters_and_loads_the_links() -> None:
    topology = grid.load_topology(TOPOLOGY)
    records = talking_grid()
    inputs = planner_input(records, topology)
    by_id = {s.id: s for s in inputs.summaries}
    assert by_id["c1"].groups == (grid.VmGroup("g-a", ("a",), 120),)
    assert by_id["c2"].groups == (grid.VmGroup("g-a", ("x",), 120),)
    measured = measured_topology(topology, records)
    assert measured.graph.edges["c1", "core"]["utilisation"] == pytest.approx(0.012)


def test_the_planner_gathers_a_heavy_measured_pair_and_leaves_a_light_one_split() -> None:
    topology = grid.load_topology(TOPOLOGY)
    heavy = planner_input(talking_grid(), topology)
    plan = grid.plan_grid(topology, list(heavy.summaries), grid.PlannerConfig(consolidation=False))
    assert [(mv.vm, mv.src, mv.dst, mv.kind) for mv in plan.moves] == [
        ("x", "c2", "c1", grid.MoveKind.AFFINITY)
    ]
    assert plan.moves[0].group_id == "g-a"
    light = planner_input(talking_grid(rate_a=MBYTE, rate_x=MBYTE), topology)  # 8 Mbit/s
    quiet = grid.plan_grid(topology, list(light.summaries), grid.PlannerConfig(consolidation=False))
    assert quiet.moves == ()


def test_summary_traffic_round_trips_through_the_wire_and_the_registry(tmp_path: Path) -> None:
    reported = talking_grid()[0].summary
    assert reported is not None
    original = replace(reported, heavy_pairs=(m.VmPairTraffic("a", "b", 42),))
    assert grid_codec.decode_summary(grid_codec.encode_summary(original), "c1") == original
    registry = Registry(str(tmp_path / "r.sqlite"))
    registry.put(record("c1", original))
    registry.close()
    assert Registry(str(tmp_path / "r.sqlite")).get("c1").summary == original


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda w: w.external_flows.add(vm_uuid="", peer_mac=mac("x")), "summary.external_flows[0].vm_uuid", "not a VM uuid"),
        (lambda w: w.external_flows.add(vm_uuid="a", peer_mac="AA-BB"), "summary.external_flows[0].peer_mac", "not a MAC"),
        (lambda w: w.external_flows.add(vm_uuid="a", peer_mac=mac("x"), peer_ip="10.0.0.300"), "summary.external_flows[0].peer_ip", "not an IPv4"),
        (lambda w: w.external_flows.add(vm_uuid="a", peer_mac=mac("x"), bytes_per_second=-1), "summary.external_flows[0].bytes_per_second", "-1 is not in"),
        (lambda w: w.vm_addresses.add(vm_uuid="a", mac="zz"), "summary.vm_addresses[0].mac", "'zz'"),
        (lambda w: w.heavy_pairs.add(vm_a="a", vm_b="a"), "summary.heavy_pairs[0].vm_b", "vm_a too"),
    ],
)  # fmt: skip
def test_bad_traffic_fields_are_named(mutate: object, field: str, words: str) -> None:
    wire = grid_codec.encode_summary(summary("a"))
    mutate(wire)  # type: ignore[operator]
    with pytest.raises(MalformedMessage) as info:
        grid_codec.decode_summary(wire, "c1")
    assert info.value.field == field
    assert words in str(info.value)
