"""Nodes the manager powered off survive its restart (journal), and leave it when they return."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.cluster.state.state import NodeStatus

HELLO = m.NodeHello(
    m.NodeIdentity("n1", "n1.lab", "tcp://n1", peer_uri="qemu+tcp://n1/system"),
    m.NodeCapacity(16000, 64 * 2**30, 10**10),
    report_period_ms=1000,
)


def runtime(journal: Path) -> ClusterRuntime:
    config = ClusterConfig(listen="127.0.0.1:0", insecure=True)
    return ClusterRuntime(config, RuntimeOptions(journal_path=str(journal), decisions=False))


def test_powered_off_node_is_known_after_a_restart_until_its_agent_returns(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite"

    async def first_life() -> None:
        rt = runtime(journal)
        await rt.start()
        rt.manager.state.node_connected(HELLO, 1)
        rt.manager.state.set_draining("n1", True)
        rt.manager.state.mark_powered_off("n1")
        await rt.stop(grace_s=0)

    async def second_life() -> list[tuple[str, str]]:
        rt = runtime(journal)
        await rt.start()
        state = rt.manager.state
        assert state.node_status("n1") is NodeStatus.POWERED_OFF
        assert state.is_draining("n1")  # still in maintenance: the policy must not wake it
        view = state.view("n1")
        assert view.capacity == HELLO.capacity and view.identity == HELLO.identity
        state.node_connected(HELLO, 2)  # powered on: its agent says hello
        assert state.node_status("n1") is NodeStatus.CONNECTED
        left = rt.journal.powered_off_nodes()
        await rt.stop(grace_s=0)
        return left

    asyncio.run(first_life())
    assert asyncio.run(second_life()) == []


def test_unreadable_journal_row_is_forgotten_with_a_warning(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "journal.sqlite"
    Journal(path).remember_powered_off("n9", '{"identity": {}}', False)
    rt = runtime(path)
    assert "n9" not in rt.manager.state.node_ids()
    assert rt.journal.powered_off_nodes() == []
    assert "'n9' unreadable" in caplog.text
    rt.journal.close()


def test_maintenance_flag_changed_while_off_is_what_a_restart_sees(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"

    async def life(undrain: bool) -> bool:
        rt = runtime(journal)
        await rt.start()
        state = rt.manager.state
        if "n1" not in state.node_ids():
            state.node_connected(HELLO, 1)
            state.set_draining("n1", True)
            state.mark_powered_off("n1")
        if undrain:
            state.set_draining("n1", False)
        draining = state.is_draining("n1")
        await rt.stop(grace_s=0)
        return draining

    assert asyncio.run(life(undrain=False)) is True
    assert asyncio.run(life(undrain=True)) is False
    assert asyncio.run(life(undrain=False)) is False
