"""Replicated `vmgrid-cluster` processes and `vmgrid-agent` processes for the replica tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2


@dataclass
class ManagerProcess:
    """One replica: its process, its bound address and its log."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_manager(
    workdir: Path,
    name: str,
    endpoints: Sequence[str],
    lease_ttl_s: int = 2,
    extra: Sequence[str] = (),
) -> ManagerProcess:
    """A replica of cluster `replicated` on a free loopback port; returns once it serves."""
    ready, log = workdir / f"{name}.addr", workdir / f"{name}.log"
    argv = [
        sys.executable, "-m", "vmgrid.agents.cluster.service.main",
        "--insecure", "--listen", "127.0.0.1:0", "--cluster-id", "replicated",
        "--ready-file", str(ready), "--state-dir", str(workdir / name),
        "--report-period-ms", "500", "--heartbeat-timeout-ms", "3000",
        "--automation", "manual",
        "--etcd-endpoints", ",".join(endpoints), "--lease-ttl-s", str(lease_ttl_s),
        "--replica-id", name, *extra,
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), f"replica {name} did not start: {log.read_text()}"
    return ManagerProcess(name, process, ready.read_text().strip(), log)


def list_nodes(address: str) -> cluster_pb2.ListNodesResponse:
    """ListNodes on one replica; grpc.RpcError (UNAVAILABLE on a standby) otherwise."""
    with grpc.insecure_channel(address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        return stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=2)


def add_ban_rule(address: str, rule_id: str, vm_uuid: str, node_id: str) -> None:
    """AddRule (an operator write) on the replica at `address`."""
    rule = cluster_pb2.Rule(rule_id=rule_id, kind="ban", vm_uuids=[vm_uuid], node_ids=[node_id])
    with grpc.insecure_channel(address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        stub.AddRule(cluster_pb2.AddRuleRequest(rule=rule), timeout=5)


def migrate(address: str, vm_uuid: str, destination: str) -> str:
    """MigrateVm on the replica at `address`; returns the plan id."""
    request = cluster_pb2.MigrateVmRequest(vm_uuid=vm_uuid, destination_node_id=destination)
    with grpc.insecure_channel(address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        return str(stub.MigrateVm(request, timeout=10).plan.plan_id)


def plan_state(address: str, plan_id: str) -> int:
    """The state (common_pb2.PlanState number) of `plan_id` on `address`; 0 when unknown."""
    try:
        with grpc.insecure_channel(address) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            plans = stub.ListPlans(cluster_pb2.ListPlansRequest(), timeout=5).plans
    except grpc.RpcError:
        return 0
    return next((int(p.state) for p in plans if p.plan_id == plan_id), 0)


def running_hosts(address: str, vm_uuid: str) -> list[str]:
    """Nodes on which `vm_uuid` runs, as the manager at `address` sees them."""
    with grpc.insecure_channel(address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        vms = stub.ListVms(cluster_pb2.ListVmsRequest(), timeout=5).vms
    return sorted(
        v.node_id
        for v in vms
        if v.usage.uuid == vm_uuid and v.usage.state == common_pb2.VM_STATE_RUNNING
    )


def rule_ids(address: str) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        stub = cluster_pb2_grpc.ClusterServiceStub(channel)
        return [r.rule_id for r in stub.ListRules(cluster_pb2.ListRulesRequest(), timeout=5).rules]


def connected_nodes(address: str) -> set[str]:
    """Nodes connected to the manager at `address`; empty when it does not answer."""
    try:
        nodes = list_nodes(address).nodes
    except grpc.RpcError:
        return set()
    return {n.node_id for n in nodes if n.status == cluster_pb2.NODE_STATUS_CONNECTED}


def leaders(managers: Sequence[ManagerProcess]) -> list[ManagerProcess]:
    """The replicas that answer operator calls (exactly one when the election works)."""
    found = []
    for manager in managers:
        if manager.process.poll() is not None:
            continue
        try:
            list_nodes(manager.address)
        except grpc.RpcError:
            continue
        found.append(manager)
    return found


def wait_until(check: object, timeout_s: float, what: str) -> float:
    """Seconds until `check()` is true; AssertionError naming `what` after `timeout_s`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process this test started, by its pid (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
