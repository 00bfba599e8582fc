"""The aiohttp application: JSON API under /api/v1, the dashboard page at /.

Every failure is ``{"error": {"message", "field"}}`` with a 4xx for anything a client caused;
the middleware turns aiohttp's own 404/405 and unexpected faults into that shape too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from aiohttp import web
from vmgrid.agents.errors import (
    AlreadyExists,
    CommandFailed,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    Unimplemented,
    VmgridError,
)
from vmgrid.agents.model import VmState
from vmgrid.coordinator.web.auth import Role, Tokens, authorize, check_same_site
from vmgrid.coordinator.web.backend import Backend, VmFilter
from vmgrid.coordinator.web.errors import ApiError, bad_request
from vmgrid.coordinator.web.openapi import openapi_document
from vmgrid.coordinator.web.request_args import API as API
from vmgrid.coordinator.web.request_args import BACKEND as BACKEND
from vmgrid.coordinator.web.request_args import MAX_NAME as MAX_NAME
from vmgrid.coordinator.web.request_args import TOKENS as TOKENS
from vmgrid.coordinator.web.request_args import Handler as Handler
from vmgrid.coordinator.web.request_args import body as _body
from vmgrid.coordinator.web.request_args import path_id as _path_id
from vmgrid.coordinator.web.request_args import text as _text
from vmgrid.coordinator.web.rule_routes import add_rule_and_policy_routes

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
VM_STATES = frozenset(state.value for state in VmState)


def build_app(backend: Backend, tokens: Tokens) -> web.Application:
    """The dashboard and API for `backend`, guarded by `tokens`."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=64 * 1024)
    app[BACKEND] = backend
    app[TOKENS] = tokens
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get(f"{API}/openapi.json", _openapi)
    app.router.add_get(f"{API}/info", _info)
    app.router.add_get(f"{API}/nodes", _nodes)
    app.router.add_get(f"{API}/vms", _vms)
    app.router.add_get(f"{API}/clusters", _clusters)
    app.router.add_delete(f"{API}/clusters/{{id}}", _forget_cluster)
    app.router.add_get(f"{API}/topology", _topology)
    app.router.add_get(f"{API}/plans", _plans)
    app.router.add_get(f"{API}/history", _history)
    app.router.add_get(f"{API}/timeline", _timeline)
    app.router.add_get(f"{API}/jobs", _jobs)
    app.router.add_get(f"{API}/jobs/{{id}}", _job)
    app.router.add_get(f"{API}/events", _events)
    app.router.add_get(f"{API}/events/stream", _stream)
    app.router.add_post(f"{API}/vms/{{id}}/migrate", _migrate)
    app.router.add_post(f"{API}/vms/{{id}}/suspend", _vm_action("suspend"))
    app.router.add_post(f"{API}/vms/{{id}}/resume", _vm_action("resume"))
    app.router.add_post(f"{API}/vms/{{id}}/snapshot", _snapshot)
    app.router.add_delete(f"{API}/nodes/{{id}}", _forget_node)
    app.router.add_post(f"{API}/nodes/{{id}}/drain", _drain(True))
    app.router.add_post(f"{API}/nodes/{{id}}/undrain", _drain(False))
    app.router.add_post(f"{API}/plans/{{id}}/approve", _plan_action("approve"))
    app.router.add_post(f"{API}/plans/{{id}}/reject", _plan_action("reject"))
    add_rule_and_policy_routes(app)
    app.router.add_get(f"{API}/vms/{{id}}/explain", _explain)
    app.router.add_get(f"{API}/capacity/n-plus-one", _n_plus_one)
    app.router.add_get(f"{API}/traffic", _traffic)
    return app


# ---- middleware -------------------------------------------------------------------------------

