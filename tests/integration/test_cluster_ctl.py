"""`vmgridctl` against one cluster manager: every operator command, exit codes, settings.

main() is called with argv in the test thread, against a ClusterRuntime with test-driver agents
(see cluster_ops_harness.py); JSON output is parsed from captured stdout.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_ops_harness import OpsCluster
from vmgrid.agents.cluster.act.journal import PlanState
from vmgrid.agents.model import VmState
from vmgrid.coordinator.cli.main import main as vmgridctl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    ops = OpsCluster(time_scale=0.2)
    ops.start(tmp_path_factory.mktemp("ops-ctl"))
    try:
        yield ops
    finally:
        ops.stop()


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("VMGRID_CLUSTER", "VMGRID_COORDINATOR", "VMGRID_CERTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config file


def ctl(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str], *argv: str, address: bool = True
) -> tuple[int, str, str]:
    capsys.readouterr()
    where = ["--cluster", cluster.address] if address else []
    code = vmgridctl([*argv, *where, "--insecure"])
    out, err = capsys.readouterr()
    return code, out, err


def ctl_json(cluster: OpsCluster, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = ctl(cluster, capsys, *argv, "--output", "json")
    assert code == 0, err
    return json.loads(out)


def test_nodes_vms_and_status_list_the_cluster_with_filters(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = ctl_json(cluster, capsys, "nodes")["nodes"]
    assert sorted(n["node_id"] for n in nodes) == ["n1", "n2", "n3"]
    on_n1 = ctl_json(cluster, capsys, "vms", "--node", "n1", "--state", "running")["vms"]
    assert sorted(v["usage"]["name"] for v in on_n1) == ["n1-vm0", "n1-vm1"]
    named = ctl_json(cluster, capsys, "vms", "--name", "n2-")["vms"]
    assert {v["usage"]["name"] for v in named} == {"n2-vm0", "n2-vm1"}
    assert ctl_json(cluster, capsys, "vms", "--state", "paused").get("vms", []) == []
    status = ctl_json(cluster, capsys, "status")
    assert status["nodes"] == 3 and status["vms"] == 6 and status["connected"] == 3
    assert status["lost"] == [] and status["powered_off"] == []
    assert status["simulated_nodes"] == ["n1", "n2", "n3"]
    for argv, shown in (
        (["status"], "simulated nodes: n1, n2, n3"),
        (["nodes"], "SIMULATED"),
        (["vms", "--node", "n1"], "n1-vm0"),
        (["plans"], "SUMMARY"),
    ):
        code, out, err = ctl(cluster, capsys, *argv)
        assert code == 0 and shown in out, err


def test_migrate_by_name_reports_a_simulated_migration(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ctl(cluster, capsys, "migrate", "n1-vm0", "n2")
    assert code == 0, err
    assert "succeeded (simulated migrations)" in out and "%" in err
    vm = cluster.vm_named("n1-vm0")
    cluster.wait_for(lambda: cluster.placement()[vm] == ("n2", VmState.RUNNING))
    moved = ctl_json(cluster, capsys, "migrate", "n1-vm0")
    assert moved["state"] == "succeeded" and moved["simulated"] is True


def test_suspend_resume_and_snapshots(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = cluster.vm_named("n3-vm0")
    assert ctl(cluster, capsys, "suspend", "n3-vm0")[0] == 0
    cluster.wait_for(lambda: cluster.placement()[vm][1] is VmState.PAUSED)
    code, _, err = ctl(cluster, capsys, "suspend", "n3-vm0")
    assert code == 5 and "paused" in err and err.count("\n") == 1
    assert ctl(cluster, capsys, "resume", "n3-vm0")[0] == 0
    cluster.wait_for(lambda: cluster.placement()[vm][1] is VmState.RUNNING)

    assert ctl(cluster, capsys, "snapshot", "create", "n3-vm0", "s1")[0] == 0
    listed = ctl_json(cluster, capsys, "snapshot", "list", "n3-vm0")
    assert listed["snapshots"] == ["s1"]
    assert ctl(cluster, capsys, "snapshot", "revert", "n3-vm0", "s1")[0] == 0
    assert ctl(cluster, capsys, "snapshot", "delete", "n3-vm0", "s1")[0] == 0
    code, _, err = ctl(cluster, capsys, "snapshot", "revert", "n3-vm0", "s1")
    assert code == 4 and "'s1'" in err
    code, _, err = ctl(cluster, capsys, "snapshot", "create", "n3-vm0")
    assert code == 2 and "NAME" in err


def test_plan_then_apply_consolidates_and_reports_reasons(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = ctl(cluster, capsys, "plan", "--objective", "consolidate")
    assert code == 0 and "dry run, nothing executed" in out and "REASON" in out
    dry = ctl_json(cluster, capsys, "plan", "--objective", "consolidate")["plan"]
    assert dry["state"] == "PLAN_STATE_PROPOSED" and all(a["reason"] for a in dry["actions"])
    plans = ctl_json(cluster, capsys, "plans")["plans"]
    assert dry["plan_id"] in [p["plan_id"] for p in plans]
    applied = ctl_json(cluster, capsys, "apply", dry["plan_id"])
    assert applied["state"] == "succeeded" and applied["simulated"] is True
    cluster.wait_for(lambda: len({n for n, _ in cluster.placement().values()}) < 3)
    code, _, err = ctl(cluster, capsys, "apply", dry["plan_id"])
    assert code == 5 and dry["plan_id"] in err


def test_drain_and_undrain(cluster: OpsCluster, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = {n for n, _ in cluster.placement().values()}
    node = sorted(hosts)[0]
    on_it = {vm for vm, (h, _) in cluster.placement().items() if h == node}
    assert ctl(cluster, capsys, "drain", node)[0] == 0
    assert ctl_json(cluster, capsys, "nodes")["nodes"][int(node[1]) - 1]["draining"] is True
    cluster.wait_for(
        lambda: all(cluster.placement().get(v, ("",))[0] not in ("", node) for v in on_it), 60
    )
    assert ctl(cluster, capsys, "undrain", node)[0] == 0
    cluster.wait_for(lambda: all(cluster.placement().get(v, ("",))[0] == node for v in on_it), 60)


def test_events_show_a_plan_with_progress(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []

    def watch() -> None:
        argv = ["events", "--kind", "plan_changed", "--count", "3", "--duration", "30"]
        vmgridctl([*argv, "--cluster", cluster.address, "--insecure", "--output", "json"])

    bus = cluster.runtime.manager.bus  # type: ignore[union-attr]
    before = cluster.call(lambda: bus.subscribers)
    watcher = threading.Thread(target=watch)
    watcher.start()
    cluster.wait_for(lambda: cluster.call(lambda: bus.subscribers) > before, 60)  # subscribed
    vm = cluster.vm_named("n2-vm1")
    target = "n1" if cluster.placement()[vm][0] != "n1" else "n3"
    assert vmgridctl(["migrate", vm, target, "--cluster", cluster.address, "--insecure"]) == 0
    watcher.join(30)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    events = [json.loads(ln) for ln in lines[:3]]
    assert all(e["event"]["kind"] == "EVENT_KIND_PLAN_CHANGED" for e in events)
    assert events[0]["event"]["plan_id"].startswith("op-")


@pytest.mark.parametrize(
    ("argv", "code", "named"),
    [
        (["migrate", "nope"], 4, "'nope'"),
        (["migrate", "n1-vm1", "n9"], 4, "'n9'"),
        (["apply", "dry-nope"], 4, "'dry-nope'"),
        (["approve", "plan-nope"], 4, "'plan-nope'"),
        (["plan", "--drain", "n9"], 4, "'n9'"),
        (["drain", "n9"], 4, "'n9'"),
        (["events", "--kind", "weather"], 2, "'weather'"),
    ],
)
def test_errors_name_the_bad_value_with_a_meaningful_exit_code(
    cluster: OpsCluster,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    named: str,
) -> None:
    got, _, err = ctl(cluster, capsys, *argv)
    assert got == code and named in err and err.startswith("vmgridctl ")


def test_address_from_flag_env_then_config_file(
    cluster: OpsCluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = tmp_path / "ctl.toml"
    config.write_text(f'cluster = "{cluster.address}"\n')
    assert ctl(cluster, capsys, "nodes", "--config", str(config), address=False)[0] == 0
    monkeypatch.setenv("VMGRID_CLUSTER", "127.0.0.1:1")  # env beats the file
    code, _, err = ctl(cluster, capsys, "nodes", "--config", str(config), address=False)
    assert code == 3 and "unreachable" in err
    assert ctl(cluster, capsys, "nodes", "--config", str(config))[0] == 0  # flag beats env
    code, _, err = ctl(cluster, capsys, "nodes", "--cluster", "nowhere", address=False)
    assert code == 2 and "'nowhere'" in err
    config.write_text('cluster = "x:1"\ncolour = "blue"\n')
    code, _, err = ctl(cluster, capsys, "nodes", "--config", str(config), address=False)
    assert code == 2 and "'colour'" in err


def test_ctrl_c_during_apply_cancels_the_plan(
    cluster: OpsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ctrl-C as a terminal delivers it: Python's handler, whatever the test run inherited (a
    # run started in the background inherits SIGINT ignored, and the signal below killed it)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_during_apply(cluster, capsys)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_during_apply(cluster: OpsCluster, capsys: pytest.CaptureFixture[str]) -> None:
    spread = ["n1", "n2", "n3"]
    for i, vm in enumerate(sorted(cluster.placement())):
        if cluster.placement()[vm][0] != spread[i % 3]:
            assert ctl(cluster, capsys, "migrate", vm, spread[i % 3])[0] == 0
    dry = ctl_json(cluster, capsys, "plan", "--objective", "consolidate")["plan"]
    assert len(dry["actions"]) >= 3
    journal = cluster.runtime.journal  # type: ignore[union-attr]

    def interrupt() -> None:
        cluster.wait_for(lambda: bool(journal.plans([PlanState.RUNNING])), 30)
        time.sleep(0.2)
        signal.raise_signal(signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    code, out, err = ctl(cluster, capsys, "apply", dry["plan_id"])
    assert code == 130 and "cancelling" in err and "cancelled" in out
    record = journal.plan(dry["plan_id"])
    assert record is not None and record.state is PlanState.CANCELLED
    cluster.wait_for(lambda: len(cluster.placement()) == 6)
