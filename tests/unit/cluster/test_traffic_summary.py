"""The cross-cluster part of the measured traffic (#16): flows whose peer is none of the
cluster's VMs are kept as external flows and reach the coordinator in the cluster summary, with
the addresses of the VMs that have them and the cluster's heaviest pairs."""

from __future__ import annotations

from vmgrid.agents import grid_model as grid
from vmgrid.agents.cluster.grid.summary import cluster_summary
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.cluster.state.traffic import ClusterTraffic
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

GIB = 2**30
SECOND = 1_000_000_000
MBIT = 125_000  # bytes/s
ROUTER = "52:54:00:ff:ff:ff"
REMOTE_IP = "10.9.0.7"
STRETCHED = "52:54:00:aa:00:01"  # a VM of another cluster on a layer 2 stretched to here


def mac(vm: str) -> str:
    return f"52:54:00:00:00:{ord(vm):02x}"


def ends(vms: str) -> tuple[TrafficEndpoint, ...]:
    return tuple(TrafficEndpoint(f"uuid-{v}", mac(v), f"10.0.0.{ord(v)}") for v in vms)


def n1_matrix() -> TrafficMatrix:
    """Node n1 holds a and b: a talks to b, to a peer behind the router (both directions) and
    to a stretched peer; b talks to c on n2."""
    flows = (
        TrafficFlow(mac("a"), mac("b"), 3 * MBIT),
        TrafficFlow(mac("a"), ROUTER, 20 * MBIT, dst_ip=REMOTE_IP),
        TrafficFlow(ROUTER, mac("a"), 5 * MBIT, src_ip=REMOTE_IP),
        TrafficFlow(STRETCHED, mac("a"), 2 * MBIT),
        TrafficFlow(mac("b"), mac("c"), 7 * MBIT),
    )
    return TrafficMatrix(True, "", 30_000, ends("ab"), flows)


def n2_matrix() -> TrafficMatrix:
    return TrafficMatrix(True, "", 30_000, ends("c"), (TrafficFlow(mac("b"), mac("c"), 6 * MBIT),))


def test_flows_to_no_vm_of_the_cluster_become_external_flows_with_their_vms_addresses() -> None:
    traffic = ClusterTraffic()
    traffic.apply("n1", n1_matrix())
    traffic.apply("n2", n2_matrix())
    flows, addresses = traffic.external()
    assert flows == [
        grid.ExternalFlow("uuid-a", ROUTER, REMOTE_IP, 25 * MBIT),  # both directions added
        grid.ExternalFlow("uuid-a", STRETCHED, "", 2 * MBIT),
    ]
    assert addresses == [grid.VmAddress("uuid-a", mac("a"), f"10.0.0.{ord('a')}")]
    assert [(p.vm_a, p.vm_b, p.bytes_per_second) for p in traffic.pairs()] == [
        ("uuid-b", "uuid-c", 7 * MBIT),  # seen by both nodes: the larger figure
        ("uuid-a", "uuid-b", 3 * MBIT),
    ]


def test_the_summary_carries_external_flows_addresses_and_heavy_pairs() -> None:
    now = [1_000 * SECOND]
    state = ClusterState(EventBus("c1"), clock_ns=lambda: now[0])
    for node_id, vms, matrix in (("n1", "ab", n1_matrix()), ("n2", "c", n2_matrix())):
        identity = NodeIdentity(node_id, node_id, f"test:///{node_id}", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
        usage = tuple(VmUsage(f"uuid-{v}", v, VmState.RUNNING, 1, 500, GIB, GIB) for v in vms)
        host = HostUsage(500 * len(vms), len(vms) * GIB, 8 * GIB)
        state.apply_report(node_id, NodeReport(now[0], 1, host, usage, traffic=matrix))
    summary = cluster_summary(state.snapshot(), traffic=state.traffic)
    assert [(f.vm_uuid, f.peer_ip, f.bytes_per_second) for f in summary.external_flows] == [
        ("uuid-a", REMOTE_IP, 25 * MBIT),
        ("uuid-a", "", 2 * MBIT),
    ]
    assert [a.vm_uuid for a in summary.vm_addresses] == ["uuid-a"]
    assert summary.heavy_pairs == (
        grid.VmPairTraffic("uuid-b", "uuid-c", 7 * MBIT),
        grid.VmPairTraffic("uuid-a", "uuid-b", 3 * MBIT),
    )
    assert cluster_summary(state.snapshot()).external_flows == ()  # no traffic given: none
