"""The coordinator's registry of clusters, kept in SQLite so that it survives a restart.

One row per cluster: its hello, its state (connected or lost), when it was last heard from and
its last summary (JSON of the domain values). The registry is the coordinator's memory; the
live link sessions are not stored. Call from one thread (the event loop) only.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import ConfigError, NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    cluster_id TEXT PRIMARY KEY,
    hello TEXT NOT NULL,
    state TEXT NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    summary TEXT
)
"""


class Registry:
    """Clusters by id, backed by a SQLite file (or ':memory:')."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise ConfigError(f"state_db: directory {str(parent)!r} of {path!r} does not exist")
        try:
            self._db = sqlite3.connect(path)
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"state_db: {path!r} is not a usable SQLite file ({exc})") from None
        self._cache: dict[str, m.ClusterRecord] = {}
        self.reload()

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection of the ``clusters`` table (a replicated coordinator mirrors
        it to etcd)."""
        return self._db

    def reload(self) -> None:
        """Read the table again (after its rows were replaced from etcd)."""
        self._cache = {row[0]: _record(row) for row in self._db.execute("SELECT * FROM clusters")}

    def close(self) -> None:
        self._db.close()

    def get(self, cluster_id: str) -> m.ClusterRecord:
        record = self._cache.get(cluster_id)
        if record is None:
            known = ", ".join(sorted(self._cache)) or "(none)"
            raise NotFound(f"cluster {cluster_id!r} is not registered; known: {known}")
        return record

    def find(self, cluster_id: str) -> m.ClusterRecord | None:
        return self._cache.get(cluster_id)

    def records(self) -> list[m.ClusterRecord]:
        """Every registered cluster, sorted by id."""
        return [self._cache[k] for k in sorted(self._cache)]

    def put(self, record: m.ClusterRecord) -> None:
        """Insert or replace a cluster's row (one transaction)."""
        summary = _dumps(record.summary) if record.summary else None
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO clusters VALUES (?, ?, ?, ?, ?)",
                (
                    record.cluster_id,
                    _dumps(record.hello),
                    record.state.value,
                    record.last_seen_unix_ns,
                    summary,
                ),
            )
        self._cache[record.cluster_id] = record

    def delete(self, cluster_id: str) -> None:
        """Remove a cluster's row (one transaction); NotFound names an unknown id."""
        self.get(cluster_id)
        with self._db:
            self._db.execute("DELETE FROM clusters WHERE cluster_id = ?", (cluster_id,))
        del self._cache[cluster_id]


def _dumps(value: Any) -> str:
    return json.dumps(dataclasses.asdict(value), default=lambda o: o.value)


def _record(row: tuple[Any, ...]) -> m.ClusterRecord:
    _, hello, state, last_seen_ns, summary = row
    return m.ClusterRecord(
        hello=hello_from_dict(json.loads(hello)),
        state=m.ClusterState(state),
        last_seen_unix_ns=int(last_seen_ns),
        summary=summary_from_dict(json.loads(summary)) if summary else None,
    )


def hello_from_dict(data: dict[str, Any]) -> m.ClusterHello:
    return m.ClusterHello(**{**data, "capacity": m.Capacity(**data["capacity"])})


def summary_from_dict(data: dict[str, Any]) -> m.ClusterSummary:
    health = data["health"]
    return m.ClusterSummary(
        sequence=data["sequence"],
        sent_at_unix_ns=data["sent_at_unix_ns"],
        capacity=m.Capacity(**data["capacity"]),
        usage=m.Capacity(**data["usage"]),
        movable_vms=tuple(m.VmDemand(**v) for v in data["movable_vms"]),
        inter_cluster_traffic=tuple(
            m.InterClusterTraffic(**t) for t in data["inter_cluster_traffic"]
        ),
        health=m.ClusterHealth(**{**health, "state": m.HealthState(health["state"])}),
        external_flows=tuple(m.ExternalFlow(**f) for f in data.get("external_flows", ())),
        vm_addresses=tuple(m.VmAddress(**a) for a in data.get("vm_addresses", ())),
        heavy_pairs=tuple(m.VmPairTraffic(**p) for p in data.get("heavy_pairs", ())),
    )
