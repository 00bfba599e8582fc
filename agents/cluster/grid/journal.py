"""The cluster side's journal of grid commands and reservations (SQLite).

A grid command's final result is kept by command id, so a command the coordinator resends
after either side restarted is answered from here, not executed again. Reservations survive a
restart too: a held reservation still counts against its node until it is committed,
released or expires.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sqlite3
from dataclasses import dataclass

from vmgrid.agents import grid_model as gm

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS grid_commands (
        command_id TEXT PRIMARY KEY,
        started_ns INTEGER NOT NULL,
        result TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS grid_reservations (
        reservation_id TEXT PRIMARY KEY,
        vm TEXT NOT NULL,
        node_id TEXT NOT NULL,
        simulated INTEGER NOT NULL,
        expires_ns INTEGER NOT NULL,
        state TEXT NOT NULL
    )""",
)


class ReservationState(enum.Enum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Reservation:
    """Room held on ``node_id`` for a VM arriving from another cluster."""

    reservation_id: str
    vm: gm.VmDemand
    node_id: str
    simulated: bool
    expires_unix_ns: int
    state: ReservationState = ReservationState.HELD

    def holds(self, now_unix_ns: int) -> bool:
        """True while it counts against its node's capacity."""
        return self.state is ReservationState.HELD and now_unix_ns < self.expires_unix_ns


class GridJournal:
    """Grid commands and reservations of one cluster; one thread (the event loop) only."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path)
        with self._db:
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    # ---- commands ------------------------------------------------------------------------

    def started(self, command_id: str) -> bool:
        """True when this command id was started before (maybe by a previous process)."""
        row = self._db.execute(
            "SELECT 1 FROM grid_commands WHERE command_id = ?", (command_id,)
        ).fetchone()
        return row is not None

    def start(self, command_id: str, now_unix_ns: int) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO grid_commands VALUES (?, ?, NULL)", (command_id, now_unix_ns)
            )

    def finish(self, result: gm.GridCommandResult) -> None:
        data = json.dumps(dataclasses.asdict(result), default=lambda o: o.value)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO grid_commands VALUES (?, "
                "COALESCE((SELECT started_ns FROM grid_commands WHERE command_id = ?), 0), ?)",
                (result.command_id, result.command_id, data),
            )

    def result(self, command_id: str) -> gm.GridCommandResult | None:
        """The final result of a finished command id."""
        row = self._db.execute(
            "SELECT result FROM grid_commands WHERE command_id = ?", (command_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        data = json.loads(row[0])
        return gm.GridCommandResult(**{**data, "state": gm.GridCommandState(data["state"])})

    # ---- reservations --------------------------------------------------------------------

    def put_reservation(self, r: Reservation) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO grid_reservations VALUES (?, ?, ?, ?, ?, ?)",
                (
                    r.reservation_id,
                    json.dumps(dataclasses.asdict(r.vm)),
                    r.node_id,
                    int(r.simulated),
                    r.expires_unix_ns,
                    r.state.value,
                ),
            )

    def reservation(self, reservation_id: str) -> Reservation | None:
        row = self._db.execute(
            "SELECT * FROM grid_reservations WHERE reservation_id = ?", (reservation_id,)
        ).fetchone()
        return None if row is None else _reservation(row)

    def reservations(self, state: ReservationState | None = None) -> list[Reservation]:
        rows = self._db.execute("SELECT * FROM grid_reservations ORDER BY reservation_id")
        found = [_reservation(row) for row in rows]
        return [r for r in found if state is None or r.state is state]


def _reservation(row: tuple[object, ...]) -> Reservation:
    rid, vm, node, simulated, expires, state = row
    return Reservation(
        str(rid),
        gm.VmDemand(**json.loads(str(vm))),
        str(node),
        bool(simulated),
        int(str(expires)),
        ReservationState(state),
    )
