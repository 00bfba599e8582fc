"""OpenAPI part of the measured-traffic view, GET /traffic (merged by openapi.py)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_END = {"type": "string"}
PAIR = {
    "type": "object",
    "description": "Two VMs and the traffic they exchange, both directions added",
    "required": [
        "vm_a", "name_a", "node_a", "cluster_a", "vm_b", "name_b", "node_b", "cluster_b",
        "bytes_per_second", "crosses",
    ],
    "properties": {
        **{f"{key}_{end}": _END for end in "ab" for key in ("vm", "name", "node", "cluster")},
        "bytes_per_second": {"type": "integer", "minimum": 0},
        "crosses": {
            "type": "string",
            "enum": ["none", "node", "cluster", "unknown"],
            "description": "what the pair's traffic crosses: nothing (same node), a node's "
            "NIC, the WAN between two clusters; unknown when a node is not known",
        },
    },
}  # fmt: skip
TRAFFIC = {
    "type": "object",
    "required": ["pairs", "external", "unavailable"],
    "properties": {
        "pairs": {"type": "array", "items": {"$ref": "#/components/schemas/TrafficPair"}},
        "external": {
            "type": "array",
            "description": "a cluster's flows whose peer is none of its VMs, as it reports "
            "them to the coordinator (empty on the grid's dashboard, which resolves them)",
            "items": {
                "type": "object",
                "required": ["vm", "name", "node", "peer_mac", "peer_ip", "bytes_per_second"],
                "properties": {
                    "vm": _END, "name": _END, "node": _END, "peer_mac": _END, "peer_ip": _END,
                    "bytes_per_second": {"type": "integer", "minimum": 0},
                },
            },
        },
        "unavailable": {
            "type": "array",
            "description": "nodes that measure nothing and why (the libvirt test driver, no "
            "nftables...): unavailable is not zero traffic",
            "items": {
                "type": "object",
                "required": ["node", "reason"],
                "properties": {"node": _END, "reason": _END},
            },
        },
    },
}  # fmt: skip
SCHEMAS = {"TrafficPair": PAIR, "Traffic": TRAFFIC}


def traffic_paths(get: Any, query: Any) -> Json:
    """GET /traffic; `get` and `query` are openapi.py's helpers."""
    op = get(
        "The heaviest measured VM pairs (#16): on a cluster manager its pairs across its nodes "
        "and its external flows; on the grid coordinator each cluster's heaviest pairs and the "
        "cross-cluster pairs it resolves from the clusters' external flows",
        {"$ref": "#/components/schemas/Traffic"},
        [query("limit", "how many pairs (and external flows), 1 to 500; 20 by default",
               pattern="^[0-9]+$")],
    )  # fmt: skip
    return {"/traffic": op}
