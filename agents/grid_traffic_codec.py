"""Measured traffic in a cluster summary (grid.proto): external flows, VM addresses, heavy pairs.

Decoding applies the node link's checks (MACs in lower-case colon form, IPv4 addresses, rates
in [0, MAX_CAPACITY]) and names the bad field, so the coordinator never resolves a bad address.
"""

from __future__ import annotations

from vmgrid.agents import grid_model as m
from vmgrid.agents.common.node_codec.traffic import check_ip, check_mac
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import MAX_CAPACITY, MAX_ID_CHARS, shown
from vmgrid.v1 import grid_pb2


def _vm(field: str, value: str) -> str:
    if not value or len(value) > MAX_ID_CHARS:
        raise MalformedMessage(field, f"{shown(value)} is not a VM uuid")
    return value


def _rate(field: str, value: int) -> int:
    if not 0 <= value <= MAX_CAPACITY:
        raise MalformedMessage(field, f"{value} is not in [0, {MAX_CAPACITY}]")
    return value


def decode_summary_traffic(
    wire: grid_pb2.ClusterSummary,
) -> tuple[tuple[m.ExternalFlow, ...], tuple[m.VmAddress, ...], tuple[m.VmPairTraffic, ...]]:
    """The summary's external flows, VM addresses and heavy pairs, each value checked."""
    flows = []
    for i, f in enumerate(wire.external_flows):
        at = f"summary.external_flows[{i}]"
        flows.append(
            m.ExternalFlow(
                _vm(f"{at}.vm_uuid", f.vm_uuid),
                check_mac(f"{at}.peer_mac", f.peer_mac),
                check_ip(f"{at}.peer_ip", f.peer_ip),
                _rate(f"{at}.bytes_per_second", f.bytes_per_second),
            )
        )
    addresses = []
    for i, a in enumerate(wire.vm_addresses):
        at = f"summary.vm_addresses[{i}]"
        addresses.append(
            m.VmAddress(
                _vm(f"{at}.vm_uuid", a.vm_uuid),
                check_mac(f"{at}.mac", a.mac),
                check_ip(f"{at}.ip", a.ip),
            )
        )
    pairs = []
    for i, p in enumerate(wire.heavy_pairs):
        at = f"summary.heavy_pairs[{i}]"
        vm_a, vm_b = _vm(f"{at}.vm_a", p.vm_a), _vm(f"{at}.vm_b", p.vm_b)
        if vm_a == vm_b:
            raise MalformedMessage(f"{at}.vm_b", f"{shown(vm_b)} is vm_a too; a pair has two VMs")
        pairs.append(
            m.VmPairTraffic(vm_a, vm_b, _rate(f"{at}.bytes_per_second", p.bytes_per_second))
        )
    return tuple(flows), tuple(addresses), tuple(pairs)


def encode_summary_traffic(summary: m.ClusterSummary, wire: grid_pb2.ClusterSummary) -> None:
    for f in summary.external_flows:
        wire.external_flows.add(
            vm_uuid=f.vm_uuid,
            peer_mac=f.peer_mac,
            peer_ip=f.peer_ip,
            bytes_per_second=min(f.bytes_per_second, MAX_CAPACITY),
        )
    for a in summary.vm_addresses:
        wire.vm_addresses.add(vm_uuid=a.vm_uuid, mac=a.mac, ip=a.ip)
    for p in summary.heavy_pairs:
        wire.heavy_pairs.add(
            vm_a=p.vm_a, vm_b=p.vm_b, bytes_per_second=min(p.bytes_per_second, MAX_CAPACITY)
        )
