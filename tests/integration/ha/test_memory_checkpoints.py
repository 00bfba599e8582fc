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
import logging
import os
import signal
from pathlib import Path

import pytest
from test_ha_submission import Cluster, cluster, job
from vmgrid.agents.cluster.act.executor import ExecutionEvent, ExecutionReport
from vmgrid.agents.cluster.act.journal import ActionState, PlanState
from vmgrid.agents.cluster.act.oneshot import one_action
from vmgrid.agents.errors import CommandFailed, FailedPrecondition
from vmgrid.solver.plan import ActionKind
from vmgrid.v1 import common_pb2
from waiting import wait_for

pytestmark = pytest.mark.slow


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


def _stops(c: Cluster, prefix: str) -> list[tuple[str, str | None, str]]:
    """(vm, node, outcome) of the SHUTDOWN_VM actions of the plans named `prefix`..."""
    return sorted(
        (a.action.subject, a.action.src, a.state.value)
        for p in c.ft.jobs.executor.journal.plans()
        if p.plan_id.startswith(prefix)
        for a in p.actions
        if a.action.kind is ActionKind.SHUTDOWN_VM
    )


def test_a_checkpoint_saves_its_members_through_the_applier_which_holds_them_throughout(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()

    async def scenario() -> None:
        async with cluster(tmp_path, ("true",), folder) as c:
            job_id, uuids = await _started(c, "held")
            executor = c.ft.jobs.executor
            where = {u: c.running()[u][0] for u in uuids}

            # Another plan holds a member: the checkpoint is refused before anything is done.
            refused = pytest.raises(FailedPrecondition, match="held by plan maintenance-1")
            with executor.holding("maintenance-1", [uuids[1]]), refused:
                await c.ft.checkpoints.take(job_id)
            assert c.ft.checkpoints.taken(job_id) == []
            assert not any(folder.iterdir())
            assert all(c.running()[u] == [n] for u, n in where.items())  # never paused

            # While a member is saved and off (its save plan ended, the next member's save
            # begins), a restart of it (what HA or a decider would plan) is refused by the
            # applier; every member stays held from its pause to its resume.
            seen: list[list[str | None]] = []
            saved: list[str] = []
            competing: list[asyncio.Task[ExecutionReport]] = []

            def on_event(event: ExecutionEvent) -> None:
                if event.action.kind is not ActionKind.SHUTDOWN_VM:
                    return
                if event.state is ActionState.SUCCEEDED:
                    saved.append(event.action.subject)
                elif event.state is ActionState.RUNNING and saved and not competing:
                    boot = one_action(ActionKind.BOOT_VM, saved[0], "test", dst=where[saved[0]])
                    competing.append(asyncio.ensure_future(
                        executor.run("competing-boot", [boot], origin="ha")))  # fmt: skip

            async def watch() -> None:
                while True:
                    seen.append([executor.holder(u) for u in uuids])
                    await asyncio.sleep(0.002)

            executor.add_listener(on_event)
            watcher = asyncio.ensure_future(watch())
            name = await c.ft.checkpoints.take(job_id)
            watcher.cancel()
            held = [s for s in seen if any(s)]
            first, last = seen.index(held[0]), len(seen) - seen[::-1].index(held[-1])
            assert all(all(h and h.startswith(name) for h in s) for s in seen[first:last])
            (report,) = [await t for t in competing]
            assert report.state is PlanState.FAILED
            assert f"is held by plan {name}-{job_id}" in report.messages[0]

            # Each member's save is a SHUTDOWN_VM plan of the checkpoint, journaled.
            assert _stops(c, name) == sorted((u, n, "succeeded") for u, n in where.items())
            saves = [p.plan_id for p in executor.journal.plans() if "-save-" in p.plan_id]
            assert sorted(saves) == sorted(f"{name}-{job_id}-save-held-{i}" for i in (0, 1))
            await wait_for(lambda: all(c.running().get(u) == [n] for u, n in where.items()), 10)
            assert executor.holder(uuids[0]) is None and executor.in_flight == ()

    asyncio.run(scenario())


def test_a_group_checkpoint_writes_every_members_memory_or_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()

    async def scenario() -> None:
        async with cluster(tmp_path, ("true",), folder) as c:
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
        async with cluster(tmp_path, ("true",), folder) as c:
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
            # The survivor was powered off through the applier (a SHUTDOWN_VM of the restore).
            assert _stops(c, f"{latest}-restore-") == [(survivor_uuid, survivor_node, "succeeded")]

            assert await checkpoints.memory.clean_partial() == [(job_id, "ckpt-9999999999999")]  # type: ignore[union-attr]
            assert store.parts(job_id, "ckpt-9999999999999") == {}

    asyncio.run(scenario())


def test_without_a_memory_checkpoint_the_restart_holds_the_disk_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",), None) as c:
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
