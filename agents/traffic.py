"""Measured VM-to-VM traffic (#16): what a node reports and what the manager keeps.

A node meters directed flows between MAC addresses on its bridges (``vmgrid.agents.node.
traffic_meter``) and reports them with its VMs' MACs, so that a flow whose other end is on
another node is resolved by the cluster manager, which sees every node's endpoints.
Rates are bytes per second averaged over the report's window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAC_PATTERN = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


@dataclass(frozen=True, slots=True)
class TrafficEndpoint:
    """One virtual NIC of a VM on the reporting node."""

    vm_uuid: str
    mac: str
    ip: str = ""


@dataclass(frozen=True, slots=True)
class TrafficFlow:
    """Bytes per second from `src_mac` to `dst_mac` over the window."""

    src_mac: str
    dst_mac: str
    bytes_per_second: int
    src_ip: str = ""
    dst_ip: str = ""


@dataclass(frozen=True, slots=True)
class TrafficMatrix:
    """A node's measured flows; ``available`` False means "cannot measure", never "none"."""

    available: bool
    unavailable_reason: str = ""
    window_ms: int = 0
    endpoints: tuple[TrafficEndpoint, ...] = ()
    flows: tuple[TrafficFlow, ...] = ()

    @classmethod
    def unavailable(cls, reason: str) -> TrafficMatrix:
        return cls(False, reason)
