"""Grid submission: vmgridctl -> coordinator -> one cluster (grid command) -> agents.

A coordinator with two clusters of test-driver agents (c1: 2 nodes, c2: 3 nodes). A spread
group of three can only go to c2; the coordinator chooses it, the cluster places and starts
every member, and the job is visible through the coordinator (job, jobs). Its checkpoints are
reached through the coordinator too. A group no cluster can hold fails with a reason and
starts nothing; a bad file is refused before anything is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_ha_submission import job
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultToleranceOptions
from vmgrid.agents.cluster.jobs.submission import SubmissionConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.jobmodel import JobState, JobStore, parse_job
from vmgrid.agents.jobmodel.codec import member_uuid
from vmgrid.agents.model import VmState
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.demo.simcluster import SimCluster, SimClusterSpec
from waiting import wait_for

pytestmark = pytest.mark.slow

TOPOLOGY = Path(__file__).parent.parent.parent / "data" / "grid" / "two-clusters.graphml"
SIZES = {"c1": 2, "c2": 3}


class Grid:
    def __init__(self, coordinator: CoordinatorServer) -> None:
        self.coordinator = coordinator
        self.runtimes: dict[str, ClusterRuntime] = {}
        self.sims: list[SimCluster] = []

    def running(self, cluster_id: str) -> set[str]:
        state = self.runtimes[cluster_id].manager.state
        return {vm.uuid for v in state.views() for vm in v.vms if vm.state is VmState.RUNNING}

    async def ctl(self, *argv: str) -> tuple[int, str]:
        """vmgridctl in a worker thread (it runs its own event loop); exit code and stdout."""
        out = io.StringIO()

        def call() -> int:
            with contextlib.redirect_stdout(out):
                return vmgridctl([*argv, "--coordinator", self.coordinator.address, "--insecure"])

        code = await asyncio.to_thread(call)
        return code, out.getvalue()


@contextlib.asynccontextmanager
async def grid(tmp_path: Path) -> AsyncIterator[Grid]:
    config = CoordinatorConfig(
        listen="127.0.0.1:0",
        insecure=True,
        state_db=str(tmp_path / "grid.sqlite"),
        topology_file=str(TOPOLOGY),
        summary_period_s=0.3,
    ).validate()
    coordinator = CoordinatorServer(config)
    await coordinator.start()
    g = Grid(coordinator)
    try:
        for cluster_id, nodes in SIZES.items():
            runtime = ClusterRuntime(
                ClusterConfig(
                    cluster_id=cluster_id, listen="127.0.0.1:0", insecure=True, report_period_ms=500
                ),
                RuntimeOptions(
                    control=ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0),
                    decisions=False,
                    coordinator=coordinator.address,
                    summary_period_s=0.3,
                    journal_path=str(tmp_path / f"{cluster_id}.sqlite"),
                    fault_tolerance=FaultToleranceOptions(
                        submission=SubmissionConfig(
                            command_timeout_s=20, db_path=str(tmp_path / f"{cluster_id}-ft.db")
                        ),
                        checkpoint_period_s=3600,
                        restart_on_failure=False,
                    ),
                ),
            )
            g.runtimes[cluster_id] = runtime
            address = await runtime.start()
            sim = SimCluster(SimClusterSpec(cluster_id, nodes=nodes, vms_per_node=0), tmp_path)
            g.sims.append(sim)
            sim.start(address)

        def ready() -> bool:
            records = coordinator.registry.records()
            return len(records) == len(SIZES) and all(
                r.summary is not None and r.summary.health.nodes_total == SIZES[r.cluster_id]
                for r in records
            )

        await wait_for(ready, 60)
        yield g
    finally:
        for sim in g.sims:
            sim.stop()
        for runtime in g.runtimes.values():
            await runtime.stop(grace_s=0)
        await coordinator.stop(grace_s=0)


def test_group_goes_to_the_one_cluster_that_can_spread_it(tmp_path: Path) -> None:
    asyncio.run(_one_cluster_can_spread(tmp_path))


async def _one_cluster_can_spread(tmp_path: Path) -> None:
    async with grid(tmp_path) as g:
        path = tmp_path / "mpi.json"
        path.write_text(json.dumps(job("mpi", count=3)))
        code, out = await g.ctl("submit", "-f", str(path), "--output", "json")
        assert code == 0, out
        shown = json.loads(out)
        job_id = shown["job_id"]
        assert shown["cluster_id"] == "c2"
        members = {member_uuid(job_id, f"mpi-{i}") for i in range(3)}
        assert set(shown["vm_uuids"]) == members
        await wait_for(lambda: members <= g.running("c2"), 20)
        assert not members & g.running("c1")

        record = g.coordinator.jobs.get(job_id)
        assert record.state is JobState.RUNNING
        assert len(set(record.placement.values())) == 3  # spread over c2's three nodes

        code, out = await g.ctl("jobs", "--state", "running")
        assert code == 0 and job_id in out and "c2" in out

        code, out = await g.ctl("checkpoints", job_id, "--take")
        assert code == 0, out
        code, out = await g.ctl("checkpoints", job_id, "--output", "json")
        assert code == 0 and len(json.loads(out)["checkpoints"]) == 1


def test_group_no_cluster_holds_fails_and_starts_nothing(tmp_path: Path) -> None:
    asyncio.run(_no_cluster_holds(tmp_path))


async def _no_cluster_holds(tmp_path: Path) -> None:
    async with grid(tmp_path) as g:
        path = tmp_path / "big.json"
        path.write_text(json.dumps(job("big", count=4)))  # spread over 4: no cluster has 4
        code, out = await g.ctl("submit", "-f", str(path))
        assert code == 1
        assert "failed" in out and "spread needs 4 nodes" in out
        assert not g.running("c1") and not g.running("c2")

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(job("bad", memory_mib=1)))
        code, _ = await g.ctl("submit", "-f", str(bad))
        assert code == 2
        assert [r.spec.name for r in g.coordinator.jobs.list()] == ["big"]


def test_jobs_left_under_way_by_a_stopped_coordinator_are_resumed_once(tmp_path: Path) -> None:
    asyncio.run(_resumed_after_restart(tmp_path))


async def _resumed_after_restart(tmp_path: Path) -> None:
    async with grid(tmp_path) as g:
        address, config = g.coordinator.address, g.coordinator.config
        await g.coordinator.stop(grace_s=0)
        # What a coordinator stopped mid-placement leaves in its database: one job already
        # aimed at c2 (its command may or may not have reached the cluster), one not yet.
        with JobStore(config.state_db) as store:
            sent = store.create(parse_job(job("sent", count=3)))
            store.transition(sent.job_id, JobState.PLACING, message="choosing a cluster")
            store.aim(sent.job_id, "c2", "submitting to c2")
            fresh = store.create(parse_job(job("fresh", count=2)))
            store.transition(fresh.job_id, JobState.PLACING, message="choosing a cluster")
        g.coordinator = CoordinatorServer(dataclasses.replace(config, listen=address))
        await g.coordinator.start()

        jobs = g.coordinator.jobs
        await wait_for(
            lambda: all(jobs.get(j).state is JobState.RUNNING for j in (sent.job_id, fresh.job_id)),
            90,
        )
        assert jobs.get(sent.job_id).cluster_id == "c2"
        sent_members = {member_uuid(sent.job_id, f"sent-{i}") for i in range(3)}
        fresh_members = {member_uuid(fresh.job_id, f"fresh-{i}") for i in range(2)}
        await wait_for(lambda: sent_members <= g.running("c2"), 20)
        where = jobs.get(fresh.job_id).cluster_id
        await wait_for(lambda: fresh_members <= g.running(where), 20)
        everywhere = [u for c in SIZES for u in g.running(c)]
        assert sorted(everywhere) == sorted(set(everywhere))  # each member runs once
        assert not sent_members & g.running("c1")
        assert not fresh_members & g.running({"c1": "c2", "c2": "c1"}[where])
