"""Placement rules through every operator surface: ClusterService, `vmgridctl rules` and the
HTTP API, against a ClusterRuntime with three test-driver agents (cluster_ops_harness.py), and
rules surviving a restart of the manager on its journal.

The agents run n1-vm0, n1-vm1 on n1, n2-vm0, n2-vm1 on n2 and n3-vm0, n3-vm1 on n3; the decision
loop is manual, so the placement stays as it is and a rule over two VMs of one node is violated.
"""

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
from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.cluster_backend import ClusterBackend
from vmgrid.coordinator.web.server import WebServer, serve_cluster, stop_cluster_web
from vmgrid.solver.constraints import Spread
from vmgrid.v1 import cluster_pb2 as pb
from vmgrid.v1 import cluster_pb2_grpc, common_pb2

pytestmark = pytest.mark.slow
TOKENS = Tokens(read="read-token-for-rules", operator="operator-token-for-rules")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    ops = OpsCluster()
    ops.start(tmp_path_factory.mktemp("rules"))
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


@pytest.fixture(autouse=True)
def clean_rules(cluster: OpsCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with no rule (and vmgridctl with no user settings)."""

    def clear() -> None:
        assert cluster.runtime is not None
        store = cluster.runtime.manager.state.rules
        for rule in store.rules():
            store.delete(rule.rule_id)

    cluster.call(clear)
    for name in ("VMGRID_CLUSTER", "VMGRID_COORDINATOR", "VMGRID_CERTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def _stub(cluster: OpsCluster) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(cluster.address)
    return channel, cluster_pb2_grpc.ClusterServiceStub(channel)


def _rule(rule_id: str, kind: str, vms: list[str] = [], nodes: list[str] = [], **p: Any) -> pb.Rule:  # noqa: B006
    return pb.Rule(
        rule_id=rule_id,
        kind=kind,
        vm_uuids=vms,
        node_ids=nodes,
        parameters_json=json.dumps(p) if p else "",
    )


def _stored(cluster: OpsCluster) -> list[str]:
    assert cluster.runtime is not None
    runtime = cluster.runtime
    return cluster.call(lambda: [r.rule_id for r in runtime.manager.state.rules.rules()])


# ---- ClusterService ---------------------------------------------------------------------------


def test_rpcs_add_list_check_and_delete_a_rule(cluster: OpsCluster) -> None:
    channel, stub = _stub(cluster)
    with channel:
        a, b = cluster.vm_named("n1-vm0"), cluster.vm_named("n1-vm1")
        kinds = [common_pb2.EVENT_KIND_RULE_CHANGED]
        events = stub.WatchEvents(pb.WatchEventsRequest(kinds=kinds), timeout=30)
        events.initial_metadata()
        added = stub.AddRule(pb.AddRuleRequest(rule=_rule("n1-apart", "spread", [a, "n1-vm1"])))
        assert "rule n1-apart added: spread(" in next(events).event.message
        events.cancel()
        assert added.rule.origin == "operator" and list(added.rule.vm_uuids) == [a, b]
        assert added.rule.created_at.seconds > 0 and added.rule.label.startswith("spread(")
        cap = _rule("n1-cap", "runningCapacity", nodes=["n1"], amount=5)
        stub.AddRule(pb.AddRuleRequest(rule=cap))
        rules = stub.ListRules(pb.ListRulesRequest()).rules
        assert [r.rule_id for r in rules] == ["n1-apart", "n1-cap"]
        assert json.loads(rules[1].parameters_json) == {"amount": 5}
        check = stub.CheckRules(pb.CheckRulesRequest())
        assert check.rules_checked == 2 and not check.impossible
        assert [v.rule.rule_id for v in check.violations] == ["n1-apart"]
        reason = check.violations[0].reason
        assert "spread(n1-vm0,n1-vm1)" in reason and "n1-vm0 on n1" in reason
        assert a not in reason  # VMs by name
        deleted = stub.DeleteRule(pb.DeleteRuleRequest(rule_id="n1-apart"))
        assert deleted.rule.rule_id == "n1-apart"
        assert [r.rule_id for r in stub.ListRules(pb.ListRulesRequest()).rules] == ["n1-cap"]
        assert not stub.CheckRules(pb.CheckRulesRequest()).violations


BAD_RPC = [
    (_rule("x", "scatter", ["n1-vm0", "n2-vm0"]), grpc.StatusCode.INVALID_ARGUMENT, "'scatter'"),
    (_rule("x", "spread", ["n1-vm0", "ghost"]), grpc.StatusCode.NOT_FOUND, "VM 'ghost'"),
    (_rule("x", "ban", ["n1-vm0"], ["n9"]), grpc.StatusCode.NOT_FOUND, "node 'n9'"),
    (_rule("x", "maxOnline", nodes=["n1"], amount="3"), grpc.StatusCode.INVALID_ARGUMENT, "'3'"),
    (
        _rule("x", "gather", ["n2-vm0", "n2-vm1"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "VMs n2-vm0, n2-vm1",
    ),
    (
        _rule("x", "ban", ["n3-vm0"], ["n1", "n2", "n3"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "no node",
    ),
    (_rule("keep", "spread", ["n3-vm0", "n3-vm1"]), grpc.StatusCode.ALREADY_EXISTS, "'keep'"),
    (
        pb.Rule(rule_id="x", kind="ban", vm_uuids=["n1-vm0"], node_ids=["n1"], parameters_json="{"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "parameters_json",
    ),
]


@pytest.mark.parametrize(
    ("rule", "code", "named"), BAD_RPC, ids=[str(i) for i in range(len(BAD_RPC))]
)
def test_bad_rules_get_their_status_and_nothing_is_stored(
    cluster: OpsCluster, rule: pb.Rule, code: grpc.StatusCode, named: str
) -> None:
    channel, stub = _stub(cluster)
    with channel:
        stub.AddRule(pb.AddRuleRequest(rule=_rule("keep", "spread", ["n2-vm0", "n2-vm1"])))
        with pytest.raises(grpc.RpcError) as info:
            stub.AddRule(pb.AddRuleRequest(rule=rule))
        assert info.value.code() == code
        assert named in (info.value.details() or "")
    assert _stored(cluster) == ["keep"]


def test_a_jobs_rule_shows_its_origin_is_kept_from_deletion_and_can_be_impossible(
    cluster: OpsCluster,
) -> None:
    assert cluster.runtime is not None
    store = cluster.runtime.manager.state.rules
    four = tuple(cluster.vm_named(n) for n in ("n1-vm0", "n2-vm0", "n3-vm0", "n3-vm1"))
    cluster.call(lambda: store.add("mpi-spread", Spread(four), origin="job:mpi-1"))
    channel, stub = _stub(cluster)
    with channel:
        listed = stub.ListRules(pb.ListRulesRequest(origin="job:mpi-1")).rules
        assert [(r.rule_id, r.origin) for r in listed] == [("mpi-spread", "job:mpi-1")]
        assert not stub.ListRules(pb.ListRulesRequest(origin="operator")).rules
        check = stub.CheckRules(pb.CheckRulesRequest())
        assert [v.rule.rule_id for v in check.impossible] == ["mpi-spread"]
        assert "4 distinct nodes" in check.impossible[0].reason
        with pytest.raises(grpc.RpcError) as info:
            stub.DeleteRule(pb.DeleteRuleRequest(rule_id="mpi-spread"))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "job:mpi-1" in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            stub.DeleteRule(pb.DeleteRuleRequest(rule_id="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and "mpi-spread" in str(
            info.value.details()
        )
    assert _stored(cluster) == ["mpi-spread"]


# ---- vmgridctl rules ------------------------------------------------------------------------


def ctl(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = vmgridctl([*argv, "--cluster", cluster.address, "--insecure"])
    out, err = capsys.readouterr()
    return code, out, err


def test_ctl_rules_add_list_check_delete(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ctl(
        cluster, capsys, "rules", "add", "spread", "n2-apart", "--vms", "n2-vm0,n2-vm1"
    )
    assert code == 0 and "rule n2-apart added: spread(" in out, err
    code, out, err = ctl(
        cluster,
        capsys,
        "rules",
        "add",
        "resourceCapacity",
        "n3-cpu",
        "--nodes",
        "n3",
        "--rc",
        "cpu",
        "--amount",
        "64000",
    )
    assert code == 0, err
    code, out, err = ctl(cluster, capsys, "rules", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "ORIGIN", "STATE", "VMS", "NODES", "PARAMETERS"]
    assert lines[1].split()[:5] == ["n2-apart", "spread", "operator", "violated", "n2-vm0,n2-vm1"]
    assert lines[2].split() == [
        "n3-cpu",
        "resourceCapacity",
        "operator",
        "holds",
        "-",
        "n3",
        "amount=64000",
        'rc="cpu"',
    ]
    code, out, err = ctl(cluster, capsys, "rules", "list", "--json")
    listed = json.loads(out)["rules"]
    assert code == 0 and [(r["rule_id"], r["state"]) for r in listed] == [
        ("n2-apart", "violated"),
        ("n3-cpu", "holds"),
    ]
    assert "n2-vm0 on n2" in listed[0]["reason"] and listed[1]["reason"] == ""
    code, out, err = ctl(cluster, capsys, "rules", "check")
    assert code == 0 and "n2-apart" in out and "n2-vm0 on n2" in out, err
    assert "1 of 2 rules violated, 0 impossible" in out
    checked = json.loads(ctl(cluster, capsys, "rules", "check", "--output", "json")[1])
    assert [v["rule"]["rule_id"] for v in checked["violations"]] == ["n2-apart"]
    code, out, err = ctl(cluster, capsys, "rules", "delete", "n2-apart")
    assert code == 0 and "rule n2-apart deleted" in out, err
    code, out, err = ctl(cluster, capsys, "rules", "check")
    assert code == 0 and "all 1 rules hold" in out, err


def test_ctl_rules_errors_name_the_bad_element_with_their_exit_code(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ctl(cluster, capsys, "rules", "add", "spread", "apart", "--vms", "n1-vm0,n2-vm0")[0] == 0
    for argv, exit_code, named in (
        (["add", "gather", "together", "--vms", "n1-vm0,n2-vm0"], 2, "apart"),
        (["add", "spread", "other", "--vms", "n1-vm0,nobody"], 4, "'nobody'"),
        (["add", "fence", "f", "--vms", "n1-vm0", "--nodes", "n7"], 4, "'n7'"),
        (["add", "spread", "apart", "--vms", "n3-vm0,n3-vm1"], 5, "'apart' already exists"),
        (["add", "maxOnline", "m", "--nodes", "n1"], 2, "amount"),
        (["delete", "never-added"], 4, "'never-added'"),
    ):
        code, out, err = ctl(cluster, capsys, "rules", *argv)
        assert code == exit_code, (argv, err)
        assert err.startswith("vmgridctl rules: ") and named in err, err
        assert len(err.strip().splitlines()) == 1
    assert _stored(cluster) == ["apart"]
    with pytest.raises(SystemExit) as usage:
        vmgridctl(["rules", "add", "networkAffinity", "p", "--pair", "a,b"])
    assert usage.value.code == 2
    assert "'a,b' is not VM,VM,MBIT" in capsys.readouterr().err


def test_ctl_rules_help_lists_the_kinds_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        vmgridctl(["rules", "add", "--help"])
    out = capsys.readouterr().out
    for word in ("spread", "networkAffinity", "--vms", "--amount", "vmgridctl rules add ban"):
        assert word in out


# ---- HTTP API ---------------------------------------------------------------------------------


def http(
    web: WebServer, method: str, path: str, body: Any = None, token: str = TOKENS.operator
) -> tuple[int, Any]:
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


def test_http_rules_add_list_check_delete(cluster: OpsCluster, web: WebServer) -> None:
    status, rule = http(
        web, "POST", "/rules", {"id": "n3-apart", "kind": "spread", "vms": ["n3-vm0", "n3-vm1"]}
    )
    assert status == 201, rule
    assert rule["vms"] == [cluster.vm_named("n3-vm0"), cluster.vm_named("n3-vm1")]
    assert rule["vm_names"] == ["n3-vm0", "n3-vm1"] and rule["origin"] == "operator"
    status, body = http(
        web,
        "POST",
        "/rules",
        {"id": "few", "kind": "maxOnline", "nodes": ["n1", "n2"], "parameters": {"amount": 2}},
    )
    assert status == 201 and body["parameters"] == {"amount": 2}
    status, listed = http(web, "GET", "/rules", token=TOKENS.read)
    assert status == 200
    states = {r["id"]: (r["state"], r["reason"]) for r in listed["rules"]}
    assert states["few"] == ("holds", "")
    assert states["n3-apart"][0] == "violated" and "n3-vm0 on n3" in states["n3-apart"][1]
    status, check = http(web, "GET", "/rules/check", token=TOKENS.read)
    assert status == 200 and check["checked"] == 2 and check["impossible"] == []
    assert [v["rule"]["id"] for v in check["violations"]] == ["n3-apart"]
    status, gone = http(web, "DELETE", "/rules/n3-apart")
    assert status == 200 and gone["id"] == "n3-apart"
    assert [r["id"] for r in http(web, "GET", "/rules")[1]["rules"]] == ["few"]


def test_http_bad_rules_are_json_errors_and_nothing_is_stored(
    cluster: OpsCluster, web: WebServer
) -> None:
    assert (
        http(
            web, "POST", "/rules", {"id": "keep", "kind": "ban", "vms": ["n1-vm0"], "nodes": ["n3"]}
        )[0]
        == 201
    )
    for body, status, named in (
        ({"id": "x", "kind": "fence", "vms": ["n1-vm0"], "nodes": ["n3"]}, 400, "no node"),
        ({"id": "x", "kind": "ban", "vms": ["n1-vm0"], "nodes": ["n8"]}, 404, "'n8'"),
        ({"id": "x", "kind": "spread", "vms": "n1-vm0"}, 400, "vms must be a list"),
        ({"id": "x", "kind": "maxOnline", "nodes": ["n1"], "parameters": [2]}, 400, "parameters"),
        ({"id": "x", "kind": "spread", "vms": ["n1-vm0", "n2-vm0"], "colour": 1}, 400, "'colour'"),
        ({"id": "keep", "kind": "spread", "vms": ["n1-vm0", "n2-vm0"]}, 409, "'keep'"),
        ({"kind": "spread", "vms": ["n1-vm0", "n2-vm0"]}, 400, "id must be"),
    ):
        code, answer = http(web, "POST", "/rules", body)
        assert code == status and named in answer["error"]["message"], (body, answer)
    assert http(web, "DELETE", "/rules/missing")[0] == 404
    assert http(web, "DELETE", "/rules/keep", token=TOKENS.read)[0] == 403
    assert (
        http(
            web, "POST", "/rules", {"id": "y", "kind": "root", "vms": ["n1-vm0"]}, token=TOKENS.read
        )[0]
        == 403
    )
    assert _stored(cluster) == ["keep"]


# ---- persistence ------------------------------------------------------------------------------


def test_rules_survive_a_manager_restart(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    ops = OpsCluster(journal_path=str(journal))
    ops.start(tmp_path)
    try:
        channel, stub = _stub(ops)
        with channel:
            stub.AddRule(pb.AddRuleRequest(rule=_rule("apart", "spread", ["n1-vm0", "n1-vm1"])))
            parts = [["n1", "n2"], ["n3"]]
            stub.AddRule(pb.AddRuleRequest(rule=_rule("rack", "among", ["n2-vm0"], parts=parts)))
            before = list(stub.ListRules(pb.ListRulesRequest()).rules)
        ops.restart()
        channel, stub = _stub(ops)
        with channel:
            after = list(stub.ListRules(pb.ListRulesRequest()).rules)
            assert after == before
            assert [v.rule.rule_id for v in stub.CheckRules(pb.CheckRulesRequest()).violations] == [
                "apart"
            ]
            with pytest.raises(grpc.RpcError) as info:
                stub.AddRule(pb.AddRuleRequest(rule=_rule("apart", "gather", ["n3-vm0", "n3-vm1"])))
            assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    finally:
        ops.stop()
    reopened = RuleStore(str(journal))
    assert [r.rule_id for r in reopened.rules()] == ["apart", "rack"]
    reopened.close()
