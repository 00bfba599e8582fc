"""Roles on every RPC: one table per server, checked by one interceptor per server.

The caller's identity comes from the client certificate the TLS layer verified (the peer's
PEM in the call's auth context), never from a message. A method missing from the table, a
certificate without a vmgrid identity and a role the table does not list are all refused with
PERMISSION_DENIED and one log line. Plaintext (``insecure``) servers install no interceptor:
they have no identities, so no role is checked there.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import grpc
import grpc.aio
from cryptography import x509
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from vmgrid.agents.common.revocation import DenyList, deny_list_path
from vmgrid.agents.common.wire_guard import WireGuard
from vmgrid.agents.identity import Identity, Role, identity_of

log = logging.getLogger(__name__)

AccessTable = Mapping[str, frozenset[Role]]
"""Full method name (``/package.Service/Method``) -> roles allowed to call it."""

EVERY_ROLE = frozenset(Role)

_HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
_REFLECTION = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]


def service_table(
    service: ServiceDescriptor, roles: Mapping[str, frozenset[Role]]
) -> dict[str, frozenset[Role]]:
    """The table rows of one service; ValueError when ``roles`` does not name exactly the
    service's methods (so a new RPC cannot ship without declaring who may call it)."""
    methods = {method.name for method in service.methods}
    if set(roles) != methods:
        missing, unknown = sorted(methods - set(roles)), sorted(set(roles) - methods)
        raise ValueError(f"{service.full_name}: undeclared {missing}, unknown {unknown}")
    return {f"/{service.full_name}/{name}": allowed for name, allowed in roles.items()}


def standard_services_table() -> dict[str, frozenset[Role]]:
    """Health and reflection: any holder of a certificate of the project CA."""
    table: dict[str, frozenset[Role]] = {}
    for service in (_HEALTH, _REFLECTION):
        table |= service_table(service, {m.name: EVERY_ROLE for m in service.methods})
    return table


@functools.lru_cache(maxsize=1024)
def _holder_of_pem(pem: bytes) -> tuple[Identity | None, int]:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None, -1
    return identity_of(cert), cert.serial_number


def _peer_holder(context: grpc.aio.ServicerContext) -> tuple[Identity | None, int]:
    pems = context.auth_context().get("x509_pem_cert") or []
    return _holder_of_pem(pems[0]) if pems else (None, -1)


def peer_identity(context: grpc.aio.ServicerContext) -> Identity | None:
    """The identity of the caller's verified certificate; None on a plaintext call or a
    certificate that names no vmgrid identity."""
    return _peer_holder(context)[0]


async def refuse_unless_self(
    context: grpc.aio.ServicerContext, role: Role, claimed: str, link: str
) -> None:
    """Abort with PERMISSION_DENIED (and log it) when the caller's certificate is not
    ``role`` named ``claimed``: a hello may only speak for its own certificate. Plaintext
    calls carry no identity and pass."""
    identity = peer_identity(context)
    if identity is None and not context.auth_context().get("x509_pem_cert"):
        return
    if identity == Identity(role, claimed):
        return
    log.warning("%s: certificate %s said hello as %r; refused", link, identity, claimed)
    await context.abort(
        grpc.StatusCode.PERMISSION_DENIED,
        f"certificate {identity} may not speak for {role.value} {claimed!r}",
    )


Behaviour = Callable[..., Any]


class RoleInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call whose certificate's role ``table`` does not allow for its method."""

    def __init__(self, table: AccessTable, server_name: str, deny: DenyList | None = None) -> None:
        self._table = table
        self._server_name = server_name
        self._deny = deny

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        return _wrap(handler, functools.partial(self._check, method))

    async def _check(self, method: str, context: grpc.aio.ServicerContext) -> None:
        identity, serial = _peer_holder(context)
        allowed = self._table.get(method, frozenset())
        who = identity or "a certificate without a vmgrid://ROLE/NAME identity"
        revoked = self._deny.reason(serial, identity) if self._deny is not None else ""
        if revoked:
            why = f"{revoked}; it may call nothing"
        elif identity is not None and identity.role in allowed:
            return
        else:
            roles = ", ".join(sorted(role.value for role in allowed)) or "no role"
            why = f"{who} may not call {method} (allowed: {roles})"
        log.warning("%s: %s refused: %s", self._server_name, method, why)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)


Check = Callable[[grpc.aio.ServicerContext], Awaitable[None]]


def _wrap(handler: grpc.RpcMethodHandler, check: Check) -> grpc.RpcMethodHandler:
    """``handler`` with ``check`` run before its behaviour, whatever its streaming kind."""
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, check), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, check), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream, check), **options
        )
    return grpc.stream_stream_rpc_method_handler(
        _streaming(handler.stream_stream, check), **options
    )


guard = _wrap
"""Public name of ``_wrap`` for other interceptors (the standby replica's)."""


def _unary(behaviour: Behaviour, check: Check) -> Behaviour:
    async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await check(context)
        result = behaviour(request, context)
        return await result if inspect.isawaitable(result) else result

    return checked


def _streaming(behaviour: Behaviour, check: Check) -> Behaviour:
    if inspect.isasyncgenfunction(behaviour):

        async def checked_generator(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await check(context)
            async for item in behaviour(request, context):
                yield item

        return checked_generator
    return _unary(behaviour, check)


def interceptors(
    table: AccessTable, server_name: str, insecure: bool, ca_file: str = ""
) -> Iterable[Any]:
    """The server's interceptors: the role check under TLS (with the deny list beside
    ``ca_file`` when one is given; none in plaintext), then the wire guard that decodes and
    bounds every request (always)."""
    guard = WireGuard(server_name)
    if insecure:
        return (guard,)
    deny = DenyList(deny_list_path(ca_file)) if ca_file else None
    return (RoleInterceptor(table, server_name, deny), guard)
