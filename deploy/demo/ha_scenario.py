"""The demo's fault-tolerance act (on by default; `vmgrid-demo --no-ha-scenario` skips it).

A two-member spread group goes through the grid coordinator (which picks the cluster), a
coordinated checkpoint is taken, then the agent process of the node running the first member
is killed (SIGKILL: a simulated node failure). The node is declared LOST after its heartbeat
timeout, fenced by the demo's fence command (`true`), and its member restarts on another node
from the checkpoint. Then the node's agent comes back (same node id, same metrics port) still
holding a copy of the member, as a host returning from a partition would; the manager destroys
that stale copy, so the member runs once. Every step is printed.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Callable, Mapping

from vmgrid.agents.cluster.rules.check import violations
from vmgrid.agents.cluster.service.runtime import ClusterRuntime
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.jobmodel import JobState
from vmgrid.agents.jobmodel.codec import member_uuid
from vmgrid.agents.model import VmState
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.demo.simcluster import SimCluster

Say = Callable[[str], None]


def demo_key() -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode() + " demo@vmgrid"


JOB = {
    "name": "demo-mpi",
    "count": 2,
    "image": "/var/lib/vmgrid/images/demo.qcow2",  # test-driver nodes create no disk
    "vcpus": 1,
    "cpu_millicores": 200,
    "memory_mib": 256,
    "ha_priority": 100,
    "user": "demo",
    "ssh_key": demo_key(),
    "placement": {"spread": True},
}


async def run(
    grid: CoordinatorServer,
    runtimes: Mapping[str, ClusterRuntime],
    sims: Mapping[str, SimCluster],
    say: Say,
    timeout_s: float = 60.0,
) -> bool:
    """Play the act; True when the group survived the node failure and the node came back
    without leaving a VM running twice."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout_s and not _summaries_with_nodes(grid, len(runtimes)):
        await asyncio.sleep(0.5)  # the coordinator places on summaries: wait for real ones
    say("HA: submitting group demo-mpi (2 members, spread) to the grid coordinator")
    record = await grid.jobs.submit(dict(JOB))
    say(f"HA: job {record.job_id}: {record.state.value} on {record.cluster_id}: {record.message}")
    if record.state is not JobState.RUNNING:
        return False
    runtime = runtimes[record.cluster_id]
    assert runtime.fault_tolerance is not None
    checkpoint = await runtime.fault_tolerance.checkpoints.take(record.job_id)
    say(f"HA: coordinated checkpoint {checkpoint} (members paused, snapshotted, resumed)")
    member = sorted(record.placement)[0]
    victim = record.placement[member]
    sim = sims[record.cluster_id]
    sim.kill(victim)
    say(f"HA: killed the agent of {victim} (simulated node failure; fence command: true)")
    uuid = member_uuid(record.job_id, member)
    survived = await _wait_restart(runtime, member, uuid, victim, checkpoint, say, timeout_s)
    say(f"HA: {_rules_line(runtime, record.job_id)}")
    sim.restart(victim, {member: uuid})
    say(f"HA: {victim} comes back (same node id and metrics port) still holding {member}")
    return survived and await _wait_clean(runtime, member, uuid, victim, say, timeout_s)


async def _wait_restart(
    runtime: ClusterRuntime,
    member: str,
    uuid: str,
    victim: str,
    checkpoint: str,
    say: Say,
    timeout_s: float,
) -> bool:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout_s:
        where = _running_on(runtime, uuid)
        if where and where != victim:
            took = loop.time() - start
            say(f"HA: {member} restarted on {where} from {checkpoint} after {took:.1f} s")
            return True
        await asyncio.sleep(0.5)
    say(f"HA: {member} did not restart within {timeout_s:.0f} s")
    return False


async def _wait_clean(
    runtime: ClusterRuntime, member: str, uuid: str, victim: str, say: Say, timeout_s: float
) -> bool:
    """The returned node's stale copy is destroyed: the member runs exactly once."""
    assert runtime.fault_tolerance is not None
    members = runtime.fault_tolerance.jobs.members
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout_s:
        view = runtime.manager.state.view(victim)
        copies = _copies(runtime, uuid)
        if view.status is NodeStatus.CONNECTED and not members.stale(victim) and len(copies) == 1:
            say(
                f"HA: {victim} is back; its stale copy of {member} was destroyed: "
                f"{member} runs once, on {copies[0]}"
            )
            return True
        await asyncio.sleep(0.5)
    say(f"HA: {victim} did not come back clean within {timeout_s:.0f} s")
    return False


def _rules_line(runtime: ClusterRuntime, job_id: str) -> str:
    """Whether the group's placement rules hold now, or which were reported impossible."""
    state = runtime.manager.state
    rules = [r for r in state.rules.rules() if r.origin == f"job:{job_id}"]
    broken = {v.rule.rule_id: v.reason for v in violations(rules, to_model(state.snapshot()))}
    parts = []
    for rule in rules:
        if rule.rule_id in state.rules.impossible:
            parts.append(
                f"{rule.rule_id} reported impossible ({state.rules.impossible[rule.rule_id]})"
            )
        elif rule.rule_id in broken:
            parts.append(f"{rule.rule_id} VIOLATED: {broken[rule.rule_id]}")
        else:
            parts.append(f"{rule.rule_id} holds")
    return "group rules: " + ("; ".join(parts) or "none")


def _copies(runtime: ClusterRuntime, vm_uuid: str) -> list[str]:
    """Connected nodes that hold the VM in any state."""
    return [
        view.node_id
        for view in runtime.manager.state.views()
        if view.status is NodeStatus.CONNECTED and any(vm.uuid == vm_uuid for vm in view.vms)
    ]


def _running_on(runtime: ClusterRuntime, vm_uuid: str) -> str:
    """A node (other than a lost one) that reports the VM running; empty when none."""
    for view in runtime.manager.state.views():
        if view.status is NodeStatus.CONNECTED and any(
            vm.uuid == vm_uuid and vm.state is VmState.RUNNING for vm in view.vms
        ):
            return view.node_id
    return ""


def _summaries_with_nodes(grid: CoordinatorServer, clusters: int) -> bool:
    records = grid.registry.records()
    return len(records) >= clusters and all(
        r.summary is not None and r.summary.health.nodes_total > 0 for r in records
    )
