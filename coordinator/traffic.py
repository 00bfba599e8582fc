"""Cross-cluster VM pairs from what clusters measure (#16).

A cluster resolves the flows between its own VMs; a flow whose peer is none of its VMs comes
up in its summary as an external flow (local VM, peer MAC and IP), with the addresses of its
VMs that have such flows. The coordinator, which sees every cluster, resolves each peer
against every other cluster's addresses: by MAC (a layer-2 network stretched across clusters),
else by IPv4 address. An address claimed by VMs of two clusters is ambiguous and resolves to
nothing, as does a peer of the reporting cluster itself. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vmgrid.agents import grid_model as m


@dataclass(frozen=True, slots=True, order=True)
class CrossPair:
    """Traffic between VMs of two clusters (``vm_a < vm_b``), both directions, in bytes/s."""

    bytes_per_second: int
    vm_a: str
    cluster_a: str
    vm_b: str
    cluster_b: str


Owner = tuple[str, str]  # (vm uuid, cluster id)


def _directory(records: Iterable[m.ClusterRecord]) -> tuple[dict[str, Owner], dict[str, Owner]]:
    """MAC -> owner and IP -> owner over every cluster; ambiguous addresses left out."""
    by_mac: dict[str, set[Owner]] = {}
    by_ip: dict[str, set[Owner]] = {}
    for record in records:
        if record.summary is None:
            continue
        for address in record.summary.vm_addresses:
            owner = (address.vm_uuid, record.cluster_id)
            by_mac.setdefault(address.mac, set()).add(owner)
            if address.ip:
                by_ip.setdefault(address.ip, set()).add(owner)
    return (
        {mac: next(iter(o)) for mac, o in by_mac.items() if len(o) == 1},
        {ip: next(iter(o)) for ip, o in by_ip.items() if len(o) == 1},
    )


def resolve_external(records: Sequence[m.ClusterRecord]) -> list[CrossPair]:
    """The clusters' external flows resolved into cross-cluster pairs, heaviest first. Both
    ends usually report a pair (each sees both directions): the larger figure is kept."""
    by_mac, by_ip = _directory(records)
    pairs: dict[tuple[str, str], CrossPair] = {}
    for record in records:
        if record.summary is None:
            continue
        here = record.cluster_id
        for flow in record.summary.external_flows:
            peer = by_mac.get(flow.peer_mac) or by_ip.get(flow.peer_ip)
            if peer is None or peer[1] == here:
                continue
            ends = sorted([(flow.vm_uuid, here), peer])
            (vm_a, ca), (vm_b, cb) = ends
            pair = CrossPair(flow.bytes_per_second, vm_a, ca, vm_b, cb)
            known = pairs.get((vm_a, vm_b))
            if known is None or known.bytes_per_second < pair.bytes_per_second:
                pairs[(vm_a, vm_b)] = pair
    return sorted(pairs.values(), reverse=True)
