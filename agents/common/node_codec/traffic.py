"""Measured traffic on the node link: node.proto TrafficMatrix <-> traffic.TrafficMatrix.

Decoding bounds every part: at most MAX_ITEMS endpoints and flows, MACs in lower-case
colon form, IPs that parse as IPv4, rates in [0, MAX_CAPACITY], a window when available.
"""

from __future__ import annotations

import ipaddress

from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.traffic import MAC_PATTERN, TrafficEndpoint, TrafficFlow, TrafficMatrix
from vmgrid.agents.wire_limits import MAX_CAPACITY, MAX_ID_CHARS, MAX_ITEMS, shown
from vmgrid.v1 import node_pb2

MAX_WINDOW_MS = 3_600_000
"""Longest averaging window accepted: one hour."""


def encode_traffic(matrix: TrafficMatrix, msg: node_pb2.TrafficMatrix) -> None:
    msg.available = matrix.available
    msg.unavailable_reason = matrix.unavailable_reason
    msg.window_ms = matrix.window_ms
    for e in matrix.endpoints:
        msg.endpoints.add(vm_uuid=e.vm_uuid, mac=e.mac, ip=e.ip)
    for f in matrix.flows:
        msg.flows.add(
            src_mac=f.src_mac,
            dst_mac=f.dst_mac,
            src_ip=f.src_ip,
            dst_ip=f.dst_ip,
            bytes_per_second=f.bytes_per_second,
        )


def check_mac(path: str, value: str) -> str:
    if not MAC_PATTERN.fullmatch(value):
        raise MalformedMessage(path, f"{shown(value)} is not a MAC address like 52:54:00:12:34:56")
    return value


def check_ip(path: str, value: str) -> str:
    if not value:
        return ""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise MalformedMessage(path, f"{shown(value)} is not an IPv4 address") from None
    return value


def decode_traffic(path: str, msg: node_pb2.TrafficMatrix) -> TrafficMatrix:
    """The matrix in `msg`; MalformedMessage names `path`.<field> on a bad value."""
    if not msg.available:
        if msg.endpoints or msg.flows:
            raise MalformedMessage(path, "an unavailable matrix carries no endpoints or flows")
        return TrafficMatrix.unavailable(msg.unavailable_reason or "not measured")
    if not 0 < msg.window_ms <= MAX_WINDOW_MS:
        raise MalformedMessage(
            f"{path}.window_ms", f"{msg.window_ms} is not in [1, {MAX_WINDOW_MS}]"
        )
    for name in ("endpoints", "flows"):
        count = len(getattr(msg, name))
        if count > MAX_ITEMS:
            raise MalformedMessage(f"{path}.{name}", f"{count} entries; at most {MAX_ITEMS}")
    endpoints = []
    for i, e in enumerate(msg.endpoints):
        at = f"{path}.endpoints[{i}]"
        if not e.vm_uuid or len(e.vm_uuid) > MAX_ID_CHARS:
            raise MalformedMessage(f"{at}.vm_uuid", f"{shown(e.vm_uuid)} is not a VM uuid")
        endpoints.append(
            TrafficEndpoint(e.vm_uuid, check_mac(f"{at}.mac", e.mac), check_ip(f"{at}.ip", e.ip))
        )
    flows = []
    for i, f in enumerate(msg.flows):
        at = f"{path}.flows[{i}]"
        if not 0 <= f.bytes_per_second <= MAX_CAPACITY:
            raise MalformedMessage(
                f"{at}.bytes_per_second", f"{f.bytes_per_second} is not in [0, {MAX_CAPACITY}]"
            )
        flows.append(
            TrafficFlow(
                check_mac(f"{at}.src_mac", f.src_mac),
                check_mac(f"{at}.dst_mac", f.dst_mac),
                f.bytes_per_second,
                check_ip(f"{at}.src_ip", f.src_ip),
                check_ip(f"{at}.dst_ip", f.dst_ip),
            )
        )
    return TrafficMatrix(True, "", msg.window_ms, tuple(endpoints), tuple(flows))
