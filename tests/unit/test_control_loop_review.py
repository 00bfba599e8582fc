"""Decide/plan/act review: one plan at a time whoever starts it, no stuck `running`,
recommendations that expire even between sweeps, and restart reconciliation of shutdowns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from vmgrid.agents.cluster.act.driver import ManagerDriver, locate_vm
from vmgrid.agents.cluster.act.executor import (
    READY,
    Check,
    Observed,
    Outcome,
    PlanExecutor,
    ProgressCallback,
    Verdict,
)
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.decide.control import (
    AutomationLevel,
    ControlConfig,
    Decision,
    Trigger,
    TriggerKind,
)
from vmgrid.agents.cluster.decide.loop import ControlLoop, Recommendation
from vmgrid.agents.cluster.decide.maintenance import DrainFallback
from vmgrid.agents.cluster.decide.thinking import CycleRequest, Thought
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.errors import NotFound
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)
from vmgrid.solver.plan import Action, ActionKind, Plan

GIB = 2**30
SECOND = 1_000_000_000


def manager_with(placement: dict[str, dict[str, VmState]]) -> ClusterManager:
    """Nodes of 4 cores and 8 GiB reporting their VMs (1 GiB, 100 millicores each)."""
    manager = ClusterManager(ClusterConfig(cluster_id="c1"))
    for node in placement:
        identity = NodeIdentity(node, node, "tcp://x", simulated=True)
        manager.state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
    for seq in range(1, 4):
        for node, vms in placement.items():
            usage = tuple(
                VmUsage(uuid, uuid, st, 1, 100, GIB, GIB) for uuid, st in sorted(vms.items())
            )
            host = HostUsage(100 * len(vms), len(vms) * GIB, 8 * GIB)
            manager.state.apply_report(node, NodeReport(seq * SECOND, seq, host, usage))
    return manager


@dataclass
class GatedDriver:
    """Actions succeed once `gate` is set; records what it executed."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    executed: list[str] = field(default_factory=list)

    def check(self, action: Action) -> Check:
        return READY

    async def execute(self, action: Action, cid: str, progress: ProgressCallback) -> Outcome:
        self.executed.append(cid)
        await self.gate.wait()
        return Outcome(True, "done")

    async def abort(self, action: Action, cid: str) -> None:
        return None

    def observe(self, action: Action) -> Observed:
        return Observed.NOT_DONE


def draining_loop(driver: GatedDriver) -> ControlLoop:
    manager = manager_with({"n1": {"a": VmState.RUNNING}, "n2": {}})
    executor = PlanExecutor(driver, Journal(":memory:"))
    config = ControlConfig(automation=AutomationLevel.AUTOMATIC, cooldown_s=0.0)
    loop = ControlLoop(manager, executor, config)
    loop.drain("n1")
    return loop


def operator_move() -> tuple[Action, ...]:
    return (Action(0, ActionKind.MIGRATE, "a", "n1", "n2", 0, 1, "operator request"),)


def test_loop_starts_no_plan_while_an_operator_plan_runs() -> None:
    async def scenario() -> None:
        driver = GatedDriver()
        loop = draining_loop(driver)
        operator = asyncio.ensure_future(loop.executor.run("op-1", operator_move(), "operator"))
        await asyncio.sleep(0)
        assert await loop.cycle() is None
        assert loop.running is None
        driver.gate.set()
        await operator
        assert driver.executed == ["op-1/0/0"] and loop.executor.in_flight == ()

    asyncio.run(scenario())


def test_loop_drops_its_decision_when_an_operator_plan_starts_while_it_decides() -> None:
    class RacedLoop(ControlLoop):
        async def _think(self, request: CycleRequest) -> Thought:
            thought = await super()._think(request)
            self.executor.claim("op-meanwhile")  # the operator's apply, during the solve
            return thought

    async def scenario() -> None:
        driver = GatedDriver()
        loop = draining_loop(driver)
        raced = RacedLoop(loop.manager, loop.executor, loop.config)
        assert await raced.cycle() is None
        assert raced.running is None and driver.executed == []

    asyncio.run(scenario())


def test_running_is_cleared_when_the_plan_task_is_cancelled_before_it_starts() -> None:
    async def scenario() -> None:
        driver = GatedDriver()
        loop = draining_loop(driver)
        decision = await loop.cycle()
        assert decision is not None and decision.plan is not None
        assert loop.running is not None
        tasks = list(loop._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)
        assert loop.running is None and loop.executor.in_flight == ()

    asyncio.run(scenario())


def test_recommendation_past_its_time_to_live_cannot_be_approved() -> None:
    async def scenario() -> None:
        now = [100.0]
        manager = manager_with({"n1": {"a": VmState.RUNNING}, "n2": {}})
        executor = PlanExecutor(GatedDriver(), Journal(":memory:"))
        loop = ControlLoop(
            manager, executor, ControlConfig(), clock=lambda: now[0], recommendation_ttl_s=300
        )
        trigger = Trigger(TriggerKind.OVERLOAD, ("n1",), "test")
        model = to_model(manager.state.snapshot())
        decision = Decision(trigger, Plan(model, model, operator_move()), "move a")
        loop.pending["plan-old"] = Recommendation("plan-old", decision, now[0])
        now[0] += 301.0  # no cycle has swept it yet
        try:
            loop.approve("plan-old")
        except NotFound:
            pass
        else:
            raise AssertionError("an expired recommendation was approved")
        assert loop.running is None and "plan-old" not in loop.pending

    asyncio.run(scenario())


