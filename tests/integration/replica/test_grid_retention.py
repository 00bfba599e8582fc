"""The coordinator leader prunes the moves of finished grid plans beyond the newest N and old
failed grid jobs from a real etcd, never a running plan's moves or a live job, and compacts
etcd's history; its own SQLite keeps everything."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.cluster.service.retention import Retention
from vmgrid.agents.cluster.service.state_mirror import StateMirror
from vmgrid.agents.jobmodel.store import JobStore
from vmgrid.coordinator.moves import Move, MoveJournal, Phase
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.replica import coordinator_replica
from vmgrid.coordinator.retention import GridPruner, finished_plan_moves
from vmgrid.lab.etcd import EtcdCluster

HOUR = 3600.0
VM = m.VmDemand("vm-1", "web", "c1-n1", 1000, 2**30)


def _move(plan: str, i: int, phase: Phase) -> Move:
    return Move(f"{plan}-m{i}", plan, replace(VM, vm_uuid=f"{plan}-vm{i}"), "c1", "c2",
                phase=phase)  # fmt: skip


def test_finished_plans_beyond_the_newest_are_dropped_whole_and_running_ones_never() -> None:
    journal = MoveJournal(":memory:")
    for plan in ("p0", "p1", "p2"):  # written in this order: p2 is the newest
        journal.put(_move(plan, 0, Phase.DONE))
        journal.put(_move(plan, 1, Phase.RELEASED))
    journal.put(_move("run", 0, Phase.DONE))
    journal.put(_move("run", 1, Phase.RESERVED))  # one move unfinished: the plan runs
    journal.put(_move("p0", 0, Phase.DONE))  # rewritten last: p0 is now the newest
    assert sorted(finished_plan_moves(journal, keep=2)) == ["p1-m0", "p1-m1"]
    assert finished_plan_moves(journal, keep=3) == []
    assert sorted(finished_plan_moves(journal, keep=0)) == sorted(
        f"{p}-m{i}" for p in ("p0", "p1", "p2") for i in (0, 1)
    )


def test_the_coordinator_leader_prunes_grid_moves_and_failed_jobs_and_compacts(
    etcd1: EtcdCluster,
) -> None:
    async def scenario() -> None:
        options = ReplicaOptions(
            endpoints=tuple(etcd1.endpoints), lease_ttl_s=2, prefix=f"/test/{uuid.uuid4().hex}"
        )
        replica = coordinator_replica(options, "g")
        moves, jobs = MoveJournal(":memory:"), JobStore(":memory:")
        tables = {"clusters": Registry(":memory:").connection, "grid_moves": moves.connection,
                  "jobs": jobs.connection}  # fmt: skip
        mirror = StateMirror(replica, tables)
        try:
            await replica.lead("127.0.0.1:1")
            before = await replica.client.revision()
            for plan in ("old", "new"):
                moves.put(_move(plan, 0, Phase.DONE))
            moves.put(_move("run", 0, Phase.MIGRATED))
            now = time.time()
            for job_id, state, at in (("failed-old", "failed", now - 5 * HOUR),
                                      ("failed-new", "failed", now - 60),
                                      ("live", "running", now - 10 * HOUR)):  # fmt: skip
                jobs.connection.execute(
                    "INSERT INTO jobs (job_id, name, spec, state, created_at, updated_at)"
                    " VALUES (?, ?, '{}', ?, ?, ?)",
                    (job_id, job_id, state, at, at),
                )
            jobs.connection.commit()
            await mirror.flush()

            retention = Retention(keep=1, max_age_s=2 * HOUR, compact_revisions=1)
            pruner = GridPruner(replica, moves, mirror.prefix, retention)
            assert await pruner.prune(now) == 2  # old's move and failed-old

            def names(table: str) -> set[str]:
                return {kv.key.rsplit("/", 1)[1] for kv in stored[table]}

            stored = {
                t: await replica.client.keys(f"{mirror.prefix}{t}/") for t in ("grid_moves", "jobs")
            }
            assert names("grid_moves") == {"new-m0", "run-m0"}
            assert names("jobs") == {"failed-new", "live"}
            assert moves.get("old-m0") is not None  # the leader's own SQLite keeps them
            assert await pruner.prune(now) == 0
            assert pruner.compacted_to > before
        finally:
            await replica.close()

    asyncio.run(scenario())
