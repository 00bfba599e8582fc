"""Submission, checkpoints and node failure on real agents (libvirt test driver, processes).

Three test-driver agents; the cluster's ClusterService.SubmitJob places a spread group, a
coordinated checkpoint is taken, then one agent is frozen (SIGSTOP: heartbeats stop, its
in-process libvirt keeps the VM, like a partitioned host). With a fence command that succeeds
the member restarts elsewhere and, when the agent resumes, its stale copy is destroyed; with a
fence command that fails nothing restarts and no VM ever runs twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from agent_files import start_agent
from applier import applier
from vmgrid.agents.cluster.act.images import VmImages
from vmgrid.agents.cluster.act.oneshot import one_action, run_actions, run_or_raise
from vmgrid.agents.cluster.jobs.capacity import n_plus_one
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultTolerance, FaultToleranceOptions
from vmgrid.agents.cluster.jobs.ha import HaConfig
from vmgrid.agents.cluster.jobs.submission import SubmissionConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.jobmodel import JobState
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.agents.model import VmState
from vmgrid.agents.node.testnode import node_xml
from vmgrid.solver.plan import ActionKind
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2
from waiting import wait_for

pytestmark = pytest.mark.slow

NODES = ("n1", "n2", "n3")


def ssh_key() -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def job(name: str, count: int = 2, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": name,
        "count": count,
        "image": "/img/base.qcow2",
        "vcpus": 1,
        "memory_mib": 512,
        "ssh_key": ssh_key(),
        "placement": {"spread": True},
    }
    doc.update(extra)
    return doc


class Cluster:
    def __init__(self, server: ClusterServer, ft: FaultTolerance) -> None:
        self.server = server
        self.ft = ft
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.channel = grpc.aio.insecure_channel(server.address)
        self.stub = cluster_pb2_grpc.ClusterServiceStub(self.channel)

    async def submit(self, doc: dict[str, object]) -> common_pb2.Job:
        spec = jobs_codec.encode_document(doc)
        response = await self.stub.SubmitJob(cluster_pb2.SubmitJobRequest(spec=spec))
        return response.job

    def running(self) -> dict[str, list[str]]:
        """VM uuid -> nodes (connected or not) that report it running."""
        where: dict[str, list[str]] = {}
        for view in self.server.manager.state.views():
            for vm in view.vms:
                if vm.state is VmState.RUNNING:
                    where.setdefault(vm.uuid, []).append(view.node_id)
        return where


def agent_config(tmp_path: Path, node: str, address: str) -> Path:
    xml = tmp_path / f"{node}.xml"
    xml.write_text(node_xml([], cpus=4, memory_mib=4096))
    config = tmp_path / f"{node}.toml"
    config.write_text(
        f'node_id = "{node}"\nlibvirt_uri = "test://{xml.resolve()}"\nmanager = "{address}"\n'
        "report_period_s = 0.3\nheartbeat_period_s = 0.3\ninsecure = true\n"
    )
    return config


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, fence: tuple[str, ...], checkpoint_dir: Path | None = None
) -> AsyncIterator[Cluster]:
    """A manager with HA (fenced by `fence`) and three test-driver agents; `checkpoint_dir`:
    where group checkpoints write their members' memory (None: disk-only checkpoints)."""
    config = ClusterConfig(
        listen="127.0.0.1:0", insecure=True, report_period_ms=300, heartbeat_timeout_ms=1500
    )
    server = ClusterServer(config)
    await server.start()
    options = FaultToleranceOptions(
        submission=SubmissionConfig(failures_to_tolerate=1, command_timeout_s=20),
        ha=HaConfig(fence_command=fence, period_s=0.3, command_timeout_s=20),
        checkpoint_period_s=3600,
        checkpoint_dir=str(checkpoint_dir or ""),
    )
    images = VmImages()
    ft = FaultTolerance(server.manager, applier(server.manager, images), options, images)
    ft.start()
    c = Cluster(server, ft)
    try:
        for node in NODES:
            cfg = agent_config(tmp_path, node, server.address)
            c.agents[node] = start_agent(cfg, tmp_path / f"{node}.log")
        await wait_for(lambda: _connected(server) == len(NODES), 30)
        yield c
    finally:
        for agent in c.agents.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(agent.pid, signal.SIGCONT)
            agent.terminate()
        for agent in c.agents.values():
            agent.wait(timeout=20)
        await c.channel.close()
        await ft.stop()
        await server.stop(grace_s=0)


