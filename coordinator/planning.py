"""From the registry's wire-unit summaries to the pure grid planner's inputs.

Converts units (bytes -> MiB, bit/s -> Mbit/s), maps health and registry state, turns the
inter-cluster VM traffic (pairs the clusters resolved, and their measured external flows
resolved here against every cluster's VM addresses) into communicating groups (connected
components of VMs that talk across clusters) and into measured link usage along each pair's
lowest-latency route.
Pure: no I/O, so it is tested with hand-built records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
from vmgrid.agents import grid_model as m
from vmgrid.coordinator.traffic import resolve_external
from vmgrid.solver import grid

MIB = 2**20
MBIT = 1_000_000


@dataclass(frozen=True)
class PlannerInput:
    """Summaries ready for ``plan_grid`` and why some clusters were left out."""

    summaries: tuple[grid.ClusterSummary, ...]
    notes: tuple[str, ...]


def _mbps_from_bytes_per_second(rate: int) -> float:
    return rate * 8 / MBIT


def _resources(value: m.Capacity, minimum: int) -> grid.Resources:
    return grid.Resources(
        cpu_millicores=max(minimum, value.cpu_millicores),
        memory_mib=max(minimum, value.memory_bytes // MIB),
        network_mbps=max(minimum, value.network_bps // MBIT),
    )


def _health(record: m.ClusterRecord) -> grid.Health:
    if record.state is m.ClusterState.LOST:
        return grid.Health.UNREACHABLE
    state = record.summary.health.state if record.summary else m.HealthState.UNSPECIFIED
    if state in (m.HealthState.DEGRADED, m.HealthState.OVERLOADED):
        return grid.Health.DEGRADED
    return grid.Health.HEALTHY


def _pair_rates(
    records: Iterable[m.ClusterRecord],
) -> dict[tuple[str, str], tuple[float, str, str]]:
    """(vm, peer) sorted -> (Mbit/s, cluster of the first, cluster of the second).

    From pairs that clusters report resolved, and from their measured external flows resolved
    here (``vmgrid.coordinator.traffic``). Both ends usually report the same pair; the larger
    figure is kept.
    """
    records = list(records)
    pairs: dict[tuple[str, str], tuple[float, str, str]] = {}
    for cross in resolve_external(records):
        rate = _mbps_from_bytes_per_second(cross.bytes_per_second)
        pairs[(cross.vm_a, cross.vm_b)] = (rate, cross.cluster_a, cross.cluster_b)
    for record in records:
        if record.summary is None:
            continue
        for t in record.summary.inter_cluster_traffic:
            rate = _mbps_from_bytes_per_second(t.bytes_per_second)
            if t.vm_uuid <= t.peer_vm_uuid:
                key, ends = (t.vm_uuid, t.peer_vm_uuid), (record.cluster_id, t.peer_cluster_id)
            else:
                key, ends = (t.peer_vm_uuid, t.vm_uuid), (t.peer_cluster_id, record.cluster_id)
            if key not in pairs or pairs[key][0] < rate:
                pairs[key] = (rate, *ends)
    return pairs


def _groups(records: Sequence[m.ClusterRecord]) -> dict[str, tuple[str, int, dict[str, list[str]]]]:
    """VM -> (group id, traffic Mbit/s, members per cluster) for VMs that talk across clusters."""
    graph = nx.Graph()
    for (a, b), (rate, ca, cb) in _pair_rates(records).items():
        graph.add_node(a, cluster=ca)
        graph.add_node(b, cluster=cb)
        graph.add_edge(a, b, rate=rate)
    out: dict[str, tuple[str, int, dict[str, list[str]]]] = {}
    for component in nx.connected_components(graph):
        members = sorted(component)
        traffic = round(sum(r for _, _, r in graph.subgraph(members).edges(data="rate")))
        parts: dict[str, list[str]] = {}
        for vm in members:
            parts.setdefault(graph.nodes[vm]["cluster"], []).append(vm)
        entry = (f"g-{members[0]}", traffic, parts)
        for vm in members:
            out[vm] = entry
    return out


def planner_input(records: Sequence[m.ClusterRecord], topology: grid.Topology) -> PlannerInput:
    """Planner summaries for every cluster that has reported and is in the topology."""
    in_topology = set(topology.clusters())
    notes: list[str] = []
    usable: list[m.ClusterRecord] = []
    for record in records:
        if record.cluster_id not in in_topology:
            notes.append(f"cluster {record.cluster_id!r} is not in the topology; not planned")
        elif record.summary is None:
            notes.append(f"cluster {record.cluster_id!r} has sent no summary yet; not planned")
        elif not (record.summary.capacity.cpu_millicores and record.summary.capacity.memory_bytes):
            notes.append(f"cluster {record.cluster_id!r} reports no capacity (no live node)")
        else:
            usable.append(record)
    groups = _groups(usable)
    summaries = []
    for record in usable:
        summary = record.summary
        assert summary is not None
        movable = {vm.vm_uuid for vm in summary.movable_vms}
        vms = tuple(
            grid.GridVm(vm.vm_uuid, _resources(m.Capacity(
                vm.cpu_millicores, vm.memory_bytes, vm.network_bps), 0))
            for vm in summary.movable_vms
        )  # fmt: skip
        local_groups: dict[str, grid.VmGroup] = {}
        for vm_id in sorted(movable & groups.keys()):
            group_id, traffic, parts = groups[vm_id]
            members = tuple(v for v in parts.get(record.cluster_id, []) if v in movable)
            local_groups[group_id] = grid.VmGroup(group_id, members, traffic)
        summaries.append(
            grid.ClusterSummary(
                id=record.cluster_id,
                capacity=_resources(summary.capacity, 1),
                usage=_resources(summary.usage, 0),
                vms=vms,
                groups=tuple(local_groups.values()),
                health=_health(record),
            )
        )
    return PlannerInput(tuple(summaries), tuple(notes))


def measured_topology(topology: grid.Topology, records: Sequence[m.ClusterRecord]) -> grid.Topology:
    """The topology with link utilisation from reported inter-cluster traffic, where known.

    Each VM pair's traffic is laid on the lowest-latency route between its two clusters; links
    that carry no reported traffic keep the utilisation of the GraphML file.
    """
    graph = topology.graph
    used: dict[tuple[str, str], float] = {}
    for rate, ca, cb in _pair_rates(records).values():
        if ca not in graph or cb not in graph or rate <= 0:
            continue
        path = nx.shortest_path(graph, ca, cb, weight="latency_ms")
        for u, v in zip(path, path[1:], strict=False):
            key = grid.link_key(u, v)
            used[key] = used.get(key, 0.0) + rate
    return grid.update_link_usage(topology, used) if used else topology
