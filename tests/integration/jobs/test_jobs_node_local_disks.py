"""A group submitted to a cluster without shared storage gets its disks from its nodes' agents.

Two test-driver agents (processes) and a real manager on 127.0.0.1 with
``shared_storage=False``: each member's agent receives a PrepareDisks command, runs qemu-img on
the image and writes the seed ISO the manager built into the node-local directory, then the
members are defined and start.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc.aio
import pytest
from applier import applier
from vmgrid.agents.cluster.act.images import VmImages
from vmgrid.agents.cluster.jobs.fault_tolerance import FaultTolerance, FaultToleranceOptions
from vmgrid.agents.cluster.jobs.submission import SubmissionConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.agents.jobmodel.seed import read_seed_iso
from vmgrid.agents.model import CommandState, VmState
from vmgrid.agents.node.testnode import node_xml
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def _key() -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def _agent(tmp_path: Path, node: str, address: str) -> subprocess.Popen[bytes]:
    xml = tmp_path / f"{node}.xml"
    xml.write_text(node_xml([], cpus=4, memory_mib=4096))
    argv = [sys.executable, "-m", "vmgrid.agents.node.main", "--insecure", "--manager", address]
    argv += ["--node-id", node, "--libvirt-uri", f"test://{xml.resolve()}", "--period", "0.3"]
    with (tmp_path / f"{node}.log").open("ab") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=sink)


async def _wait(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"{check} did not hold"
        await asyncio.sleep(0.1)


def test_group_without_shared_storage_runs_on_disks_its_agents_created(tmp_path: Path) -> None:
    base, local = tmp_path / "base.qcow2", tmp_path / "node-local"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    doc = {"name": "grp", "count": 2, "image": str(base), "memory_mib": 256, "ssh_key": _key()}
    doc["placement"] = {"spread": True}

    async def scenario() -> None:
        config = ClusterConfig(listen="127.0.0.1:0", insecure=True, report_period_ms=300)
        server = ClusterServer(config)
        await server.start()
        submission = SubmissionConfig(
            storage_dir=str(local), shared_storage=False, command_timeout_s=20
        )
        images = VmImages()
        ft = FaultTolerance(
            server.manager,
            applier(server.manager, images),
            FaultToleranceOptions(submission=submission),
            images,
        )
        ft.start()
        agents = [_agent(tmp_path, node, server.address) for node in ("n1", "n2")]
        channel = grpc.aio.insecure_channel(server.address)
        state = server.manager.state
        try:
            await _wait(lambda: sum(v.usage is not None for v in state.views()) == 2)
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            spec = jobs_codec.encode_document(doc)
            job = (await stub.SubmitJob(cluster_pb2.SubmitJobRequest(spec=spec))).job
            assert job.state == common_pb2.JOB_STATE_RUNNING, job.message

            def running() -> dict[str, str]:
                return {
                    vm.uuid: v.node_id
                    for v in state.views()
                    for vm in v.vms
                    if vm.state is VmState.RUNNING
                }

            await _wait(lambda: set(job.vm_uuids) <= set(running()))
            assert sorted(running()[u] for u in job.vm_uuids) == ["n1", "n2"]  # spread
            for name in ("grp-0", "grp-1"):
                result = server.manager.cached_result(f"job-{job.job_id}-{name}-disks")
                assert result is not None and result.state is CommandState.SUCCEEDED
                assert "created" in result.message and "written" in result.message
                overlay = local / f"job-{job.job_id}" / f"{name}.qcow2"
                info = subprocess.run(
                    ["qemu-img", "info", "--output=json", str(overlay)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                assert json.loads(info.stdout)["backing-filename"] == str(base)
                seed = read_seed_iso(overlay.with_suffix(".iso"))
                assert seed.cloud_config()["hostname"] == name
            members = ft.jobs.members.members(job_id=job.job_id)
            assert all(m.overlay_path == "" for m in members)  # nothing for HA to roll back
        finally:
            for agent in agents:
                agent.terminate()
            for agent in agents:
                agent.wait(timeout=20)
            await channel.close()
            await ft.stop()
            await server.stop(grace_s=0)

    asyncio.run(scenario())