def _connected(server: ClusterServer) -> int:
    state = server.manager.state
    return sum(
        1
        for n in state.node_ids()
        if state.node_status(n) is NodeStatus.CONNECTED and state.view(n).usage is not None
    )


def test_group_fails_over_from_a_fenced_node_and_its_stale_copy_is_destroyed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            submitted = await c.submit(job("grp", ha_priority=5, snapshot={"interval": 60}))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            uuids = list(submitted.vm_uuids)
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)
            hosts = {c.running()[u][0] for u in uuids}
            assert len(hosts) == 2  # spread
            name = await c.ft.checkpoints.take(submitted.job_id)
            assert [n for n, _ in c.ft.checkpoints.taken(submitted.job_id)] == [name]
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)  # resumed

            victim_uuid = uuids[0]
            victim = c.running()[victim_uuid][0]
            # N+1: either host's member restarts on the third node, keeping the spread
            checks = n_plus_one(c.server.manager.state.snapshot(), c.ft.jobs.members.members())
            assert checks.ok, checks
            assert sorted((n.node, n.vms) for n in checks.nodes if n.vms) == sorted(
                (h, 1) for h in hosts
            )
            os.kill(c.agents[victim].pid, signal.SIGSTOP)
            await wait_for(lambda: victim in c.ft.ha.failed, 15)
            await wait_for(  # HA records its restart once the boot's plan has ended
                lambda: (
                    c.ft.ha.restarts and any(n != victim for n in c.running().get(victim_uuid, []))
                ),
                15,
            )
            restart = c.ft.ha.restarts[0]
            assert (restart.from_node, restart.checkpoint) == (victim, name)
            sibling = c.running()[uuids[1]][0]
            assert restart.to_node != sibling  # the third node keeps the group's spread rule
            journal = c.ft.jobs.executor.journal
            (ha_plan,) = [p for p in journal.plans() if p.origin == "ha"]
            reason = ha_plan.actions[0].action.reason
            assert reason.startswith(f"{victim} failed (fenced): restart ")
            assert f"on {restart.to_node}, the node with most free memory that keeps" in reason
            starts = [p for p in journal.plans() if p.origin == "submission"]
            assert len(starts) == 2
            assert all("member of job" in p.actions[0].action.reason for p in starts)
            rules = c.server.manager.state.rules
            assert [r.rule_id for r in rules.rules()] == [f"job-{submitted.job_id}-spread"]
            assert rules.impossible == {}

            os.kill(c.agents[victim].pid, signal.SIGCONT)
            state = c.server.manager.state
            await wait_for(lambda: state.node_status(victim) is NodeStatus.CONNECTED, 15)
            await wait_for(lambda: c.running().get(victim_uuid) == [restart.to_node], 15)
            await wait_for(lambda: not c.ft.jobs.members.stale(victim), 15)
            assert all(len(nodes) == 1 for nodes in c.running().values())

            got = await c.stub.GetJob(cluster_pb2.GetJobRequest(job_id=submitted.job_id))
            assert got.job.state == common_pb2.JOB_STATE_RUNNING

    asyncio.run(scenario())


