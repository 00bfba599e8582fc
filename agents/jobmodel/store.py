"""The job store: each job's spec, state, cluster and placement in SQLite, across restarts.

States follow a submission: pending -> placing -> starting -> running, or failed from any
non-final state. A transition is a compare-and-set on the current state, so two writers (a
retry, a restarted coordinator) can never both move the same job, and an illegal move is
refused with `JobStateError` naming both states.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from vmgrid.agents.jobmodel.errors import JobStateError
from vmgrid.agents.jobmodel.spec import JobSpec, parse_job


class JobState(enum.Enum):
    PENDING = "pending"
    PLACING = "placing"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return not ALLOWED[self]


ALLOWED: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        JobState.PENDING: frozenset({JobState.PLACING, JobState.FAILED}),
        JobState.PLACING: frozenset({JobState.STARTING, JobState.FAILED}),
        JobState.STARTING: frozenset({JobState.RUNNING, JobState.FAILED}),
        JobState.RUNNING: frozenset(),
        JobState.FAILED: frozenset(),
    }
)


@dataclass(frozen=True)
class JobRecord:
    """A job as stored. `placement` maps member VM name -> node once placed.

    Times are Unix seconds (float) from the store's clock.
    """

    job_id: str
    spec: JobSpec
    state: JobState
    cluster_id: str
    placement: Mapping[str, str]
    message: str
    created_at: float
    updated_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    cluster_id TEXT NOT NULL DEFAULT '',
    placement TEXT NOT NULL DEFAULT '{}',
    message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""
_COLUMNS = "job_id, spec, state, cluster_id, placement, message, created_at, updated_at"


class JobStore:
    """SQLite-backed; `path` may be ``":memory:"`` for tests. Safe to share between threads."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection of the ``jobs`` table (a replicated coordinator mirrors it)."""
        return self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, spec: JobSpec, job_id: str | None = None) -> JobRecord:
        """Store a new pending job; `job_id` defaults to a fresh UUID."""
        jid = job_id or uuid.uuid4().hex
        now = self._clock()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO jobs (job_id, name, spec, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (jid, spec.name, json.dumps(spec.to_dict()), JobState.PENDING.value, now, now),
                )
            except sqlite3.IntegrityError:
                raise JobStateError(f"job id {jid!r} already exists") from None
        return self.get(jid)

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        if row is None:
            raise JobStateError(f"unknown job id {job_id!r}")
        return _record(row)

    def list(
        self, states: Iterable[JobState] = (), cluster_id: str = "", name: str = ""
    ) -> list[JobRecord]:
        """Jobs oldest first; empty filters match everything."""
        where, args = [], []
        wanted = [s.value for s in states]
        if wanted:
            where.append(f"state IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        for column, value in (("cluster_id", cluster_id), ("name", name)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at, job_id", args).fetchall()
        return [_record(r) for r in rows]

    def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        message: str = "",
        cluster_id: str | None = None,
        placement: Mapping[str, str] | None = None,
    ) -> JobRecord:
        """Move a job to `to` if its current state allows it; record why in `message`."""
        current = self.get(job_id)
        if to not in ALLOWED[current.state]:
            allowed = ", ".join(sorted(s.value for s in ALLOWED[current.state])) or "none (final)"
            raise JobStateError(
                f"job {job_id!r}: cannot go from {current.state.value} to {to.value};"
                f" allowed: {allowed}"
            )
        cluster = current.cluster_id if cluster_id is None else cluster_id
        hosts = dict(current.placement if placement is None else placement)
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET state = ?, cluster_id = ?, placement = ?, message = ?,"
                " updated_at = ? WHERE job_id = ? AND state = ?",
                (
                    to.value,
                    cluster,
                    json.dumps(hosts, sort_keys=True),
                    message,
                    self._clock(),
                    job_id,
                    current.state.value,
                ),
            )
        if cursor.rowcount != 1:
            raise JobStateError(f"job {job_id!r}: changed state concurrently; retry")
        return self.get(job_id)

    def aim(self, job_id: str, cluster_id: str, message: str) -> JobRecord:
        """Record, while the job is placing, the cluster it is about to be sent to: whoever
        resumes the job sends it there again under the same command id before anywhere else."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET cluster_id = ?, message = ?, updated_at = ?"
                " WHERE job_id = ? AND state = ?",
                (cluster_id, message, self._clock(), job_id, JobState.PLACING.value),
            )
        return self.get(job_id)


def _record(row: tuple[str, str, str, str, str, str, float, float]) -> JobRecord:
    jid, spec, state, cluster, placement, message, created, updated = row
    return JobRecord(
        job_id=jid,
        spec=parse_job(json.loads(spec)),
        state=JobState(state),
        cluster_id=cluster,
        placement=MappingProxyType(json.loads(placement)),
        message=message,
        created_at=created,
        updated_at=updated,
    )
