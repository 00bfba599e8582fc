"""OpenAPI parts of the explanation, N+1 and pressure views (merged by openapi.py)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_STALL = {
    "type": "object",
    "nullable": True,
    "description": "null: this resource's pressure is not reported (not zero)",
    "properties": {
        "some_avg10": {"type": "number", "description": "percent of the last 10 s"},
        "full_avg10": {"type": "number"},
        "some_total_us": {"type": "integer"},
        "full_total_us": {"type": "integer"},
    },
}
PRESSURE = {
    "type": "object",
    "description": "Pressure-stall information (PSI); available false on test-driver nodes "
    "and for VMs whose cgroup the agent cannot read",
    "required": ["available", "cpu", "memory", "io"],
    "properties": {"available": {"type": "boolean"}, "cpu": _STALL, "memory": _STALL, "io": _STALL},
}
EXPLANATION = {
    "type": "object",
    "required": ["vm", "node", "text", "last_action", "rules", "next"],
    "properties": {
        "vm": {"type": "string", "description": "VM uuid"},
        "name": {"type": "string"},
        "node": {"type": "string"},
        "text": {"type": "string", "description": "the whole explanation, in sentences"},
        "last_action": {
            "type": "object",
            "nullable": True,
            "description": "the journal's latest migration, start or resume of the VM; null "
            "when none (it was there when the manager first saw it)",
            "properties": {
                "plan": {"type": "string"},
                "origin": {"type": "string", "description": "loop, operator, ha, ..."},
                "kind": {"type": "string"},
                "src": {"type": "string", "nullable": True},
                "dst": {"type": "string", "nullable": True},
                "reason": {"type": "string"},
                "state": {"type": "string"},
                "message": {"type": "string"},
                "at_unix_ms": {"type": "integer"},
            },
        },
        "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}},
        "next": {"type": "string", "description": "what would move the VM next"},
    },
}
N_PLUS_ONE = {
    "type": "object",
    "required": ["ok", "nodes"],
    "properties": {
        "ok": {"type": "boolean", "description": "every node passes"},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["node", "ok", "vms", "unplaced", "reason"],
                "properties": {
                    "node": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "vms": {"type": "integer", "description": "HA VMs (job members) on it"},
                    "unplaced": {"type": "array", "items": {"type": "string"}},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}

SCHEMAS = {"Pressure": PRESSURE, "Explanation": EXPLANATION, "NPlusOne": N_PLUS_ONE}


def insight_paths(get: Any) -> Json:
    """GET /vms/{id}/explain and GET /capacity/n-plus-one; `get` is openapi.py's _get."""
    on_grid = " On the grid coordinator's dashboard: 409, ask the cluster manager."
    explain = get(
        "Why a VM (uuid or name) is where it is: the last action that placed it, with its "
        "reason and time, the rules that name it and what would move it next." + on_grid,
        {"$ref": "#/components/schemas/Explanation"},
        [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        errors=(400, 401, 404, 409),
    )
    n_plus_one = get(
        "For each node: could the cluster lose it and restart its HA VMs (job members) on the "
        "others, with room and every rule kept?" + on_grid,
        {"$ref": "#/components/schemas/NPlusOne"},
        errors=(400, 401, 409),
    )
    return {"/vms/{id}/explain": explain, "/capacity/n-plus-one": n_plus_one}
