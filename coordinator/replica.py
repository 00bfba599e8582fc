"""Replicated coordinators: one leader elected through etcd, its state written through to etcd.

Several ``vmgrid-coordinator`` processes of one grid, given an ``[etcd]`` table, campaign in the
election under ``PREFIX/grids/GRID_ID/leader/`` (the cluster managers' election,
``agents/cluster/service/replica.py``: the term is the create revision of the leader's key). A
standby serves gRPC but answers every GridLinkService and CoordinatorService call with
UNAVAILABLE naming the leader (``vmgrid-leader`` trailing metadata), which the clusters'
uplinks and vmgridctl follow.

SQLite stays each replica's working copy. The leader mirrors its three tables (the cluster
registry, the grid moves, the jobs) under ``PREFIX/grids/GRID_ID/state/TABLE/KEY``, one JSON
row per key, in transactions fenced by its own election key, so a deposed leader cannot
overwrite its successor's records. The mirror is flushed before every grid command is sent
(a move's phase is in etcd before its step can reach a cluster) and before an operator call
that changed something is answered. A new leader reads the tables back (etcd wins over its
own stale rows), then resumes the unfinished moves: their command ids derive from the move id,
so a step the old leader had already sent is answered from the cluster's own journal of grid
commands, never executed twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Mapping

import grpc
import grpc.aio
from vmgrid.agents.cluster.service.replica import Replica, ReplicaOptions, StandbyInterceptor
from vmgrid.agents.common.etcd import Compare, Delete, EtcdUnavailable, Put

log = logging.getLogger(__name__)

BATCH = 100
"""Operations per etcd transaction (etcd accepts 128 by default)."""
RETRY_S = 0.2
"""Pause between two attempts to store a change that must be in etcd before going on."""


def coordinator_replica(options: ReplicaOptions, grid_id: str) -> Replica:
    """The election of the coordinators of `grid_id` (the cluster managers' own code)."""
    return Replica(options, grid_id, scope="grids", role="coordinator", subject="grid")


class StateMirror:
    """Mirrors SQLite tables (name -> connection holding it) into etcd under the replica's
    ``state/`` prefix; each row's first column is its key."""

    def __init__(self, replica: Replica, tables: Mapping[str, sqlite3.Connection]) -> None:
        self._replica = replica
        self._tables = dict(tables)
        self._written: dict[str, dict[str, str]] = {name: {} for name in self._tables}
        self._flushed_at = -1
        self._lock = asyncio.Lock()
        self.prefix = f"{replica.root}/state/"
        self.writes = 0

    @property
    def changes(self) -> int:
        """Grows with every row the stores change (SQLite's own count, no bookkeeping)."""
        return sum(db.total_changes for db in self._tables.values())

    @property
    def dirty(self) -> bool:
        return self.changes != self._flushed_at

    def _rows(self, name: str) -> dict[str, str]:
        rows = self._tables[name].execute(f"SELECT * FROM {name}").fetchall()  # noqa: S608
        return {str(row[0]): json.dumps(list(row)) for row in rows}

    async def flush(self, fence: bool = False) -> None:
        """Write the rows changed since the last flush, fenced by this leader's term (with
        `fence`, the term is checked in etcd even when nothing changed). EtcdUnavailable when
        etcd does not answer; a refused fence marks the replica deposed (and raises
        EtcdUnavailable)."""
        async with self._lock:
            changes = self.changes
            if changes == self._flushed_at:
                if fence:
                    await self._fenced([])
                return
            current = {name: self._rows(name) for name in self._tables}
            operations: list[Put | Delete] = []
            for name, rows in current.items():
                written = self._written[name]
                operations += [
                    Put(f"{self.prefix}{name}/{key}", value)
                    for key, value in rows.items()
                    if written.get(key) != value
                ]
                operations += [
                    Delete(f"{self.prefix}{name}/{key}") for key in written.keys() - rows.keys()
                ]
            for start in range(0, len(operations), BATCH):
                await self._fenced(operations[start : start + BATCH])
            self._written = current
            self._flushed_at = changes

    async def _fenced(self, operations: list[Put | Delete]) -> None:
        election = self._replica.election
        if not election.term:
            raise EtcdUnavailable("this coordinator does not lead: nothing is written to etcd")
        done = await self._replica.client.txn(
            [Compare(election.key, "create", election.term)], operations
        )
        if not done.succeeded:
            log.error("etcd refused a write of term %d: this replica was deposed", election.term)
            election.lost.set()
            raise EtcdUnavailable(f"term {election.term} ended: etcd holds a newer leader")
        self.writes += len(operations)

    async def durable(self) -> None:
        """Before a grid command: flush until it succeeds, the term checked in etcd every
        time, so the command leaves only while this replica leads and once its move is in
        etcd. EtcdUnavailable once this replica is deposed (the command is not sent)."""
        while True:
            try:
                if not self._replica.leading():
                    raise EtcdUnavailable("this coordinator's lease may have lapsed")
                await self.flush(fence=True)
                return
            except EtcdUnavailable as exc:
                if self._replica.deposed.is_set():
                    raise
                log.warning("state mirror: %s; retrying", exc)
                await asyncio.sleep(RETRY_S)

    async def run(self, period_s: float = 0.5) -> None:
        """Flush what changed without a command to carry it (summaries, move ends, jobs)."""
        while True:
            await asyncio.sleep(period_s)
            if self.dirty:
                try:
                    await self.flush()
                except EtcdUnavailable as exc:
                    log.warning("state mirror: %s", exc)

    async def restore(self) -> dict[str, int]:
        """Replace each table's rows with etcd's (etcd wins: a standby's own rows are stale);
        returns how many rows each table got."""
        counts = {}
        for name, db in self._tables.items():
            stored = await self._replica.client.range(f"{self.prefix}{name}/")
            rows = []
            for kv in stored:
                try:
                    row = json.loads(kv.value)
                except ValueError as exc:
                    log.error("etcd row %s unreadable (%s); left out", kv.key, exc)
                    continue
                if isinstance(row, list) and row:
                    rows.append(row)
            try:
                db.execute(f"DELETE FROM {name}")  # noqa: S608
                for row in rows:
                    marks = ", ".join("?" * len(row))
                    db.execute(f"INSERT INTO {name} VALUES ({marks})", row)  # noqa: S608
                db.commit()
            except sqlite3.Error as exc:
                db.rollback()
                raise EtcdUnavailable(f"etcd's {name} rows do not fit the table: {exc}") from exc
            self._written[name] = self._rows(name)
            counts[name] = len(rows)
        self._flushed_at = self.changes
        return counts


class TakeoverGate(StandbyInterceptor):
    """The standby gate, also closed on a new leader until it has read the grid's state from
    etcd (a cluster registering before that would be wiped by the restore)."""

    def __init__(self, replica: Replica) -> None:
        super().__init__(replica)
        self.restored = False

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        replica = self._replica
        if replica.leading() and not self.restored:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"coordinator replica {replica.replica_id} has just been elected and is reading "
                "the grid's state from etcd; retry in a moment",
            )
        await super()._check(context)
