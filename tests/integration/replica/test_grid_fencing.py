"""Fencing of deposed coordinators by a cluster: the cluster's uplink remembers the highest
coordinator term it has seen and refuses grid commands (and hello acks) of a lower one.

The coordinator's own gate (its lease, and the fenced etcd write before each command) keeps a
deposed replica from sending; these tests show the cluster's check, behind that gate: a
coordinator service that stamps an older term on its stream stands for a deposed leader whose
command got past its gate just before its lease lapsed."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import pytest
from vmgrid.agents import grid_model as gm
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.lab.coordinators import coordinator_leaders, start_coordinator
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import ManagerProcess, stop, wait_until

CLUSTER = "c1"
DEMAND = gm.VmDemand("vm-1", "vm-1", "n9", 500, 512 * 2**20, 0)


def _cluster(coordinators: str) -> ClusterRuntime:
    return ClusterRuntime(
        ClusterConfig(cluster_id=CLUSTER, listen="127.0.0.1:0", insecure=True),
        RuntimeOptions(
            control=ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0),
            decisions=False,
            coordinator=coordinators,
            summary_period_s=0.2,
        ),
    )


def _coordinator(tmp_path: Path, name: str, listen: str = "127.0.0.1:0") -> CoordinatorServer:
    config = CoordinatorConfig(
        listen=listen, insecure=True, state_db=str(tmp_path / f"{name}.sqlite")
    )
    return CoordinatorServer(config.validate())


async def _until(check: object, timeout_s: float, what: str) -> None:
    assert callable(check)
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)


def test_a_cluster_refuses_grid_commands_of_a_lower_coordinator_term(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = _coordinator(tmp_path, "grid")
        coordinator = server.coordinator
        coordinator.term = 9  # the hello ack tells the cluster of term 9
        address = await server.start()
        cluster = _cluster(address)
        await cluster.start()
        try:
            assert cluster.uplink is not None and cluster.grid_commands is not None
            uplink, journal = cluster.uplink, cluster.grid_commands.journal
            await asyncio.wait_for(uplink.connected.wait(), 20)
            await _until(lambda: coordinator.registry.find(CLUSTER) is not None, 10, "known")
            assert uplink.fence.highest == 9

            coordinator.term = 5  # what a deposed leader's stream would carry
            reserve = gm.ReserveCapacity("reserve-by-term-5", "r-5", DEMAND, 60_000)
            refused = await asyncio.wait_for(coordinator.send_grid_command(CLUSTER, reserve), 10)
            assert refused.state is gm.GridCommandState.FAILED
            assert refused.message == (
                "refused: grid command 'reserve-by-term-5' comes with coordinator term 5, "
                "below term 9 already seen from a newer leader (stale coordinator)"
            )
            assert not journal.started("reserve-by-term-5")  # the handler never saw it
            assert journal.reservation("r-5") is None
            assert uplink.fence.refused == 1

            coordinator.term = 11  # a newer leader is obeyed
            release = gm.ReleaseReservation("release-by-term-11", "r-5")
            obeyed = await asyncio.wait_for(coordinator.send_grid_command(CLUSTER, release), 10)
            assert obeyed.state is gm.GridCommandState.SUCCEEDED, obeyed.message
            assert journal.started("release-by-term-11")
            assert uplink.fence.highest == 11
        finally:
            await cluster.stop(grace_s=0)
            await server.stop(grace_s=0)

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_cluster_that_saw_the_new_coordinator_leader_refuses_the_deposed_ones_stream(
    tmp_path: Path, etcd1: EtcdCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Two coordinator replicas elected on etcd: the cluster learns the leader's term, then
    the successor's once the leader is SIGKILLed. A coordinator with the old leader's term,
    on its address, is then refused at the hello and never gets a command through."""
    replicas = [start_coordinator(tmp_path, f"g{i}", etcd1.endpoints) for i in (0, 1)]
    try:
        wait_until(lambda: len(coordinator_leaders(replicas)) == 1, 20, "one coordinator leads")
        with caplog.at_level(logging.WARNING, logger="vmgrid.agents.cluster.grid.uplink"):
            asyncio.run(asyncio.wait_for(_deposed_scenario(tmp_path, replicas), 90))
        assert "a deposed leader; trying another replica" in caplog.text
    finally:
        for replica in replicas:
            stop(replica.process)


async def _deposed_scenario(tmp_path: Path, replicas: list[ManagerProcess]) -> None:
    (old,) = coordinator_leaders(replicas)
    (new,) = [r for r in replicas if r is not old]
    cluster = _cluster(f"{old.address},{new.address}")
    await cluster.start()
    stale: CoordinatorServer | None = None
    try:
        assert cluster.uplink is not None and cluster.grid_commands is not None
        uplink = cluster.uplink
        await asyncio.wait_for(uplink.connected.wait(), 20)
        old_term = uplink.fence.highest
        assert old_term > 0 and uplink.coordinator_addr == old.address

        old.process.send_signal(signal.SIGKILL)
        old.process.wait(timeout=10)
        await _until(lambda: uplink.fence.highest > old_term, 30, "the successor's term")
        assert uplink.coordinator_addr == new.address
        connects = uplink.connects

        stale = _coordinator(tmp_path, "stale", listen=old.address)
        stale.coordinator.term = old_term
        await stale.start()
        new.process.send_signal(signal.SIGKILL)  # the uplink now tries the old address
        new.process.wait(timeout=10)
        await _until(lambda: stale.coordinator.registry.find(CLUSTER) is not None, 20, "dial")
        reserve = gm.ReserveCapacity("reserve-by-old-term", "r-old", DEMAND, 60_000)
        sent = asyncio.ensure_future(stale.coordinator.send_grid_command(CLUSTER, reserve))
        await asyncio.sleep(3)  # several redials: none is accepted, the command never arrives
        assert not sent.done()
        sent.cancel()
        assert uplink.connects == connects
        assert not cluster.grid_commands.journal.started("reserve-by-old-term")
    finally:
        await cluster.stop(grace_s=0)
        if stale is not None:
            await stale.stop(grace_s=0)
