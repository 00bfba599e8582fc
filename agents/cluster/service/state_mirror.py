"""SQLite tables of a leading replica written through to etcd, and read back by its successor.

A replica's SQLite stays its working copy; the leader mirrors whole tables under
``ROOT/state/TABLE/KEY``, one JSON row per key, in transactions fenced by its own election key
(same create revision = still this term), so a deposed leader cannot overwrite its successor's
records. Used by replicated coordinators (registry, grid moves, grid jobs) and by replicated
cluster managers (jobs, their members and checkpoints, the stale copies HA must remove).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Mapping

from vmgrid.agents.cluster.service.replica import Replica, WriteThrough, flush_periodically
from vmgrid.agents.common.etcd import Delete, EtcdUnavailable, Put

log = logging.getLogger(__name__)

BATCH = 100
"""Operations per etcd transaction (etcd accepts 128 by default)."""
RETRY_S = 0.2
"""Pause between two attempts to store a change that must be in etcd before going on."""


class StateMirror:
    """Mirrors SQLite tables (name -> connection holding it) into etcd under the replica's
    ``state/`` prefix; a row's key is its first column, or its first `key_columns[name]`
    columns (a composite primary key) as a JSON list."""

    def __init__(
        self,
        replica: Replica,
        tables: Mapping[str, sqlite3.Connection],
        key_columns: Mapping[str, int] | None = None,
    ) -> None:
        self._replica = replica
        self._tables = dict(tables)
        self._widths = {name: (key_columns or {}).get(name, 1) for name in self._tables}
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
        width = self._widths[name]
        if width == 1:
            return {str(row[0]): json.dumps(list(row)) for row in rows}
        return {json.dumps(list(row[:width])): json.dumps(list(row)) for row in rows}

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
        await self._replica.write_fenced(operations)
        self.writes += len(operations)

    async def durable(self) -> None:
        """Before a command: flush until it succeeds, the term checked in etcd every time, so
        the command leaves only while this replica leads and once what it depends on is in
        etcd. EtcdUnavailable once this replica is deposed (the command is not sent)."""
        while True:
            try:
                if not self._replica.leading():
                    raise EtcdUnavailable("this replica's lease may have lapsed")
                await self.flush(fence=True)
                return
            except EtcdUnavailable as exc:
                if self._replica.deposed.is_set():
                    raise
                log.warning("state mirror: %s; retrying", exc)
                await asyncio.sleep(RETRY_S)

    async def run(self, period_s: float = 0.5) -> None:
        """Flush what changed without a command to carry it (summaries, ends, jobs)."""
        await flush_periodically(self, "state mirror", period_s)

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


class WriteThroughs:
    """Several write-through mirrors as one (`replica.WriteThrough`): the journal's and the
    tables', flushed in that order."""

    def __init__(self, *mirrors: WriteThrough) -> None:
        self._mirrors = mirrors

    @property
    def changes(self) -> int:
        return sum(m.changes for m in self._mirrors)

    async def flush(self) -> None:
        for mirror in self._mirrors:
            await mirror.flush()
