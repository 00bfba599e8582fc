"""The OpenAPI description of ``GET /history`` and ``GET /timeline`` (merged into openapi.py)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_NUMBERS = {"type": "array", "items": {"type": "number", "nullable": True}}
HISTORY = {
    "type": "object",
    "required": ["minutes", "bucket_s", "buckets", "times_unix_ms", "series"],
    "properties": {
        "node": {"type": "string", "description": "the node asked for (or vm)"},
        "vm": {"type": "string", "description": "the VM asked for (or node)"},
        "minutes": {"type": "integer"},
        "bucket_s": {"type": "integer", "description": "seconds averaged into each bucket"},
        "buckets": {
            "type": "integer",
            "description": "how many of the first points are bucket means; the rest are the "
            "recent samples, one per report",
        },
        "times_unix_ms": {"type": "array", "items": {"type": "integer"}},
        "series": {
            "type": "object",
            "description": "one array per series, aligned with times_unix_ms: "
            "cpu_used_millicores, memory_used_bytes, net_rx_bytes_per_second, "
            "net_tx_bytes_per_second (nodes also memory_total_bytes and any other numeric "
            "field they report), pressure_cpu_some_avg10, pressure_memory_some_avg10, "
            "pressure_io_some_avg10 (PSI, percent); null where a value was unavailable (all "
            "pressure on an agent that reads none, e.g. the libvirt test driver)",
            "additionalProperties": _NUMBERS,
        },
    },
}
TIMELINE = {
    "type": "object",
    "required": ["plans"],
    "properties": {
        "plans": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "status", "summary", "progress", "actions"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string"},
                    "summary": {"type": "string"},
                    "created_unix_ms": {"type": "integer"},
                    "progress": {"type": "number", "minimum": 0, "maximum": 1},
                    "actions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "kind": {"type": "string"},
                                "subject": {"type": "string"},
                                "name": {"type": "string"},
                                "src": {"type": "string", "nullable": True},
                                "dst": {"type": "string", "nullable": True},
                                "state": {"type": "string"},
                                "progress": {"type": "number"},
                                "reason": {"type": "string"},
                                "message": {"type": "string"},
                                "simulated": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        }
    },
}


def history_paths(get: Any, query: Any) -> Json:
    """The two paths, built with openapi.py's own `_get` and `_query` helpers."""
    minutes = {
        "name": "minutes",
        "in": "query",
        "required": False,
        "description": "how far back (default 60, the span kept)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 60},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "how many journaled plans (default 20)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
    }
    return {
        "/history": get(
            "The last hour of one node's or one VM's CPU, memory and network (give exactly one "
            "of node and vm): bucket means, then the recent samples",
            HISTORY,
            [query("node", "a node id"), query("vm", "a VM uuid"), minutes],
            errors=(400, 401, 404),
        ),
        "/timeline": get(
            "Plans waiting for approval, running and recent, newest first, with each action's "
            "state, progress and reason",
            TIMELINE,
            [limit],
        ),
    }
