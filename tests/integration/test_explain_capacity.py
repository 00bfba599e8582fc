"""Explanations, the N+1 view and pressure through every operator surface (ClusterService,
`vmgridctl`, the HTTP API), against a ClusterRuntime with three test-driver agents
(cluster_ops_harness.py: n1-vm0, n1-vm1 on n1, and so on; the decision loop is manual)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cluster_ops_harness import OpsCluster
from vmgrid.agents.model import VmState
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.cluster_backend import ClusterBackend
from vmgrid.coordinator.web.server import WebServer, serve_cluster, stop_cluster_web
from vmgrid.v1 import cluster_pb2 as pb
from vmgrid.v1 import cluster_pb2_grpc, common_pb2

pytestmark = pytest.mark.slow
TOKENS = Tokens(read="read-token-for-explain", operator="operator-token-for-explain")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    ops = OpsCluster()
    ops.start(tmp_path_factory.mktemp("explain"))
    try:
        yield ops
    finally:
        ops.stop()


@pytest.fixture(scope="module")
def web(cluster: OpsCluster) -> Iterator[WebServer]:
    assert cluster.runtime is not None
    server, backend = cluster.run(serve_cluster(cluster.runtime, TOKENS))
    try:
        yield server
    finally:
        cluster.run(_stop_web(server, backend))


async def _stop_web(server: WebServer, backend: ClusterBackend) -> None:
    await stop_cluster_web(server, backend)


@pytest.fixture(scope="module")
def stub(cluster: OpsCluster) -> Iterator[cluster_pb2_grpc.ClusterServiceStub]:
    with grpc.insecure_channel(cluster.address) as channel:
        yield cluster_pb2_grpc.ClusterServiceStub(channel)


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("VMGRID_CLUSTER", "VMGRID_COORDINATOR", "VMGRID_CERTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def http(web: WebServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKENS.operator}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(web.api_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_plan(stub: cluster_pb2_grpc.ClusterServiceStub, plan_id: str) -> common_pb2.Plan:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for plan in stub.ListPlans(pb.ListPlansRequest(limit=50), timeout=30).plans:
            if plan.plan_id == plan_id and plan.state == common_pb2.PLAN_STATE_SUCCEEDED:
                return plan
        time.sleep(0.2)
    raise AssertionError(f"plan {plan_id} did not succeed within 60 s")


def test_explain_tells_what_placed_the_vm_last_on_every_surface(
    cluster: OpsCluster,
    stub: cluster_pb2_grpc.ClusterServiceStub,
    web: WebServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vm = cluster.vm_named("n1-vm0")
    request = pb.MigrateVmRequest(vm_uuid=vm, destination_node_id="n2")
    plan = stub.MigrateVm(request, timeout=30).plan
    wait_plan(stub, plan.plan_id)
    cluster.wait_for(lambda: cluster.placement()[vm] == ("n2", VmState.RUNNING))

    reply = stub.ExplainVm(pb.ExplainVmRequest(vm_uuid="n1-vm0"), timeout=30)
    assert (reply.vm_uuid, reply.node_id) == (vm, "n2")
    assert reply.last_action.plan_id == plan.plan_id and reply.last_action.origin == "operator"
    reason = reply.last_action.action.reason  # with the outcome's message
    assert reason.startswith("operator request: to n2 (simulated migration of n1-vm0")
    assert reply.last_action.action.state == common_pb2.PLAN_STATE_SUCCEEDED
    assert f"Last placed by plan {plan.plan_id} (operator, migrate n1 -> n2" in reply.text
    assert "moves VMs off it above the band (cpu " in reply.next

    status, body = http(web, "GET", f"/vms/{vm}/explain")
    assert status == 200
    assert set(body) >= {"vm", "node", "text", "last_action", "rules", "next"}
    assert body["vm"] == vm and body["node"] == "n2"
    assert body["last_action"]["plan"] == plan.plan_id and body["last_action"]["dst"] == "n2"

    code = vmgridctl(["explain", "n1-vm0", "--cluster", cluster.address, "--insecure"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"n1-vm0 ({vm}) on n2")
    assert (
        vmgridctl(["explain", "n1-vm0", "--cluster", cluster.address, "--insecure", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["last_action"]["plan_id"] == plan.plan_id


def test_explaining_an_unknown_vm_names_it(
    cluster: OpsCluster, stub: cluster_pb2_grpc.ClusterServiceStub, web: WebServer
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.ExplainVm(pb.ExplainVmRequest(vm_uuid="ghost"), timeout=30)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND and "'ghost'" in err.value.details()
    status, body = http(web, "GET", "/vms/ghost/explain")
    assert status == 404 and "'ghost'" in body["error"]["message"]


def test_a_migration_a_rule_forbids_is_refused_naming_the_rule(
    cluster: OpsCluster,
    stub: cluster_pb2_grpc.ClusterServiceStub,
    web: WebServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vm = cluster.vm_named("n2-vm1")
    rule = pb.Rule(rule_id="n2-vm1-not-n3", kind="ban", vm_uuids=[vm], node_ids=["n3"])
    stub.AddRule(pb.AddRuleRequest(rule=rule), timeout=30)
    try:
        before = cluster.placement()
        with pytest.raises(grpc.RpcError) as err:
            stub.MigrateVm(pb.MigrateVmRequest(vm_uuid=vm, destination_node_id="n3"), timeout=30)
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "n2-vm1-not-n3" in err.value.details() and "n3" in err.value.details()
        status, body = http(web, "POST", f"/vms/{vm}/migrate", {"destination": "n3"})
        assert status == 409 and "n2-vm1-not-n3" in body["error"]["message"]
        code = vmgridctl(["migrate", vm, "n3", "--cluster", cluster.address, "--insecure"])
        assert code != 0 and "n2-vm1-not-n3" in capsys.readouterr().err
        assert cluster.placement() == before

        explained = stub.ExplainVm(pb.ExplainVmRequest(vm_uuid=vm), timeout=30)
        assert [(r.rule.rule_id, r.reason) for r in explained.rules] == [("n2-vm1-not-n3", "holds")]
        assert "Rules that name it: n2-vm1-not-n3 ban(" in explained.text
    finally:
        stub.DeleteRule(pb.DeleteRuleRequest(rule_id="n2-vm1-not-n3"), timeout=30)


def test_n_plus_one_on_every_surface(
    cluster: OpsCluster,
    stub: cluster_pb2_grpc.ClusterServiceStub,
    web: WebServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No job runs here, so no node holds an HA VM and every node can be lost."""
    reply = stub.GetNPlusOne(pb.GetNPlusOneRequest(), timeout=30)
    assert reply.ok
    assert [(n.node_id, n.ok, n.vms) for n in reply.nodes] == [
        ("n1", True, 0),
        ("n2", True, 0),
        ("n3", True, 0),
    ]
    status, body = http(web, "GET", "/capacity/n-plus-one")
    assert status == 200 and body["ok"] is True
    assert body["nodes"][0] == {
        "node": "n1",
        "ok": True,
        "vms": 0,
        "unplaced": [],
        "reason": "n1 holds no HA VM",
    }
    code = vmgridctl(["capacity", "n-plus-one", "--cluster", cluster.address, "--insecure"])
    assert code == 0 and "the cluster can lose any one node" in capsys.readouterr().out


def test_test_driver_nodes_and_vms_report_pressure_unavailable(
    stub: cluster_pb2_grpc.ClusterServiceStub, web: WebServer
) -> None:
    for node in stub.ListNodes(pb.ListNodesRequest(), timeout=30).nodes:
        stalls = (node.usage.pressure.cpu, node.usage.pressure.memory, node.usage.pressure.io)
        assert not any(s.available for s in stalls)
    assert not any(vm.HasField("pressure") for vm in stub.ListVms(pb.ListVmsRequest()).vms)
    unavailable = {"available": False, "cpu": None, "memory": None, "io": None}
    _, nodes = http(web, "GET", "/nodes")
    assert all(n["usage"]["pressure"] == unavailable for n in nodes["nodes"])
    _, vms = http(web, "GET", "/vms")
    assert vms["vms"] and all(v["pressure"] == unavailable for v in vms["vms"])
