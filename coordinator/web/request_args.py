"""What the API's handlers share: the application keys, and the parsing of request bodies
and path ids (each bad value answered with a 400 naming the field)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.backend import Backend
from vmgrid.coordinator.web.errors import bad_request

API = "/api/v1"
BACKEND: web.AppKey[Backend] = web.AppKey("backend")
TOKENS: web.AppKey[Tokens] = web.AppKey("tokens")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_NAME = 128


async def body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the request body is not valid JSON", "body") from None
    except RecursionError:
        raise bad_request("the request body is JSON nested too deep", "body") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "body")
    return body


def text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise bad_request(
            f"{field} must be a non-empty string of at most {MAX_NAME} characters (got {value!r})",
            field,
        )
    return value.strip()


def path_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not value or len(value) > MAX_NAME:
        raise bad_request(f"id must be 1 to {MAX_NAME} characters", "id")
    return value
