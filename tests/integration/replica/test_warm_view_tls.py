"""The warm view over mTLS: a standby follows its leader with its own cluster certificate (a
real leader's gRPC server with the project's certificates); a manager of another cluster may
not follow it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import grpc
import grpc.aio
import pytest
from vmgrid.agents import model as m
from vmgrid.agents.cluster.link.manager import NO_STREAM, ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.replica import Replica, ReplicaOptions
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.service.warm_view import ViewFollower, ViewServicer
from vmgrid.agents.identity import Identity, Role
from vmgrid.agents.tls import TlsFiles, channel_credentials
from vmgrid.coordinator.certs import init_certs, issue_cert


def _hello(node_id: str) -> m.NodeHello:
    identity = m.NodeIdentity(node_id=node_id, hostname=node_id, migration_uri="")
    return m.NodeHello(identity, m.NodeCapacity(8000, 2**34, 10**9))


def _report(vm_uuid: str) -> m.NodeReport:
    vm = m.VmUsage(vm_uuid, "vm", m.VmState.RUNNING, 1, 100, 2**29, 2**30)
    return m.NodeReport(time.time_ns(), 1, m.HostUsage(500, 2**32, 2**34), (vm,))


def _credentials(certs: Path, name: str) -> grpc.ChannelCredentials:
    return channel_credentials(TlsFiles.from_dir(certs, name))


async def _scenario(certs: Path) -> None:
    files = TlsFiles.from_dir(certs, "c1")
    config = ClusterConfig(cluster_id="c1", listen="127.0.0.1:0", insecure=False,
                           tls_ca_file=files.ca_file, tls_cert_file=files.cert_file,
                           tls_key_file=files.key_file)  # fmt: skip
    leader = ClusterServer(config)
    leader.view = ViewServicer(leader.manager, 0.1)
    address = await leader.start()
    session = leader.manager.open_session(_hello("n1"))
    leader.manager.handle_report(session, _report("11111111-1111-1111-1111-111111111111"))
    replica = Replica(ReplicaOptions(endpoints=("http://127.0.0.1:9",)), "c1")
    replica.address, replica.replica_id = "127.0.0.1:1", "r2"  # a standby, never leading
    try:
        standby = ClusterManager(ClusterConfig(cluster_id="c1"))
        follower = ViewFollower(replica, standby, _credentials(certs, "c1"), 2)
        following = asyncio.create_task(follower._follow(address))  # noqa: SLF001
        try:
            async with asyncio.timeout(20):
                while "n1" not in standby.state.node_ids():
                    await asyncio.sleep(0.05)
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        assert standby.state.is_current("n1", NO_STREAM)  # known from the view, no stream
        assert [vm.uuid for vm in standby.state.view("n1").vms] == [
            "11111111-1111-1111-1111-111111111111"
        ]

        stranger = ClusterManager(ClusterConfig(cluster_id="c2"))
        other = ViewFollower(replica, stranger, _credentials(certs, "c2"), 2)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(other._follow(address), 20)  # noqa: SLF001
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "not a manager of cluster 'c1'" in str(refused.value.details())
        assert stranger.state.node_ids() == []
    finally:
        await replica.close()
        await leader.stop(grace_s=0)


def test_a_standby_follows_its_leader_over_mtls_and_another_cluster_may_not(
    tmp_path: Path,
) -> None:
    certs = tmp_path / "certs"
    init_certs(certs)
    for name in ("c1", "c2"):
        issue_cert(certs, Identity(Role.CLUSTER, name))
    asyncio.run(_scenario(certs))
