"""Building blocks of the OpenAPI document (openapi.py and its per-area parts): the error
shape, references, JSON bodies and a GET operation."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
NO_CLUSTER = " On the grid coordinator's dashboard: 409, rules are held by each cluster manager."


ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "field"],
            "properties": {
                "message": {"type": "string", "description": "one line naming the bad value"},
                "field": {"type": "string", "description": "the offending field, or empty"},
            },
        }
    },
}


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def error_responses(*codes: int) -> Json:
    words = {
        400: "bad input",
        401: "missing or unknown token",
        403: "read-only token, or a cross-site request",
        404: "no such node, VM, plan, job or rule",
        409: "conflicts with the current state",
        415: "POST or PUT without application/json",
        504: "the agent did not answer in time",
    }
    return {str(c): {"description": words[c], "content": json_content(ref("Error"))} for c in codes}


def get(
    summary: str,
    schema: Json,
    params: list[Json] | None = None,
    errors: tuple[int, ...] = (400, 401),
) -> Json:
    op: Json = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "OK", "content": json_content(schema)},
            **error_responses(*errors),
        },
    }
    if params:
        op["parameters"] = params
    return {"get": op}
