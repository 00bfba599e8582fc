"""A grid move's phases as the coordinator journals them, the sent-back ones included."""

from __future__ import annotations

import json

from vmgrid.agents import grid_model as m
from vmgrid.coordinator.codec import encode_applied_plan
from vmgrid.coordinator.moves import Move, MoveJournal, Phase, PlanStatus, plan_status

VM = m.VmDemand("0b6d0c1e-0000-4000-8000-000000000001", "web-1", memory_bytes=2**30)


def move(phase: Phase, n: int = 0, **extra: object) -> Move:
    return Move(f"mv{n}", "p1", VM, "c1", "c2", phase=phase, **extra)  # type: ignore[arg-type]


def test_a_move_being_sent_back_keeps_its_plan_running_and_a_returned_one_fails_it() -> None:
    assert plan_status([move(Phase.DONE, 0), move(Phase.RETURNING, 1)]) is PlanStatus.RUNNING
    assert plan_status([move(Phase.DONE, 0), move(Phase.RETURNED, 1)]) is PlanStatus.FAILED
    assert plan_status([move(Phase.DONE, 0), move(Phase.DONE, 1)]) is PlanStatus.SUCCEEDED
    assert Phase.RETURNED.final and not Phase.RETURNING.final


def test_the_round_of_sending_back_survives_the_journal_and_old_rows_read_as_round_zero() -> None:
    journal = MoveJournal(":memory:")
    journal.put(move(Phase.RETURNING, home_round=3, home_attempt=2, message="no home yet"))
    (back,) = journal.unfinished()
    assert (back.phase, back.home_round, back.home_attempt) == (Phase.RETURNING, 3, 2)
    # a row written before the sent-back phases existed
    data = json.loads(journal.connection.execute("SELECT data FROM grid_moves").fetchone()[0])
    del data["home_round"], data["home_attempt"]
    data["phase"] = "migrated"
    with journal.connection:
        journal.connection.execute("UPDATE grid_moves SET data = ?", (json.dumps(data),))
    old = journal.get("mv0")
    assert old is not None and (old.phase, old.home_round, old.home_attempt) == (
        Phase.MIGRATED,
        0,
        0,
    )


def test_every_phase_has_a_wire_state() -> None:
    for phase in Phase:
        wire = encode_applied_plan("p1", PlanStatus.RUNNING, [move(phase)])
        assert wire.moves[0].message == phase.value