def test_shutdown_in_flight_at_restart_is_done_when_the_vm_is_off() -> None:
    manager = manager_with({"n1": {"a": VmState.SHUT_OFF, "b": VmState.RUNNING}})
    driver = ManagerDriver(manager)
    off = Action(0, ActionKind.SHUTDOWN_VM, "a", "n1", None, 0, 1, "drain fallback")
    still_on = Action(1, ActionKind.SHUTDOWN_VM, "b", "n1", None, 0, 1, "drain fallback")
    assert driver.observe(off) is Observed.DONE
    assert driver.observe(still_on) is Observed.NOT_DONE


def test_executor_claims_end_with_their_plan() -> None:
    async def scenario() -> None:
        driver = GatedDriver()
        driver.gate.set()
        executor = PlanExecutor(driver, Journal(":memory:"))
        executor.claim("p1")
        assert executor.in_flight == ("p1",)
        await executor.run("p1", operator_move())
        assert executor.in_flight == ()

    asyncio.run(scenario())


def test_suspend_fallback_says_the_drained_node_is_not_empty() -> None:
    async def scenario() -> None:
        driver = GatedDriver()
        driver.gate.set()
        manager = manager_with({"n1": {"a": VmState.RUNNING}})
        config = ControlConfig(
            automation=AutomationLevel.AUTOMATIC, drain_fallback=DrainFallback.SUSPEND
        )
        loop = ControlLoop(manager, PlanExecutor(driver, Journal(":memory:")), config)
        loop.drain("n1")
        decision = await loop.cycle()
        assert decision is not None and decision.plan is not None
        assert [a.kind for a in decision.plan.actions] == [ActionKind.SUSPEND]
        assert "keep their memory on n1, which is not empty" in decision.summary
        await asyncio.gather(*loop._tasks)

    asyncio.run(scenario())


def test_migration_in_flight_is_not_done_while_the_incoming_copy_is_paused() -> None:
    # n2 is listed first, so a plain lookup meets the destination's paused incoming copy first.
    manager = manager_with({"n2": {"a": VmState.PAUSED}, "n1": {"a": VmState.MIGRATING}})
    driver = ManagerDriver(manager)
    move = Action(0, ActionKind.MIGRATE, "a", "n1", "n2", 0, 1, "drain")
    assert locate_vm(manager.state, "a")[0] == "n1"
    assert driver.observe(move) is Observed.NOT_DONE
    assert driver.check(move).verdict is not Verdict.STALE


def test_undrain_is_tried_again_after_a_failed_decision() -> None:
    class FlakyLoop(ControlLoop):
        asked: list[str | None] = []

        async def _think(self, request: CycleRequest) -> Thought:
            self.asked.append(request.returning)
            if len(self.asked) == 1:
                raise RuntimeError("decision process died")
            return await super()._think(request)

    async def scenario() -> None:
        manager = manager_with({"n1": {"a": VmState.RUNNING}, "n2": {}})
        executor = PlanExecutor(GatedDriver(), Journal(":memory:"))
        loop = FlakyLoop(manager, executor, ControlConfig(automation=AutomationLevel.AUTOMATIC))
        manager.state.set_draining("n1", True)
        loop._draining = {"n1"}  # the loop saw n1 in maintenance
        loop.undrain("n1")
        try:
            await loop.cycle()
        except RuntimeError:
            pass
        else:
            raise AssertionError("the first decision should have failed")
        await loop.cycle()
        assert loop.asked == ["n1", "n1"]

    asyncio.run(scenario())


def test_an_overload_held_for_the_hold_time_starts_a_cycle_at_once() -> None:
    """The loop does not wait for its next period (15 s by default) once a report completes
    an overload's hold: the report that completes it wakes the loop."""
    manager = manager_with({"n1": {"a": VmState.RUNNING}, "n2": {}})
    config = ControlConfig(automation=AutomationLevel.AUTOMATIC, hold_s=2.0, period_s=60.0)
    loop = ControlLoop(manager, PlanExecutor(GatedDriver(), Journal(":memory:")), config)
    hot = HostUsage(3900, GIB, 8 * GIB)  # 97 % of 4 cores
    usage = (VmUsage("a", "a", VmState.RUNNING, 1, 3900, GIB, GIB),)
    for seq in range(4, 7):
        assert not loop._kick.is_set()
        manager.state.apply_report("n1", NodeReport(seq * SECOND, seq, hot, usage))
    assert loop._kick.is_set()  # at t=6 s the spell that began at t=4 s has lasted 2 s
