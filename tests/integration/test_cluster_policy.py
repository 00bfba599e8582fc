"""The operator policy through every surface: ClusterService GetPolicy/SetPolicy, `vmgridctl
policy` and the HTTP API's /policy, against a ClusterRuntime with test-driver agents
(cluster_ops_harness.py); a change is published as an event and survives a manager restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cluster_ops_harness import OpsCluster
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.state.events import ClusterEvent, EventKind
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.server import WebServer, serve_cluster, stop_cluster_web
from vmgrid.v1 import cluster_pb2 as pb
from vmgrid.v1 import cluster_pb2_grpc

pytestmark = pytest.mark.slow
TOKENS = Tokens(read="read-token-for-policy", operator="operator-token-for-policy")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    workdir = tmp_path_factory.mktemp("policy")
    ops = OpsCluster(journal_path=str(workdir / "journal.sqlite"))
    ops.start(workdir)
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
        cluster.run(stop_cluster_web(server, backend))


@pytest.fixture(autouse=True)
def default_policy(cluster: OpsCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from the default policy (and vmgridctl with no user settings)."""

    def reset() -> None:
        assert cluster.runtime is not None
        cluster.runtime.loop.set_operator_policy(OperatorPolicy())

    cluster.call(reset)
    for name in ("VMGRID_CLUSTER", "VMGRID_COORDINATOR", "VMGRID_CERTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def in_force(cluster: OpsCluster) -> OperatorPolicy:
    assert cluster.runtime is not None
    runtime = cluster.runtime
    return cluster.call(lambda: runtime.loop.config.operator_policy)


def ctl(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = vmgridctl([*argv, "--cluster", cluster.address, "--insecure"])
    out, err = capsys.readouterr()
    return code, out, err


def http(
    web: WebServer, method: str, path: str, body: Any = None, token: str = TOKENS.operator
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
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


def test_rpcs_read_and_change_the_policy_and_publish_the_change(cluster: OpsCluster) -> None:
    assert cluster.runtime is not None
    bus = cluster.runtime.manager.state.bus
    subscription = cluster.call(lambda: bus.subscribe(lambda e: e.kind is EventKind.POLICY_CHANGED))
    with grpc.insecure_channel(cluster.address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        shown = stub.GetPolicy(pb.GetPolicyRequest()).policy
        assert shown.aggressiveness == "moderate" and shown.cpu_high == pytest.approx(0.8)
        request = pb.SetPolicyRequest(values={"cpu_high": "0.7", "migrations_per_hour": "12"})
        changed = stub.SetPolicy(request).policy
        assert changed.cpu_high == pytest.approx(0.7) and changed.migrations_per_hour == 12
        assert sorted(changed.explicit) == ["cpu_high", "migrations_per_hour"]
        with pytest.raises(grpc.RpcError) as refused:
            stub.SetPolicy(pb.SetPolicyRequest(values={"cpu_low": "0.75"}))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "policy.cpu_low: 0.75 must be below cpu_high (0.7)" in (
            refused.value.details() or ""
        )
    assert in_force(cluster).cpu_high == 0.7 and in_force(cluster).cpu_low == 0.4
    event: ClusterEvent | None = cluster.call(subscription.get_nowait)
    assert event is not None
    assert (
        "cpu_high 0.8 -> 0.7" in event.message and "migrations_per_hour 30 -> 12" in event.message
    )
    cluster.call(lambda: bus.unsubscribe(subscription))


def test_ctl_policy_show_and_set(cluster: OpsCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ctl(cluster, capsys, "policy", "show")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["aggressiveness"] == ["moderate"] and rows["cpu_high"] == ["0.8"]
    code, out, err = ctl(
        cluster, capsys, "policy", "set", "aggressiveness=conservative", "return_after_s=600"
    )
    assert code == 0, err
    code, out, err = ctl(cluster, capsys, "policy", "show", "--json")
    shown = json.loads(out)
    assert shown["aggressiveness"] == "conservative" and shown["cpu_high"] == 0.7
    assert shown["return_after_s"] == 600 and shown["explicit"] == ["return_after_s"]
    assert in_force(cluster).migrations_per_hour == 12


def test_ctl_policy_refuses_a_bad_value_in_one_line_and_changes_nothing(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    for setting, named in (
        ("cpu_high=high", "policy.cpu_high: 'high' is not a number"),
        ("migrations_per_cycle=-2", "policy.migrations_per_cycle: -2 must be >= 0"),
        ("aggressiveness=reckless", "policy.aggressiveness: 'reckless' is not one of"),
        ("headroom=0.2", "policy: unknown key 'headroom'"),
    ):
        code, _, err = ctl(cluster, capsys, "policy", "set", setting)
        assert code != 0 and err.startswith("vmgridctl policy: ") and named in err, err
        assert len(err.strip().splitlines()) == 1
    assert in_force(cluster) == OperatorPolicy()
    with pytest.raises(SystemExit) as usage:
        vmgridctl(["policy", "set", "cpu_high"])
    assert usage.value.code == 2
    assert "'cpu_high' is not KEY=VALUE" in capsys.readouterr().err


def test_http_get_and_put_policy(cluster: OpsCluster, web: WebServer) -> None:
    status, shown = http(web, "GET", "/policy", token=TOKENS.read)
    assert status == 200 and shown["cluster"] == "ops" and shown["cpu_high"] == 0.8
    status, body = http(web, "PUT", "/policy", {"memory_high": 0.7}, token=TOKENS.read)
    assert status == 403
    status, changed = http(web, "PUT", "/policy", {"memory_high": 0.7, "min_move_interval_s": 900})
    assert status == 200, changed
    assert changed["memory_high"] == 0.7 and changed["min_move_interval_s"] == 900
    assert http(web, "GET", "/policy")[1] == changed
    status, body = http(web, "PUT", "/policy", {"memory_high": "lots"})
    assert (
        status == 400 and "policy.memory_high: 'lots' is not a number" in body["error"]["message"]
    )
    status, body = http(web, "PUT", "/policy", {"cpu_high": [0.7]})
    assert status == 400 and body["error"]["field"] == "cpu_high"
    status, body = http(web, "PUT", "/policy", {})
    assert status == 400
    assert http(web, "GET", "/policy")[1] == changed


def test_a_changed_policy_survives_a_manager_restart(tmp_path: Path) -> None:
    ops = OpsCluster(journal_path=str(tmp_path / "journal.sqlite"))
    ops.start(tmp_path)
    try:
        with grpc.insecure_channel(ops.address) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            values = {"aggressiveness": "aggressive", "cpu_high": "0.72"}
            stub.SetPolicy(pb.SetPolicyRequest(values=values))
        ops.restart()
        with grpc.insecure_channel(ops.address) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            shown = stub.GetPolicy(pb.GetPolicyRequest()).policy
        assert shown.aggressiveness == "aggressive" and shown.cpu_high == pytest.approx(0.72)
        assert shown.migrations_per_hour == 120 and list(shown.explicit) == ["cpu_high"]
    finally:
        ops.stop()
