"""The API's placement-rule and operator-policy routes (read, add, delete, check; get, set)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from vmgrid.agents.cluster.rules.validate import RuleRequest
from vmgrid.coordinator.web.errors import bad_request
from vmgrid.coordinator.web.request_args import API, BACKEND, path_id, text
from vmgrid.coordinator.web.request_args import body as read_body


def add_rule_and_policy_routes(app: web.Application) -> None:
    """Register /rules, /rules/check, /rules/{id} and /policy on `app`."""
    app.router.add_get(f"{API}/rules", _rules)
    app.router.add_get(f"{API}/rules/check", _check_rules)
    app.router.add_post(f"{API}/rules", _add_rule)
    app.router.add_delete(f"{API}/rules/{{id}}", _delete_rule)
    app.router.add_get(f"{API}/policy", _policy)
    app.router.add_put(f"{API}/policy", _set_policy)


# ---- placement rules --------------------------------------------------------------------------


async def _rules(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].rules())


async def _check_rules(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].check_rules())


def _names(body: dict[str, Any], field: str) -> tuple[str, ...]:
    value = body.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{field} must be a list of strings (got {value!r})", field)
    return tuple(value)


async def _add_rule(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    unknown = sorted(set(body) - {"id", "kind", "vms", "nodes", "parameters"})
    if unknown:
        raise bad_request(
            f"unknown field {unknown[0]!r}; accepted: id, kind, vms, nodes, parameters",
            unknown[0],
        )
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise bad_request(f"parameters must be a JSON object (got {parameters!r})", "parameters")
    rule = RuleRequest(
        rule_id=text(body, "id"),
        kind=text(body, "kind"),
        vms=_names(body, "vms"),
        nodes=_names(body, "nodes"),
        parameters=parameters,
    )
    return web.json_response(await request.app[BACKEND].add_rule(rule), status=201)


async def _delete_rule(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[BACKEND].delete_rule(path_id(request)))


# ---- operator policy --------------------------------------------------------------------------


async def _policy(request: web.Request) -> web.StreamResponse:
    cluster = request.query.get("cluster", "")
    return web.json_response(await request.app[BACKEND].policy(cluster))


async def _set_policy(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    if not body:
        raise bad_request('give the keys to change as a JSON object, e.g. {"cpu_high": 0.75}')
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad_request(f"policy.{key}: {value!r} is not a number or a word", key)
    cluster = request.query.get("cluster", "")
    return web.json_response(await request.app[BACKEND].set_policy(cluster, body))
