"""The replicas' gRPC gate on a real etcd election: a new leader answers nothing until it has
read the replicated state back (a call served from the standby's copy could act on a state the
old leader had already changed, and its change would not be written through before the
answer); a standby read asked as such is answered throughout."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import grpc.aio
from vmgrid.agents.cluster.service.replica import (
    STANDBY_READ_METADATA,
    Replica,
    ReplicaOptions,
    StandbyInterceptor,
)
from vmgrid.lab.etcd import EtcdCluster

SERVICE = "vmgrid.v1.ClusterService"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"served:" + request


async def _call(address: str, method: str, *, standby_read: bool = False) -> str:
    metadata = ((STANDBY_READ_METADATA, "1"),) if standby_read else None
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(f"/{SERVICE}/{method}")
        try:
            answer = await call(b"x", timeout=5, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.UNAVAILABLE, exc
            return f"refused: {exc.details()}"
        return answer.decode()


def test_a_new_leader_refuses_calls_until_it_has_caught_up(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        options = ReplicaOptions(
            endpoints=tuple(etcd1.endpoints), lease_ttl_s=2, prefix=f"/test/{uuid.uuid4().hex}"
        )
        replica = Replica(options, "c1")
        gate = StandbyInterceptor(replica, "the cluster's state")
        server = grpc.aio.server(interceptors=[gate])
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(_echo) for name in ("SubmitJob", "ListVms")
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        await server.start()
        try:
            before = await _call(address, "SubmitJob")
            assert before.startswith("refused: cluster manager replica") and "not leading" in before

            await asyncio.wait_for(replica.lead(address), 10)
            assert replica.leading()
            for method in ("SubmitJob", "ListVms"):
                refused = await _call(address, method)
                assert refused == (
                    f"refused: cluster manager replica {address} has just been elected and is "
                    "reading the cluster's state from etcd; retry in a moment"
                )
            assert await _call(address, "ListVms", standby_read=True) == "served:x"

            gate.caught_up = True
            assert await _call(address, "SubmitJob") == "served:x"
            assert await _call(address, "ListVms") == "served:x"
        finally:
            await server.stop(None)
            await replica.close()

    asyncio.run(scenario())
