"""SQLite journal of plan execution: every step is written before and after it happens.

A manager restarted in the middle of a plan reads the journal back, reconciles each action that
was in flight with what the agents report, and goes on from there. Command ids are derived from
(plan id, action id, attempt), so a command re-sent after a restart carries the id it had before
and the agent, which executes an id at most once, answers from its cache instead of acting twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from vmgrid.agents.cluster.act.journal_errors import counted_connection
from vmgrid.agents.cluster.act.journal_records import ActionRecord as ActionRecord
from vmgrid.agents.cluster.act.journal_records import ActionState as ActionState
from vmgrid.agents.cluster.act.journal_records import PlanRecord as PlanRecord
from vmgrid.agents.cluster.act.journal_records import PlanState as PlanState
from vmgrid.agents.cluster.act.journal_records import action_record
from vmgrid.agents.cluster.act.journal_records import command_id as command_id
from vmgrid.solver.plan import Action, ActionKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    plan_id TEXT PRIMARY KEY,
    created_unix_s REAL NOT NULL,
    state TEXT NOT NULL,
    origin TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    plan_id TEXT NOT NULL REFERENCES plans(plan_id),
    action_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    src TEXT,
    dst TEXT,
    start_s INTEGER NOT NULL,
    end_s INTEGER NOT NULL,
    reason TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    simulated INTEGER NOT NULL DEFAULT 0,
    started_unix_s REAL,
    ended_unix_s REAL,
    PRIMARY KEY (plan_id, action_id)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    changed_unix_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS powered_off_nodes (
    node_id TEXT PRIMARY KEY,
    hello TEXT NOT NULL,
    since_unix_s REAL NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0
);
"""


