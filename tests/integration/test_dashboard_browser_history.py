"""The dashboard's history, timeline and layout in Debian's headless Chromium (Playwright), on a
demo cluster in manual mode: log in by the link, watch the charts fill, approve a plan and
watch it run, see a rule's violation explained, and no element leaves its card from 1280 to
2560 pixels wide.

Screenshots go to artifacts/ (VMGRID_SCREENSHOT_DIR=docs/images refreshes the documentation's).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import CHROMIUM, eventually, running_demo, sync_api
from dashboard_harness import DashboardDemo, any_vm
from vmgrid.agents.cluster.decide.control import Decision, Trigger, TriggerKind
from vmgrid.agents.cluster.decide.loop import Recommendation
from vmgrid.agents.cluster.rules.validate import RuleRequest
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.solver.plan import Action, ActionKind, Plan

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / os.environ.get("VMGRID_SCREENSHOT_DIR", "artifacts")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
NODES = ("c1-n1", "c1-n2", "c1-n3")
Page = Any  # playwright.sync_api.Page (typed loosely: the module is optional)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDemo]:
    yield from running_demo(tmp_path_factory.mktemp("dashboard-history"), nodes=3, vms_per_node=2)


@pytest.fixture(scope="module")
def page(demo: DashboardDemo) -> Iterator[Page]:
    """Logged in by the login link, as `vmgrid-demo` prints it."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{demo.web.url}/#token={demo.tokens.operator}")
        page.wait_for_selector("body[data-loaded=true]")
        page.wait_for_selector("#live.on")
        page.errors = errors
        yield page
        browser.close()


def shot(page: Page, name: str, selector: str = "") -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = page.locator(selector) if selector else page
    target.screenshot(path=str(SHOTS / name))


def test_the_login_link_logs_in_and_leaves_the_address_bar(demo: DashboardDemo, page: Page) -> None:
    assert "token" not in page.url and page.url.rstrip("/") == demo.web.url
    assert page.evaluate("sessionStorage.getItem('vmgrid-token')") == demo.tokens.operator
    assert page.locator("[data-node]").count() == len(NODES)
    assert page.errors == []


def test_history_charts_fill_as_reports_arrive(demo: DashboardDemo, page: Page) -> None:
    chart = page.locator("[data-chart='node:c1-n1']")
    chart.scroll_into_view_if_needed()  # charts load when they come on screen
    chart.locator("canvas").wait_for(timeout=15000)
    first = int(chart.get_attribute("data-last") or 0)
    assert int(chart.get_attribute("data-points") or 0) >= 2
    eventually(lambda: int(chart.get_attribute("data-last") or 0) > first, 20)
    assert "CPU" in chart.inner_text() and "mem" in chart.inner_text()
    # the chart first, then the manager: read the other way, the chart may refresh in between
    shown = int(chart.get_attribute("data-last") or 0)
    view = demo.call(lambda: demo.runtime.manager.state.view("c1-n1"))
    assert shown <= view.last_seen_unix_ns // 1_000_000

    vm = any_vm(demo)
    page.click(f"tr[data-vm='{vm['uuid']}'] a[data-action=open-vm]")
    card = page.locator("#vm-card")
    card.wait_for(state="visible")
    assert vm["name"] in card.inner_text()
    vm_chart = card.locator(f"[data-chart='vm:{vm['uuid']}']")
    vm_chart.locator("canvas").wait_for(timeout=15000)
    assert int(vm_chart.get_attribute("data-points") or 0) >= 2
    shot(page, "dashboard-vm-card.png", "#vm-card")
    assert page.errors == []


def place_recommendation(demo: DashboardDemo) -> tuple[str, dict[str, str], str, str]:
    """A manual-mode recommendation, as a manual-mode cycle holds one (the loop's cycle is
    off in the harness), to move the largest running VM (its simulated migration lasts
    seconds): (plan id, the VM, destination, the action's reason)."""
    views = demo.call(demo.runtime.manager.state.views)
    node, usage = max(
        ((v.node_id, vm) for v in views for vm in v.vms if vm.state.value == "running"),
        key=lambda found: found[1].memory_allocated_bytes,
    )
    vm = {"uuid": usage.uuid, "name": usage.name, "node": node}
    destination = next(n for n in NODES if n != vm["node"])
    plan_id = f"plan-{uuid.uuid4().hex[:8]}"
    reason = f"{vm['node']} over its CPU band: 92% > 80% for 2 cycles; {destination} at 31%"

    def place() -> None:
        runtime = demo.runtime
        model = to_model(runtime.manager.state.snapshot())
        action = Action(0, ActionKind.MIGRATE, vm["uuid"], vm["node"], destination, 0, 1, reason)
        trigger = Trigger(TriggerKind.OVERLOAD, (vm["node"],), f"{vm['node']} overloaded")
        summary = f"relieve {vm['node']}: move {vm['name']} to {destination}"
        decision = Decision(trigger, Plan(model, model, (action,)), summary)
        runtime.loop.pending[plan_id] = Recommendation(plan_id, decision, time.monotonic())
        runtime.manager.bus.publish(
            EventKind.PLAN_CHANGED, message=f"{plan_id} waits for approval: {summary}"
        )

    demo.call(place)
    return plan_id, vm, destination, reason


