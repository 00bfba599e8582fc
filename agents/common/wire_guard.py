"""Decode and bound every request a vmgrid server receives, so bad bytes never raise in grpc.

grpc.aio deserializes a request before the servicer runs and, when protobuf refuses the bytes,
logs a traceback and answers ``UNKNOWN: Unexpected DecodeError``. ``WireGuard`` (one server
interceptor) swaps each method's deserializer for one that cannot fail: it parses, applies
``wire_limits.check_message`` and hands on either the message or a ``Refused`` value. The
wrapped behaviour answers a refused unary request with INVALID_ARGUMENT naming the field; on a
stream it ends the call with INVALID_ARGUMENT at the refused message (``context.read()`` and
the request iterator both see the end of the stream there, so readers stop cleanly). Each
refusal logs one line, rate-limited per server.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import check_message, shown

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0
"""At most one refusal line per server per interval; the next line counts those skipped."""


@dataclass(frozen=True)
class Refused:
    """A request that could not be decoded or broke a bound; ``reason`` is one line."""

    reason: str


def safe_deserializer(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """``parse`` made total: the checked message, or ``Refused`` saying why."""

    def deserialize(data: bytes) -> Any:
        if parse is None:
            return data
        try:
            message = parse(data)
        except DecodeError:
            return Refused(f"payload: {len(data)} bytes that do not decode ({shown(data[:16])})")
        except Exception as exc:  # noqa: BLE001 - a parser must never take a call down
            return Refused(f"payload: {type(exc).__name__}: {shown(str(exc))}")
        if hasattr(message, "ListFields"):
            try:
                check_message(message)
            except MalformedMessage as exc:
                return Refused(str(exc))
        return message

    return deserialize


class RefusalLog:
    """One warning line per ``interval_s`` at most; later lines say how many were skipped."""

    def __init__(self, server_name: str, interval_s: float = LOG_INTERVAL_S) -> None:
        self._server_name = server_name
        self._interval_s = interval_s
        self._next_at = 0.0
        self.skipped = 0
        self.refused = 0

    def note(self, method: str, reason: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now < self._next_at:
            self.skipped += 1
            return
        skipped, self.skipped, self._next_at = self.skipped, 0, now + self._interval_s
        more = f" ({skipped} more refused since the last line)" if skipped else ""
        log.warning("%s: %s refused: %s%s", self._server_name, method, reason, more)


class _GuardedContext:
    """The servicer context, with ``read()`` ending the stream at a refused message."""

    def __init__(self, context: grpc.aio.ServicerContext, refuse: Callable[[Refused], None]):
        self._context = context
        self._refuse = refuse

    async def read(self) -> Any:
        message = await self._context.read()
        if isinstance(message, Refused):
            self._refuse(message)
            return grpc.aio.EOF
        return message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class WireGuard(grpc.aio.ServerInterceptor):
    """Installs the total deserializer and the refusal handling on every method."""

    def __init__(self, server_name: str) -> None:
        self.refusals = RefusalLog(server_name)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        return self._wrap(handler, method)

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        options = {
            "request_deserializer": safe_deserializer(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), **options
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._unary_stream(handler.unary_stream, method), **options
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._streamed(handler.stream_unary, method), **options
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streamed(handler.stream_stream, method), **options
        )

    async def _abort(self, context: grpc.aio.ServicerContext, method: str, bad: Refused) -> None:
        self.refusals.note(method, bad.reason)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bad.reason)

    def _unary(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Refused):
                await self._abort(context, method, request)
            result = behaviour(request, context)
            return await result if inspect.isawaitable(result) else result

        return guarded

    def _unary_stream(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behaviour):
            return self._unary(behaviour, method)

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Refused):
                await self._abort(context, method, request)
            async for item in behaviour(request, context):
                yield item

        return guarded

    def _streamed(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        """Client-streaming behaviours: reads through the guarded context or iterator stop at
        a refused message; once the behaviour returns, the call is aborted with
        INVALID_ARGUMENT (from the handler's own task, where grpc expects an abort)."""

        async def requests(source: AsyncIterator[Any], seen: list[Refused]) -> AsyncIterator[Any]:
            async for message in source:
                if isinstance(message, Refused):
                    seen.append(message)
                    return
                yield message

        async def refuse(context: grpc.aio.ServicerContext, seen: list[Refused]) -> None:
            if seen:
                # A trailers-only answer while the client still sends reaches it as INTERNAL
                # more often; with the initial metadata sent first, it sees INVALID_ARGUMENT.
                with contextlib.suppress(grpc.aio.UsageError):
                    await context.send_initial_metadata(())
                await self._abort(context, method, seen[0])

        if inspect.isasyncgenfunction(behaviour):

            async def guarded_generator(source: Any, context: grpc.aio.ServicerContext) -> Any:
                seen: list[Refused] = []
                guarded = _GuardedContext(context, seen.append)
                async for item in behaviour(requests(source, seen), guarded):
                    yield item
                await refuse(context, seen)

            return guarded_generator

        async def guarded(source: Any, context: grpc.aio.ServicerContext) -> Any:
            seen: list[Refused] = []
            guarded_context = _GuardedContext(context, seen.append)
            result = behaviour(requests(source, seen), guarded_context)
            result = await result if inspect.isawaitable(result) else result
            await refuse(context, seen)
            return result

        return guarded
