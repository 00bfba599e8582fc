"""The dashboard's JSON API over loopback against a demo cluster (real manager, real agents)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_harness import DashboardDemo, DashboardHarness, any_vm
from vmgrid.agents.traffic import TrafficEndpoint, TrafficFlow, TrafficMatrix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDemo]:
    harness = DashboardHarness(nodes=3, vms_per_node=2)
    try:
        yield harness.start(tmp_path_factory.mktemp("dashboard-api"))
    finally:
        harness.stop()


def call(
    demo: DashboardDemo,
    path: str,
    *,
    token: str | None = "operator",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    all_headers = dict(headers or {})
    if token is not None:
        value = demo.tokens.operator if token == "operator" else demo.tokens.read
        all_headers["Authorization"] = f"Bearer {value}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(
        demo.web.api_url + path, data=data, headers=all_headers, method="POST" if data else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_nodes_lists_every_reporting_node_with_usage(demo: DashboardDemo) -> None:
    status, body = call(demo, "/nodes", token="read")
    assert status == 200
    assert sorted(n["id"] for n in body["nodes"]) == ["c1-n1", "c1-n2", "c1-n3"]
    assert all(n["usage"] is not None and n["simulated"] for n in body["nodes"])


def test_vms_filter_by_node_and_rejects_unknown_state(demo: DashboardDemo) -> None:
    status, body = call(demo, "/vms?node=c1-n2", token="read")
    assert status == 200 and {vm["node"] for vm in body["vms"]} == {"c1-n2"}
    status, body = call(demo, "/vms?state=sleepy", token="read")
    assert status == 400
    assert body["error"]["field"] == "state" and "sleepy" in body["error"]["message"]


def test_a_wrong_method_answers_405_with_allow(demo: DashboardDemo) -> None:
    request = urllib.request.Request(
        demo.web.api_url + f"/vms/{any_vm(demo)['uuid']}/migrate",
        headers={"Authorization": f"Bearer {demo.tokens.read}"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 405 and err.value.headers["Allow"] == "POST"
    assert "allowed: POST" in json.loads(err.value.read())["error"]["message"]


def test_reads_need_a_token_and_actions_the_operator_token(demo: DashboardDemo) -> None:
    assert call(demo, "/nodes", token=None)[0] == 401
    vm = any_vm(demo)
    status, body = call(demo, f"/vms/{vm['uuid']}/suspend", token="read", body={})
    assert status == 403 and "operator" in body["error"]["message"]


def test_cross_site_and_non_json_posts_are_refused(demo: DashboardDemo) -> None:
    vm = any_vm(demo)
    path = f"/vms/{vm['uuid']}/suspend"
    status, _ = call(demo, path, body={}, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _ = call(demo, path, body={}, headers={"Origin": "http://evil.example"})
    assert status == 403
    status, body = call(demo, path, body={}, headers={"Content-Type": "text/plain"})
    assert status == 415 and body["error"]["field"] == "Content-Type"
    assert demo.vm_state(vm["uuid"])[1] == "running"


def test_suspend_and_resume_change_the_vm_state_on_its_node(demo: DashboardDemo) -> None:
    vm = any_vm(demo)
    assert call(demo, f"/vms/{vm['uuid']}/suspend", body={})[0] == 200
    assert call(demo, f"/vms/{vm['uuid']}/resume", body={})[0] == 200
    status, body = call(demo, f"/vms/{vm['uuid']}/snapshot", body={"name": "before-upgrade"})
    assert status == 200, body


def test_unknown_ids_and_bad_bodies_are_json_4xx(demo: DashboardDemo) -> None:
    status, body = call(demo, "/vms/nope/migrate", body={"destination": "c1-n1"})
    assert status == 404 and body["error"]["field"] == "id"
    vm = any_vm(demo)
    status, body = call(demo, f"/vms/{vm['uuid']}/migrate", body={"destination": 7})
    assert status == 400 and body["error"]["field"] == "destination"
    status, body = call(demo, "/plans/plan-x/approve", body={})
    assert status == 404
    status, body = call(demo, "/no/such/route", token="read")
    assert status == 404 and "message" in body["error"]


def test_openapi_describes_every_api_route(demo: DashboardDemo) -> None:
    status, document = call(demo, "/openapi.json", token=None)
    assert status == 200
    described = {(m.upper(), "/api/v1" + p) for p, ops in document["paths"].items() for m in ops}
    served = set()
    for route in demo.web.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        public = path in ("/api/v1/openapi.json", "/api/v1/info")
        if path.startswith("/api/v1/") and not public and route.method != "HEAD":
            served.add((route.method, path))
    assert served == described


def test_schemathesis_finds_no_server_error_and_only_json_errors(
    demo: DashboardDemo, tmp_path: Path
) -> None:
    api = demo.web.api_url
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{api}/openapi.json", "-u", api,
        "-H", f"Authorization: Bearer {demo.tokens.operator}",
        "-c", "not_a_server_error,response_schema_conformance",
        "-n", "5", "--exclude-path", "/events/stream", "--request-timeout", "20",
        "--seed", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]


def test_traffic_shows_the_heaviest_pairs_external_flows_and_unmeasured_nodes(
    demo: DashboardDemo,
) -> None:
    views = demo.call(demo.runtime.manager.state.views)
    (n1, a), (_, b), (n3, c) = ((v.node_id, v.vms[0]) for v in views[:3])
    macs = {vm.uuid: f"52:54:00:00:00:0{i}" for i, vm in enumerate((a, b, c), 1)}
    ends = tuple(TrafficEndpoint(vm.uuid, macs[vm.uuid], "") for vm in (a, b, c))
    flows = (
        TrafficFlow(macs[a.uuid], macs[c.uuid], 3_000_000),
        TrafficFlow(macs[b.uuid], macs[a.uuid], 1_000_000),
        TrafficFlow(macs[c.uuid], "52:54:00:ff:ff:ff", 500_000, dst_ip="192.0.2.1"),
    )
    matrix = TrafficMatrix(True, "", 30_000, ends, flows)
    demo.call(lambda: demo.runtime.manager.state.traffic.apply("meter", matrix))
    status, body = call(demo, "/traffic?limit=5", token="read")
    assert status == 200
    assert [(p["vm_a"], p["vm_b"], p["bytes_per_second"]) for p in body["pairs"]] == [
        (min(a.uuid, c.uuid), max(a.uuid, c.uuid), 3_000_000),
        (min(a.uuid, b.uuid), max(a.uuid, b.uuid), 1_000_000),
    ]
    first = body["pairs"][0]
    assert {first["node_a"], first["node_b"]} == {n1, n3} and first["crosses"] == "node"
    assert {first["name_a"], first["name_b"]} == {a.name, c.name}
    assert body["external"] == [
        {"vm": c.uuid, "name": c.name, "node": n3, "peer_mac": "52:54:00:ff:ff:ff",
         "peer_ip": "192.0.2.1", "bytes_per_second": 500_000},
    ]  # fmt: skip
    assert {u["node"] for u in body["unavailable"]} == {v.node_id for v in views}
    assert all("test driver" in u["reason"] for u in body["unavailable"])
    status, body = call(demo, "/traffic?limit=501", token="read")
    assert status == 400 and "limit '501'" in body["error"]["message"]