SEEN = """(plan) => {
  // every status the page showed for the plan, in order
  window.__seen = [];
  new MutationObserver(() => {
    const item = document.querySelector(`#timeline li[data-timeline-plan='${plan}']`);
    if (item && window.__seen[window.__seen.length - 1] !== item.dataset.status)
      window.__seen.push(item.dataset.status);
  }).observe(document.getElementById("timeline"), { subtree: true, childList: true, attributes: true });
}"""


def test_approving_a_plan_in_manual_mode_runs_it_and_the_timeline_follows(
    demo: DashboardDemo, page: Page
) -> None:
    eventually(lambda: demo.call(lambda: demo.runtime.loop.running) is None, 60)
    plan_id, vm, destination, reason = place_recommendation(demo)
    waiting = page.locator(f"#timeline li[data-timeline-plan='{plan_id}']")
    waiting.wait_for(timeout=15000)
    assert waiting.get_attribute("data-status") == "awaiting_approval"
    assert reason in waiting.inner_text()
    page.evaluate(SEEN, plan_id)
    page.locator(f"#plans [data-plan='{plan_id}'] button", has_text="Approve").click()
    done = page.locator(f"#timeline li[data-timeline-plan='{plan_id}'][data-status=succeeded]")
    done.wait_for(timeout=60000)
    assert demo.vm_state(vm["uuid"]) == (destination, "running")
    text = done.inner_text()
    assert reason in text and "100%" in text and vm["name"] in text
    assert f"relieve {vm['node']}: move {vm['name']} to {destination}" in text  # the plan's why
    assert done.locator("li[data-action-state=succeeded]").count() == 1
    seen = page.evaluate("window.__seen")
    assert seen.index("running") < seen.index("succeeded"), seen  # watched it run
    page.wait_for_selector(f"[data-node={destination}] tr[data-vm='{vm['uuid']}']")
    shot(page, "dashboard-timeline.png", "#timeline-panel")
    assert page.errors == []


def test_a_violated_rule_is_explained_in_the_rules_panel(demo: DashboardDemo, page: Page) -> None:
    views = demo.call(demo.runtime.manager.state.views)
    crowded = next(v for v in views if len(v.vms) >= 2)
    names = sorted(vm.name for vm in crowded.vms)[:2]
    rule_id = f"apart-{uuid.uuid4().hex[:6]}"
    page.select_option("#rule-kind", "spread")
    page.fill("#rule-id", rule_id)
    page.fill("#rule-vms", ",".join(names))
    page.click("#rule-add")
    row = page.locator(f"#rules tr[data-rule='{rule_id}'][data-rule-state=violated]")
    row.wait_for(timeout=15000)
    rules = demo.runtime.operator.rules
    check = demo.call(rules.check)
    (violation,) = [v for v in check.violations if v.rule.rule_id == rule_id]
    assert violation.reason and violation.reason in row.inner_text()
    assert crowded.node_id in violation.reason
    shot(page, "dashboard-rules.png", "#rules-panel")
    demo.call(lambda: rules.delete(rule_id))
    assert page.errors == []


OVERFLOW = """() => {
  const out = [];
  for (const card of document.querySelectorAll('.panel, .node, .card, .plan')) {
    if (!card.offsetParent) continue;
    const box = card.getBoundingClientRect();
    for (const item of card.querySelectorAll('button, table, canvas, .chart, .u-legend, .tag, input, select, svg')) {
      if (!item.offsetParent && item.tagName !== 'svg') continue;
      const r = item.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.right > box.right + 1 || r.left < box.left - 1)
        out.push(`${item.tagName}.${item.className} [${Math.round(r.left)}, ${Math.round(r.right)}]` +
          ` outside ${card.className}#${card.id || card.dataset.node || ''}` +
          ` [${Math.round(box.left)}, ${Math.round(box.right)}]: ` +
          item.textContent.slice(0, 160));
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth)
    out.push(`page ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window`);
  return out;
}"""


@pytest.mark.parametrize("width", [1280, 1400, 2560])
def test_no_element_leaves_its_card_from_1280_to_2560_pixels(
    demo: DashboardDemo, page: Page, width: int
) -> None:
    vm = any_vm(demo)
    page.click(f"tr[data-vm='{vm['uuid']}'] a[data-action=open-vm]")
    page.locator(f"#vm-card [data-chart='vm:{vm['uuid']}'] canvas").wait_for(timeout=15000)
    # the widest content there is: a violated rule with its explanation
    views = demo.call(demo.runtime.manager.state.views)
    crowded = next(v for v in views if len(v.vms) >= 2)
    names = tuple(sorted(vm.name for vm in crowded.vms)[:2])
    rules = demo.runtime.operator.rules
    rule_id = f"keep-these-two-vms-apart-at-{width}-px"  # a long id: a wide row
    demo.call(lambda: rules.add(RuleRequest(rule_id, "spread", names, (), {})))
    try:
        page.wait_for_selector(f"#rules tr[data-rule='{rule_id}'][data-rule-state=violated]")
        page.set_viewport_size({"width": width, "height": 1000})
        deadline = time.monotonic() + 3  # charts follow their box's new width on later frames
        while (offenders := page.evaluate(OVERFLOW)) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert offenders == []
        buttons = page.locator("tr[data-vm] td.vm-actions button")
        assert buttons.count() >= 3 * len(NODES) * 2
        for i in range(buttons.count()):
            assert buttons.nth(i).is_visible()
        if width == 1400:
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, "dashboard-1400.png")
            shot(page, "dashboard-nodes.png", "#nodes")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
        demo.call(lambda: rules.delete(rule_id))
    assert page.errors == []
