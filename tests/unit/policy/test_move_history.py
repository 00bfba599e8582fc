"""What the loop counts budgets and minimum times on: the plan journal's migrations, read back
each cycle (so a restarted manager keeps counting), and the bench's ping-pong count."""

from __future__ import annotations

import time
from pathlib import Path

from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import ActionState, Journal
from vmgrid.agents.cluster.decide.control import ControlConfig
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.decide.move_limits import MoveHistory, PastMove, Proposal, screen
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.bench.demo_stability import most_moves, ping_pong
from vmgrid.solver.plan import Action, ActionKind


def migrate(i: int, vm: str, src: str, dst: str) -> Action:
    return Action(i, ActionKind.MIGRATE, vm, src, dst, 0, 1, "test")


def journal_with_moves(path: Path) -> Journal:
    """vm-a n1->n2 (done), vm-b n1->n3 (failed), vm-c n2->n3 (running), a boot (not a move)."""
    journal = Journal(path)
    actions = [
        migrate(0, "vm-a", "n1", "n2"),
        migrate(1, "vm-b", "n1", "n3"),
        migrate(2, "vm-c", "n2", "n3"),
        Action(3, ActionKind.BOOT_VM, "vm-d", None, "n1", 0, 1, "test"),
    ]
    journal.record_plan("p1", actions)
    for action in actions:
        journal.start_action("p1", action.id, 0)
    journal.finish_action("p1", 0, ActionState.SUCCEEDED)
    journal.finish_action("p1", 1, ActionState.FAILED, "no route")
    journal.finish_action("p1", 3, ActionState.SUCCEEDED)
    return journal


def test_the_journal_gives_the_migrations_that_happened_or_are_under_way(tmp_path: Path) -> None:
    journal = journal_with_moves(tmp_path / "journal.sqlite")
    moves = journal.migrations_since(time.time() - 60)
    assert [(vm, src, dst) for vm, src, dst, _ in moves] == [
        ("vm-a", "n1", "n2"),
        ("vm-c", "n2", "n3"),
    ]
    assert journal.migrations_since(time.time() + 1) == []
    journal.close()


def test_the_loop_counts_the_journal_of_a_previous_manager(tmp_path: Path) -> None:
    journal_with_moves(tmp_path / "journal.sqlite").close()
    reopened = Journal(tmp_path / "journal.sqlite")
    manager = ClusterManager(ClusterConfig(cluster_id="c1"))
    policy = OperatorPolicy(migrations_per_hour=3, migrations_per_node_hour=2)
    loop = ControlLoop(manager, PlanExecutor(None, reopened), ControlConfig(operator_policy=policy))  # type: ignore[arg-type]
    history = loop.move_history()
    assert [m.vm for m in history.moves] == ["vm-a", "vm-c"]
    assert history.last_moved_ago("vm-a") is not None and history.last_moved_ago("vm-b") is None
    # n2 has had two migrations (one in, one out): a third one there must wait
    waiting = screen([Proposal("vm-e", "e", "n4", "n2", False)], policy, history)
    assert waiting.kept == () and "n2 has had 2 of its 2 migrations" in waiting.waiting[0]
    allowed = screen([Proposal("vm-e", "e", "n4", "n5", False)], policy, history)
    assert [p.vm for p in allowed.kept] == ["vm-e"]
    # the hourly budget (3) has one migration left
    two = [Proposal(f"vm-{i}", f"{i}", "n4", "n5", False, "n4") for i in "fg"]
    assert screen(two, policy, history).kept == ()
    reopened.close()


def test_moves_older_than_an_hour_leave_the_budget_but_not_the_return_window() -> None:
    now = 10_000.0
    history = MoveHistory((PastMove("vm-a", "n1", "n2", now - 4000),), now)
    policy = OperatorPolicy(migrations_per_hour=1, return_after_s=7200)
    back = screen([Proposal("vm-a", "a", "n2", "n1", False)], policy, history)
    assert back.kept == () and "left it 67 min ago" in back.waiting[0]
    elsewhere = screen([Proposal("vm-a", "a", "n2", "n3", False)], policy, history)
    assert [p.vm for p in elsewhere.kept] == ["vm-a"]


def test_ping_pong_counts_returns_to_a_node_left_earlier() -> None:
    moves = [
        ("a", "n1", "n2", 1.0),
        ("b", "n1", "n2", 2.0),
        ("a", "n2", "n3", 3.0),
        ("a", "n3", "n1", 4.0),  # back to n1
        ("b", "n2", "n3", 5.0),
    ]
    assert ping_pong(moves) == 1 and most_moves(moves) == 3
    assert ping_pong(moves[:3]) == 0
