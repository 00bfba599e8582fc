"""Finished plans and jobs leave etcd; etcd's old revisions are compacted.

The leader writes every plan and job through to etcd and nothing ever removed them: etcd (whose
database has a size quota, 2 GiB by default) would fill with history. Every
``prune_period_s`` the leader deletes from etcd the finished plans (succeeded, failed,
cancelled, rejected) and the failed jobs beyond the newest ``keep_finished`` of each or
older than ``keep_finished_hours``, in fenced transactions like its other writes, then
compacts etcd's history to ``compact_revisions`` revisions behind the current one. Running
plans, plans awaiting approval and live jobs are never pruned. The leader's own SQLite keeps
everything (``vmgridctl plans`` on it still lists them); a replica that takes over reads only
what etcd holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from vmgrid.agents.cluster.act.journal import Journal, PlanState
from vmgrid.agents.cluster.service.replica import Replica
from vmgrid.agents.common.etcd import Delete, EtcdUnavailable

log = logging.getLogger(__name__)

FINISHED_PLANS = frozenset(
    s.value for s in (PlanState.SUCCEEDED, PlanState.FAILED, PlanState.CANCELLED,
                      PlanState.REJECTED)
)  # fmt: skip
FINISHED_JOBS = frozenset({"failed"})
"""Job states with no way out (``JobState.final``)."""
BATCH = 100


@dataclass(frozen=True)
class Retention:
    """What stays in etcd of what is finished."""

    keep: int = 500
    """The newest finished plans (and, separately, failed jobs) kept."""
    max_age_s: float = 24 * 3600.0
    """None older than this is kept (plans by creation, jobs by their last change)."""
    compact_revisions: int = 10000
    """etcd history kept behind the current revision (0: no compaction)."""

    def dropped(self, finished: Sequence[tuple[str, float]], now: float) -> list[str]:
        """Of `finished` (key, time), those beyond the newest `keep` or older than the age."""
        newest = sorted(finished, key=lambda kt: kt[1], reverse=True)
        return [
            k for i, (k, at) in enumerate(newest) if i >= self.keep or now - at > self.max_age_s
        ]


def finished_plans(journal: Journal) -> list[tuple[str, float]]:
    """(plan id, creation time) of every finished plan of the journal."""
    rows = journal.connection.execute("SELECT plan_id, state, created_unix_s FROM plans")
    return [(str(p), float(at)) for p, state, at in rows.fetchall() if state in FINISHED_PLANS]


def failed_jobs(rows: Sequence[str]) -> list[tuple[str, float]]:
    """(job id, last change) of the failed jobs among mirrored ``jobs`` rows (JSON lists in the
    table's column order: job_id, name, spec, state, cluster_id, placement, message,
    created_at, updated_at)."""
    out = []
    for text in rows:
        row = json.loads(text)
        if row[3] in FINISHED_JOBS:
            out.append((str(row[0]), float(row[8])))
    return out


class EtcdPruner:
    """A leader's pruning of etcd (``await run()`` while it leads): every pass deletes the keys
    ``doomed`` names, in fenced transactions, then compacts etcd's history."""

    def __init__(self, replica: Replica, retention: Retention) -> None:
        self._replica = replica
        self.retention = retention
        self.pruned = 0
        self.compacted_to = 0

    async def doomed(self, now: float) -> list[str]:
        """The etcd keys this pass deletes."""
        raise NotImplementedError

    async def prune(self, now: float | None = None) -> int:
        """One pass: delete what the retention drops, compact; returns how many keys went."""
        doomed = await self.doomed(time.time() if now is None else now)
        for start in range(0, len(doomed), BATCH):
            await self._replica.write_fenced([Delete(k) for k in doomed[start : start + BATCH]])
        self.pruned += len(doomed)
        if doomed:
            log.info("pruned %d finished record(s) from etcd", len(doomed))
        await self._compact()
        return len(doomed)

    async def _compact(self) -> None:
        keep = self.retention.compact_revisions
        if keep <= 0:
            return
        target = await self._replica.client.revision() - keep
        if target > self.compacted_to:
            await self._replica.client.compact(target)
            self.compacted_to = target

    async def failed_jobs(self, prefix: str, now: float) -> list[str]:
        """Keys of the failed jobs mirrored under `prefix` that the retention drops."""
        stored = await self._replica.client.range(prefix)
        jobs = failed_jobs([kv.value for kv in stored])
        return [prefix + j for j in self.retention.dropped(jobs, now)]

    async def run(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.prune()
            except EtcdUnavailable as exc:
                log.warning("pruning etcd: %s", exc)


class Pruner(EtcdPruner):
    """A cluster manager's pruning: finished plans of its journal, failed jobs."""

    def __init__(
        self,
        replica: Replica,
        journal: Journal,
        plans_prefix: str,
        jobs_prefix: str | None,
        retention: Retention,
    ) -> None:
        super().__init__(replica, retention)
        self._journal = journal
        self._plans_prefix = plans_prefix
        self._jobs_prefix = jobs_prefix

    async def doomed(self, now: float) -> list[str]:
        in_etcd = {kv.key for kv in await self._replica.client.keys(self._plans_prefix)}
        doomed = [
            self._plans_prefix + plan_id
            for plan_id in self.retention.dropped(finished_plans(self._journal), now)
            if self._plans_prefix + plan_id in in_etcd
        ]
        if self._jobs_prefix is not None:
            doomed += await self.failed_jobs(self._jobs_prefix, now)
        return doomed