def test_a_member_restarts_even_where_it_breaks_spread_and_the_rule_is_reported_impossible(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            submitted = await c.submit(job("trio", count=3))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            uuids = list(submitted.vm_uuids)
            await wait_for(lambda: all(u in c.running() for u in uuids), 10)
            events = c.server.manager.bus.subscribe()
            victim = c.running()[uuids[0]][0]
            os.kill(c.agents[victim].pid, signal.SIGSTOP)
            await wait_for(lambda: any(n != victim for n in c.running().get(uuids[0], [])), 20)
            rules = c.server.manager.state.rules
            rule_id = f"job-{submitted.job_id}-spread"
            assert rule_id in rules.impossible and "no node" in rules.impossible[rule_id]
            while (event := await asyncio.wait_for(events.get(), 5)).kind.value != "rule_changed":
                pass
            assert rule_id in event.message and "impossible" in event.message
            running = c.running()
            assert all(u in running for u in uuids)  # every member runs, once
            os.kill(c.agents[victim].pid, signal.SIGCONT)

    asyncio.run(scenario())


def test_a_member_migrated_by_a_plan_is_restarted_from_where_it_ran(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            submitted = await c.submit(job("moved", count=1))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            (vm_uuid,) = submitted.vm_uuids
            await wait_for(lambda: vm_uuid in c.running(), 10)
            first = c.running()[vm_uuid][0]
            second = next(n for n in NODES if n != first)
            move = one_action(ActionKind.MIGRATE, vm_uuid, "test", src=first, dst=second)
            await run_or_raise(c.ft.jobs.executor, "move-member", [move], "test")
            await wait_for(lambda: c.running().get(vm_uuid) == [second], 15)
            (member,) = c.ft.jobs.members.members(submitted.job_id)
            assert member.node_id == second  # the record followed the migration
            os.kill(c.agents[second].pid, signal.SIGSTOP)
            await wait_for(lambda: second in c.ft.ha.failed, 15)
            await wait_for(  # HA records its restart once the boot's plan has ended
                lambda: c.ft.ha.restarts and any(n != second for n in c.running().get(vm_uuid, [])),
                20,
            )
            assert [r.from_node for r in c.ft.ha.restarts] == [second]
            os.kill(c.agents[second].pid, signal.SIGCONT)

    asyncio.run(scenario())


def test_a_member_leaving_a_node_that_fails_mid_migration_is_restarted(tmp_path: Path) -> None:
    """The node fails while a plan moves the member away: the destination already reports the
    copy being prepared (shut off), the source's running copy is lost with the node. HA must
    restart the member all the same: it runs on no connected node."""

    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            submitted = await c.submit(job("leaving", count=1))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            (vm_uuid,) = submitted.vm_uuids
            await wait_for(lambda: vm_uuid in c.running(), 10)
            source = c.running()[vm_uuid][0]
            destination = next(n for n in NODES if n != source)
            state = c.server.manager.state
            move = one_action(ActionKind.MIGRATE, vm_uuid, "test", src=source, dst=destination)
            moving = asyncio.ensure_future(
                run_actions(c.ft.jobs.executor, "move-away", [move], "test")
            )  # a simulated copy of 512 MiB at 1 Gbit/s: about 4 s
            await wait_for(lambda: vm_uuid in state.owners.hidden(destination), 10)  # defined there
            os.kill(c.agents[source].pid, signal.SIGSTOP)
            await wait_for(lambda: source in c.ft.ha.failed, 15)
            await wait_for(  # HA records its restart once the boot's plan has ended
                lambda: c.ft.ha.restarts and any(n != source for n in c.running().get(vm_uuid, [])),
                20,
            )
            assert [r.from_node for r in c.ft.ha.restarts] == [source]
            os.kill(c.agents[source].pid, signal.SIGCONT)
            await wait_for(lambda: state.node_status(source) is NodeStatus.CONNECTED, 15)
            await asyncio.wait_for(moving, 60)
            await wait_for(lambda: not c.ft.jobs.members.stale(source), 15)
            assert [len(nodes) for nodes in c.running().values()] == [1]

    asyncio.run(scenario())


def test_a_lost_node_without_fencing_restarts_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("false",)) as c:
            submitted = await c.submit(job("solo", count=1))
            assert submitted.state == common_pb2.JOB_STATE_RUNNING, submitted.message
            (vm_uuid,) = submitted.vm_uuids
            await wait_for(lambda: vm_uuid in c.running(), 10)
            node = c.running()[vm_uuid][0]
            os.kill(c.agents[node].pid, signal.SIGSTOP)
            state = c.server.manager.state
            await wait_for(lambda: state.node_status(node) is NodeStatus.LOST, 15)
            await asyncio.sleep(2.0)  # several HA passes
            assert c.ft.ha.restarts == [] and node not in c.ft.ha.failed
            os.kill(c.agents[node].pid, signal.SIGCONT)
            await wait_for(lambda: state.node_status(node) is NodeStatus.CONNECTED, 15)
            assert c.running()[vm_uuid] == [node]

    asyncio.run(scenario())


def test_bad_requests_start_nothing_and_say_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cluster(tmp_path, ("true",)) as c:
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await c.submit(job("bad", memory_mib="lots"))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "memory_mib" in (bad.value.details() or "")
            too_many = await c.submit(job("wide", count=4))  # spread over 3 nodes
            assert too_many.state == common_pb2.JOB_STATE_FAILED
            assert too_many.message
            huge = await c.submit(job("huge", count=3, memory_mib=3000))
            assert huge.state == common_pb2.JOB_STATE_FAILED  # HA admission (F=1) refuses
            assert c.running() == {}
            records = {r.spec.name: r.state for r in c.ft.jobs.records()}
            assert records == {"wide": JobState.FAILED, "huge": JobState.FAILED}
            assert json.loads(too_many.spec.document_json)["name"] == "wide"

    asyncio.run(scenario())
