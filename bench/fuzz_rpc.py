"""An RPC fuzzer for vmgrid's servers, driven by the protobuf descriptors of every service.

For every method of the node link, ClusterService, the grid link and CoordinatorService it
makes requests: messages whose fields get edge values (empty, huge and non-ASCII strings,
int64 extremes, NaN, unknown enum values, timestamps in year 9999, too many entries), or
plain random bytes, or a valid message cut short. ``call`` sends them over a real channel as
raw bytes (streams send several) and says how the server answered; ``grid_state`` reads what
the servers hold (nodes, VMs, rules, clusters) so a caller can check that refused input left
it unchanged. Used by ``vmgrid-bench fuzz`` and by the test suite (with hypothesis' Random).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf import message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message
from vmgrid.v1 import cluster_pb2, coordinator_pb2, grid_pb2, node_pb2

SERVICES: dict[str, tuple[ServiceDescriptor, ...]] = {
    "cluster": (
        node_pb2.DESCRIPTOR.services_by_name["NodeLinkService"],
        cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"],
    ),
    "coordinator": (
        grid_pb2.DESCRIPTOR.services_by_name["GridLinkService"],
        coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"],
    ),
}
"""The services each server answers (health and reflection are grpc's own)."""

UNEXPECTED = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
"""Statuses that mean the server raised something it did not mean to: a crash of the call."""

CORE_RESET = "Internal error from Core"
"""What a grpc client reports, instead of the server's status, when the server ends a stream
while the client's next requests are still in flight (the server answered; the transport
reset the stream under the client's writes). Counted apart, not as a crash."""


@dataclass(frozen=True)
class Target:
    """One method of one server."""

    server: str
    service: ServiceDescriptor
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)


TARGETS: tuple[Target, ...] = tuple(
    Target(server, service, method)
    for server, services in SERVICES.items()
    for service in services
    for method in service.methods
)

_STRINGS = (
    "",
    "n1",
    "c1",
    " ",
    "ünïcødé-☃",
    "../../etc/passwd",
    "a\x00b",
    "{}",
    '{"kind": "ban", "a": [[[[[]]]]]}',
    "[" * 200 + "]" * 200,
)
_INTS = (0, 1, -1, 2, 1000, 2**31 - 1, -(2**31), 2**50, 2**53, 2**53 + 1, 2**63 - 1, -(2**63))
_UINTS = (0, 1, 2, 1000, 2**32 - 1, 2**53 + 1, 2**64 - 1)
_FLOATS = (0.0, 0.5, 1.0, -1.0, 1.5, 1e308, float("nan"), float("inf"), float("-inf"))
_SECONDS = (0, 1, 1_800_000_000, 4_102_444_801, 253_402_300_799, -1)
_UNSIGNED = frozenset({FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64})
_BITS = {
    FieldDescriptor.TYPE_INT32: 32,
    FieldDescriptor.TYPE_SINT32: 32,
    FieldDescriptor.TYPE_SFIXED32: 32,
    FieldDescriptor.TYPE_UINT32: 32,
    FieldDescriptor.TYPE_FIXED32: 32,
}


