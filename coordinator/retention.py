"""Finished grid moves and failed grid jobs leave etcd; etcd's old revisions are compacted.

The coordinator's leader mirrors its registry, grid moves and jobs to etcd (``StateMirror``);
like a cluster manager's leader (``agents/cluster/service/retention.py``) it deletes from
etcd, every ``prune_period_s``, the moves of finished grid plans beyond the newest
``keep_finished`` plans (moves carry no wall-clock time, so by count only, newest by their
last write) and the failed grid jobs beyond the newest ``keep_finished`` or
older than ``keep_finished_hours``, then compacts etcd's history. Moves of running plans and
live jobs are never pruned; the leader's own SQLite keeps everything.
"""

from __future__ import annotations

from vmgrid.agents.cluster.service.replica import Replica
from vmgrid.agents.cluster.service.retention import EtcdPruner, Retention
from vmgrid.coordinator.moves import MoveJournal, Phase


def finished_plan_moves(journal: MoveJournal, keep: int) -> list[str]:
    """Move ids of the finished grid plans beyond the newest `keep` (a plan is finished when
    every one of its moves is; the newest plans are those written last: a move's row is
    replaced, so its rowid grows, at every write)."""
    rows = journal.connection.execute(
        "SELECT rowid, move_id, plan_id, json_extract(data, '$.phase') FROM grid_moves"
    ).fetchall()
    plans: dict[str, tuple[int, list[str], bool]] = {}
    finals = {p.value for p in Phase if p.final}
    for rowid, move_id, plan_id, phase in rows:
        last, moves, finished = plans.get(plan_id, (0, [], True))
        moves.append(str(move_id))
        plans[plan_id] = (max(last, int(rowid)), moves, finished and phase in finals)
    done = sorted((v for v in plans.values() if v[2]), key=lambda v: v[0], reverse=True)
    return [move for _, moves, _ in done[keep:] for move in moves]


class GridPruner(EtcdPruner):
    """The coordinator leader's pruning of etcd (``await run()`` while it leads)."""

    def __init__(
        self, replica: Replica, moves: MoveJournal, state_prefix: str, retention: Retention
    ) -> None:
        super().__init__(replica, retention)
        self._moves = moves
        self._moves_prefix = f"{state_prefix}grid_moves/"
        self._jobs_prefix = f"{state_prefix}jobs/"

    async def doomed(self, now: float) -> list[str]:
        in_etcd = {kv.key for kv in await self._replica.client.keys(self._moves_prefix)}
        doomed = [
            self._moves_prefix + move_id
            for move_id in finished_plan_moves(self._moves, self.retention.keep)
            if self._moves_prefix + move_id in in_etcd
        ]
        return doomed + await self.failed_jobs(self._jobs_prefix, now)
