"""Group checkpoints with memory on real agents (libvirt test driver, processes).

Three test-driver agents and a manager with a checkpoint directory: a checkpoint writes every
member's memory file (libvirt's save) or none; HA restores a failed node's member from the
latest complete checkpoint and rolls its surviving peer back to the same one; without a
memory checkpoint the restart holds the disk only and says so. The test driver keeps no guest
memory, so what the memory holds is the KVM lab's test (tests/system/test_restart_memory_lab.py);
here the files, the records, the plans and the commands are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_files import start_agent
from applier import applier
from test_ha_submission import Cluster, _connected, agent_config, job
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultTolerance, FaultToleranceOptions
from vmgrid.agents.cluster.jobs.ha import HaConfig
from vmgrid.agents.cluster.jobs.submission import SubmissionConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.errors import CommandFailed
from vmgrid.solver.plan import ActionKind
from vmgrid.v1 import common_pb2
from waiting import wait_for

pytestmark = pytest.mark.slow

NODES = ("n1", "n2", "n3")


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, checkpoint_dir: Path | None) -> AsyncIterator[Cluster]:
    config = ClusterConfig(
        listen="127.0.0.1:0", insecure=True, report_period_ms=300, heartbeat_timeout_ms=1500
    )
    server = ClusterServer(config)
    await server.start()
    options = FaultToleranceOptions(
        submission=SubmissionConfig(failures_to_tolerate=1, command_timeout_s=20),
        ha=HaConfig(fence_command=("true",), period_s=0.3, command_timeout_s=20),
        checkpoint_period_s=3600,
        checkpoint_dir=str(checkpoint_dir or ""),
    )
    ft = FaultTolerance(server.manager, applier(server.manager), options)
    ft.start()
    c = Cluster(server, ft)
    try:
        for node in NODES:
            cfg = agent_config(tmp_path, node, server.address)
            c.agents[node] = start_agent(cfg, tmp_path / f"{node}.log")
        await wait_for(lambda: _connected(server) == len(NODES), 30)
        yield c
    finally:
        for agent in c.agents.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(agent.pid, signal.SIGCONT)
            agent.terminate()
        for agent in c.agents.values():
            agent.wait(timeout=20)
        await c.channel.close()
        await ft.stop()
        await server.stop(grace_s=0)


async def _started(c: Cluster, name: str) -> tuple[str, list[str]]:
    submitted = await c.submit(job(name))
    assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
    uuids = list(submitted.vm_uuids)
    await wait_for(lambda: all(u in c.running() for u in uuids), 10)
    return submitted.job_id, uuids


def _boot_plans(c: Cluster, checkpoint: str) -> list[tuple[str, str | None]]:
    """(vm, node) booted from memory by the restore plans of `checkpoint`."""
    return sorted(
        (a.action.subject, a.action.dst)
        for p in c.ft.jobs.executor.journal.plans()
        if p.plan_id.startswith(f"{checkpoint}-restore-")
        for a in p.actions
        if a.action.kind is ActionKind.BOOT_VM
    )


def test_a_group_checkpoint_writes_every_members_memory_or_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()

    async def scenario() -> None:
        async with cluster(tmp_path, folder) as c:
            job_id, uuids = await _started(c, "grp")
            checkpoints = c.ft.checkpoints
            first = await checkpoints.take(job_id)
            files = sorted(p.name for p in (folder / f"job-{job_id}" / first).iterdir())
            assert files == ["grp-0.save", "grp-1.save"]
            assert sorted(c.ft.jobs.members.parts(job_id, first)) == sorted(uuids)
            assert checkpoints.latest_with_memory(job_id) == first
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)  # resumed

            # The second member's file cannot be written: the checkpoint is dropped whole.
            checkpoints._clock = lambda: 2_000_000_000.0
            broken = folder / f"job-{job_id}" / "ckpt-2000000000000" / "grp-1.save"
            broken.mkdir(parents=True)
            with pytest.raises(CommandFailed, match="grp-1.save"):
                await checkpoints.take(job_id)
            assert [n for n, _ in checkpoints.taken(job_id)] == [first]
            assert c.ft.jobs.members.parts(job_id, "ckpt-2000000000000") == {}
            assert not broken.parent.exists()
            assert checkpoints.latest_with_memory(job_id) == first
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)  # running again

            # An operator's revert of a memory checkpoint: both members from their files.
            where = {u: c.running()[u][0] for u in uuids}
            await checkpoints.revert(job_id, first)
            assert _boot_plans(c, first) == sorted(where.items())
            await wait_for(lambda: all(c.running().get(u) == [n] for u, n in where.items()), 10)

    asyncio.run(scenario())


def test_ha_restores_the_group_from_its_latest_complete_checkpoint_survivor_included(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()

    async def scenario() -> None:
        async with cluster(tmp_path, folder) as c:
            job_id, uuids = await _started(c, "grp")
            checkpoints, store = c.ft.checkpoints, c.ft.jobs.members
            await checkpoints.take(job_id)
            latest = await checkpoints.take(job_id)
            # A later checkpoint of which only one member's part was written (its manager
            # stopped midway): never used, and removed at the next start.
            store.add_part(job_id, "ckpt-9999999999999", uuids[0], str(folder / "x.save"))
            assert checkpoints.latest_with_memory(job_id) == latest

            victim_uuid, survivor_uuid = uuids
            victim = c.running()[victim_uuid][0]
            survivor_node = c.running()[survivor_uuid][0]
            events = c.server.manager.bus.subscribe()
            os.kill(c.agents[victim].pid, signal.SIGSTOP)
            await wait_for(lambda: bool(c.ft.ha.restarts), 20)
            (restart,) = c.ft.ha.restarts
            assert (restart.vm_uuid, restart.from_node) == (victim_uuid, victim)
            assert (restart.checkpoint, restart.with_memory) == (latest, True)
            # Both members booted from the memory files of `latest`: the survivor in place.
            assert _boot_plans(c, latest) == sorted(
                [(victim_uuid, restart.to_node), (survivor_uuid, survivor_node)]
            )
            await wait_for(lambda: c.running().get(victim_uuid) == [restart.to_node], 10)
            assert c.running()[survivor_uuid] == [survivor_node]
            said = {}
            while len(said) < 2:
                event = await asyncio.wait_for(events.get(), 5)
                if event.kind.value == "vm_lifecycle" and latest in event.message:
                    said[event.vm_uuid] = event.message
            assert (
                f"restarted on {restart.to_node} from checkpoint {latest} with its memory"
                in (said[victim_uuid])
            )
            assert f"rolled back on {survivor_node} to checkpoint {latest}" in said[survivor_uuid]

            assert await checkpoints.memory.clean_partial() == [(job_id, "ckpt-9999999999999")]  # type: ignore[union-attr]
            assert store.parts(job_id, "ckpt-9999999999999") == {}

    asyncio.run(scenario())


def test_without_a_memory_checkpoint_the_restart_holds_the_disk_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, None) as c:
            assert c.ft.checkpoints.memory is None  # no storage_dir, no checkpoint_dir
            job_id, uuids = await _started(c, "cold")
            name = await c.ft.checkpoints.take(job_id)
            assert c.ft.checkpoints.latest_with_memory(job_id) is None
            victim = c.running()[uuids[0]][0]
            with caplog.at_level(logging.WARNING, "vmgrid.agents.cluster.jobs.ha"):
                os.kill(c.agents[victim].pid, signal.SIGSTOP)
                await wait_for(lambda: bool(c.ft.ha.restarts), 20)
            (restart,) = c.ft.ha.restarts
            assert (restart.checkpoint, restart.with_memory) == (name, False)
            assert f"from its disk only (rolled back to {name})" in caplog.text
            assert "no checkpoint with memory" in caplog.text

    asyncio.run(scenario())