def _string(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.6:
        return rnd.choice(_STRINGS)
    if roll < 0.85:
        return "".join(chr(rnd.randrange(32, 0x2FF)) for _ in range(rnd.randrange(1, 40)))
    return rnd.choice("xé☃") * rnd.choice((300, 5000, 300_000))


def _int(field: FieldDescriptor, rnd: random.Random) -> int:
    unsigned = field.type in _UNSIGNED
    value = rnd.choice(_UINTS if unsigned else _INTS)
    bits = _BITS.get(field.type, 64)
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return min(max(value, low), high)


def _scalar(field: FieldDescriptor, rnd: random.Random) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(rnd)
    if kind == FieldDescriptor.TYPE_BYTES:
        return rnd.randbytes(rnd.choice((0, 3, 64, 5000)))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rnd.random() < 0.5
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rnd.choice(_FLOATS)
    if kind == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        known = [v.number for v in enum.values] if enum is not None else [0]
        return rnd.choice([*known, max(known) + 1, 99, -5])
    return _int(field, rnd)


def random_message(descriptor: Descriptor, rnd: random.Random, depth: int = 0) -> Message:
    """A message of ``descriptor`` with about half its fields set to edge values."""
    message = message_factory.GetMessageClass(descriptor)()
    if descriptor.full_name == "google.protobuf.Timestamp":
        message.seconds = rnd.choice(_SECONDS)  # type: ignore[attr-defined]
        message.nanos = rnd.choice((0, 999_999_999, 1_000_000_000, -1))  # type: ignore[attr-defined]
        return message
    oneofs_set: set[str] = set()
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and (oneof.name in oneofs_set or rnd.random() < 0.5):
            continue
        if oneof is None and rnd.random() < 0.45:
            continue
        if oneof is not None:
            oneofs_set.add(oneof.name)
        _fill(message, field, rnd, depth)
    return message


def _fill(message: Message, field: FieldDescriptor, rnd: random.Random, depth: int) -> None:
    target = getattr(message, field.name)
    nested = field.message_type
    if nested is not None and nested.GetOptions().map_entry:
        key_field, value_field = nested.fields_by_name["key"], nested.fields_by_name["value"]
        for _ in range(rnd.randrange(0, 3)):
            key = _scalar(key_field, rnd)
            if value_field.message_type is None:
                target[key] = _scalar(value_field, rnd)
            else:
                target[key].CopyFrom(random_message(value_field.message_type, rnd, depth + 1))
        return
    if field.is_repeated:
        count = rnd.choice((0, 1, 2, 3, 10_001)) if depth < 2 else rnd.randrange(0, 2)
        if nested is not None:
            if count > 50:  # many messages: small and cheap ones
                target.extend([message_factory.GetMessageClass(nested)()] * count)
            else:
                target.extend(random_message(nested, rnd, depth + 1) for _ in range(count))
        else:
            value = _scalar(field, rnd)
            if count > 50 and isinstance(value, str | bytes):
                value = value[:8]  # ten thousand entries, not ten thousand large ones
            target.extend([value] * count)
        return
    if nested is not None:
        if depth < 4:
            target.CopyFrom(random_message(nested, rnd, depth + 1))
        return
    setattr(message, field.name, _scalar(field, rnd))


def random_payload(target: Target, rnd: random.Random) -> bytes:
    """One request's bytes: a random message (most often), random bytes, or a cut message."""
    roll = rnd.random()
    if roll < 0.2:
        return rnd.randbytes(rnd.randrange(1, 200))
    data = random_message(target.method.input_type, rnd).SerializeToString()
    if roll < 0.3 and len(data) > 1:
        return data[: rnd.randrange(1, len(data))]
    return data


def random_payloads(target: Target, rnd: random.Random) -> list[bytes]:
    """The bytes of one call: one request, or one to four on a client stream."""
    if not target.method.client_streaming:
        return [random_payload(target, rnd)]
    return [random_payload(target, rnd) for _ in range(rnd.randrange(1, 5))]


@dataclass(frozen=True)
class Outcome:
    """How the server answered: its status and whether it accepted the call (OK, or a stream
    that the server acknowledged with a hello ack or answered with a message)."""

    code: grpc.StatusCode
    details: str
    accepted: bool

    @property
    def reset(self) -> bool:
        """The client's transport reset the stream (see CORE_RESET)."""
        return self.code is grpc.StatusCode.INTERNAL and self.details == CORE_RESET

    @property
    def crashed(self) -> bool:
        """The server answered with a status it never gives on purpose."""
        return self.code in UNEXPECTED and not self.reset


async def call(
    channel: grpc.aio.Channel, target: Target, payloads: list[bytes], timeout_s: float = 5.0
) -> Outcome:
    """Send ``payloads`` as raw bytes to ``target`` and read what comes back."""
    path, method = target.path, target.method
    try:
        if not method.client_streaming and not method.server_streaming:
            await channel.unary_unary(path)(payloads[0], timeout=timeout_s)
            return Outcome(grpc.StatusCode.OK, "", True)
        if not method.client_streaming:
            stream = channel.unary_stream(path)(payloads[0], timeout=timeout_s)
            return await _read_stream(stream, target)
        return await _stream_call(channel.stream_stream(path)(timeout=timeout_s), target, payloads)
    except grpc.aio.AioRpcError as exc:
        return Outcome(exc.code(), exc.details() or "", False)


async def _stream_call(stream: Any, target: Target, payloads: list[bytes]) -> Outcome:
    """A client stream: its replies are read while the payloads are written, so a hello the
    server acknowledged counts as accepted even when a later payload ends the call (read
    only after the writes, the ack could be lost under the reset of the stream and a call
    that had changed the server's state was taken for refused)."""
    acked: list[bool] = []
    reading = asyncio.ensure_future(_read_all(stream, target, acked))
    try:
        await _write_all(stream, payloads)
        await asyncio.wait_for(asyncio.shield(reading), 0.5)
    except TimeoutError:  # a link waiting for more was accepted; it is cancelled
        reading.cancel()
        stream.cancel()
        return Outcome(grpc.StatusCode.OK, "open", True)
    except grpc.aio.AioRpcError as exc:
        return Outcome(exc.code(), exc.details() or "", bool(acked))
    code = await stream.code()
    return Outcome(code, await stream.details() or "", bool(acked) or code is grpc.StatusCode.OK)


async def _read_all(stream: Any, target: Target, acked: list[bool]) -> None:
    """Read replies until the server ends the stream; each that accepts the call (a hello
    ack, or any reply of a method without a ``payload`` oneof) is noted in `acked`."""
    while (raw := await stream.read()) is not grpc.aio.EOF:
        reply = target.response_class.FromString(raw)
        oneof = reply.DESCRIPTOR.oneofs_by_name.get("payload")
        if oneof is None or reply.WhichOneof("payload") == "hello_ack":
            acked.append(True)


async def _write_all(stream: Any, payloads: list[bytes]) -> None:
    """Write one message at a time and stop when the server has ended the call (a request
    iterator still sending then makes grpc report INTERNAL instead of the server's status)."""
    for i, payload in enumerate(payloads):
        if i:  # give the server time to answer the last one before sending more
            for _ in range(10):
                if stream.done():
                    return
                await asyncio.sleep(0.01)
        try:
            await stream.write(payload)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
        await stream.done_writing()


async def _read_stream(stream: Any, target: Target) -> Outcome:
    """Read until the server ends the stream; a stream still open after a short wait (a
    watch, a link waiting for more) was accepted and is cancelled."""
    acked = False
    try:
        while True:
            raw = await asyncio.wait_for(stream.read(), 0.5)
            if raw is grpc.aio.EOF:
                break
            reply = target.response_class.FromString(raw)
            oneof = reply.DESCRIPTOR.oneofs_by_name.get("payload")
            acked = acked or oneof is None or reply.WhichOneof("payload") == "hello_ack"
    except TimeoutError:
        stream.cancel()
        return Outcome(grpc.StatusCode.OK, "open", True)
    code = await stream.code()
    return Outcome(code, await stream.details() or "", acked or code is grpc.StatusCode.OK)


async def grid_state(cluster: grpc.aio.Channel | None, coordinator: grpc.aio.Channel | None) -> Any:
    """What the servers hold, in a form that only changes when their state does (no usage
    figures, times or liveness): node ids and maintenance flags, VM placements and states,
    rules, cluster ids."""
    parts: list[Any] = []
    if cluster is not None:
        stub = _stub(cluster, "vmgrid.v1.ClusterService")
        nodes = await stub("ListNodes", cluster_pb2.ListNodesRequest())
        vms = await stub("ListVms", cluster_pb2.ListVmsRequest())
        rules = await stub("ListRules", cluster_pb2.ListRulesRequest())
        parts += [
            sorted((n.node_id, n.draining) for n in nodes.nodes),
            sorted((v.node_id, v.usage.uuid, v.usage.state) for v in vms.vms),
            sorted(r.SerializeToString(deterministic=True) for r in rules.rules),
        ]
    if coordinator is not None:
        stub = _stub(coordinator, "vmgrid.v1.CoordinatorService")
        clusters = await stub("ListClusters", coordinator_pb2.ListClustersRequest())
        parts.append(sorted(c.cluster_id for c in clusters.clusters))
    return parts


def _stub(channel: grpc.aio.Channel, service: str) -> Any:
    services = {s.full_name: s for group in SERVICES.values() for s in group}

    async def invoke(name: str, request: Message) -> Any:
        method = services[service].methods_by_name[name]
        response = message_factory.GetMessageClass(method.output_type)
        rpc = channel.unary_unary(
            f"/{service}/{name}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        return await rpc(request, timeout=10)

    return invoke


class TracebackCounter(logging.Handler):
    """Counts log records that carry a traceback (or ERROR records quoting one)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback (most recent call last)" in record.getMessage():
            self.records.append(record)
