"""The grid the chaos run drives: a coordinator, two cluster managers and test-driver agents.

c1 is a ClusterRuntime in this process (decision loop automatic, HA restarts with a fence
command that always succeeds, job submission, its dashboard's HTTP API), so the run can add
rules to its store directly. c2 is a `vmgrid-cluster` process on a fixed port, so it can be
SIGKILLed and started again on the same journal while its agents keep running and reconnect.
Every agent is a real `vmgrid-agent` process on the libvirt test driver, replaying PlanetLab
CPU traces (one 5-minute sample every `TRACE_STEP_S` seconds) so load keeps changing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc.aio
from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultToleranceOptions
from vmgrid.agents.cluster.jobs.ha import HaConfig
from vmgrid.agents.cluster.jobs.submission import SubmissionConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.node.testnode import SimVm
from vmgrid.bench.ports import free_port
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.coordinator.web.launch import Dashboard, serve_cluster_dashboard
from vmgrid.demo.main import TOPOLOGY
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

TRACE_STEP_S = 2.0
OPERATOR_TOKEN = "operator-token-of-the-chaos-run"
READ_TOKEN = "read-token-of-the-chaos-run"
FAST_MIGRATION_MBIT = 200_000
"""Simulated migrations of c2 (a process, whose time scale is not a flag) last a fraction of
a second at this bandwidth, as c1's do with its time scale."""


@dataclass(frozen=True)
class GridShape:
    c1_nodes: int = 4
    c1_vms_per_node: int = 3
    c2_nodes: int = 2
    c2_vms_per_node: int = 2


