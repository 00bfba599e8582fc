"""Cross-cluster moves as the coordinator journals them (SQLite, beside the registry).

A move advances through phases, each saved before the next command is sent:

    pending -> reserved -> migrated -> done
          \\-> released (reservation dropped; the VM stays at its source)
                            migrated -> returning -> returned (started in its source again)
                                                \\-> done (started in its destination after all)

Once a move is ``migrated`` the VM has left its source, so the move only rolls forward: commit
is retried, and a simulated move whose destination cannot start the VM is sent back
(``returning``, `homing.py`) and ends where a cluster started it; before that, a failure
releases the reservation. Command ids derive from the move id, so a restarted coordinator
resends the same ids and the clusters answer from their own journals instead of acting twice.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sqlite3
from dataclasses import dataclass

from vmgrid.agents import grid_model as m

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grid_moves (
    move_id TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL,
    data TEXT NOT NULL
)
"""


class Phase(enum.Enum):
    PENDING = "pending"
    RESERVED = "reserved"
    MIGRATED = "migrated"
    RETURNING = "returning"
    DONE = "done"
    RELEASED = "released"
    CANCELLED = "cancelled"
    RETURNED = "returned"

    @property
    def final(self) -> bool:
        return self in (Phase.DONE, Phase.RELEASED, Phase.CANCELLED, Phase.RETURNED)


class PlanStatus(enum.Enum):
    """State of an applied grid plan, derived from its moves."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def plan_status(moves: list[Move], cancelled: bool = False) -> PlanStatus:
    """Running while a move is unfinished; then cancelled, failed (a move released or sent
    back) or done."""
    if any(not mv.phase.final for mv in moves):
        return PlanStatus.RUNNING
    if cancelled or any(mv.phase is Phase.CANCELLED for mv in moves):
        return PlanStatus.CANCELLED
    if any(mv.phase in (Phase.RELEASED, Phase.RETURNED) for mv in moves):
        return PlanStatus.FAILED
    return PlanStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class Move:
    """One VM moving from ``src`` to ``dst``; the reservation fields are set once reserved."""

    move_id: str
    plan_id: str
    vm: m.VmDemand
    src: str
    dst: str
    path: tuple[str, ...] = ()
    start_s: float = 0.0
    end_s: float = 0.0
    reason: str = ""
    bandwidth_cap_bps: int = 0
    copy_storage: bool = False
    phase: Phase = Phase.PENDING
    node_id: str = ""
    destination_uri: str = ""
    migration_uri: str = ""
    simulated: bool = False
    progress_fraction: float = 0.0
    message: str = ""
    failed: bool = False
    home_round: int = 0
    """While returning: the round of finding the VM a home (even: its source, odd: its
    destination); each round's commands have ids of their own."""
    home_attempt: int = 0
    """While returning: commits tried in this round's cluster."""

    @property
    def reservation_id(self) -> str:
        return self.move_id

    def command_id(self, step: str) -> str:
        return f"{self.move_id}/{step}"

    def links(self) -> set[frozenset[str]]:
        """Links of the path, as unordered pairs."""
        return {frozenset(pair) for pair in zip(self.path, self.path[1:], strict=False)}


class MoveJournal:
    """Moves by id in a SQLite file (or ':memory:'); one thread (the event loop) only."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute(_SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection of the ``grid_moves`` table."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def put(self, move: Move) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO grid_moves VALUES (?, ?, ?)",
                (move.move_id, move.plan_id, json.dumps(_to_dict(move))),
            )

    def get(self, move_id: str) -> Move | None:
        row = self._db.execute("SELECT data FROM grid_moves WHERE move_id = ?", (move_id,))
        found = row.fetchone()
        return None if found is None else _from_dict(json.loads(found[0]))

    def moves(self, plan_id: str | None = None) -> list[Move]:
        """Moves of one plan (or all), in schedule order."""
        rows = self._db.execute("SELECT plan_id, data FROM grid_moves").fetchall()
        found = [_from_dict(json.loads(d)) for p, d in rows if plan_id is None or p == plan_id]
        return sorted(found, key=lambda mv: (mv.start_s, mv.move_id))

    def unfinished(self) -> list[Move]:
        return [mv for mv in self.moves() if not mv.phase.final]


def _to_dict(move: Move) -> dict[str, object]:
    data = dataclasses.asdict(move)
    data["phase"] = move.phase.value
    return data


def _from_dict(data: dict[str, object]) -> Move:
    vm = m.VmDemand(**data.pop("vm"))  # type: ignore[arg-type]
    phase = Phase(data.pop("phase"))
    path: tuple[str, ...] = tuple(data.pop("path"))  # type: ignore[arg-type]
    return Move(vm=vm, phase=phase, path=path, **data)  # type: ignore[arg-type]
