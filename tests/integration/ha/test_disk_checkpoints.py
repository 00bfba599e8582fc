"""Disk-only checkpoints of a group (no checkpoint directory) reverted on real agents.

A group's disk checkpoint is taken with every member paused, so libvirt's revert brings each
member back paused: the revert must pause, revert and resume the group through the applier,
hold the members throughout, and refuse to start while another plan holds one of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_ha_submission import Cluster, cluster, job
from vmgrid.agents.errors import FailedPrecondition
from vmgrid.solver.plan import ActionKind
from vmgrid.v1 import common_pb2
from waiting import wait_for

pytestmark = pytest.mark.slow


def _plans(c: Cluster, part: str) -> list[tuple[str, list[ActionKind]]]:
    return [
        (p.plan_id, [a.action.kind for a in p.actions])
        for p in c.ft.jobs.executor.journal.plans()
        if part in p.plan_id
    ]


def test_a_group_reverted_to_its_disk_checkpoint_runs_again_and_is_held_throughout(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            submitted = await c.submit(job("disk"))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            job_id, uuids = submitted.job_id, list(submitted.vm_uuids)
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)
            checkpoints, executor = c.ft.checkpoints, c.ft.jobs.executor
            assert checkpoints.memory is None
            name = await checkpoints.take(job_id)
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)

            # Another plan holds a member: refused before any member is paused or reverted.
            refused = pytest.raises(FailedPrecondition, match="held by plan maintenance-7")
            with executor.holding("maintenance-7", [uuids[0]]), refused:
                await checkpoints.revert(job_id, name)
            assert _plans(c, "-revert-") == []

            # While the revert runs, every member is held: no other plan may take one.
            held: list[bool] = []

            def try_to_take(event: object) -> None:
                try:
                    with executor.holding("maintenance-8", uuids[1:]):
                        held.append(False)
                except FailedPrecondition:
                    held.append(all(executor.holder(u) is not None for u in uuids))

            executor.add_listener(try_to_take)
            await checkpoints.revert(job_id, name)
            assert held and all(held), held

            assert [kinds for _, kinds in _plans(c, "-revert-")] == [
                [ActionKind.SUSPEND] * 2,
                [ActionKind.RESUME] * 2,
            ]
            assert all(executor.holder(u) is None for u in uuids)
            # Running again, not left paused by the revert of snapshots taken while paused.
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)
            await asyncio.sleep(1.0)  # a later report must not show them paused either
            assert all(u in c.running() for u in uuids)

    asyncio.run(scenario())
