"""Replicated coordinators on etcd: two real `vmgrid-coordinator` processes, two simulated
clusters (in-process managers, real agent processes on the libvirt test driver) given both
coordinator addresses. The leader is SIGKILLed while a grid move is in flight: the standby
leads with the registry and the move read back from etcd, the clusters re-register with it,
and the move ends once, in the destination."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import grpc.aio
import pytest
from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.grid.journal import ReservationState
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.errors import NotFound
from vmgrid.agents.grid_model import GridCommandState
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec
from vmgrid.lab.coordinators import coordinator_leaders, list_clusters, start_coordinator
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import ManagerProcess, stop, wait_until
from vmgrid.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc

TOPOLOGY = Path(__file__).parent.parent.parent / "data" / "grid" / "two-clusters.graphml"
COORDINATOR_FLAGS = (
    "--topology-file", str(TOPOLOGY), "--summary-period-s", "0.5", "--cluster-timeout-s", "5",
)  # fmt: skip


def _where(runtimes: dict[str, ClusterRuntime], vm_uuid: str) -> list[tuple[str, str]]:
    """(cluster, state) of every copy of a VM the clusters see."""
    found = []
    for cluster_id, runtime in runtimes.items():
        with contextlib.suppress(NotFound):
            found.append((cluster_id, runtime.manager.state.find_vm(vm_uuid)[1].state.value))
    return found


def _reporting(address: str, clusters: int) -> bool:
    """Whether the coordinator at `address` has every cluster connected with its VMs."""
    try:
        reply = list_clusters(address)
    except grpc.RpcError:
        return False
    return len(reply.clusters) == clusters and all(
        c.connected and c.vm_count for c in reply.clusters
    )


@pytest.mark.slow
def test_a_standby_coordinator_takes_over_the_clusters_and_the_move_in_flight(
    tmp_path: Path, etcd1: EtcdCluster
) -> None:
    coordinators = [
        start_coordinator(tmp_path, f"g{i}", etcd1.endpoints, extra=COORDINATOR_FLAGS)
        for i in (0, 1)
    ]
    try:
        wait_until(lambda: len(coordinator_leaders(coordinators)) == 1, 20, "one coordinator leads")
        asyncio.run(asyncio.wait_for(_scenario(tmp_path, coordinators), 180))
    finally:
        for replica in coordinators:
            stop(replica.process)


async def _scenario(tmp_path: Path, coordinators: list[ManagerProcess]) -> None:
    (leader,) = coordinator_leaders(coordinators)
    (standby,) = [c for c in coordinators if c is not leader]
    runtimes: dict[str, ClusterRuntime] = {}
    sims: list[SimCluster] = []
    try:
        for cluster_id in ("c1", "c2"):
            runtime = ClusterRuntime(
                ClusterConfig(
                    cluster_id=cluster_id, listen="127.0.0.1:0", insecure=True, report_period_ms=500
                ),
                RuntimeOptions(
                    control=ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0),
                    driver=DriverOptions(simulated_time_scale=1.0),
                    journal_path=str(tmp_path / f"{cluster_id}-journal.sqlite"),
                    decisions=False,
                    coordinator=",".join(c.address for c in (standby, leader)),  # standby first
                    summary_period_s=0.5,
                ),
            )
            runtimes[cluster_id] = runtime
            address = await runtime.start()
            sim = SimCluster(
                SimClusterSpec(cluster_id, nodes=2, vms_per_node=1), tmp_path / cluster_id
            )
            sims.append(sim)
            sim.start(address)
        await _until(lambda: _reporting(leader.address, 2), 60, "both clusters report", True)
        via_standby = await asyncio.to_thread(_vmgridctl_clusters, standby, leader)
        assert via_standby == ["c1", "c2"]  # vmgridctl follows the standby's redirect
        vm = runtimes["c1"].manager.state.views()[0].vms[0].uuid
        async with grpc.aio.insecure_channel(leader.address) as channel:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
            reply = await stub.MigrateVmToCluster(
                coordinator_pb2.MigrateVmToClusterRequest(
                    vm_uuid=vm, destination_cluster_id="c2", command_id="ha-move"
                )
            )
        plan_id = reply.plan.plan_id
        move_id = f"{plan_id}-m0"
        c1, c2 = (runtimes[c].grid_commands for c in ("c1", "c2"))
        assert c1 is not None and c2 is not None
        await _until(lambda: c1.journal.started(f"{move_id}/migrate"), 30, "the VM leaves c1")
        assert c1.journal.result(f"{move_id}/migrate") is None  # still in flight

        connects = {c: r.uplink.connects for c, r in runtimes.items() if r.uplink is not None}
        leader.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.process.wait(timeout=10)

        def re_registered() -> bool:
            return all(
                r.uplink is not None
                and r.uplink.connected.is_set()
                and r.uplink.connects > connects[c]
                and r.uplink.coordinator_addr == standby.address
                for c, r in runtimes.items()
            )

        await _until(re_registered, 30, "both clusters re-register with the standby")
        print(f"clusters re-registered {time.monotonic() - killed:.2f} s after the SIGKILL")
        assert "leads grid replicated-grid with term" in standby.output()
        # the standby followed etcd before it led, and holds what the old leader wrote
        assert "(clusters 2, grid_moves 1, jobs 0; " in standby.output()
        assert re.search(r"jobs 0; [1-9]\d* earlier read\(s\) as a standby", standby.output())

        async with grpc.aio.insecure_channel(standby.address) as channel:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)

            async def plan() -> coordinator_pb2.GridPlan:
                request = coordinator_pb2.GetGridPlanRequest(plan_id=plan_id)
                return (await stub.GetGridPlan(request, timeout=5)).plan

            deadline = time.monotonic() + 60
            while (got := await plan()).state == common_pb2.PLAN_STATE_RUNNING:
                assert time.monotonic() < deadline, got
                await asyncio.sleep(0.2)
            assert got.state == common_pb2.PLAN_STATE_SUCCEEDED, got
            assert [m.vm_uuid for m in got.moves] == [vm]  # the move, once
            again = await stub.MigrateVmToCluster(  # a retried request is the same plan
                coordinator_pb2.MigrateVmToClusterRequest(
                    vm_uuid=vm, destination_cluster_id="c2", command_id="ha-move"
                )
            )
            assert again.plan.plan_id == plan_id
        # the dead leader first: vmgridctl moves on to the next address
        assert await asyncio.to_thread(_vmgridctl_clusters, leader, standby) == ["c1", "c2"]
        await _until(lambda: _where(runtimes, vm) == [("c2", "running")], 20, "the VM runs in c2")
        assert [r.state for r in c2.journal.reservations()] == [ReservationState.COMMITTED]
        migrated = c1.journal.result(f"{move_id}/migrate")
        assert migrated is not None and migrated.state is GridCommandState.SUCCEEDED
        assert leader.process.returncode == -signal.SIGKILL
    finally:
        for sim in sims:
            sim.stop()
        for runtime in runtimes.values():
            await runtime.stop(grace_s=0)


def _vmgridctl_clusters(*replicas: ManagerProcess) -> list[str]:
    """Cluster ids `vmgridctl clusters` lists, given the replicas' addresses in this order."""
    argv = [
        sys.executable, "-m", "vmgrid.coordinator.cli.main", "clusters", "--insecure",
        "--output", "json", "--coordinator", ",".join(r.address for r in replicas),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return sorted(c["cluster_id"] for c in json.loads(done.stdout)["clusters"])


async def _until(
    check: Callable[[], bool], timeout_s: float, what: str, blocking: bool = False
) -> None:
    """Until `check()`; a `blocking` check (a gRPC call) runs in a thread, others here."""
    deadline = time.monotonic() + timeout_s
    while not (await asyncio.to_thread(check) if blocking else check()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)
