"""Server side of a long-lived link stream (agent -> cluster manager, manager -> coordinator).

Both links open with a hello, then run a reader task for the peer's messages while the
session's outbox is written back; when the reader ends, a ``None`` in the outbox ends the
writer. The handshake and that pairing are the same on both levels and are written once here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import grpc.aio
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.rpc_status import abort_with

H = TypeVar("H")

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
