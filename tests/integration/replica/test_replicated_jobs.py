"""Jobs on replicated cluster managers: the job store and HA's member records are written
through to etcd, so the replica that takes over from a SIGKILLed leader knows the jobs, and
its HA restarts the members of a node that fails afterwards (real processes, real etcd, agents
on the libvirt test driver)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import (
    ManagerProcess,
    connected_nodes,
    idle_vms,
    leaders,
    running_placement,
    start_manager,
    start_test_agent,
    stop,
    wait_until,
)
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NODES = ("n1", "n2", "n3")
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA t"
JOBS = ("--jobs", "--fence-command", "true", "--ha-period-s", "0.5")


def _stub(address: str) -> tuple[grpc.Channel, cluster_pb2_grpc.ClusterServiceStub]:
    channel = grpc.insecure_channel(address)
    return channel, cluster_pb2_grpc.ClusterServiceStub(channel)


def _submit(address: str) -> common_pb2.Job:
    doc = {
        "name": "pair",
        "count": 2,
        "image": "/var/lib/vmgrid/images/pair.qcow2",  # test-driver nodes create no disk
        "vcpus": 1,
        "memory_mib": 512,
        "ssh_key": SSH_KEY,
        "placement": {"spread": True},
        "ha_priority": 1,
    }
    channel, stub = _stub(address)
    with channel:
        request = cluster_pb2.SubmitJobRequest(spec=jobs_codec.encode_document(doc))
        return stub.SubmitJob(request, timeout=60).job


def _job(address: str, job_id: str) -> common_pb2.Job | None:
    channel, stub = _stub(address)
    with channel:
        try:
            return stub.GetJob(cluster_pb2.GetJobRequest(job_id=job_id), timeout=5).job
        except grpc.RpcError:
            return None


def _one_leader(managers: list[ManagerProcess]) -> ManagerProcess:
    wait_until(lambda: len(leaders(managers)) == 1, 20, "one replica leads")
    (leader,) = leaders(managers)
    return leader


def test_a_new_leader_knows_the_jobs_and_restarts_members_of_a_node_that_fails(
    tmp_path: Path, etcd3: EtcdCluster
) -> None:
    managers = [start_manager(tmp_path, f"j{i}", etcd3.endpoints, extra=JOBS) for i in (0, 1)]
    addresses = [m.address for m in managers]
    agents: dict[str, subprocess.Popen[bytes]] = {
        n: start_test_agent(tmp_path, n, addresses, idle_vms(n, count=1)) for n in NODES
    }
    try:
        leader = _one_leader(managers)
        wait_until(lambda: connected_nodes(leader.address) == set(NODES), 30, "agents reach it")
        wait_until(lambda: len(running_placement(leader.address)) == 3, 10, "the VMs report")
        job = _submit(leader.address)
        assert job.state == common_pb2.JOB_STATE_RUNNING, job.message
        members = list(job.vm_uuids)
        wait_until(
            lambda: all(running_placement(leader.address).get(u) for u in members), 20, "members"
        )

        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        (new,) = [m for m in managers if m is not leader]
        wait_until(lambda: connected_nodes(new.address) == set(NODES), 30, "agents follow")
        assert "jobs 1, members 2, checkpoints 0, stale 0" in new.output()
        got = _job(new.address, job.job_id)
        assert got is not None and got.state == common_pb2.JOB_STATE_RUNNING
        assert sorted(got.vm_uuids) == sorted(members)

        wait_until(
            lambda: all(running_placement(new.address).get(u) for u in members), 20, "reported"
        )
        victim_vm = members[0]
        (victim,) = running_placement(new.address)[victim_vm]
        agents[victim].send_signal(signal.SIGKILL)  # the node fails under the new leader
        agents[victim].wait(timeout=10)

        def restarted() -> bool:
            hosts = running_placement(new.address).get(victim_vm, [])
            return bool(hosts) and victim not in hosts

        wait_until(restarted, 30, "the new leader's HA restarts the member elsewhere")
        placement = running_placement(new.address)
        assert all(len(placement.get(u, [])) == 1 for u in members)  # each member runs once
        assert len({placement[u][0] for u in members}) == 2  # still spread
    finally:
        for process in [*agents.values(), *(m.process for m in managers)]:
            stop(process)
