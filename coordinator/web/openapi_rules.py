"""The OpenAPI description of the placement-rule routes (merged into openapi.py)."""

from __future__ import annotations

from vmgrid.coordinator.web.openapi_parts import NO_CLUSTER as _NO_CLUSTER
from vmgrid.coordinator.web.openapi_parts import Json
from vmgrid.coordinator.web.openapi_parts import error_responses as _errors
from vmgrid.coordinator.web.openapi_parts import get as _get
from vmgrid.coordinator.web.openapi_parts import json_content as _json
from vmgrid.coordinator.web.openapi_parts import ref as _ref


def _array(name: str) -> Json:
    return {"type": "array", "items": _ref(name)}


def rule_paths() -> Json:
    strings = {"type": "array", "items": {"type": "string"}}
    rules = {"type": "object", "required": ["rules"], "properties": {"rules": _array("Rule")}}
    check = {
        "type": "object",
        "required": ["violations", "impossible", "checked"],
        "properties": {
            "violations": _array("RuleViolation"),
            "impossible": _array("RuleViolation"),
            "checked": {"type": "integer"},
        },
    }
    add = {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 128},
            "kind": {"type": "string", "description": "spread, gather, ban, fence, among, ..."},
            "vms": {**strings, "description": "names or uuids"},
            "nodes": strings,
            "parameters": {"type": "object", "description": "the kind's other fields"},
        },
    }
    post: Json = {
        "summary": "Add a placement rule; refused (nothing stored) when it names an unknown "
        "VM or node, is malformed or contradicts a rule in force." + _NO_CLUSTER,
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": _json(add)},
        "responses": {
            "201": {"description": "stored", "content": _json(_ref("Rule"))},
            **_errors(400, 401, 403, 404, 409, 415),
        },
    }
    delete: Json = {
        "summary": "Delete an operator rule (a job's rules go with the job)." + _NO_CLUSTER,
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": strings["items"]}],
        "responses": {
            "200": {"description": "deleted", "content": _json(_ref("Rule"))},
            **_errors(400, 401, 403, 404, 409),
        },
    }
    return {
        "/rules": {
            **_get(
                "Placement rules with their origin and whether each holds." + _NO_CLUSTER,
                rules,
                errors=(400, 401, 409),
            ),
            "post": post,
        },
        "/rules/check": _get(
            "Rules the current placement violates, and rules no placement can keep, with "
            "reasons." + _NO_CLUSTER,
            check,
            errors=(400, 401, 409),
        ),
        "/rules/{id}": {"delete": delete},
    }


RULE = {
    "type": "object",
    "required": ["id", "kind", "origin", "vms", "nodes", "parameters", "state"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "origin": {"type": "string", "description": "operator, or job:<id> for a job's rule"},
        "vms": {"type": "array", "items": {"type": "string"}, "description": "VM uuids"},
        "vm_names": {"type": "array", "items": {"type": "string"}},
        "nodes": {"type": "array", "items": {"type": "string"}},
        "parameters": {"type": "object"},
        "label": {"type": "string"},
        "created_at_unix_ms": {"type": "integer"},
        "state": {"type": "string", "enum": ["holds", "violated", "impossible", "deleted"]},
        "reason": {"type": "string", "description": "why it does not hold; empty when it does"},
    },
}
VIOLATION = {
    "type": "object",
    "required": ["rule", "reason"],
    "properties": {"rule": RULE, "reason": {"type": "string"}},
}
