"""The coordinator follows the leader of a replicated cluster: only the leader runs the uplink,
and after the leader's SIGKILL the new leader registers the cluster with its own address."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import CLUSTER_ID, leaders, start_manager, stop, wait_until
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc


def _registered(coordinator: str) -> tuple[str, bool] | None:
    """(endpoint, connected) of the replicated cluster as the coordinator has it."""
    with grpc.insecure_channel(coordinator) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        reply = stub.ListClusters(coordinator_pb2.ListClustersRequest(), timeout=5)
    found = [c for c in reply.clusters if c.cluster_id == CLUSTER_ID]
    return (found[0].endpoint, found[0].connected) if found else None


@pytest.mark.slow
def test_the_coordinator_follows_the_leader_of_a_replicated_cluster(
    tmp_path: Path, etcd1: EtcdCluster
) -> None:
    ready = tmp_path / "coordinator.addr"
    argv = [
        sys.executable, "-m", "vmgrid.coordinator.main", "--insecure",
        "--listen", "127.0.0.1:0", "--ready-file", str(ready),
        "--state-db", str(tmp_path / "grid.sqlite"),
    ]  # fmt: skip
    with (tmp_path / "coordinator.log").open("ab") as out:
        coordinator = subprocess.Popen(argv, stdout=out, stderr=out)
    managers = []
    try:
        wait_until(ready.exists, 30, "the coordinator serves")
        address = ready.read_text().strip()
        uplink = ("--coordinator", address, "--summary-period-s", "0.5")
        managers = [start_manager(tmp_path, f"u{i}", etcd1.endpoints, extra=uplink) for i in (0, 1)]
        wait_until(lambda: len(leaders(managers)) == 1, 20, "one replica leads")
        (leader,) = leaders(managers)
        wait_until(lambda: _registered(address) == (leader.address, True), 20, "registered")
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        (other,) = [m for m in managers if m is not leader]
        wait_until(lambda: _registered(address) == (other.address, True), 20, "re-registered")
        time.sleep(1)  # the standby-turned-leader is the only one reporting
        assert _registered(address) == (other.address, True)
    finally:
        for process in [*(m.process for m in managers), coordinator]:
            stop(process)