class Journal:
    """Durable record of plans and their actions (one SQLite file, WAL mode).

    Thread-safe; every write is committed before the method returns, so a SIGKILL right after a
    call loses nothing that call recorded. Use ``":memory:"`` for a throw-away journal.
    """

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = counted_connection(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(powered_off_nodes)")}
        if "draining" not in columns:  # a journal written before the column existed
            self._db.execute(
                "ALTER TABLE powered_off_nodes ADD COLUMN draining INTEGER NOT NULL DEFAULT 0"
            )
        self.listeners: list[Callable[[str], None]] = []
        """Called with a plan id after each write to that plan (the etcd mirror of a
        replicated manager); called on the writer's thread, after the commit."""
        self.node_listeners: list[Callable[[str], None]] = []
        """Called with a node id after it is remembered or forgotten as powered off."""

    @property
    def errors(self) -> int:
        """SQLite statements of this journal that failed (journal_errors.py)."""
        return self._db.errors

    def _changed(self, plan_id: str) -> None:
        for listener in self.listeners:
            listener(plan_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The journal's SQLite connection (a replicated manager mirrors its settings)."""
        return self._db.raw

    def save_setting(self, key: str, value: str) -> None:
        """Keep a setting changed at run time (the operator policy) across restarts."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO settings VALUES (?, ?, ?)", (key, value, time.time())
            )

    def setting(self, key: str) -> str | None:
        """A setting saved by `save_setting`, None when there is none."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def remember_powered_off(self, node_id: str, hello_json: str, draining: bool) -> None:
        """The manager powered `node_id` off; `hello_json` is what it knew of the node, so a
        restarted manager still knows the node (and whether it is in maintenance) and can
        power it on."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO powered_off_nodes VALUES (?, ?, ?, ?)",
                (node_id, hello_json, time.time(), int(draining)),
            )
        for listener in self.node_listeners:
            listener(node_id)

    def forget_powered_off(self, node_id: str) -> None:
        """The node is on again (its agent said hello)."""
        with self._lock:
            self._db.execute("DELETE FROM powered_off_nodes WHERE node_id = ?", (node_id,))
        for listener in self.node_listeners:
            listener(node_id)

    def powered_off_nodes(self) -> list[tuple[str, str, bool]]:
        """(node id, hello JSON, in maintenance) of every node the manager powered off and
        not seen since."""
        with self._lock:
            rows = self._db.execute(
                "SELECT node_id, hello, draining FROM powered_off_nodes ORDER BY node_id"
            ).fetchall()
        return [(str(n), str(h), bool(d)) for n, h, d in rows]

    def record_plan(
        self,
        plan_id: str,
        actions: Sequence[Action],
        *,
        state: PlanState = PlanState.RUNNING,
        origin: str = "",
        summary: str = "",
    ) -> None:
        """Write a new plan and all its actions as pending, in one transaction."""
        rows = [
            (
                plan_id,
                a.id,
                a.kind.value,
                a.subject,
                a.src,
                a.dst,
                a.start_s,
                a.end_s,
                a.reason,
                json.dumps(list(a.depends_on)),
                ActionState.PENDING.value,
            )
            for a in actions
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO plans VALUES (?, ?, ?, ?, ?)",
                    (plan_id, time.time(), state.value, origin, summary),
                )
                self._db.executemany(
                    "INSERT INTO actions (plan_id, action_id, kind, subject, src, dst, start_s,"
                    " end_s, reason, depends_on, state) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._changed(plan_id)

    def replace_plan(self, record: PlanRecord) -> None:
        """Write `record` over whatever this journal has of its plan (a replica taking over
        reads the plans its predecessor mirrored to etcd)."""
        rows = [
            (
                record.plan_id,
                r.action.id,
                r.action.kind.value,
                r.action.subject,
                r.action.src,
                r.action.dst,
                r.action.start_s,
                r.action.end_s,
                r.action.reason,
                json.dumps(list(r.action.depends_on)),
                r.state.value,
                r.attempt,
                r.message,
                int(r.simulated),
            )
            for r in record.actions
        ]
        head = (record.plan_id, record.created_unix_s, record.state.value)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM actions WHERE plan_id=?", (record.plan_id,))
                self._db.execute(
                    "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, ?)",
                    (*head, record.origin, record.summary),
                )
                self._db.executemany(
                    "INSERT INTO actions (plan_id, action_id, kind, subject, src, dst, start_s,"
                    " end_s, reason, depends_on, state, attempt, message, simulated)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_plan_state(self, plan_id: str, state: PlanState) -> None:
        with self._lock:
            self._db.execute("UPDATE plans SET state=? WHERE plan_id=?", (state.value, plan_id))
        self._changed(plan_id)

    def start_action(self, plan_id: str, action_id: int, attempt: int) -> None:
        """Mark an action running with the attempt whose command id is about to be sent."""
        with self._lock:
            self._db.execute(
                "UPDATE actions SET state=?, attempt=?, started_unix_s=? "
                "WHERE plan_id=? AND action_id=?",
                (ActionState.RUNNING.value, attempt, time.time(), plan_id, action_id),
            )
        self._changed(plan_id)

    def finish_action(
        self,
        plan_id: str,
        action_id: int,
        state: ActionState,
        message: str = "",
        simulated: bool = False,
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE actions SET state=?, message=?, simulated=?, ended_unix_s=? "
                "WHERE plan_id=? AND action_id=?",
                (state.value, message, int(simulated), time.time(), plan_id, action_id),
            )
        self._changed(plan_id)

    def plan(self, plan_id: str) -> PlanRecord | None:
        with self._lock:
            head = self._db.execute(
                "SELECT plan_id, state, origin, summary, created_unix_s FROM plans WHERE plan_id=?",
                (plan_id,),
            ).fetchone()
            if head is None:
                return None
            rows = self._db.execute(
                "SELECT plan_id, action_id, kind, subject, src, dst, start_s, end_s, reason,"
                " depends_on, state, attempt, message, simulated FROM actions"
                " WHERE plan_id=? ORDER BY action_id",
                (plan_id,),
            ).fetchall()
        return PlanRecord(
            plan_id=head[0],
            state=PlanState(head[1]),
            origin=head[2],
            summary=head[3],
            created_unix_s=head[4],
            actions=tuple(action_record(r) for r in rows),
        )

    def migrations_since(self, unix_s: float) -> list[tuple[str, str, str, float]]:
        """(VM, source, destination, start time) of the migrations started since `unix_s`
        that did not fail before moving (running or succeeded), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT subject, src, dst, started_unix_s FROM actions WHERE kind=? AND"
                " started_unix_s >= ? AND state IN (?, ?) ORDER BY started_unix_s",
                (
                    ActionKind.MIGRATE.value,
                    unix_s,
                    ActionState.RUNNING.value,
                    ActionState.SUCCEEDED.value,
                ),
            ).fetchall()
        return [(r[0], r[1] or "", r[2] or "", float(r[3])) for r in rows]

    def plans(self, states: Iterable[PlanState] | None = None) -> list[PlanRecord]:
        """Plans in creation order, optionally only those in `states`."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT plan_id FROM plans ORDER BY rowid")]
        wanted = set(states) if states is not None else None
        out = []
        for pid in ids:
            record = self.plan(pid)
            if record is not None and (wanted is None or record.state in wanted):
                out.append(record)
        return out

    def last_vm_action(
        self, vm_uuid: str, kinds: Iterable[ActionKind]
    ) -> tuple[PlanRecord, ActionRecord, float] | None:
        """The latest action of one of `kinds` on `vm_uuid`, with its plan's header (no other
        actions) and when it ended (or started, or its plan was made); None when none."""
        kinds = tuple(kinds)
        marks = ",".join("?" for _ in kinds)
        with self._lock:
            row = self._db.execute(
                "SELECT a.plan_id, a.action_id, a.kind, a.subject, a.src, a.dst, a.start_s,"
                " a.end_s, a.reason, a.depends_on, a.state, a.attempt, a.message, a.simulated,"
                " p.state, p.origin, p.summary, p.created_unix_s,"
                " COALESCE(a.ended_unix_s, a.started_unix_s, p.created_unix_s) AS at"
                " FROM actions a JOIN plans p ON p.plan_id = a.plan_id"
                f" WHERE a.subject = ? AND a.kind IN ({marks})"
                " ORDER BY at DESC, p.rowid DESC LIMIT 1",
                (vm_uuid, *(k.value for k in kinds)),
            ).fetchone()
        if row is None:
            return None
        action = action_record(row[:14])
        plan = PlanRecord(row[0], PlanState(row[14]), row[15], row[16], row[17], (action,))
        return plan, action, float(row[18])
