"""Server side of a long-lived link stream (agent -> cluster manager, manager -> coordinator).

Both links open with a hello, then run a reader task for the peer's messages while the
session's outbox is written back; when the reader ends, a ``None`` in the outbox ends the
writer. The handshake and that pairing are the same on both levels and are written once here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from typing import Any, TypeVar

import grpc
import grpc.aio
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.rpc_status import abort_with

H = TypeVar("H")
log = logging.getLogger(__name__)


async def refuse_beyond(
    context: grpc.aio.ServicerContext, known: Collection[str], new_id: str, limit: int, what: str
) -> None:
    """Abort with RESOURCE_EXHAUSTED (and log it) when ``new_id`` is not among ``known`` and
    ``limit`` of them are known already: a flood of hellos cannot grow the state for ever."""
    if new_id in known or len(known) < limit:
        return
    message = f"{len(known)} {what}s known already, at most {limit}; {what} {new_id!r} refused"
    log.warning("%s", message)
    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


LEADER_METADATA = "vmgrid-leader"
"""Trailing metadata key in which a standby manager replica names the leader's HOST:PORT
(agents dial it next)."""


async def accept_hello(
    context: grpc.aio.ServicerContext,
    decode_hello: Callable[[Any], H],
    encode_error: Callable[[MalformedMessage], Any],
) -> H | None:
    """The decoded first message, which must be a hello; None when the peer sent nothing.
    A bad first message is answered with ``encode_error`` and the RPC is aborted."""
    first = await context.read()
    if first is grpc.aio.EOF:
        return None
    kind = first.WhichOneof("payload")
    try:
        if kind != "hello":
            raise MalformedMessage(
                "payload", f"first message is {kind or 'empty'}; it must be a hello"
            )
        return decode_hello(first.hello)
    except MalformedMessage as exc:
        await context.write(encode_error(exc))
        await abort_with(context, exc)


async def relay_outbox(
    context: grpc.aio.ServicerContext,
    outbox: asyncio.Queue[Any],
    reader: Coroutine[Any, Any, None],
    encode: Callable[[Any], Any],
) -> None:
    """Run ``reader`` as a task and write each outbox item, encoded, until a ``None`` (put
    when the reader ends); the reader is cancelled however this ends. (The outbox item types
    differ by level; ``encode`` takes any item but ``None``.)"""
    task = asyncio.create_task(reader)
    task.add_done_callback(lambda _: outbox.put_nowait(None))
    try:
        while (item := await outbox.get()) is not None:
            await context.write(encode(item))
    finally:
        task.cancel()
