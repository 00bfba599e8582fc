"""`vmgrid-bench ingest --floor`: what gRPC alone costs under the ingest load.

In place of the cluster manager, a bare grpc.aio server in its own process answers each
agent's hello with an empty message and reads its reports, parsing each (protobuf, as the
manager's server does) and dropping it: no codec, no state, no decision process. Its CPU under
the same agents is the floor under the manager's figure, the price of receiving that many
messages with grpc.aio in Python on this machine. It answers GetIngestStats with the streams
connected and the reports read (no latency: nothing is applied, so none is measured).

Run by the benchmark as ``python -m vmgrid.bench.ingest_floor READY_FILE``: it listens on a
free loopback port and writes its address to READY_FILE.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
from vmgrid.v1 import cluster_pb2, node_pb2

_NODE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["NodeLinkService"].full_name
_CLUSTER_SERVICE = cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"].full_name


class _Counts:
    def __init__(self) -> None:
        self.connected = 0
        self.reports = 0


def _handlers(counts: _Counts) -> tuple[grpc.GenericRpcHandler, grpc.GenericRpcHandler]:
    async def connect(
        requests: AsyncIterator[node_pb2.NodeLinkServiceConnectRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        if await context.read() is grpc.aio.EOF:  # the hello
            return
        await context.write(node_pb2.NodeLinkServiceConnectResponse())
        counts.connected += 1
        try:
            while await context.read() is not grpc.aio.EOF:
                counts.reports += 1
        finally:
            counts.connected -= 1

    async def stats(
        request: cluster_pb2.GetIngestStatsRequest, context: grpc.aio.ServicerContext
    ) -> cluster_pb2.GetIngestStatsResponse:
        answer = cluster_pb2.GetIngestStatsResponse(
            reports_total=counts.reports, connected_nodes=counts.connected
        )
        if request.reset:
            counts.reports = 0
        return answer

    node = grpc.method_handlers_generic_handler(
        _NODE_SERVICE,
        {
            "Connect": grpc.stream_stream_rpc_method_handler(
                connect,
                request_deserializer=node_pb2.NodeLinkServiceConnectRequest.FromString,
                response_serializer=node_pb2.NodeLinkServiceConnectResponse.SerializeToString,
            )
        },
    )
    cluster = grpc.method_handlers_generic_handler(
        _CLUSTER_SERVICE,
        {
            "GetIngestStats": grpc.unary_unary_rpc_method_handler(
                stats,
                request_deserializer=cluster_pb2.GetIngestStatsRequest.FromString,
                response_serializer=cluster_pb2.GetIngestStatsResponse.SerializeToString,
            )
        },
    )
    return node, cluster


async def _serve(ready: Path) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(_handlers(_Counts()))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ready.write_text(f"127.0.0.1:{port}")
    await server.wait_for_termination()


def start(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    """The bare server's process and address, once it listens."""
    ready = Path(workdir) / "bare-address"
    proc = subprocess.Popen([sys.executable, "-m", "vmgrid.bench.ingest_floor", str(ready)])
    return proc, wait_for_address(proc, ready, "the bare gRPC server")


def wait_for_address(proc: subprocess.Popen[bytes], ready: Path, what: str) -> str:
    """The address `proc` writes to `ready` once it listens (30 s at most; killed then)."""
    deadline = time.monotonic() + 30
    while not ready.exists() or not ready.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)
    return ready.read_text().strip()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
