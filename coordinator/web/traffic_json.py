"""The heaviest measured VM pairs (#16) as the dashboard shows them: GET /api/v1/traffic.

A cluster manager answers with its own pairs (resolved across its nodes) and its external
flows (peers that are none of its VMs, as it reports them to the coordinator); the grid
coordinator with every cluster's heaviest pairs from its summary and the cross-cluster pairs
it resolves itself. Rates in bytes per second, both directions added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.state.traffic import ClusterTraffic
from vmgrid.agents.model import VmUsage
from vmgrid.coordinator.traffic import resolve_external

Json = dict[str, Any]
Place = tuple[str, str, str]  # (name, node, cluster) of a VM


def _pair(rate: int, a: tuple[str, str], b: tuple[str, str], places: dict[str, Place]) -> Json:
    """`a` and `b` are (VM, the cluster that reported it); names and nodes where known."""
    (vm_a, in_a), (vm_b, in_b) = a, b
    name_a, node_a, cluster_a = places.get(vm_a, ("", "", in_a))
    name_b, node_b, cluster_b = places.get(vm_b, ("", "", in_b))
    if cluster_a != cluster_b:
        crosses = "cluster"
    elif node_a and node_b:
        crosses = "node" if node_a != node_b else "none"
    else:
        crosses = "unknown"
    return {
        "vm_a": vm_a, "name_a": name_a, "node_a": node_a, "cluster_a": cluster_a,
        "vm_b": vm_b, "name_b": name_b, "node_b": node_b, "cluster_b": cluster_b,
        "bytes_per_second": rate, "crosses": crosses,
    }  # fmt: skip


def cluster_traffic_json(
    cluster_id: str, placed: Sequence[tuple[str, VmUsage]], traffic: ClusterTraffic, limit: int
) -> Json:
    """One cluster's heaviest pairs and external flows; `placed` is (node, VM) of its VMs."""
    places = {vm.uuid: (vm.name, node, cluster_id) for node, vm in placed}
    resolved = traffic.resolve()
    pairs = [
        _pair(p.bytes_per_second, (p.vm_a, cluster_id), (p.vm_b, cluster_id), places)
        for p in resolved.pairs[:limit]
    ]
    flows = resolved.external
    external = [
        {
            "vm": f.vm_uuid,
            "name": places.get(f.vm_uuid, ("", "", ""))[0],
            "node": places.get(f.vm_uuid, ("", "", ""))[1],
            "peer_mac": f.peer_mac,
            "peer_ip": f.peer_ip,
            "bytes_per_second": f.bytes_per_second,
        }
        for f in flows[:limit]
    ]
    unavailable = [{"node": n, "reason": r} for n, r in sorted(traffic.unavailable().items())]
    return {"pairs": pairs, "external": external, "unavailable": unavailable}


def grid_traffic_json(records: Sequence[m.ClusterRecord], limit: int) -> Json:
    """The heaviest pairs of the grid: each cluster's reported ones and the cross-cluster ones
    resolved from the clusters' external flows."""
    places: dict[str, Place] = {}
    reported: list[tuple[int, tuple[str, str], tuple[str, str]]] = []
    for record in records:
        if record.summary is None:
            continue
        for vm in record.summary.movable_vms:
            places[vm.vm_uuid] = (vm.name, vm.node_id, record.cluster_id)
        reported.extend(
            (p.bytes_per_second, (p.vm_a, record.cluster_id), (p.vm_b, record.cluster_id))
            for p in record.summary.heavy_pairs
        )
    reported.extend(
        (c.bytes_per_second, (c.vm_a, c.cluster_a), (c.vm_b, c.cluster_b))
        for c in resolve_external(records)
    )
    reported.sort(key=lambda r: (-r[0], r[1], r[2]))
    pairs = [_pair(rate, a, b, places) for rate, a, b in reported[:limit]]
    return {"pairs": pairs, "external": [], "unavailable": []}
