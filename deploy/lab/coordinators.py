"""Replicated `vmgrid-coordinator` processes on loopback, for the replica tests and
`vmgrid-bench coordinator-failover` (docs/replication.md).

Each process is started with ``subprocess`` and ended by its own pid (``replicas.stop``); a
standby answers UNAVAILABLE, so ``coordinator_leaders`` lists the replicas that answer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from vmgrid.lab.replicas import ManagerProcess, spawn_ready
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc

GRID_ID = "replicated-grid"


def start_coordinator(
    workdir: Path,
    name: str,
    endpoints: Sequence[str],
    lease_ttl_s: int = 2,
    extra: Sequence[str] = (),
    listen: str = "127.0.0.1:0",
) -> ManagerProcess:
    """A replica of the coordinator of grid `GRID_ID`; returns once it serves (as leader or
    standby). Its SQLite working copy is ``workdir/NAME.sqlite``."""
    ready, log = workdir / f"{name}.addr", workdir / f"{name}.log"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "vmgrid.coordinator.main",
        "--insecure", "--listen", listen, "--grid-id", GRID_ID,
        "--ready-file", str(ready), "--state-db", str(workdir / f"{name}.sqlite"),
        "--etcd-endpoints", ",".join(endpoints), "--lease-ttl-s", str(lease_ttl_s),
        "--replica-id", name, *extra,
    ]  # fmt: skip
    return spawn_ready(name, argv, ready, log, "coordinator")


def list_clusters(address: str) -> coordinator_pb2.ListClustersResponse:
    """ListClusters on one replica; grpc.RpcError (UNAVAILABLE on a standby) otherwise."""
    with grpc.insecure_channel(address) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        return stub.ListClusters(coordinator_pb2.ListClustersRequest(), timeout=2)


def coordinator_leaders(replicas: Sequence[ManagerProcess]) -> list[ManagerProcess]:
    """The live coordinator replicas that answer operator calls (one when the election works)."""
    found = []
    for replica in replicas:
        if not replica.alive():
            continue
        try:
            list_clusters(replica.address)
        except grpc.RpcError:
            continue
        found.append(replica)
    return found


def start_cluster(
    workdir: Path, cluster_id: str, coordinators: Sequence[str], extra: Sequence[str] = ()
) -> ManagerProcess:
    """A single `vmgrid-cluster` of `cluster_id` reporting to every coordinator replica
    (summaries every 0.5 s, no decision loop); returns once it serves."""
    ready, log = workdir / f"{cluster_id}.addr", workdir / f"{cluster_id}.log"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "vmgrid.agents.cluster.service.main",
        "--insecure", "--listen", "127.0.0.1:0", "--cluster-id", cluster_id,
        "--ready-file", str(ready), "--state-dir", str(workdir / cluster_id),
        "--report-period-ms", "500", "--automation", "manual",
        "--coordinator", ",".join(coordinators), "--summary-period-s", "0.5", *extra,
    ]  # fmt: skip
    return spawn_ready(cluster_id, argv, ready, log, "cluster")


def migrate_to_cluster(address: str, vm_uuid: str, destination: str, command_id: str) -> str:
    """MigrateVmToCluster on the coordinator at `address`; returns the grid plan id."""
    with grpc.insecure_channel(address) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        request = coordinator_pb2.MigrateVmToClusterRequest(
            vm_uuid=vm_uuid, destination_cluster_id=destination, command_id=command_id
        )
        return str(stub.MigrateVmToCluster(request, timeout=10).plan.plan_id)


def grid_plan_state(address: str, plan_id: str) -> int:
    """The grid plan's state on the coordinator at `address`; 0 when it does not answer or
    does not know the plan."""
    try:
        with grpc.insecure_channel(address) as channel:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
            request = coordinator_pb2.GetGridPlanRequest(plan_id=plan_id)
            return int(stub.GetGridPlan(request, timeout=2).plan.state)
    except grpc.RpcError:
        return 0
