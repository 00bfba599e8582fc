"""A hand-driven node-link stream that plays an agent, for tests of the manager's side."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as codec
from vmgrid.v1 import node_pb2, node_pb2_grpc

Request = node_pb2.NodeLinkServiceConnectRequest
Response = node_pb2.NodeLinkServiceConnectResponse


class StreamAgent:
    """One NodeLinkService.Connect stream whose messages the test writes by hand."""

    def __init__(self, channel: grpc.aio.Channel, node_id: str) -> None:
        self.node_id = node_id
        self.sequence = 0
        self._out: asyncio.Queue[Request | None] = asyncio.Queue()
        self.call = node_pb2_grpc.NodeLinkServiceStub(channel).Connect(self._requests())

    async def _requests(self) -> AsyncIterator[Request]:
        while (msg := await self._out.get()) is not None:
            yield msg

    def send(self, **payload: Any) -> None:
        self._out.put_nowait(Request(**payload))

    async def recv(self) -> Response:
        reply = await asyncio.wait_for(self.call.read(), 5)
        assert reply is not grpc.aio.EOF
        return reply  # type: ignore[return-value]

    async def hello(self, identity: m.NodeIdentity | None = None) -> None:
        """Say hello as a test-driver node, or as `identity`."""
        identity = identity or m.NodeIdentity(
            self.node_id, "host", "test:///default", simulated=True
        )
        hello = m.NodeHello(identity, m.NodeCapacity(4000, 8 * 2**30, 10**9))
        self.send(hello=codec.encode_hello(hello))
        assert (await self.recv()).WhichOneof("payload") == "hello_ack"

    def report_msg(
        self, *vm_names: str, state: m.VmState = m.VmState.RUNNING
    ) -> node_pb2.NodeReport:
        """A report of VMs whose uuid is their name, all in ``state``."""
        self.sequence += 1
        vms = tuple(
            m.VmUsage(name, name, state, 1, 250, 2**28, 2**29, simulated=True) for name in vm_names
        )
        usage = m.HostUsage(100, 2**30, 2**33)
        return codec.encode_report(m.NodeReport(time.time_ns(), self.sequence, usage, vms))

    def report(self, *vm_names: str, state: m.VmState = m.VmState.RUNNING) -> None:
        self.send(report=self.report_msg(*vm_names, state=state))

    def close(self) -> None:
        self._out.put_nowait(None)
