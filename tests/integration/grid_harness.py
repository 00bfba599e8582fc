"""Two simulated clusters (real agent processes on the libvirt test driver) under one coordinator."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.errors import NotFound
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec

NODES = 2  # per cluster
TOPOLOGY = Path(__file__).parent.parent / "data" / "grid" / "two-clusters.graphml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Grid:
    coordinator: CoordinatorServer
    runtimes: dict[str, ClusterRuntime]
    sims: dict[str, SimCluster]
    workdir: Path
    listen: str

    def where(self, vm_uuid: str) -> list[tuple[str, str, str]]:
        """(cluster, node, state) of every copy of a VM the clusters see."""
        found = []
        for cluster_id, runtime in self.runtimes.items():
            with contextlib.suppress(NotFound):
                node, vm = runtime.manager.state.find_vm(vm_uuid)
                found.append((cluster_id, node, vm.state.value))
        return found

    async def restart_coordinator(self) -> None:
        await self.coordinator.stop(grace_s=0)
        self.coordinator = CoordinatorServer(_coordinator_config(self.workdir, self.listen))
        await self.coordinator.start()

    async def wait_summaries(self, vms_per_cluster: int, timeout_s: float = 30) -> None:
        """Until every cluster's summary at the coordinator lists all its VMs: a grid move of a
        VM the coordinator has not seen yet is refused (NOT_FOUND), as it should be."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            records = self.coordinator.registry.records()
            if len(records) == len(self.runtimes) and all(
                r.summary and len(r.summary.movable_vms) == vms_per_cluster for r in records
            ):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the clusters did not report their VMs to the coordinator")


def _coordinator_config(workdir: Path, listen: str) -> CoordinatorConfig:
    return CoordinatorConfig(
        listen=listen,
        insecure=True,
        state_db=str(workdir / "grid.sqlite"),
        topology_file=str(TOPOLOGY),
        summary_period_s=0.2,
    ).validate()


@contextlib.asynccontextmanager
async def two_clusters(
    workdir: Path, vms_per_node: int = 1, time_scale: float = 0.05
) -> AsyncIterator[Grid]:
    """c1 and c2 with two simulated nodes each; decision loops off (manual grid moves only)."""
    listen = f"127.0.0.1:{free_port()}"
    coordinator = CoordinatorServer(_coordinator_config(workdir, listen))
    address = await coordinator.start()
    grid = Grid(coordinator, {}, {}, workdir, listen)
    try:
        for cluster_id in ("c1", "c2"):
            runtime = ClusterRuntime(
                ClusterConfig(
                    cluster_id=cluster_id, listen="127.0.0.1:0", insecure=True, report_period_ms=500
                ),
                RuntimeOptions(
                    control=ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0),
                    driver=DriverOptions(simulated_time_scale=time_scale),
                    journal_path=str(workdir / f"{cluster_id}-journal.sqlite"),
                    decisions=False,
                    coordinator=address,
                    summary_period_s=0.2,
                ),
            )
            grid.runtimes[cluster_id] = runtime
            cluster_address = await runtime.start()
            sim = SimCluster(
                SimClusterSpec(cluster_id, nodes=NODES, vms_per_node=vms_per_node, step_s=60.0),
                workdir / cluster_id,
            )
            grid.sims[cluster_id] = sim
            sim.start(cluster_address)
        await grid.wait_summaries(NODES * vms_per_node, 60)
        yield grid
    finally:
        for sim in grid.sims.values():
            sim.stop()
        for runtime in grid.runtimes.values():
            await runtime.stop(grace_s=0)
        await grid.coordinator.stop(grace_s=0)
