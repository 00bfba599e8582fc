"""The OpenAPI description of ``GET /policy`` and ``PUT /policy`` (see openapi.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vmgrid.agents.cluster.decide.operator_policy import HELP, SETTABLE, Aggressiveness

Json = dict[str, Any]
_INTS = {"migrations_per_cycle", "migrations_per_hour", "migrations_per_node_hour"}


def _value_schema(key: str) -> Json:
    if key == "aggressiveness":
        return {
            "type": "string",
            "enum": [a.value for a in Aggressiveness],
            "description": HELP[key],
        }
    kind = "integer" if key in _INTS else "number"
    return {"type": kind, "minimum": 0, "description": HELP[key]}


POLICY_SCHEMA: Json = {
    "type": "object",
    "required": ["cluster", *SETTABLE, "explicit"],
    "properties": {
        "cluster": {"type": "string", "description": "the cluster whose decision loop it is"},
        **{key: _value_schema(key) for key in SETTABLE},
        "explicit": {
            "type": "array",
            "items": {"type": "string"},
            "description": "keys set explicitly (they override the aggressiveness level)",
        },
    },
}
"""The operator policy as ``GET /policy`` answers it."""

_CHANGES: Json = {
    "type": "object",
    "minProperties": 1,
    "description": 'Keys to change, each a value of its type or its text; "default" makes a '
    "key follow the aggressiveness level again. A bad value is refused with 400 naming it, "
    "and nothing changes.",
    "properties": {key: {"oneOf": [_value_schema(key), {"type": "string"}]} for key in SETTABLE},
    "additionalProperties": False,
}

_CLUSTER_PARAM: Json = {
    "name": "cluster",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "on the grid coordinator's dashboard: which cluster (reading defaults to "
    "the first connected one; changing needs it when several are connected)",
}


def policy_paths(ok: Json, errors_of: Callable[..., Json]) -> Json:
    """The ``/policy`` path item; `ok` is the 200 content, `errors_of` maps status codes to
    error responses (openapi.py's)."""
    errors = errors_of(400, 401, 404, 409)
    changing_errors = errors_of(400, 401, 403, 404, 409, 415)
    return {
        "/policy": {
            "get": {
                "summary": "The decision loop's operator policy: utilisation band per resource, "
                "migration budget, minimum times before a VM moves again or back.",
                "security": [{"bearer": []}],
                "parameters": [_CLUSTER_PARAM],
                "responses": {"200": {"description": "OK", "content": ok}, **errors},
            },
            "put": {
                "summary": "Change keys of the operator policy (operator token); kept across "
                "restarts and published as a policy_changed event.",
                "security": [{"bearer": []}],
                "parameters": [_CLUSTER_PARAM],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _CHANGES}},
                },
                "responses": {"200": {"description": "changed", "content": ok}, **changing_errors},
            },
        }
    }
