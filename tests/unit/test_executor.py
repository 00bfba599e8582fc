"""Plan executor: ordering, limits, preconditions, cancellation and restart from the journal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from vmgrid.agents.cluster.act.executor import (
    READY,
    Check,
    ExecutionLimits,
    Observed,
    Outcome,
    PlanExecutor,
    ProgressCallback,
    Verdict,
)
from vmgrid.agents.cluster.act.journal import ActionState, Journal, PlanState, command_id
from vmgrid.agents.errors import FailedPrecondition
from vmgrid.solver.plan import Action, ActionKind


def migrate(aid: int, vm: str, src: str, dst: str, deps: tuple[int, ...] = ()) -> Action:
    return Action(aid, ActionKind.MIGRATE, vm, src, dst, 0, 1, "test", deps)


@dataclass
class SmallCluster:
    """A cluster of slots: each node holds `slots` VMs; migrations take `delay` seconds."""

    placement: dict[str, str]
    slots: int = 10
    delay: float = 0.01
    fail: set[str] = field(default_factory=set)
    executed: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    def used(self, node: str) -> int:
        return sum(1 for n in self.placement.values() if n == node)

    def check(self, action: Action) -> Check:
        if self.placement.get(action.subject) != action.src:
            return Check(Verdict.STALE, f"{action.subject} is no longer on {action.src}")
        if action.dst is not None and self.used(action.dst) >= self.slots:
            return Check(Verdict.WAIT, f"{action.dst} is full")
        return READY

    async def execute(self, action: Action, cid: str, progress: ProgressCallback) -> Outcome:
        self.executed.append(cid)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if action.subject in self.fail:
            return Outcome(False, "libvirt said no")
        assert action.dst is not None
        self.placement[action.subject] = action.dst
        return Outcome(True, "migrated", simulated=True)

    async def abort(self, action: Action, cid: str) -> None:
        self.aborted.append(cid)

    def observe(self, action: Action) -> Observed:
        where = self.placement.get(action.subject)
        if where is None:
            return Observed.GONE
        return Observed.DONE if where == action.dst else Observed.NOT_DONE


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_action_after_a_failed_dependency_is_skipped() -> None:
    cluster = SmallCluster({"a": "n1", "b": "n1"}, fail={"a"})
    executor = PlanExecutor(cluster, Journal(":memory:"))
    plan = [migrate(0, "a", "n1", "n2"), migrate(1, "b", "n1", "n3", deps=(0,))]
    report = run(executor.run("p1", plan))
    assert report.actions == {0: ActionState.FAILED, 1: ActionState.SKIPPED}
    assert report.state is PlanState.FAILED
    assert cluster.placement == {"a": "n1", "b": "n1"}


def test_per_node_limit_caps_concurrent_actions_on_a_node() -> None:
    cluster = SmallCluster({f"v{i}": "n1" for i in range(6)}, delay=0.02)
    limits = ExecutionLimits(max_actions_per_node=2, max_migrations_per_link=5)
    executor = PlanExecutor(cluster, Journal(":memory:"), limits)
    plan = [migrate(i, f"v{i}", "n1", f"d{i}") for i in range(6)]
    report = run(executor.run("p1", plan))
    assert report.count(ActionState.SUCCEEDED) == 6
    assert cluster.peak_in_flight == 2


def test_migration_waits_until_its_destination_is_freed() -> None:
    # n2 is full with x; y may only enter n2 once x has left for n3.
    cluster = SmallCluster({"x": "n2", "y": "n1"}, slots=1)
    executor = PlanExecutor(cluster, Journal(":memory:"))
    plan = [migrate(0, "y", "n1", "n2"), migrate(1, "x", "n2", "n3")]
    report = run(executor.run("p1", plan))
    assert report.state is PlanState.SUCCEEDED
    assert cluster.placement == {"x": "n3", "y": "n2"}
    assert cluster.executed == [command_id("p1", 1, 0), command_id("p1", 0, 0)]


def test_stale_action_is_skipped_with_its_reason() -> None:
    cluster = SmallCluster({"a": "n9"})
    executor = PlanExecutor(cluster, Journal(":memory:"))
    report = run(executor.run("p1", [migrate(0, "a", "n1", "n2")]))
    assert report.actions[0] is ActionState.SKIPPED
    assert "no longer on n1" in report.messages[0]
    assert cluster.executed == []


def test_action_whose_precondition_never_holds_is_skipped_not_hung() -> None:
    cluster = SmallCluster({"a": "n1", "b": "n2"}, slots=1)
    executor = PlanExecutor(cluster, Journal(":memory:"))
    report = run(executor.run("p1", [migrate(0, "a", "n1", "n2")]))
    assert report.actions[0] is ActionState.SKIPPED
    assert "n2 is full" in report.messages[0]


def test_cancel_aborts_running_migrations_and_cancels_pending_ones() -> None:
    cluster = SmallCluster({f"v{i}": "n1" for i in range(4)}, delay=0.2)
    limits = ExecutionLimits(max_actions_per_node=1)
    executor = PlanExecutor(cluster, Journal(":memory:"), limits)
    plan = [migrate(i, f"v{i}", "n1", f"d{i}") for i in range(4)]

    async def scenario():  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(executor.run("p1", plan))
        await asyncio.sleep(0.05)
        executor.cancel("p1")
        return await task

    report = run(scenario())
    assert report.state is PlanState.CANCELLED
    assert cluster.aborted == [command_id("p1", 0, 0)]
    assert [report.actions[i] for i in (1, 2, 3)] == [ActionState.CANCELLED] * 3


def test_a_halted_executor_starts_nothing_more_and_leaves_its_plan_running() -> None:
    """What a replica does when its lease is lost: the action in flight is no longer waited
    for, the next never starts, and the journal still says running for the next leader."""
    cluster = SmallCluster({f"v{i}": "n1" for i in range(3)}, delay=0.2)
    limits = ExecutionLimits(max_actions_per_node=1)
    journal = Journal(":memory:")
    executor = PlanExecutor(cluster, journal, limits)
    plan = [migrate(i, f"v{i}", "n1", f"d{i}") for i in range(3)]

    async def scenario():  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(executor.run("p1", plan))
        await asyncio.sleep(0.05)
        executor.halt()
        report = await task
        await asyncio.sleep(0.4)  # past the end of the first migration
        late = await executor.run("p2", [migrate(0, "v1", "n1", "d1")])
        return report, late

    report, late = run(scenario())
    assert report.state is PlanState.RUNNING
    assert cluster.executed == [command_id("p1", 0, 0)] and cluster.aborted == []
    record = journal.plan("p1")
    assert record is not None and record.state is PlanState.RUNNING
    assert [a.state for a in record.actions] == [
        ActionState.RUNNING,
        ActionState.PENDING,
        ActionState.PENDING,
    ]
    assert late.state is PlanState.CANCELLED and journal.plan("p2") is None


def test_restart_finishes_a_plan_without_repeating_what_was_done(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "journal.sqlite"
    plan = [migrate(0, "a", "n1", "n2"), migrate(1, "b", "n1", "n3"), migrate(2, "c", "n1", "n4")]
    first = Journal(path)
    first.record_plan("p1", plan)
    # The old manager had started 0 and 1 and was killed; 0 completed on the agent, 1 did not.
    first.start_action("p1", 0, 0)
    first.start_action("p1", 1, 0)
    first.close()

    cluster = SmallCluster({"a": "n2", "b": "n1", "c": "n1"})
    journal = Journal(path)
    reports = run(PlanExecutor(cluster, journal).resume_unfinished())
    assert len(reports) == 1 and reports[0].state is PlanState.SUCCEEDED
    # a was not migrated again; b was re-sent under its original command id.
    assert sorted(cluster.executed) == [command_id("p1", 1, 0), command_id("p1", 2, 0)]
    assert cluster.placement == {"a": "n2", "b": "n3", "c": "n4"}
    record = journal.plan("p1")
    assert record is not None and record.state is PlanState.SUCCEEDED
    assert record.actions[0].message == "completed during restart"


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="max_actions_per_node must be an integer >= 1, got 0"):
        ExecutionLimits(max_actions_per_node=0)


def test_a_vm_held_by_a_running_plan_is_not_touched_by_another_plan() -> None:
    cluster = SmallCluster({"a": "n1", "b": "n1"}, delay=0.2)
    executor = PlanExecutor(cluster, Journal(":memory:"))

    async def both() -> tuple:  # type: ignore[type-arg]
        first = asyncio.ensure_future(executor.run("p1", [migrate(0, "a", "n1", "n2")]))
        await asyncio.sleep(0.05)  # p1 holds "a" and its migration is running
        second = await executor.run(
            "p2", [migrate(0, "a", "n1", "n3"), migrate(1, "b", "n1", "n3")]
        )
        return await first, second

    first, second = run(both())
    assert first.state is PlanState.SUCCEEDED
    assert second.actions == {0: ActionState.SKIPPED, 1: ActionState.SUCCEEDED}
    assert second.messages[0] == "VM a is held by plan p1"
    assert cluster.placement == {"a": "n2", "b": "n3"}


def test_a_vm_is_free_again_once_its_plan_ended() -> None:
    cluster = SmallCluster({"a": "n1"})
    executor = PlanExecutor(cluster, Journal(":memory:"))
    run(executor.run("p1", [migrate(0, "a", "n1", "n2")]))
    report = run(executor.run("p2", [migrate(0, "a", "n2", "n3")]))
    assert report.state is PlanState.SUCCEEDED and cluster.placement == {"a": "n3"}


def test_a_hold_keeps_its_vms_across_plans_for_the_plans_run_within_it() -> None:
    async def scenario() -> None:
        cluster = SmallCluster({"a": "n1", "b": "n1"})
        executor = PlanExecutor(cluster, Journal(":memory:"))
        with executor.holding("group", ["a", "b"]):
            assert executor.holder("a") == "group" and executor.in_flight == ("group",)
            other = await executor.run("other", [migrate(0, "a", "n1", "n2")])
            assert other.state is PlanState.FAILED
            assert other.messages[0] == "VM a is held by plan group"
            mine = await executor.run("mine", [migrate(0, "a", "n1", "n2")], within="group")
            assert mine.state is PlanState.SUCCEEDED
            assert executor.holder("a") == "group"  # still held once its plan ended
            refused = pytest.raises(FailedPrecondition, match="VM b is held by plan group")
            with refused, executor.holding("second", ["c", "b"]):
                pass
            assert executor.holder("c") is None
        assert executor.holder("a") is None and executor.in_flight == ()
        assert cluster.placement == {"a": "n2", "b": "n1"}

    run(scenario())
