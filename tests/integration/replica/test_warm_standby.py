"""Hot standbys keep their view warm: a standby follows etcd's replicated state and the
leader's view of the nodes, never acts on them, and decides at once when it takes over.

Real etcd (three members), real ``vmgrid-cluster`` replicas and test-driver ``vmgrid-agent``
processes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import (
    ManagerProcess,
    View,
    connected_nodes,
    drain,
    idle_vms,
    leaders,
    migrate,
    plan_state,
    start_manager,
    start_test_agent,
    stop,
    view_of,
    wait_until,
)
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

NODES = ("n1", "n2", "n3")
VIEW_BOUND_S = 10.0
"""Longest a standby's view may take to match the leader's in these tests (the leader sends
changes every second, the standby reads etcd every half second; the machine is shared)."""


def _standby_view(address: str) -> View | None:
    try:
        return view_of(address, standby_read=True)
    except grpc.RpcError:
        return None


def _matches(leader: ManagerProcess, standby: ManagerProcess) -> bool:
    seen = _standby_view(standby.address)
    return seen is not None and seen == view_of(leader.address)


@pytest.mark.slow
def test_a_standby_follows_the_leader_and_decides_at_once_after_takeover(
    tmp_path: Path, etcd3: EtcdCluster
) -> None:
    managers = [start_manager(tmp_path, f"r{i}", etcd3.endpoints) for i in range(2)]
    addresses = [m.address for m in managers]
    agents: list[subprocess.Popen[bytes]] = [
        start_test_agent(tmp_path, n, addresses, idle_vms(n)) for n in NODES
    ]
    try:
        wait_until(lambda: len(leaders(managers)) == 1, 20, "one replica leads")
        (leader,) = leaders(managers)
        (standby,) = [m for m in managers if m is not leader]
        wait_until(lambda: connected_nodes(leader.address) == set(NODES), 20, "agents reach it")

        took = wait_until(lambda: _matches(leader, standby), VIEW_BOUND_S, "the standby's view")
        print(f"standby's view matched the leader's {took:.2f} s after the agents connected")
        warm = _standby_view(standby.address)
        assert warm is not None and set(warm.nodes) == set(NODES)
        assert len(warm.placement) == 2 * len(NODES)

        # A plan runs on the leader: the standby sees its moves and the plan itself.
        plan_id = drain(leader.address, "n1")
        wait_until(
            lambda: plan_state(leader.address, plan_id) == common_pb2.PLAN_STATE_SUCCEEDED,
            60,
            "n1 drained",
        )
        took = wait_until(lambda: _matches(leader, standby), VIEW_BOUND_S, "the drained view")
        print(f"standby's view matched the drained cluster {took:.2f} s after the plan ended")
        drained = _standby_view(standby.address)
        assert drained is not None
        assert drained.nodes["n1"][1] is True  # in maintenance
        assert not any("n1" in hosts for hosts in drained.placement.values())
        assert drained.plans[plan_id] == common_pb2.PLAN_STATE_SUCCEEDED

        # The standby never acts: a write is refused with the leader's name, even asked
        # to answer reads itself.
        vm = idle_vms("n2")[0].uuid
        with pytest.raises(grpc.RpcError) as refused, grpc.insecure_channel(standby.address) as ch:
            cluster_pb2_grpc.ClusterServiceStub(ch).MigrateVm(
                cluster_pb2.MigrateVmRequest(vm_uuid=vm, destination_node_id="n3"),
                timeout=5,
                metadata=(("vmgrid-standby-read", "1"),),
            )
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert f"the leader is {leader.name}" in str(refused.value.details())

        before = view_of(leader.address)
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        killed = time.monotonic()
        # The first answer of the new leader already holds every node and VM (from the view
        # it followed), whether or not the agents have reached it yet.
        first: list[View] = []

        def answers() -> bool:
            try:
                first.append(view_of(standby.address))
            except grpc.RpcError:
                return False
            return True

        wait_until(answers, 30, "the standby leads")
        print(f"the standby answered as leader {time.monotonic() - killed:.2f} s after the kill")
        assert first[0].nodes == before.nodes
        assert first[0].placement == before.placement
        assert first[0].plans == before.plans
        assert "took over with the state already read" in standby.output()

        # It decides at once: the move is planned from the warm view and its commands go as
        # the agents reconnect (reconciled with their reports); the VM runs once, on n3.
        moved = migrate(standby.address, vm, "n3")
        wait_until(
            lambda: plan_state(standby.address, moved) == common_pb2.PLAN_STATE_SUCCEEDED,
            60,
            "the move ends",
        )
        wait_until(lambda: connected_nodes(standby.address) == set(NODES), 20, "agents follow")
        placement = view_of(standby.address).placement
        assert placement[vm] == ["n3"]
        assert all(len(hosts) == 1 for hosts in placement.values())
        assert len(placement) == 2 * len(NODES)
    finally:
        for agent in agents:
            stop(agent)
        for manager in managers:
            stop(manager.process)