class ManagerProcess:
    """`vmgrid-cluster` for c2 on a fixed address; `kill()` is SIGKILL, `start()` again resumes
    from the same state directory (journal, reservations)."""

    def __init__(self, workdir: Path, coordinator: str) -> None:
        self.workdir = workdir
        self.address = f"127.0.0.1:{free_port()}"
        self.coordinator = coordinator
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        ready = self.workdir / "c2.ready"
        ready.unlink(missing_ok=True)
        command = [
            str(Path(sys.executable).parent / "vmgrid-cluster"),
            "--insecure",
            "--cluster-id=c2",
            f"--listen={self.address}",
            f"--ready-file={ready}",
            f"--state-dir={self.workdir / 'c2-state'}",
            f"--coordinator={self.coordinator}",
            "--summary-period-s=0.2",
            "--no-decisions",
            f"--migration-bandwidth-mbit={FAST_MIGRATION_MBIT}",
            "--resume-grace-s=5",
        ]
        with (self.workdir / "c2-manager.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        self.starts += 1
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vmgrid-cluster c2 did not start (see {self.workdir})")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass(frozen=True)
class Placement:
    """One VM as a cluster's manager mirrors its agent's last report."""

    cluster: str
    node: str
    uuid: str
    name: str
    state: str


class ChaosGrid:
    def __init__(self, workdir: Path, shape: GridShape, seed: int) -> None:
        self.workdir = workdir
        self.shape = shape
        self.seed = seed
        self.coordinator: CoordinatorServer | None = None
        self.c1: ClusterRuntime | None = None
        self.c2: ManagerProcess | None = None
        self.sims: dict[str, SimCluster] = {}
        self.dashboard: Dashboard | None = None
        self.c2_channel: grpc.aio.Channel | None = None
        self.c2_stub: cluster_pb2_grpc.ClusterServiceStub | None = None
        self.c1_stub: cluster_pb2_grpc.ClusterServiceStub | None = None
        self._c1_channel: grpc.aio.Channel | None = None
        self.coordinator_address = ""

    @property
    def c2_address(self) -> str:
        assert self.c2 is not None
        return self.c2.address

    @property
    def runtime(self) -> ClusterRuntime:
        assert self.c1 is not None
        return self.c1

    async def start(self) -> None:
        self.coordinator_address = f"127.0.0.1:{free_port()}"
        self.coordinator = CoordinatorServer(
            CoordinatorConfig(
                listen=self.coordinator_address,
                insecure=True,
                state_db=str(self.workdir / "grid.sqlite"),
                topology_file=str(TOPOLOGY),
                summary_period_s=0.2,
            ).validate()
        )
        await self.coordinator.start()
        self.c1 = ClusterRuntime(
            ClusterConfig(
                cluster_id="c1",
                listen="127.0.0.1:0",
                insecure=True,
                report_period_ms=1000,
                heartbeat_timeout_ms=3000,
            ),
            RuntimeOptions(
                control=ControlConfig(
                    automation=AutomationLevel.AUTOMATIC,
                    period_s=1.0,
                    hold_s=2.0,
                    cooldown_s=3.0,
                    solver_time_limit_s=2.0,
                ),
                driver=DriverOptions(simulated_time_scale=0.05, command_timeout_s=30.0),
                journal_path=str(self.workdir / "c1-journal.sqlite"),
                coordinator=self.coordinator_address,
                summary_period_s=0.2,
                fault_tolerance=FaultToleranceOptions(
                    submission=SubmissionConfig(failures_to_tolerate=1, command_timeout_s=20),
                    ha=HaConfig(fence_command=("true",), period_s=0.5, command_timeout_s=20),
                    checkpoint_period_s=3600,
                ),
            ),
        )
        c1_address = await self.c1.start()
        self._c1_channel = grpc.aio.insecure_channel(c1_address)
        self.c1_stub = cluster_pb2_grpc.ClusterServiceStub(self._c1_channel)
        token_file = self.workdir / "web-tokens.toml"
        token_file.write_text(f'read = "{READ_TOKEN}"\noperator = "{OPERATOR_TOKEN}"\n')
        self.dashboard = await serve_cluster_dashboard(
            self.c1, "127.0.0.1:0", str(token_file), self.workdir
        )
        self.c2 = ManagerProcess(self.workdir, self.coordinator_address)
        await asyncio.to_thread(self.c2.start)
        self.c2_channel = grpc.aio.insecure_channel(self.c2.address)
        self.c2_stub = cluster_pb2_grpc.ClusterServiceStub(self.c2_channel)
        shape = self.shape
        for cluster_id, nodes, vms, address in (
            ("c1", shape.c1_nodes, shape.c1_vms_per_node, c1_address),
            ("c2", shape.c2_nodes, shape.c2_vms_per_node, self.c2.address),
        ):
            spec = SimClusterSpec(
                cluster_id, nodes=nodes, vms_per_node=vms, step_s=TRACE_STEP_S, seed=self.seed
            )
            sim = SimCluster(spec, self.workdir / cluster_id)
            self.sims[cluster_id] = sim
            sim.start(address)
        await self.wait_connected(60)

    async def stop(self) -> None:
        for sim in self.sims.values():
            sim.stop()
        if self.dashboard is not None:
            await self.dashboard.stop()
        for channel in (self._c1_channel, self.c2_channel):
            if channel is not None:
                await channel.close()
        if self.c1 is not None:
            await self.c1.stop(grace_s=0)
        if self.c2 is not None:
            await asyncio.to_thread(self.c2.stop)
        if self.coordinator is not None:
            await self.coordinator.stop(grace_s=0)

    # ---- agents and managers ------------------------------------------------------------

    def node_ids(self, cluster: str) -> list[str]:
        return list(self.sims[cluster].node_vms)

    def kill_agent(self, cluster: str, node: str) -> None:
        self.sims[cluster].kill(node)

    def restart_agent(self, cluster: str, node: str, vms: list[SimVm]) -> None:
        """The failed host comes back with `vms` (the domains it autostarts), nothing else."""
        sim = self.sims[cluster]
        sim.node_vms[node] = vms
        sim.restart(node)

    def agent_alive(self, cluster: str, node: str) -> bool:
        sim = self.sims[cluster]
        return sim.processes[self.node_ids(cluster).index(node)].poll() is None

    async def restart_c2(self) -> None:
        assert self.c2 is not None
        self.c2.kill()
        await asyncio.to_thread(self.c2.start)

    async def wait_connected(self, timeout_s: float) -> None:
        """Until every live agent has reported to its manager."""
        deadline = time.monotonic() + timeout_s
        while True:
            views = await self.placements()
            if views is not None and self._all_reported(views[1]):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"agents did not all report in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    def _all_reported(self, connected: dict[str, set[str]]) -> bool:
        return all(
            node in connected[cluster]
            for cluster in self.sims
            for node in self.node_ids(cluster)
            if self.agent_alive(cluster, node)
        )

    # ---- what the agents report ---------------------------------------------------------

    async def placements(self) -> tuple[list[Placement], dict[str, set[str]]] | None:
        """Every VM on a connected node of either cluster, and each cluster's connected nodes;
        None while c2's manager is unreachable (restarting)."""
        found: list[Placement] = []
        connected: dict[str, set[str]] = {"c1": set(), "c2": set()}
        for view in self.runtime.manager.state.views():
            if view.status is not NodeStatus.CONNECTED or view.usage is None:
                continue
            connected["c1"].add(view.node_id)
            found.extend(
                Placement("c1", view.node_id, vm.uuid, vm.name, vm.state.value) for vm in view.vms
            )
        assert self.c2_stub is not None
        try:
            nodes = await self.c2_stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=5)
            vms = await self.c2_stub.ListVms(cluster_pb2.ListVmsRequest(), timeout=5)
        except grpc.aio.AioRpcError:
            return None
        for node in nodes.nodes:
            if node.status == cluster_pb2.NODE_STATUS_CONNECTED and node.HasField("usage"):
                connected["c2"].add(node.node_id)
        for vm in vms.vms:
            if vm.node_id in connected["c2"]:
                state = _VM_STATES.get(vm.usage.state, "unknown")
                found.append(Placement("c2", vm.node_id, vm.usage.uuid, vm.usage.name, state))
        return found, connected


def _vm_state_names() -> dict[int, str]:
    return {
        number: name.removeprefix("VM_STATE_").lower()
        for name, number in common_pb2.VmState.items()
    }


_VM_STATES = _vm_state_names()


@contextlib.asynccontextmanager
async def running_grid(workdir: Path, shape: GridShape, seed: int) -> AsyncIterator[ChaosGrid]:
    grid = ChaosGrid(workdir, shape, seed)
    try:
        await grid.start()
        yield grid
    finally:
        await grid.stop()
