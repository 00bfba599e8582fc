"""What the cluster must remember to protect the VMs it started: members, checkpoints, stale copies.

One SQLite file, so a restarted manager still knows (1) every VM a job started, with the domain
XML needed to boot it elsewhere, (2) the checkpoints taken per job, newest last (a checkpoint
is listed only once complete), with the memory file of each member of a memory checkpoint
(`checkpoint_parts`: rows of a checkpoint not listed are a partial one, to be removed), (3) the
memory file a VM must boot from instead of cold-starting (`boot_images`, while a restore runs),
and (4) which VMs were relocated away from a failed node: when that node's agent returns, its
copies are stale and must be destroyed before anything else runs there.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    vm_uuid TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    domain_xml TEXT NOT NULL,
    overlay_path TEXT NOT NULL DEFAULT '',
    ha_priority INTEGER NOT NULL DEFAULT 0,
    cpu_millicores INTEGER NOT NULL,
    memory_mib INTEGER NOT NULL,
    bandwidth_mbps INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    taken_at REAL NOT NULL,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS checkpoint_parts (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    vm_uuid TEXT NOT NULL,
    memory_path TEXT NOT NULL,
    PRIMARY KEY (job_id, name, vm_uuid)
);
CREATE TABLE IF NOT EXISTS boot_images (
    vm_uuid TEXT PRIMARY KEY,
    memory_path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stale (
    node_id TEXT NOT NULL,
    vm_uuid TEXT NOT NULL,
    relocated_at REAL NOT NULL,
    PRIMARY KEY (node_id, vm_uuid)
);
"""
_MEMBER_COLUMNS = (
    "vm_uuid, job_id, name, node_id, domain_xml, overlay_path, ha_priority,"
    " cpu_millicores, memory_mib, bandwidth_mbps"
)


@dataclass(frozen=True, slots=True)
class Member:
    """A VM started by a job: where it runs and how to boot it again (demand in solver units)."""

    vm_uuid: str
    job_id: str
    name: str
    node_id: str
    domain_xml: str
    overlay_path: str
    ha_priority: int
    cpu_millicores: int
    memory_mib: int
    bandwidth_mbps: int


