"""The dashboard page in Debian's headless Chromium, driven by Playwright, on a demo cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_harness import eventually, logged_in_page, running_demo
from dashboard_harness import DashboardDemo, any_vm
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDemo]:
    yield from running_demo(tmp_path_factory.mktemp("dashboard-browser"), nodes=3, vms_per_node=2)


@pytest.fixture(scope="module")
def page(demo: DashboardDemo) -> Iterator[object]:
    yield from logged_in_page(demo, ARGS)


def test_page_shows_every_node_and_vm(demo: DashboardDemo, page: object) -> None:
    for node in ("c1-n1", "c1-n2", "c1-n3"):
        assert page.locator(f"[data-node={node}]").count() == 1  # type: ignore[attr-defined]
    assert page.locator("tr[data-vm]").count() == 6  # type: ignore[attr-defined]


def test_suspend_then_resume_from_the_page_changes_the_vm_on_its_node(
    demo: DashboardDemo, page: object
) -> None:
    vm = any_vm(demo)
    row = page.locator(f"tr[data-vm='{vm['uuid']}']")  # type: ignore[attr-defined]
    row.locator("button[data-action=suspend]").click()
    eventually(lambda: demo.vm_state(vm["uuid"])[1] == "paused")
    row.locator("button[data-action=resume]").click(timeout=20000)
    eventually(lambda: demo.vm_state(vm["uuid"])[1] == "running")


def test_live_update_appears_without_reload(demo: DashboardDemo, page: object) -> None:
    page.evaluate("window.__marker = 'same page'")  # type: ignore[attr-defined]
    demo.call(lambda: demo.runtime.manager.state.set_draining("c1-n3", True))
    page.wait_for_selector("[data-node=c1-n3].draining", timeout=15000)  # type: ignore[attr-defined]
    page.wait_for_selector("#events li[data-kind=node_drain_changed]")  # type: ignore[attr-defined]
    assert page.evaluate("window.__marker") == "same page"  # type: ignore[attr-defined]
    demo.call(lambda: demo.runtime.manager.state.set_draining("c1-n3", False))


def test_migration_started_from_the_page_completes(demo: DashboardDemo, page: object) -> None:
    vm = any_vm(demo)
    destination = next(n for n in ("c1-n1", "c1-n2", "c1-n3") if n != vm["node"])
    row = page.locator(f"tr[data-vm='{vm['uuid']}']")  # type: ignore[attr-defined]
    row.locator("button[data-action=migrate]").click()
    page.select_option("#migrate-destination", destination)  # type: ignore[attr-defined]
    page.click("#migrate-go")  # type: ignore[attr-defined]
    eventually(lambda: demo.vm_state(vm["uuid"]) == (destination, "running"), 60)
    selector = f"[data-node={destination}] tr[data-vm='{vm['uuid']}']"
    page.wait_for_selector(selector, timeout=15000)  # type: ignore[attr-defined]
    page.wait_for_selector("#events li[data-kind=migration_finished]")  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)  # type: ignore[attr-defined]
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


def test_rules_panel_adds_shows_whether_it_holds_and_deletes_a_rule(
    demo: DashboardDemo, page: object
) -> None:
    views = demo.call(demo.runtime.manager.state.views)
    crowded = next(v for v in views if len(v.vms) >= 2)
    names = sorted(vm.name for vm in crowded.vms)[:2]
    page.select_option("#rule-kind", "spread")  # type: ignore[attr-defined]
    page.fill("#rule-id", "page-apart")  # type: ignore[attr-defined]
    page.fill("#rule-vms", ",".join(names))  # type: ignore[attr-defined]
    page.click("#rule-add")  # type: ignore[attr-defined]
    row = "#rules tr[data-rule=page-apart][data-rule-state=violated]"
    page.wait_for_selector(row, timeout=15000)  # type: ignore[attr-defined]
    assert names[0] in page.inner_text(row)  # type: ignore[attr-defined]
    rules = demo.runtime.manager.state.rules
    assert demo.call(lambda: [r.rule_id for r in rules.rules()]) == ["page-apart"]
    page.fill("#rule-id", "page-bad")  # type: ignore[attr-defined]
    page.fill("#rule-vms", f"{names[0]},nobody")  # type: ignore[attr-defined]
    page.click("#rule-add")  # type: ignore[attr-defined]
    page.wait_for_selector("#error:has-text(\"'nobody'\")", timeout=15000)  # type: ignore[attr-defined]
    page.click("#rules tr[data-rule=page-apart] button[data-action=delete-rule]")  # type: ignore[attr-defined]
    page.wait_for_selector("#rules tr[data-rule]", state="detached", timeout=15000)  # type: ignore[attr-defined]
    assert demo.call(lambda: [r.rule_id for r in rules.rules()]) == []


def test_traffic_panel_shows_the_heaviest_measured_pairs(demo: DashboardDemo, page: object) -> None:
    views = demo.call(demo.runtime.manager.state.views)
    a, c = views[0].vms[0], views[2].vms[0]
    ends = (
        TrafficEndpoint(a.uuid, "52:54:00:00:00:01"),
        TrafficEndpoint(c.uuid, "52:54:00:00:00:03"),
    )
    flows = (TrafficFlow("52:54:00:00:00:01", "52:54:00:00:00:03", 3_000_000),)
    matrix = TrafficMatrix(True, "", 30_000, ends, flows)
    demo.call(lambda: demo.runtime.manager.state.traffic.apply("meter", matrix))
    page.evaluate("refresh()")  # type: ignore[attr-defined]
    row = page.locator(  # type: ignore[attr-defined]
        f"tr[data-traffic-pair='{min(a.uuid, c.uuid)} {max(a.uuid, c.uuid)}']"
    )
    row.wait_for(timeout=15000)
    assert row.get_attribute("data-crosses") == "node"
    text = row.inner_text()
    assert a.name in text and c.name in text and "3.0 MB/s" in text and "across nodes" in text
    assert "Not measured on c1-n1" in page.locator("#traffic").inner_text()  # type: ignore[attr-defined]
