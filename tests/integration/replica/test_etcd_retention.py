"""Finished plans and failed jobs pruned from a real etcd by the leader (the newest N, none
older than T), its history compacted, and an election watch that still works across a
compaction."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from vmgrid.agents.cluster.act.journal import Journal, PlanState
from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.agents.cluster.service.replica import Replica, ReplicaOptions
from vmgrid.agents.cluster.service.replica_store import EtcdMirror
from vmgrid.agents.cluster.service.retention import Pruner, Retention
from vmgrid.agents.common.etcd import EtcdClient, EtcdUnavailable, Put
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.solver.plan import Action, ActionKind

HOUR = 3600.0
MOVE = [Action(0, ActionKind.MIGRATE, "vm-a", "n1", "n2", 0, 5, "relieve n1")]


def _options(etcd: EtcdCluster, prefix: str, ttl: int = 2) -> ReplicaOptions:
    return ReplicaOptions(endpoints=tuple(etcd.endpoints), lease_ttl_s=ttl, prefix=prefix)


def _job(job_id: str, state: str, updated_at: float) -> str:
    return json.dumps([job_id, job_id, "{}", state, "c1", "{}", "", updated_at, updated_at])


def test_the_leader_prunes_finished_plans_and_failed_jobs_and_compacts(etcd1: EtcdCluster) -> None:
    async def scenario() -> None:
        prefix = f"/test/{uuid.uuid4().hex}"
        replica = Replica(_options(etcd1, prefix), "c1")
        journal = Journal(":memory:")
        mirror = EtcdMirror(replica, journal, RuleStore())
        try:
            await replica.lead("127.0.0.1:1")
            before = await replica.client.revision()
            mirror.attach()
            now = time.time()
            for i in range(6):  # finished 0..5 hours ago
                journal.record_plan(f"done-{i}", MOVE, state=PlanState.SUCCEEDED)
            journal.record_plan("running", MOVE)
            journal.record_plan("awaiting", MOVE, state=PlanState.PENDING_APPROVAL)
            db = journal.connection
            for i in range(6):
                db.execute("UPDATE plans SET created_unix_s=? WHERE plan_id=?",
                           (now - i * HOUR, f"done-{i}"))  # fmt: skip
            db.execute("UPDATE plans SET created_unix_s=? WHERE plan_id IN (?, ?)",
                       (now - 10 * HOUR, "running", "awaiting"))  # fmt: skip
            db.commit()
            await mirror.flush()
            jobs = f"{replica.root}/state/jobs/"
            await replica.write_fenced([
                Put(jobs + "failed-old", _job("failed-old", "failed", now - 5 * HOUR)),
                Put(jobs + "failed-new", _job("failed-new", "failed", now - 60)),
                Put(jobs + "running", _job("running", "running", now - 10 * HOUR)),
            ])  # fmt: skip

            retention = Retention(keep=3, max_age_s=2.5 * HOUR, compact_revisions=2)
            pruner = Pruner(replica, journal, mirror.plans_prefix, jobs, retention)
            assert await pruner.prune(now) == 4  # done-3, done-4, done-5, failed-old

            plans = {
                kv.key.rsplit("/", 1)[1] for kv in await replica.client.keys(mirror.plans_prefix)
            }
            assert plans == {"done-0", "done-1", "done-2", "running", "awaiting"}
            kept = {kv.key.rsplit("/", 1)[1] for kv in await replica.client.keys(jobs)}
            assert kept == {"failed-new", "running"}
            assert journal.plan("done-5") is not None  # the leader's own journal keeps them
            assert await pruner.prune(now) == 0  # nothing more to drop

            assert pruner.compacted_to > before  # only the last 2 revisions' history is kept
            with pytest.raises(EtcdUnavailable, match="compacted"):
                await replica.client.call("kv/range", {"key": "AA==", "revision": str(before)})
            fresh = Journal(":memory:")
            assert await EtcdMirror(replica, fresh, RuleStore()).restore() == (5, 0)
        finally:
            await replica.close()
            journal.close()

    asyncio.run(scenario())


def test_a_standby_sees_the_leader_go_after_its_key_was_compacted(etcd1: EtcdCluster) -> None:
    """The standby watches the leader's key from its last change; once etcd compacted past
    it, the watch starts again from the oldest revision kept and still sees the delete (with
    a 30 s lease the standby would otherwise look again only 10 s later)."""

    async def scenario() -> None:
        prefix = f"/test/{uuid.uuid4().hex}"
        leader = Replica(_options(etcd1, prefix, ttl=30), "c1")
        standby = Replica(_options(etcd1, prefix, ttl=30), "c1")
        try:
            await leader.lead("127.0.0.1:1")
            async with EtcdClient(etcd1.endpoints) as outsider:
                for i in range(5):
                    await outsider.put(f"{prefix}/filler", str(i))
                await outsider.compact(await outsider.revision())
            campaign = asyncio.create_task(standby.lead("127.0.0.1:2"))
            await asyncio.sleep(1.0)  # watching the leader's (compacted) key by now
            assert not campaign.done()
            await leader.election.resign()
            await asyncio.wait_for(campaign, 5)
            assert standby.leading()
        finally:
            await standby.close()
            await leader.close()

    asyncio.run(scenario())
