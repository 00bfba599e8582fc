"""Fuzzing every RPC of every vmgrid server: no crash, no traceback, no change from refused input.

A real cluster manager (a ClusterRuntime with its operator API, one node streaming two VMs)
and a real coordinator (with a topology and a cluster reporting to it) on 127.0.0.1. For each
method of the node link, ClusterService, the grid link and CoordinatorService, hypothesis
drives the descriptor-based generator of ``vmgrid.bench.fuzz_rpc`` (edge-value messages,
random bytes, cut messages). After each call: the status is never UNKNOWN or INTERNAL, both
servers still answer, no log record carries a traceback, and when the call was refused the
nodes, VMs, rules and clusters are exactly what they were before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc.aio
import pytest
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_link_harness import StreamAgent
from vmgrid.agents import model as m
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.common import node_codec as codec
from vmgrid.bench.fuzz_rpc import (
    TARGETS,
    Target,
    TracebackCounter,
    call,
    grid_state,
    random_payloads,
)
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer

pytestmark = pytest.mark.slow
T = TypeVar("T")
TOPOLOGY = Path(__file__).parents[1] / "data" / "coordinator" / "topology-three.graphml"


class Servers:
    """Both servers on a background event loop, for hypothesis' synchronous examples."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.tracebacks = TracebackCounter()

    def run(self, work: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(60)  # type: ignore[arg-type]

    async def _start(self) -> None:
        coordinator_config = CoordinatorConfig(
            listen="127.0.0.1:0",
            insecure=True,
            topology_file=str(TOPOLOGY),
            state_db=str(self.workdir / "grid.sqlite"),
        ).validate()
        self.coordinator = CoordinatorServer(coordinator_config)
        await self.coordinator.start()
        self.cluster = ClusterRuntime(
            ClusterConfig(cluster_id="c1", listen="127.0.0.1:0", insecure=True),
            RuntimeOptions(
                decisions=False, coordinator=self.coordinator.address, summary_period_s=0.5
            ),
        )
        await self.cluster.start()
        self.channels = {
            "cluster": grpc.aio.insecure_channel(self.cluster.address),
            "coordinator": grpc.aio.insecure_channel(self.coordinator.address),
        }
        self.agent = StreamAgent(self.channels["cluster"], "fuzz-node")
        await self.agent.hello()
        self.agent.report("vm-a", "vm-b")
        while len((await self.state())[1]) < 2 or not (await self.state())[3]:
            await asyncio.sleep(0.05)

    async def state(self) -> Any:
        return await grid_state(self.channels["cluster"], self.channels["coordinator"])

    async def _stop(self) -> None:
        self.agent.close()
        self.agent.call.cancel()
        await asyncio.sleep(0)
        for channel in self.channels.values():
            await channel.close()
        await self.cluster.stop()
        await self.coordinator.stop(grace_s=0)

    def __enter__(self) -> Servers:
        self.thread.start()
        logging.getLogger().addHandler(self.tracebacks)
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            logging.getLogger().removeHandler(self.tracebacks)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with Servers(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


async def fuzz_once(servers: Servers, target: Target, rnd: random.Random) -> None:
    before = await servers.state()
    outcome = await call(servers.channels[target.server], target, random_payloads(target, rnd))
    assert not outcome.crashed, f"{target.path}: {outcome.code.name} {outcome.details}"
    after = await servers.state()  # both servers still answer
    if not outcome.accepted:
        assert after == before, f"{target.path} refused ({outcome.details}) but changed state"


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.path.rpartition(".")[2])
@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rnd=st.randoms(use_true_random=False))
def test_fuzzed_requests_never_crash_trace_or_change_state(
    servers: Servers, target: Target, rnd: random.Random
) -> None:
    servers.run(fuzz_once(servers, target, rnd))
    assert not servers.tracebacks.records, [r.getMessage() for r in servers.tracebacks.records]


def test_random_bytes_answer_invalid_argument_on_unary_and_streaming_methods(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = [b"\xff\xff\xff\x01garbage"]
    for path in (
        "/vmgrid.v1.ClusterService/ListVms",
        "/vmgrid.v1.NodeLinkService/Connect",
        "/vmgrid.v1.GridLinkService/Connect",
        "/vmgrid.v1.CoordinatorService/WatchEvents",
    ):
        target = next(t for t in TARGETS if t.path == path)
        with caplog.at_level(logging.WARNING):
            outcome = servers.run(call(servers.channels[target.server], target, garbage))
        assert outcome.code is grpc.StatusCode.INVALID_ARGUMENT, (path, outcome)
        assert "payload: 11 bytes that do not decode" in outcome.details
    assert not servers.tracebacks.records


def test_a_link_whose_hello_was_acknowledged_is_accepted_whatever_follows(
    servers: Servers,
) -> None:
    """A hello, then bytes that do not decode: the server registers the node and ends the
    call. The call changed the server's state, so the fuzzer must count it as accepted (its
    replies are read while it writes, so the ack is seen before the stream ends)."""
    target = next(t for t in TARGETS if t.path == "/vmgrid.v1.NodeLinkService/Connect")
    identity = m.NodeIdentity("said-hello", "host", "test:///default", simulated=True)
    hello = m.NodeHello(identity, m.NodeCapacity(4000, 8 * 2**30, 10**9))
    request = message_factory.GetMessageClass(target.method.input_type)
    payloads = [request(hello=codec.encode_hello(hello)).SerializeToString(), b"\xff\xff\x01"]
    outcome = servers.run(call(servers.channels[target.server], target, payloads))
    nodes = servers.run(servers.state())[0]
    assert ("said-hello", False) in nodes
    assert outcome.accepted, outcome
