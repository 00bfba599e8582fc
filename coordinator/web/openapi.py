"""The OpenAPI 3 description of the dashboard's API, written by hand beside the routes in app.py.

tests/integration/test_dashboard_api.py checks that every route of the app is described here
and schemathesis drives the API from this document.
"""

from __future__ import annotations

from typing import Any

from vmgrid.coordinator.web.openapi_history import history_paths
from vmgrid.coordinator.web.openapi_insight import SCHEMAS, insight_paths
from vmgrid.coordinator.web.openapi_parts import ERROR as _ERROR
from vmgrid.coordinator.web.openapi_parts import Json
from vmgrid.coordinator.web.openapi_parts import error_responses as _errors
from vmgrid.coordinator.web.openapi_parts import get as _get
from vmgrid.coordinator.web.openapi_parts import json_content as _json
from vmgrid.coordinator.web.openapi_parts import ref as _ref
from vmgrid.coordinator.web.openapi_policy import POLICY_SCHEMA, policy_paths
from vmgrid.coordinator.web.openapi_rules import RULE as _RULE
from vmgrid.coordinator.web.openapi_rules import VIOLATION as _VIOLATION
from vmgrid.coordinator.web.openapi_rules import rule_paths as _rule_paths
from vmgrid.coordinator.web.openapi_traffic import SCHEMAS as TRAFFIC_SCHEMAS
from vmgrid.coordinator.web.openapi_traffic import traffic_paths

_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _action(summary: str, ok: str, statuses: tuple[int, ...], body: Json | None = None) -> Json:
    done = {"description": "done", "content": _json({"type": "object"})}
    op: Json = {"summary": summary, "security": [{"bearer": []}], "parameters": _ID}
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    op["responses"] = {ok: done, **_errors(*statuses)}
    return op


def _delete(summary: str) -> Json:
    return {"delete": _action(summary, "200", (400, 401, 403, 404, 409))}


def _post(summary: str, body: Json, ok: str = "200", extra: tuple[int, ...] = ()) -> Json:
    return {"post": _action(summary, ok, (400, 401, 403, 404, 409, 415, *extra), body)}


def _query(name: str, description: str, **schema: Any) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


_EMPTY = {"type": "object", "description": "no fields needed; send {}"}
_LIST = {"type": "array", "items": {"type": "object"}}


