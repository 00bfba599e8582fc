"""Replicated `vmgrid-cluster` processes and test-driver `vmgrid-agent` processes on loopback,
for the replica tests and `vmgrid-bench manager-failover` (docs/replication.md).

Every process is started here with ``subprocess`` and ended by its own pid (``stop``). The
small gRPC helpers ask one replica what it knows; a standby answers UNAVAILABLE, so
``leaders`` is the list of replicas that answer.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from vmgrid.agents.node.testnode import SimVm, node_xml
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

CLUSTER_ID = "replicated"
IDLE = '{ cpu = { kind = "constant", value = 5 } }'


@dataclass
class ManagerProcess:
    """One replica: its process, its bound address and its log."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    log: Path
    argv: list[str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def spawn_ready(
    name: str, argv: list[str], ready: Path, log: Path, what: str, address: str = ""
) -> ManagerProcess:
    """Start `argv` with its output appended to `log` and wait (30 s at most) for its ready
    file; the process, stopped, and the end of its log in a RuntimeError if it does not come.
    `address`: where it serves (default: what it wrote in its ready file)."""
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not _written(ready) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _written(ready):
        stop(process)
        raise RuntimeError(f"{what} {name} did not start: {log.read_text()[-2000:]}")
    return ManagerProcess(name, process, address or ready.read_text().strip(), log, argv)


def _written(ready: Path) -> bool:
    """Whether the ready file holds its whole line (it exists, empty, for a moment first)."""
    try:
        return ready.read_text().endswith("\n")
    except FileNotFoundError:
        return False


def start_manager(
    workdir: Path,
    name: str,
    endpoints: Sequence[str],
    lease_ttl_s: int = 2,
    extra: Sequence[str] = (),
    listen: str = "127.0.0.1:0",
) -> ManagerProcess:
    """A replica of cluster `replicated`; returns once it serves (as leader or standby)."""
    ready, log = workdir / f"{name}.addr", workdir / f"{name}.log"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "vmgrid.agents.cluster.service.main",
        "--insecure", "--listen", listen, "--cluster-id", CLUSTER_ID,
        "--ready-file", str(ready), "--state-dir", str(workdir / name),
        "--report-period-ms", "500", "--heartbeat-timeout-ms", "3000",
        "--automation", "manual",
        "--etcd-endpoints", ",".join(endpoints), "--lease-ttl-s", str(lease_ttl_s),
        "--replica-id", name, *extra,
    ]  # fmt: skip
    return spawn_ready(name, argv, ready, log, "replica")


def restart_manager(workdir: Path, manager: ManagerProcess) -> ManagerProcess:
    """The same replica again, on the same address (as its supervisor would restart it)."""
    host_port = manager.address
    argv = list(manager.argv)
    argv[argv.index("--listen") + 1] = host_port
    ready = Path(argv[argv.index("--ready-file") + 1])
    ready.unlink(missing_ok=True)
    return spawn_ready(manager.name, argv, ready, manager.log, "replica", host_port)


def idle_vms(node: str, count: int = 2, memory_mib: int = 1024) -> list[SimVm]:
    """`count` 1-vCPU VMs named after the node."""
    return [SimVm(f"{node}-vm{i}", vcpus=1, memory_mib=memory_mib) for i in range(count)]


def start_test_agent(
    workdir: Path,
    node: str,
    managers: Sequence[str],
    vms: Sequence[SimVm],
    state_dir: Path | None = None,
    metrics_listen: str = "",
) -> subprocess.Popen[bytes]:
    """A `vmgrid-agent` of a test-driver node (4 CPUs, 8 GiB) holding `vms`, given every
    replica's address, reporting every 0.5 s; with `state_dir`, it keeps the highest
    manager term there; with `metrics_listen` (HOST:PORT), it serves /metrics."""
    xml = workdir / f"{node}.xml"
    xml.write_text(node_xml(list(vms), cpus=4, memory_mib=8192))
    config = workdir / f"{node}.toml"
    config.write_text(
        f'node_id = "{node}"\nlibvirt_uri = "test://{xml.resolve()}"\n'
        f'manager = "{",".join(managers)}"\n'
        f"report_period_s = 0.5\nheartbeat_period_s = 0.5\ninsecure = true\n"
        + (f'state_dir = "{state_dir.resolve()}"\n' if state_dir is not None else "")
        + (f'metrics_listen = "{metrics_listen}"\n' if metrics_listen else "")
        + f"[load]\ndefault = {IDLE}\n"
    )
    log = workdir / f"{node}.log"
    with log.open("ab") as out:
        argv = [sys.executable, "-m", "vmgrid.agents.node.main", "--config", str(config)]
        return subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def _stub(channel: grpc.Channel) -> cluster_pb2_grpc.ClusterServiceStub:
    return cluster_pb2_grpc.ClusterServiceStub(channel)


def list_nodes(address: str) -> cluster_pb2.ListNodesResponse:
    """ListNodes on one replica; grpc.RpcError (UNAVAILABLE on a standby) otherwise."""
    with grpc.insecure_channel(address) as channel:
        return _stub(channel).ListNodes(cluster_pb2.ListNodesRequest(), timeout=2)


def connected_nodes(address: str) -> set[str]:
    """Nodes connected to the manager at `address`; empty when it does not answer."""
    try:
        nodes = list_nodes(address).nodes
    except grpc.RpcError:
        return set()
    return {n.node_id for n in nodes if n.status == cluster_pb2.NODE_STATUS_CONNECTED}