class MemberStore:
    """Thread-safe SQLite store; ``":memory:"`` for tests."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection of the three tables (a replicated manager mirrors them)."""
        return self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- members ----------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        self._run(
            f"INSERT OR REPLACE INTO members ({_MEMBER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                member.vm_uuid,
                member.job_id,
                member.name,
                member.node_id,
                member.domain_xml,
                member.overlay_path,
                member.ha_priority,
                member.cpu_millicores,
                member.memory_mib,
                member.bandwidth_mbps,
            ),
        )

    def members(self, job_id: str = "", node_id: str = "") -> list[Member]:
        """Members ordered by job then name; empty filters match all."""
        sql = f"SELECT {_MEMBER_COLUMNS} FROM members WHERE (? = '' OR job_id = ?)"
        sql += " AND (? = '' OR node_id = ?) ORDER BY job_id, name"
        rows = self._run(sql, (job_id, job_id, node_id, node_id))
        return [Member(*row) for row in rows]  # type: ignore[arg-type]

    def jobs(self) -> list[str]:
        return [str(r[0]) for r in self._run("SELECT DISTINCT job_id FROM members ORDER BY 1")]

    def remove_job(self, job_id: str) -> None:
        self._run("DELETE FROM members WHERE job_id = ?", (job_id,))

    def is_member(self, vm_uuid: str) -> bool:
        return bool(self._run("SELECT 1 FROM members WHERE vm_uuid = ?", (vm_uuid,)))

    def moved(self, vm_uuid: str, node_id: str) -> None:
        """The member now runs on `node_id` (a migration; nothing stale is left behind)."""
        self._run("UPDATE members SET node_id = ? WHERE vm_uuid = ?", (node_id, vm_uuid))

    def relocate(self, vm_uuid: str, from_node: str, to_node: str) -> None:
        """Record a restart elsewhere: the copy on `from_node` becomes stale (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "UPDATE members SET node_id = ? WHERE vm_uuid = ?", (to_node, vm_uuid)
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO stale VALUES (?, ?, ?)",
                    (from_node, vm_uuid, time.time()),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---- stale copies -------------------------------------------------------------------------

    def stale(self, node_id: str) -> list[str]:
        """UUIDs of VMs whose copy on `node_id` must be destroyed when it returns."""
        rows = self._run("SELECT vm_uuid FROM stale WHERE node_id = ? ORDER BY 1", (node_id,))
        return [str(r[0]) for r in rows]

    def cleaned(self, node_id: str, vm_uuid: str) -> None:
        self._run("DELETE FROM stale WHERE node_id = ? AND vm_uuid = ?", (node_id, vm_uuid))

    # ---- checkpoints --------------------------------------------------------------------------

    def add_checkpoint(self, job_id: str, name: str, taken_at: float) -> None:
        self._run("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (job_id, name, taken_at))

    def checkpoints(self, job_id: str) -> list[tuple[str, float]]:
        """(name, taken_at) oldest first."""
        rows = self._run(
            "SELECT name, taken_at FROM checkpoints WHERE job_id = ? ORDER BY taken_at, name",
            (job_id,),
        )
        return [(str(n), float(t)) for n, t in rows]  # type: ignore[arg-type]

    def remove_checkpoint(self, job_id: str, name: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            for table in ("checkpoints", "checkpoint_parts"):
                self._db.execute(
                    f"DELETE FROM {table} WHERE job_id = ? AND name = ?",  # noqa: S608
                    (job_id, name),
                )
            self._db.execute("COMMIT")

    # ---- memory checkpoints -----------------------------------------------------------------

    def add_part(self, job_id: str, name: str, vm_uuid: str, memory_path: str) -> None:
        """One member's part of memory checkpoint `name` is written (file and disk snapshot)."""
        self._run(
            "INSERT OR REPLACE INTO checkpoint_parts VALUES (?, ?, ?, ?)",
            (job_id, name, vm_uuid, memory_path),
        )

    def parts(self, job_id: str, name: str) -> dict[str, str]:
        """vm uuid -> memory file of each member part written for checkpoint `name`."""
        rows = self._run(
            "SELECT vm_uuid, memory_path FROM checkpoint_parts WHERE job_id = ? AND name = ?",
            (job_id, name),
        )
        return {str(u): str(p) for u, p in rows}

    def partial(self) -> list[tuple[str, str]]:
        """(job, name) of parts whose checkpoint was never completed."""
        rows = self._run(
            "SELECT DISTINCT p.job_id, p.name FROM checkpoint_parts p LEFT JOIN checkpoints c"
            " ON c.job_id = p.job_id AND c.name = p.name WHERE c.name IS NULL ORDER BY 1, 2"
        )
        return [(str(j), str(n)) for j, n in rows]

    def remove_parts(self, job_id: str, name: str) -> None:
        self._run("DELETE FROM checkpoint_parts WHERE job_id = ? AND name = ?", (job_id, name))

    def set_boot_image(self, vm_uuid: str, memory_path: str) -> None:
        """`vm_uuid`'s next boot restores `memory_path`; empty: a cold boot again."""
        if memory_path:
            self._run("INSERT OR REPLACE INTO boot_images VALUES (?, ?)", (vm_uuid, memory_path))
        else:
            self._run("DELETE FROM boot_images WHERE vm_uuid = ?", (vm_uuid,))

    def boot_images(self) -> list[tuple[str, str]]:
        """(vm uuid, memory file) of every boot from memory set."""
        rows = self._run("SELECT vm_uuid, memory_path FROM boot_images ORDER BY 1")
        return [(str(v), str(p)) for v, p in rows]

    def boot_image(self, vm_uuid: str) -> str:
        rows = self._run("SELECT memory_path FROM boot_images WHERE vm_uuid = ?", (vm_uuid,))
        return str(rows[0][0]) if rows else ""