_STATUS_OF: list[tuple[type[VmgridError], int]] = [
    (InvalidArgument, 400),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (FailedPrecondition, 409),
    (CommandFailed, 409),
    (Unimplemented, 501),
    (Unavailable, 503),
    (DeadlineExceeded, 504),
]
"""HTTP status of each error a backend (or a cluster behind it) can raise; any other vmgrid
error is a conflict with the cluster's state (409), its message passed on."""


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{request.method} {request.path}: {exc.reason}"
        if "Allow" in exc.headers:
            message += f" (allowed: {exc.headers['Allow']})"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        body = {"error": {"message": message, "field": ""}}
        return web.json_response(body, status=exc.status, headers=headers)
    except VmgridError as exc:
        status = next((s for kind, s in _STATUS_OF if isinstance(exc, kind)), 409)
        return web.json_response({"error": {"message": str(exc), "field": ""}}, status=status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        body = {"error": {"message": "internal error; see the server log", "field": ""}}
        return web.json_response(body, status=500)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith(API + "/") or path in (f"{API}/openapi.json", f"{API}/info"):
        return await handler(request)
    if request.method in ("POST", "PUT", "DELETE"):
        authorize(request, request.app[TOKENS], Role.OPERATOR)
        check_same_site(request, json_body=request.method in ("POST", "PUT"))
    else:
        authorize(request, request.app[TOKENS], Role.READ)
    return await handler(request)


# ---- pages and reads --------------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def _openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


async def _info(request: web.Request) -> web.StreamResponse:
    return web.json_response({"kind": request.app[BACKEND].kind, "api": API})


async def _nodes(request: web.Request) -> web.StreamResponse:
    return web.json_response({"nodes": await request.app[BACKEND].nodes()})


async def _vms(request: web.Request) -> web.StreamResponse:
    q = request.query
    state = q.get("state", "")
    if state and state not in VM_STATES:
        raise bad_request(
            f"state {state!r} is not a VM state; accepted: {', '.join(sorted(VM_STATES))}",
            "state",
        )
    where = VmFilter(
        node=q.get("node", ""),
        state=state,
        name=q.get("name", ""),
        cluster=q.get("cluster", ""),
    )
    return web.json_response({"vms": await request.app[BACKEND].vms(where)})


async def _clusters(request: web.Request) -> web.StreamResponse:
    return web.json_response({"clusters": await request.app[BACKEND].clusters()})


async def _topology(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].topology())


async def _plans(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].plans())


def _whole(request: web.Request, field: str, default: int, low: int, high: int) -> int:
    """Query parameter `field` as a whole number in [low, high]; 400 naming it otherwise."""
    text = request.query.get(field, str(default))
    if not text.isdigit() or not low <= int(text) <= high:
        raise bad_request(f"{field} {text!r} must be a whole number from {low} to {high}", field)
    return int(text)


async def _history(request: web.Request) -> web.StreamResponse:
    q = request.query
    unknown = sorted(set(q) - {"node", "vm", "minutes"})
    if unknown:
        raise bad_request(
            f"unknown parameter {unknown[0]!r}; accepted: node, vm, minutes", unknown[0]
        )
    node, vm = q.get("node", ""), q.get("vm", "")
    if bool(node) == bool(vm):
        given = f"node={node!r} and vm={vm!r}" if node else "neither"
        raise bad_request(f"give exactly one of node=ID or vm=UUID (got {given})", "node")
    for field, value in (("node", node), ("vm", vm)):
        if len(value) > MAX_NAME:
            raise bad_request(f"{field} must be at most {MAX_NAME} characters", field)
    minutes = _whole(request, "minutes", 60, 1, 60)
    return web.json_response(await request.app[BACKEND].history(node, vm, minutes))


async def _timeline(request: web.Request) -> web.StreamResponse:
    limit = _whole(request, "limit", 20, 1, 200)
    return web.json_response(await request.app[BACKEND].timeline(limit))


async def _jobs(request: web.Request) -> web.StreamResponse:
    return web.json_response({"jobs": await request.app[BACKEND].jobs()})


async def _job(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].job(_path_id(request)))


async def _events(request: web.Request) -> web.StreamResponse:
    text = request.query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise bad_request(f"limit {text!r} must be a whole number from 1 to 1000", "limit")
    return web.json_response({"events": request.app[BACKEND].recent_events(int(text))})


async def _stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``data:`` JSON line per event, a comment every 15 s."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    await response.write(b": connected\n\n")
    events = request.app[BACKEND].stream()
    try:
        while True:
            try:
                event = await asyncio.wait_for(anext(events), 15.0)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]
    return response


# ---- actions ----------------------------------------------------------------------------------


async def _migrate(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    result = await request.app[BACKEND].migrate(_path_id(request), _text(body, "destination"))
    return web.json_response(result, status=202)


async def _snapshot(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    result = await request.app[BACKEND].snapshot(_path_id(request), _text(body, "name"))
    return web.json_response(result)


def _vm_action(verb: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await _body(request)
        backend = request.app[BACKEND]
        action = backend.suspend if verb == "suspend" else backend.resume
        return web.json_response(await action(_path_id(request)))

    return handle


def _drain(draining: bool) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await _body(request)
        return web.json_response(await request.app[BACKEND].drain(_path_id(request), draining))

    return handle


async def _forget_cluster(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].forget_cluster(_path_id(request)))


async def _forget_node(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].forget_node(_path_id(request)))


def _plan_action(verb: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await _body(request)
        backend = request.app[BACKEND]
        action = backend.approve if verb == "approve" else backend.reject
        return web.json_response(await action(_path_id(request)))

    return handle


# ---- explanations and capacity -----------------------------------------------------------------


async def _explain(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].explain(_path_id(request)))


async def _n_plus_one(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].n_plus_one())


async def _traffic(request: web.Request) -> web.StreamResponse:
    limit = _whole(request, "limit", 20, 1, 500)
    return web.json_response(await request.app[BACKEND].traffic(limit))
