"""What a cluster tells the grid: its capacity, usage, movable VMs and health.

Built from a ClusterSnapshot for the coordinator uplink; lost nodes count in the health figures
but not in capacity, since nothing can be placed on them.
"""

from __future__ import annotations

from vmgrid.agents import grid_model as grid
from vmgrid.agents.cluster.state.solver_view import utilisation
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus
from vmgrid.agents.cluster.state.traffic import ClusterTraffic
from vmgrid.agents.model import MOVABLE_STATES


def cluster_hello(
    snapshot: ClusterSnapshot, endpoint: str, migration_uri: str = ""
) -> grid.ClusterHello:
    capacity, _ = _totals(snapshot)
    return grid.ClusterHello(
        cluster_id=snapshot.cluster_id,
        capacity=capacity,
        node_count=len(snapshot.nodes),
        endpoint=endpoint,
        manager_version="0.1.0",
        migration_uri=migration_uri,
    )


MAX_EXTERNAL_FLOWS = 10_000
"""Heaviest external flows one summary carries (the coordinator resolves them)."""
HEAVY_PAIRS = 20
"""Heaviest pairs within the cluster one summary carries, for the grid dashboard."""


def cluster_summary(
    snapshot: ClusterSnapshot,
    overload_threshold: float = 0.85,
    traffic: ClusterTraffic | None = None,
) -> grid.ClusterSummary:
    """The summary for one uplink period (the uplink sets sequence and send time); with the
    cluster's measured `traffic`, its external flows, their VMs' addresses and heavy pairs."""
    capacity, usage = _totals(snapshot)
    movable = tuple(
        grid.VmDemand(
            vm_uuid=vm.uuid,
            name=vm.name,
            node_id=node_id,
            cpu_millicores=vm.cpu_used_millicores,
            memory_bytes=vm.memory_allocated_bytes,
            network_bps=(vm.net_rx_bytes_per_second + vm.net_tx_bytes_per_second) * 8,
        )
        for view in snapshot.nodes
        if view.status is NodeStatus.CONNECTED  # a lost node's VMs may already run elsewhere
        for node_id, vm in ((view.node_id, vm) for vm in view.vms)
        if vm.state in MOVABLE_STATES
    )
    lost = sum(1 for v in snapshot.nodes if v.status is NodeStatus.LOST)
    hot = sum(
        1
        for v in snapshot.nodes
        if v.status is NodeStatus.CONNECTED and utilisation(v) > overload_threshold
    )
    cpu = usage.cpu_millicores / max(1, capacity.cpu_millicores)
    memory = usage.memory_bytes / max(1, capacity.memory_bytes)
    if max(cpu, memory) > overload_threshold:
        state, message = grid.HealthState.OVERLOADED, f"cpu {cpu:.0%}, memory {memory:.0%}"
    elif lost:
        state, message = grid.HealthState.DEGRADED, f"{lost} node(s) lost"
    else:
        state, message = grid.HealthState.HEALTHY, f"{hot} node(s) above threshold" if hot else ""
    health = grid.ClusterHealth(state, len(snapshot.nodes), lost, hot, message)
    flows: list[grid.ExternalFlow] = []
    addresses: list[grid.VmAddress] = []
    pairs: list[grid.VmPairTraffic] = []
    if traffic is not None:
        resolved = traffic.resolve()
        flows = resolved.external[:MAX_EXTERNAL_FLOWS]
        kept = {f.vm_uuid for f in flows}
        addresses = [a for a in resolved.addresses if a.vm_uuid in kept]
        pairs = [
            grid.VmPairTraffic(p.vm_a, p.vm_b, p.bytes_per_second)
            for p in resolved.pairs[:HEAVY_PAIRS]
        ]
    return grid.ClusterSummary(
        sequence=0,
        sent_at_unix_ns=0,
        capacity=capacity,
        usage=usage,
        movable_vms=movable,
        health=health,
        external_flows=tuple(flows),
        vm_addresses=tuple(addresses),
        heavy_pairs=tuple(pairs),
    )


def _totals(snapshot: ClusterSnapshot) -> tuple[grid.Capacity, grid.Capacity]:
    live = [v for v in snapshot.nodes if v.status is NodeStatus.CONNECTED]
    capacity = grid.Capacity(
        cpu_millicores=sum(v.capacity.cpu_millicores for v in live),
        memory_bytes=sum(v.capacity.memory_bytes for v in live),
        network_bps=sum(v.capacity.nic_bandwidth_bps for v in live),
    )
    usage = grid.Capacity(
        cpu_millicores=sum(v.usage.cpu_used_millicores for v in live if v.usage),
        memory_bytes=sum(
            vm.memory_allocated_bytes for v in live for vm in v.vms if vm.state in MOVABLE_STATES
        ),
        network_bps=sum(
            (v.usage.net_rx_bytes_per_second + v.usage.net_tx_bytes_per_second) * 8
            for v in live
            if v.usage
        ),
    )
    return capacity, usage
