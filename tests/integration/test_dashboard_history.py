"""GET /history and GET /timeline over loopback against a demo cluster (real manager, real
simulated agents): the charts' data grows as reports arrive, bad parameters are 400s naming
the value, and a migration shows in the timeline with its progress and reason."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from dashboard_harness import DashboardDemo, DashboardHarness, any_vm
from test_dashboard_api import call

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDemo]:
    harness = DashboardHarness(nodes=2, vms_per_node=2)
    try:
        yield harness.start(tmp_path_factory.mktemp("dashboard-history"))
    finally:
        harness.stop()


def test_a_node_history_grows_with_each_report(demo: DashboardDemo) -> None:
    status, first = call(demo, "/history?node=c1-n1&minutes=5", token="read")
    assert status == 200, first
    assert first["node"] == "c1-n1" and first["minutes"] == 5 and first["bucket_s"] == 30
    times = first["times_unix_ms"]
    assert times == sorted(times) and times[0] >= time.time() * 1000 - 5 * 60_000
    assert {"cpu_used_millicores", "memory_used_bytes", "net_rx_bytes_per_second"} <= set(
        first["series"]
    )
    assert all(len(v) == len(times) for v in first["series"].values())
    view = demo.call(lambda: demo.runtime.manager.state.view("c1-n1"))
    assert view.usage is not None
    assert first["series"]["memory_total_bytes"][-1] == view.usage.memory_total_bytes
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # agents report every 0.5 s
        _, later = call(demo, "/history?node=c1-n1", token="read")
        if later["times_unix_ms"][-1] > times[-1]:
            break
        time.sleep(0.3)
    assert later["times_unix_ms"][-1] > times[-1]


def test_a_vm_history_follows_its_samples(demo: DashboardDemo) -> None:
    vm = any_vm(demo)
    # the samples first: the page, read after, holds them (a sample that arrives between the
    # two reads is in the manager's newest three but not in a page read before it)
    samples = demo.call(lambda: demo.runtime.manager.state.snapshot().vm_samples(vm["uuid"]))
    status, body = call(demo, f"/history?vm={vm['uuid']}", token="read")
    assert status == 200 and body["vm"] == vm["uuid"] and body["minutes"] == 60
    cpu = dict(zip(body["times_unix_ms"], body["series"]["cpu_used_millicores"], strict=True))
    for sample in samples[-3:]:
        assert cpu.get(sample.sent_at_unix_ns // 1_000_000) == sample.cpu_used_millicores


@pytest.mark.parametrize(
    ("query", "field", "named"),
    [
        ("node=c1-n1&minutes=0", "minutes", "'0'"),
        ("node=c1-n1&minutes=61", "minutes", "'61'"),
        ("node=c1-n1&minutes=soon", "minutes", "'soon'"),
        ("node=c1-n1&vm=abc", "node", "vm='abc'"),
        ("", "node", "neither"),
        ("node=c1-n1&hours=2", "hours", "'hours'"),
    ],
)
def test_bad_history_parameters_are_400_naming_the_value(
    demo: DashboardDemo, query: str, field: str, named: str
) -> None:
    status, body = call(demo, f"/history?{query}", token="read")
    assert status == 400, body
    assert body["error"]["field"] == field and named in body["error"]["message"]


def test_unknown_node_or_vm_is_404_naming_it(demo: DashboardDemo) -> None:
    status, body = call(demo, "/history?node=c9-n9", token="read")
    assert status == 404 and "'c9-n9'" in body["error"]["message"]
    status, body = call(demo, "/history?vm=no-such-vm", token="read")
    assert status == 404 and "'no-such-vm'" in body["error"]["message"]


def test_a_migration_shows_in_the_timeline_with_progress_and_reason(demo: DashboardDemo) -> None:
    vm = any_vm(demo)
    destination = "c1-n2" if vm["node"] == "c1-n1" else "c1-n1"
    status, started = call(demo, f"/vms/{vm['uuid']}/migrate", body={"destination": destination})
    assert status == 202, started
    deadline = time.monotonic() + 60
    plan: dict[str, object] = {}
    while time.monotonic() < deadline:
        _, body = call(demo, "/timeline?limit=5", token="read")
        plan = next((p for p in body["plans"] if p["id"] == started["plan"]), {})
        if plan.get("status") == "succeeded":
            break
        time.sleep(0.3)
    assert plan["status"] == "succeeded" and plan["progress"] == 1.0
    assert plan["summary"] == f"migrate {vm['name']} {vm['node']} -> {destination} (simulated)"
    (action,) = plan["actions"]  # type: ignore[misc]
    assert action["kind"] == "migrate" and action["name"] == vm["name"]
    assert (action["src"], action["dst"], action["state"]) == (vm["node"], destination, "succeeded")
    assert action["reason"] == f"operator request: to {destination}"
    assert action["simulated"] is True
    status, body = call(demo, "/timeline?limit=0", token="read")
    assert status == 400 and body["error"]["field"] == "limit" and "'0'" in body["error"]["message"]


def test_the_page_and_its_vendored_chart_library_are_served_without_any_cdn(
    demo: DashboardDemo,
) -> None:
    with urllib.request.urlopen(demo.web.url + "/", timeout=10) as response:
        page = response.read().decode()
    assert "http://" not in page and "https://" not in page
    for script in ("/static/vendor/uPlot.iife.min.js", "/static/panels.js", "/static/app.js"):
        assert f'src="{script}"' in page
        try:
            with urllib.request.urlopen(demo.web.url + script, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{script}: {exc.code} (make install vendors uPlot)") from None
        assert len(body) > 1000 and (b"uPlot" in body or "vendor" not in script), script
