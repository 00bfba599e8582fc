"""The chaos run's steps: what an operator, the load and failures do to the grid.

Each step is one coroutine taking the run; it picks its subject with the run's seeded random
generator, acts through the product's own front doors (vmgridctl, the ClusterService API, the
dashboard's HTTP API, the coordinator's API, the rule store) and waits for what it started to
end, while the run's sampler checks the invariants in the background. A refusal by the product
(a migration that would break a rule, a drain of the last node...) is an answer, not a failure.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import grpc.aio
from vmgrid.agents.cluster.operator.plan_views import PlanView
from vmgrid.agents.errors import VmgridError
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.agents.node.testnode import SimVm
from vmgrid.bench.chaos_grid import OPERATOR_TOKEN, Placement
from vmgrid.solver.constraints import make
from vmgrid.v1 import cluster_pb2, common_pb2, coordinator_pb2, coordinator_pb2_grpc

if TYPE_CHECKING:
    from vmgrid.bench.chaos import ChaosRun

Step = Callable[["ChaosRun"], Awaitable[str]]
VMGRIDCTL = str(Path(sys.executable).parent / "vmgridctl")
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA chaos"


def _running(run: ChaosRun, cluster: str) -> list[Placement]:
    return [p for p in run.last if p.cluster == cluster and p.state == "running"]


def _other_node(run: ChaosRun, p: Placement) -> str | None:
    nodes = sorted(n for n in run.connected.get(p.cluster, set()) if n != p.node)
    return run.rng.choice(nodes) if nodes else None


def _pick(run: ChaosRun, cluster: str) -> tuple[Placement, str] | None:
    vms = _running(run, cluster)
    if not vms:
        return None
    vm = run.rng.choice(vms)
    node = _other_node(run, vm)
    return (vm, node) if node else None


async def load(run: ChaosRun) -> str:
    """Let the traces play on: loads change and c1's decision loop reacts."""
    seconds = round(run.rng.uniform(0.3, 1.5), 1)
    await asyncio.sleep(seconds)
    return f"load: {seconds} s of traces"


async def migrate_cli(run: ChaosRun) -> str:
    cluster = run.rng.choice(("c1", "c2"))
    picked = _pick(run, cluster)
    if picked is None:
        return "migrate (vmgridctl): nothing to move"
    vm, node = picked
    address = run.grid.runtime.address if cluster == "c1" else run.grid.c2_address
    process = await asyncio.create_subprocess_exec(
        VMGRIDCTL, "migrate", vm.uuid, node, "--cluster", address, "--insecure",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    last = output.decode().strip().splitlines()[-1:] or [""]
    return f"migrate (vmgridctl) {vm.name} {vm.node} -> {cluster}/{node}: exit {process.returncode} {last[0]}"


async def migrate_api(run: ChaosRun) -> str:
    picked = _pick(run, "c1")
    if picked is None:
        return "migrate (operator API): nothing to move"
    vm, node = picked
    plans = run.grid.runtime.operator.plans
    try:
        view = await plans.migrate(vm.uuid, node)
    except VmgridError as exc:
        return f"migrate (operator API) {vm.name} -> {node}: refused: {exc}"
    while not plans.get(view.plan_id).status.final:
        await asyncio.sleep(0.1)
    return f"migrate (operator API) {vm.name} -> {node}: {plans.get(view.plan_id).status.value}"


async def migrate_http(run: ChaosRun) -> str:
    picked = _pick(run, "c1")
    if picked is None or run.grid.dashboard is None:
        return "migrate (HTTP API): nothing to move"
    vm, node = picked
    url = f"{run.grid.dashboard.server.api_url}/vms/{vm.uuid}/migrate"
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"destination": node}, headers=headers) as response,
    ):
        body = await response.json()
    plan_id = body.get("plan", "") if isinstance(body, dict) else ""
    plans = run.grid.runtime.operator.plans
    if response.status == 202 and plan_id:
        while not plans.get(plan_id).status.final:
            await asyncio.sleep(0.1)
    return f"migrate (HTTP API) {vm.name} -> {node}: {response.status} {json.dumps(body)[:120]}"


