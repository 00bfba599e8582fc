"""Approving and rejecting a plan from the page (manual automation), in headless Chromium.

The manager runs in manual mode with its decision cycle off, so the test places the
recommendation itself, exactly as a manual-mode cycle holds one (`ControlLoop.pending` plus the
"waits for approval" event); what the page then does goes through the real API, loop and
executor down to the simulated agents.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from browser_harness import eventually, logged_in_page, running_demo
from dashboard_harness import DashboardDemo, any_vm
from vmgrid.agents.cluster.decide.control import Decision, Trigger, TriggerKind
from vmgrid.agents.cluster.decide.loop import Recommendation
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.solver.plan import Action, ActionKind, Plan

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
NODES = ("c1-n1", "c1-n2")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDemo]:
    yield from running_demo(tmp_path_factory.mktemp("dashboard-plans"), nodes=2, vms_per_node=2)


@pytest.fixture(scope="module")
def page(demo: DashboardDemo) -> Iterator[object]:
    yield from logged_in_page(demo, ARGS)


def recommend_move(demo: DashboardDemo) -> tuple[str, str, str, str]:
    """A manual-mode recommendation to migrate one VM; (plan id, vm uuid, source, dest)."""
    vm = any_vm(demo)
    destination = next(n for n in NODES if n != vm["node"])
    plan_id = f"plan-{uuid.uuid4().hex[:10]}"

    def place() -> None:
        runtime = demo.runtime
        model = to_model(runtime.manager.state.snapshot())
        action = Action(0, ActionKind.MIGRATE, vm["uuid"], vm["node"], destination, 0, 1, "test")
        trigger = Trigger(TriggerKind.OVERLOAD, (vm["node"],), f"{vm['node']} overloaded")
        summary = f"relieve {vm['node']}: move {vm['name']} to {destination}"
        decision = Decision(trigger, Plan(model, model, (action,)), summary)
        runtime.loop.pending[plan_id] = Recommendation(plan_id, decision, time.monotonic())
        runtime.manager.bus.publish(
            EventKind.PLAN_CHANGED, message=f"{plan_id} waits for approval: {summary}"
        )

    demo.call(place)
    return plan_id, vm["uuid"], vm["node"], destination


def test_approving_a_pending_plan_on_the_page_runs_it(demo: DashboardDemo, page: object) -> None:
    plan_id, vm_uuid, _, destination = recommend_move(demo)
    card = page.locator(f"#plans [data-plan='{plan_id}']")  # type: ignore[attr-defined]
    card.wait_for(timeout=15000)
    card.locator("button", has_text="Approve").click()
    eventually(lambda: demo.vm_state(vm_uuid) == (destination, "running"), 60)
    selector = f"[data-node={destination}] tr[data-vm='{vm_uuid}']"
    page.wait_for_selector(selector, timeout=15000)  # type: ignore[attr-defined]
    card.wait_for(state="detached", timeout=15000)
    assert demo.call(lambda: dict(demo.runtime.loop.pending)) == {}
    page.wait_for_selector("#events li[data-kind=migration_finished]")  # type: ignore[attr-defined]


def test_rejecting_a_pending_plan_on_the_page_leaves_the_vm_where_it_is(
    demo: DashboardDemo, page: object
) -> None:
    eventually(lambda: demo.call(lambda: demo.runtime.loop.running) is None, 60)
    plan_id, vm_uuid, source, _ = recommend_move(demo)
    card = page.locator(f"#plans [data-plan='{plan_id}']")  # type: ignore[attr-defined]
    card.wait_for(timeout=15000)
    card.locator("button", has_text="Reject").click()
    card.wait_for(state="detached", timeout=15000)
    assert demo.call(lambda: dict(demo.runtime.loop.pending)) == {}
    events = page.locator("#events li[data-kind=plan_changed]", has_text="rejected")  # type: ignore[attr-defined]
    events.first.wait_for(timeout=15000)
    assert demo.vm_state(vm_uuid) == (source, "running")
    assert demo.call(lambda: demo.runtime.loop.running) is None
