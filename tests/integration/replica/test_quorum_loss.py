"""etcd quorum lost while a plan runs: the leading replica of a cluster goes into "no new
decisions" mode within its lease (it says so in its refusals, its metrics and one log line),
no replica leads while etcd has no quorum, and once quorum returns exactly one replica leads
and finishes the plan, each VM moved once. Real processes: a 3-member etcd, two replicas,
two test-driver agents."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from vmgrid.agents.cluster.act.journal import ActionState, Journal
from vmgrid.lab.etcd import EtcdCluster, free_ports
from vmgrid.lab.replicas import (
    ManagerProcess,
    connected_nodes,
    drain,
    idle_vms,
    leaders,
    plan_state,
    refusal,
    restart_manager,
    running_placement,
    scrape,
    start_manager,
    start_test_agent,
    stop,
    wait_until,
)
from vmgrid.v1 import common_pb2

NODES = ("n1", "n2")
LEASE_TTL_S = 2
MIGRATION_S = 8.6
"""A 1 GiB simulated migration at 1000 Mbit/s."""
DEPOSED = "no new decisions"


def _commands(samples: dict[str, float], kind: str) -> float:
    return samples.get(f'vmgrid_agent_commands_total{{kind="{kind}",outcome="succeeded"}}', 0.0)


def _failed(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if "agent_commands_total" in k and "failed" in k)


@pytest.mark.slow
def test_a_leader_without_etcd_quorum_starts_nothing_and_one_successor_finishes_its_plan(
    tmp_path: Path, etcd3: EtcdCluster
) -> None:
    """n1 is drained by a plan of two 8.6 s (simulated) migrations, one at a time. Two etcd
    members die 1.5 s into the first migration: the leader's lease cannot be renewed, so it
    goes into "no new decisions" mode: it sends no further step of the first migration and
    never starts the second; the standby does not take over. Quorum returns: the old leader stops (its
    supervisor starts it again), one replica leads, reconciles the first migration and runs
    the second."""
    manager_ports, agent_ports = free_ports(2), free_ports(2)
    extra = ("--migration-bandwidth-mbit", "1000", "--max-actions-per-node", "1")
    managers = [
        start_manager(
            tmp_path,
            f"q{i}",
            etcd3.endpoints,
            LEASE_TTL_S,
            (*extra, "--metrics-listen", f"127.0.0.1:{port}"),
        )
        for i, port in enumerate(manager_ports)
    ]
    addresses = [m.address for m in managers]
    agents = [
        start_test_agent(tmp_path, n, addresses, idle_vms(n), metrics_listen=f"127.0.0.1:{p}")
        for n, p in zip(NODES, agent_ports, strict=True)
    ]
    try:
        leader = _one_leader(managers)
        standby = next(m for m in managers if m is not leader)
        leader_metrics = manager_ports[managers.index(leader)]
        wait_until(lambda: connected_nodes(leader.address) == set(NODES), 20, "agents reach it")
        moved = {vm.uuid for vm in idle_vms("n1")}
        wait_until(lambda: moved <= set(running_placement(leader.address)), 10, "n1 reports")
        started = time.monotonic()
        plan_id = drain(leader.address, "n1")
        time.sleep(max(0.0, started + 1.5 - time.monotonic()))
        assert plan_state(leader.address, plan_id) == common_pb2.PLAN_STATE_RUNNING

        etcd3.kill(1)
        etcd3.kill(2)
        cut = time.monotonic()
        try:
            wait_until(lambda: DEPOSED in refusal(leader.address), 3 * LEASE_TTL_S, "no new")
            print(f"quorum lost -> no new decisions: {time.monotonic() - cut:.2f} s")
            samples = scrape(leader_metrics)
            assert samples["vmgrid_cluster_no_new_decisions"] == 1
            assert samples["vmgrid_cluster_leading"] == 0
            wait_until(lambda: "etcd has not answered" in refusal(standby.address), 10, "silent")
            # Past the end of the first migration on the agent: the second could start now.
            time.sleep(max(0.0, started + MIGRATION_S + 2.0 - time.monotonic()))
            assert leaders(managers) == []
            assert leader.alive() and standby.alive()
        finally:
            etcd3.restart(1)
            etcd3.restart(2)

        leader.process.wait(timeout=30)
        assert leader.process.returncode == 3, leader.output()[-2000:]
        log = leader.output()
        assert [line for line in log.splitlines() if DEPOSED in line] == [
            next(line for line in log.splitlines() if "lost its etcd lease" in line)
        ]
        assert "etcd answers again; stopping" in log
        old = Journal(str(tmp_path / leader.name / "journal.sqlite")).plan(plan_id)
        assert old is not None
        first, second = sorted(old.actions, key=lambda r: r.action.id)
        assert first.state is ActionState.RUNNING  # its end is the successor's to see
        assert second.state is ActionState.PENDING  # never started by the deposed leader

        managers[managers.index(leader)] = restart_manager(tmp_path, leader)
        new = _one_leader(managers)
        succeeded = common_pb2.PLAN_STATE_SUCCEEDED
        wait_until(lambda: plan_state(new.address, plan_id) == succeeded, 60, "plan finished")
        resumed = [m for m in managers if "resuming 1 interrupted plan(s)" in m.output()]
        assert resumed == [new]
        placement = running_placement(new.address)
        assert all(placement[uuid] == ["n2"] for uuid in moved)
        assert all(len(nodes) == 1 for nodes in placement.values())
        n1, n2 = (scrape(port) for port in agent_ports)
        # Each simulated migration's steps ran once per VM: the first one's definition on n2,
        # sent again by the successor with the same command id, was answered from the cache.
        assert (_commands(n2, "define"), _commands(n2, "start")) == (2, 2)
        assert (_commands(n1, "destroy"), _commands(n1, "undefine")) == (2, 2)
        assert _failed(n1) == 0 and _failed(n2) == 0
    finally:
        for process in [*agents, *(m.process for m in managers)]:
            stop(process)


def _one_leader(managers: list[ManagerProcess]) -> ManagerProcess:
    wait_until(lambda: len(leaders(managers)) == 1, 30, "one replica leads")
    (leader,) = leaders(managers)
    return leader