def leaders(managers: Sequence[ManagerProcess]) -> list[ManagerProcess]:
    """The live replicas that answer operator calls (one when the election works)."""
    found = []
    for manager in managers:
        if not manager.alive():
            continue
        try:
            list_nodes(manager.address)
        except grpc.RpcError:
            continue
        found.append(manager)
    return found


def add_ban_rule(address: str, rule_id: str, vm_uuid: str, node_id: str) -> None:
    """AddRule (an operator write) on the replica at `address`."""
    rule = cluster_pb2.Rule(rule_id=rule_id, kind="ban", vm_uuids=[vm_uuid], node_ids=[node_id])
    with grpc.insecure_channel(address) as channel:
        _stub(channel).AddRule(cluster_pb2.AddRuleRequest(rule=rule), timeout=5)


def rule_ids(address: str) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        rules = _stub(channel).ListRules(cluster_pb2.ListRulesRequest(), timeout=5).rules
    return [r.rule_id for r in rules]


def migrate(address: str, vm_uuid: str, destination: str) -> str:
    """MigrateVm on the replica at `address`; returns the plan id."""
    request = cluster_pb2.MigrateVmRequest(vm_uuid=vm_uuid, destination_node_id=destination)
    with grpc.insecure_channel(address) as channel:
        return str(_stub(channel).MigrateVm(request, timeout=10).plan.plan_id)


def drain(address: str, node_id: str, timeout_s: float = 30.0) -> str:
    """DrainNode on the replica at `address`; returns the id of the plan that empties the
    node once it runs (approving it if it waits for an operator)."""
    with grpc.insecure_channel(address) as channel:
        stub = _stub(channel)
        stub.DrainNode(cluster_pb2.DrainNodeRequest(node_id=node_id), timeout=10)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            plans = stub.ListPlans(cluster_pb2.ListPlansRequest(), timeout=5).plans
            for plan in plans:
                if plan.state == common_pb2.PLAN_STATE_RUNNING:
                    return str(plan.plan_id)
                if plan.state == common_pb2.PLAN_STATE_AWAITING_APPROVAL:
                    request = cluster_pb2.ApprovePlanRequest(plan_id=plan.plan_id)
                    stub.ApprovePlan(request, timeout=10)
            time.sleep(0.1)
    raise TimeoutError(f"no plan to drain {node_id} within {timeout_s} s")


def refusal(address: str) -> str:
    """What the replica at `address` answers an operator call with when it does not serve
    it (its UNAVAILABLE details); empty when it serves."""
    try:
        list_nodes(address)
    except grpc.RpcError as exc:
        return str(exc.details())
    return ""


def scrape(port: int) -> dict[str, float]:
    """The samples of the /metrics endpoint on loopback `port`, by name with labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def plan_state(address: str, plan_id: str) -> int:
    """The state (common_pb2.PlanState number) of `plan_id` on `address`; 0 when unknown or
    when the replica does not answer."""
    try:
        with grpc.insecure_channel(address) as channel:
            plans = _stub(channel).ListPlans(cluster_pb2.ListPlansRequest(), timeout=5).plans
    except grpc.RpcError:
        return 0
    return next((int(p.state) for p in plans if p.plan_id == plan_id), 0)


def running_placement(address: str) -> dict[str, list[str]]:
    """VM uuid -> the nodes it runs on, as the manager at `address` sees them."""
    with grpc.insecure_channel(address) as channel:
        vms = _stub(channel).ListVms(cluster_pb2.ListVmsRequest(), timeout=5).vms
    out: dict[str, list[str]] = {}
    for vm in vms:
        if vm.usage.state == common_pb2.VM_STATE_RUNNING:
            out.setdefault(vm.usage.uuid, []).append(vm.node_id)
    return {uuid: sorted(nodes) for uuid, nodes in out.items()}


def running_hosts(address: str, vm_uuid: str) -> list[str]:
    """Nodes on which `vm_uuid` runs, as the manager at `address` sees them."""
    return running_placement(address).get(vm_uuid, [])


@dataclass(frozen=True)
class View:
    """What a replica knows of its cluster: each node's status and maintenance flag, each
    running VM's nodes, each plan's state."""

    nodes: dict[str, tuple[int, bool]]
    placement: dict[str, list[str]]
    plans: dict[str, int]


def view_of(address: str, standby_read: bool = False) -> View:
    """The view of the replica at `address`; with `standby_read`, a standby answers from its
    own warm view (``vmgrid-standby-read``) instead of naming the leader. grpc.RpcError when
    it does not answer."""
    metadata = (("vmgrid-standby-read", "1"),) if standby_read else ()
    with grpc.insecure_channel(address) as channel:
        stub = _stub(channel)
        nodes = stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=5, metadata=metadata)
        vms = stub.ListVms(cluster_pb2.ListVmsRequest(), timeout=5, metadata=metadata)
        plans = stub.ListPlans(cluster_pb2.ListPlansRequest(), timeout=5, metadata=metadata)
    placement: dict[str, list[str]] = {}
    for vm in vms.vms:
        if vm.usage.state == common_pb2.VM_STATE_RUNNING:
            placement.setdefault(vm.usage.uuid, []).append(vm.node_id)
    return View(
        {n.node_id: (int(n.status), bool(n.draining)) for n in nodes.nodes},
        {uuid: sorted(found) for uuid, found in placement.items()},
        {p.plan_id: int(p.state) for p in plans.plans},
    )


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> float:
    """Seconds until `check()` is true; TimeoutError naming `what` after `timeout_s`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process started here, by its pid (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