async def drain(run: ChaosRun) -> str:
    nodes = sorted(run.connected.get("c1", set()) - run.drained)
    if len(nodes) < 3:
        return "drain: too few nodes left"
    node = run.rng.choice(nodes)
    stub = run.grid.c1_stub
    assert stub is not None
    try:
        await stub.DrainNode(cluster_pb2.DrainNodeRequest(node_id=node), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return f"drain {node}: {exc.code().name} {exc.details()}"
    run.drained.add(node)
    await asyncio.sleep(run.rng.uniform(0.5, 1.5))  # maintenance moves its VMs meanwhile
    return f"drain {node}"


async def undrain(run: ChaosRun) -> str:
    if not run.drained:
        return "undrain: no node drained"
    node = run.rng.choice(sorted(run.drained))
    stub = run.grid.c1_stub
    assert stub is not None
    try:
        await stub.UndrainNode(cluster_pb2.UndrainNodeRequest(node_id=node), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return f"undrain {node}: {exc.code().name} {exc.details()}"
    run.drained.discard(node)
    return f"undrain {node}"


def _free(run: ChaosRun) -> list[Placement]:
    """c1's running VMs that no rule names yet (so rules never contradict each other) and no
    running plan moves (a plan decided before the rule may move them while it is added)."""
    named = {vm for rule in run.rules() for vm in rule.constraint.vms_in_scope()}
    runtime = run.grid.runtime
    for plan_id in runtime.executor.in_flight:
        record = runtime.journal.plan(plan_id)
        if record is not None:
            named.update(a.action.subject for a in record.actions)
    named.update(vm for view in runtime.operator.plans.recent() for vm in _moving(view))
    return [p for p in _running(run, "c1") if p.uuid not in named]


def _moving(view: PlanView) -> list[str]:
    return [] if view.status.final else [a.action.subject for a in view.actions]


async def add_rule(run: ChaosRun) -> str:
    """A rule over existing VMs that holds now: spread, gather, ban or fence."""
    free = _free(run)
    nodes = sorted(run.connected.get("c1", set()))
    kind = run.rng.choice(("spread", "gather", "ban", "fence"))
    if kind in ("spread", "gather"):
        pairs = [
            (a, b)
            for a in free
            for b in free
            if a.uuid < b.uuid and (a.node == b.node) == (kind == "gather")
        ]
        if not pairs:
            return f"rule {kind}: no pair of free VMs fits"
        a, b = run.rng.choice(pairs)
        constraint = make(kind, vms=(a.uuid, b.uuid))
    else:
        if not free or len(nodes) < 2:
            return f"rule {kind}: no free VM"
        vm = run.rng.choice(free)
        others = [n for n in nodes if n != vm.node]
        if kind == "ban":
            chosen = tuple(sorted(run.rng.sample(others, 1)))
        else:
            chosen = tuple(sorted([vm.node, *run.rng.sample(others, min(2, len(others)))]))
        constraint = make(kind, vms=(vm.uuid,), nodes=chosen)
    rule_id = f"chaos-{run.step}"
    run.grid.runtime.manager.state.rules.add(rule_id, constraint)
    return f"rule add {rule_id} {constraint.label()}"


async def delete_rule(run: ChaosRun) -> str:
    mine = [r for r in run.rules() if r.rule_id.startswith("chaos-")]
    if not mine:
        return "rule delete: none to delete"
    rule = run.rng.choice(mine)
    run.grid.runtime.manager.state.rules.delete(rule.rule_id)
    return f"rule delete {rule.rule_id}"


async def submit(run: ChaosRun) -> str:
    """A group of two through ClusterService.SubmitJob, spread or gathered, restarted by HA."""
    kind = run.rng.choice(("spread", "gather"))
    name = f"grp{run.step}"
    doc = {
        "name": name,
        "count": 2,
        "image": "/var/lib/vmgrid/images/chaos.qcow2",  # test-driver nodes create no disk
        "vcpus": 1,
        "memory_mib": 512,
        "ssh_key": SSH_KEY,
        "placement": {kind: True},
        "ha_priority": 1,
    }
    stub = run.grid.c1_stub
    assert stub is not None
    spec = jobs_codec.encode_document(doc)
    reply = await stub.SubmitJob(cluster_pb2.SubmitJobRequest(spec=spec), timeout=60)
    job = reply.job
    if job.state != common_pb2.JOB_STATE_RUNNING:
        return f"submit {name} ({kind}): not running: {job.message}"
    for vm_uuid in job.vm_uuids:
        run.expect(vm_uuid, f"{name}-member", job_member=True)
    rules = run.grid.runtime.manager.state.rules
    origin = f"job:{job.job_id}"
    if not any(r.origin == origin for r in rules.rules()):
        # The job's rule as the store will hold it once submissions journal theirs.
        rules.add(f"{job.job_id}-{kind}", make(kind, vms=tuple(job.vm_uuids)), origin)
    return f"submit {name} ({kind}): {job.message}"


async def fail_node(run: ChaosRun) -> str:
    """SIGKILL a c1 agent: HA restarts its job members elsewhere; its plain VMs (which no one
    but their host can define) are down until the host returns."""
    if run.failed or len(run.connected.get("c1", set())) < 4:
        return "node failure: skipped (a node is already down)"
    node = run.rng.choice(sorted(run.connected["c1"]))
    gone = [p for p in run.last if p.cluster == "c1" and p.node == node]
    memory = {
        vm.uuid: max(1, vm.memory_allocated_bytes >> 20)
        for vm in run.grid.runtime.manager.state.view(node).vms
    }
    ft = run.grid.runtime.fault_tolerance
    records = {m.vm_uuid: m.node_id for m in ft.jobs.members.members()} if ft else {}
    actual = {p.uuid: p.node for p in run.last if p.cluster == "c1"}
    for vm_uuid, recorded in records.items():
        where = actual.get(vm_uuid, recorded)
        if where != recorded and node in (where, recorded):
            run.stale_members[vm_uuid] = f"it said {recorded}, the VM ran on {where}"
    run.grid.kill_agent("c1", node)
    run.failed = node
    run.drained.discard(node)
    run.down_with_host = []
    for p in gone:
        if p.uuid not in run.job_members and p.state == "running":
            run.forget(p.uuid)
            run.down_with_host.append(SimVm(p.name, memory_mib=memory.get(p.uuid, 512)))
    await asyncio.sleep(run.rng.uniform(4.0, 5.0))  # loss detected, fenced, restarts begin
    members = sum(1 for p in gone if p.uuid in run.job_members)
    return f"node failure {node}: {len(gone) - members} VM(s) lost with it, {members} to restart"


async def return_node(run: ChaosRun) -> str:
    if not run.failed:
        return "node return: none down"
    node, run.failed = run.failed, ""
    seen = {p.uuid for p in run.last}
    back = [vm for vm in run.down_with_host if vm.uuid in run.forgotten and vm.uuid not in seen]
    run.grid.restart_agent("c1", node, back)
    for vm in back:
        run.expect(vm.uuid, vm.name)
    await run.grid.wait_connected(60)
    return f"node return {node} with {len(back)} of its VMs (autostarted)"


async def grid_move(run: ChaosRun) -> str:
    source = run.rng.choice(("c1", "c2"))
    candidates = [p for p in _running(run, source) if p.uuid not in run.job_members]
    if not candidates:
        return f"grid move: no VM in {source}"
    vm = run.rng.choice(candidates)
    destination = "c2" if source == "c1" else "c1"
    coordinator = run.grid.coordinator
    assert coordinator is not None
    async with grpc.aio.insecure_channel(run.grid.coordinator_address) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        try:
            reply = await stub.MigrateVmToCluster(
                coordinator_pb2.MigrateVmToClusterRequest(
                    vm_uuid=vm.uuid, destination_cluster_id=destination
                ),
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            return f"grid move {vm.name} -> {destination}: {exc.code().name} {exc.details()}"
    status = await asyncio.wait_for(coordinator.mover.wait(reply.plan.plan_id), 120)
    if destination == "c1":
        run.moved_in.add(vm.uuid)
    return f"grid move {vm.name} {source} -> {destination}: {status.value}"


async def restart_manager(run: ChaosRun) -> str:
    await run.grid.restart_c2()
    await run.grid.wait_connected(60)
    return "manager restart: c2 SIGKILLed and started on its journal"


STEPS: dict[str, tuple[Step, int]] = {
    "load": (load, 18),
    "migrate_cli": (migrate_cli, 8),
    "migrate_api": (migrate_api, 10),
    "migrate_http": (migrate_http, 8),
    "drain": (drain, 5),
    "undrain": (undrain, 6),
    "add_rule": (add_rule, 12),
    "delete_rule": (delete_rule, 5),
    "submit": (submit, 5),
    "fail_node": (fail_node, 3),
    "return_node": (return_node, 4),
    "grid_move": (grid_move, 6),
    "restart_manager": (restart_manager, 2),
}