def openapi_document() -> Json:
    """The whole description, as served at /api/v1/openapi.json."""
    vm_filters = [
        _query("node", "only VMs on this node"),
        _query("state", "only VMs in this state (running, paused, shut_off, ...)"),
        _query("name", "only VMs whose name contains this text"),
        _query("cluster", "only VMs of this cluster"),
    ]
    paths = {
        "/nodes": _get(
            "Nodes with capacity, usage and VM uuids",
            {
                "type": "object",
                "required": ["nodes"],
                "properties": {"nodes": {"type": "array", "items": _ref("Node")}},
            },
        ),
        "/vms": _get(
            "VMs with usage and migration progress",
            {
                "type": "object",
                "required": ["vms"],
                "properties": {"vms": {"type": "array", "items": _ref("Vm")}},
            },
            vm_filters,
        ),
        "/clusters": _get(
            "Clusters with totals", {"type": "object", "properties": {"clusters": _LIST}}
        ),
        "/topology": _get("Topology graph with link load", _ref("Topology")),
        "/plans": _get(
            "Pending recommendations, running plans and migrations",
            {
                "type": "object",
                "properties": {"pending": _LIST, "running": _LIST, "migrations": _LIST},
            },
        ),
        "/jobs": _get(
            "Submitted VMs and VM groups, newest first (pending, placing, starting, running, "
            "failed)",
            {
                "type": "object",
                "required": ["jobs"],
                "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
            },
        ),
        "/jobs/{id}": _get(
            "One job with its members and where they run",
            _ref("Job"),
            [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            errors=(400, 401, 404),
        ),
        "/events": _get(
            "Recent events, newest last",
            {"type": "object", "properties": {"events": _LIST}},
            [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "how many (default 100)",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                }
            ],
        ),
        "/events/stream": {
            "get": {
                "summary": "Live events as server-sent events (one JSON object per data line)",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(401),
                },
            }
        },
        "/vms/{id}/migrate": _post(
            "Migrate a VM to another node",
            {
                "type": "object",
                "required": ["destination"],
                "properties": {"destination": {"type": "string", "description": "node id"}},
            },
            ok="202",
        ),
        "/vms/{id}/suspend": _post("Suspend (pause) a VM", _EMPTY, extra=(504,)),
        "/vms/{id}/resume": _post("Resume a paused VM", _EMPTY, extra=(504,)),
        "/vms/{id}/snapshot": _post(
            "Take a named snapshot of a VM",
            {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 128}},
            },
            extra=(504,),
        ),
        "/nodes/{id}": _delete(
            "Forget a node whose agent is gone and that holds no VMs (a cluster manager's API; "
            "the grid's answers 409 naming the manager)"
        ),
        "/clusters/{id}": _delete(
            "Forget a disconnected cluster without VMs; its unfinished grid moves fail (the "
            "coordinator's API; a cluster's answers 409)"
        ),
        "/nodes/{id}/drain": _post("Drain a node: no new VMs, move its VMs away", _EMPTY),
        "/nodes/{id}/undrain": _post("Undo a drain", _EMPTY),
        "/plans/{id}/approve": _post("Approve a pending recommendation", _EMPTY),
        "/plans/{id}/reject": _post("Reject a pending recommendation", _EMPTY),
        **_rule_paths(),
        **policy_paths(_json(_ref("OperatorPolicy")), _errors),
        **insight_paths(_get),
        **history_paths(_get, _query),
        **traffic_paths(_get, _query),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "vmgrid dashboard API",
            "version": "1",
            "description": "Read with the read-only or operator token, act with the operator "
            "token, both as 'Authorization: Bearer'. POST and PUT bodies are application/json. Units: "
            "millicores, bytes, bytes per second, bits per second; migrations between "
            "test-driver nodes are marked simulated.",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Node": _NODE,
                "Vm": _VM,
                "Topology": _TOPOLOGY,
                "Job": _JOB,
                "Rule": _RULE,
                "RuleViolation": _VIOLATION,
                "OperatorPolicy": POLICY_SCHEMA,
                **SCHEMAS,
                **TRAFFIC_SCHEMAS,
            },
        },
        "paths": paths,
    }


_NODE = {
    "type": "object",
    "required": ["id", "status", "draining", "capacity", "vms"],
    "properties": {
        "id": {"type": "string"},
        "cluster": {"type": "string"},
        "status": {"type": "string", "enum": ["connected", "lost", "powered_off", "unknown"]},
        "draining": {"type": "boolean"},
        "degraded_reason": {"type": "string", "description": "empty unless libvirt is unreadable"},
        "simulated": {"type": "boolean"},
        "capacity": {"type": "object"},
        "usage": {"type": "object", "nullable": True, "description": "figures, Pressure"},
        "vms": {"type": "array", "items": {"type": "string"}},
    },
}
_VM = {
    "type": "object",
    "required": ["uuid", "name", "node", "state"],
    "properties": {
        "uuid": {"type": "string"},
        "name": {"type": "string"},
        "node": {"type": "string"},
        "state": {"type": "string"},
        "cpu_used_millicores": {"type": "integer"},
        "memory_allocated_bytes": {"type": "integer"},
        "simulated": {"type": "boolean"},
        "migration": {"type": "object", "nullable": True},
        "pressure": {"$ref": "#/components/schemas/Pressure"},
    },
}
_TOPOLOGY = {
    "type": "object",
    "required": ["nodes", "links"],
    "properties": {
        "nodes": _LIST,
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "source": {"type": "string"},
                    "target": {"type": "string"},
                    "bandwidth_mbps": {"type": "number"},
                    "utilisation": {"type": "number"},
                },
            },
        },
    },
}
_JOB = {
    "type": "object",
    "required": ["id", "name", "state", "cluster", "message", "members"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["pending", "placing", "starting", "running", "failed"],
        },
        "cluster": {"type": "string", "description": "chosen cluster; empty until placed"},
        "message": {"type": "string", "description": "progress, placement or failure reason"},
        "members": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "uuid": {"type": "string"},
                    "node": {"type": "string", "description": "empty until placed"},
                },
            },
        },
        "image": {"type": "string"},
        "vcpus": {"type": "integer"},
        "cpu_millicores": {"type": "integer"},
        "memory_mib": {"type": "integer"},
        "created_at_unix_ms": {"type": "integer"},
        "updated_at_unix_ms": {"type": "integer"},
    },
}
