"""Nodes in maintenance survive the manager: kept in the journal, given back at start (a node
not connected yet comes back draining when its agent connects)."""

from __future__ import annotations

import logging

import pytest
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.service.drains import SETTING, persist_drains, restore_drains
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.model import NodeCapacity, NodeHello, NodeIdentity


def hello(node_id: str) -> NodeHello:
    identity = NodeIdentity(node_id, node_id, f"test:///{node_id}", simulated=True)
    return NodeHello(identity, NodeCapacity(4000, 8 * 2**30, 10**9))


def test_a_drained_node_is_draining_again_after_a_restart_once_its_agent_connects() -> None:
    journal = Journal(":memory:")
    before = ClusterState(EventBus("c1"))
    persist_drains(before, journal)
    for node in ("n1", "n2"):
        before.node_connected(hello(node), 1)
    before.set_draining("n1", True)
    before.set_draining("n2", True)
    before.set_draining("n2", False)

    after = ClusterState(EventBus("c1"))  # the manager started again on the same journal
    persist_drains(after, journal)
    assert restore_drains(after, journal) == ["n1"]
    assert after.pending_drains == {"n1"}
    after.node_connected(hello("n2"), 2)
    after.node_connected(hello("n1"), 2)
    assert after.is_draining("n1") and not after.is_draining("n2")
    assert after.pending_drains == set()
    after.set_draining("n1", False)  # undrained: no longer kept
    assert restore_drains(ClusterState(EventBus("c1")), journal) == []


def test_a_known_node_is_put_back_in_maintenance_at_once() -> None:
    journal = Journal(":memory:")
    journal.save_setting(SETTING, '["n1"]')
    state = ClusterState(EventBus("c1"))
    state.node_connected(hello("n1"), 1)
    assert restore_drains(state, journal) == ["n1"]
    assert state.is_draining("n1")


@pytest.mark.parametrize("text", ["{", '{"n1": true}', "[1]"])
def test_an_unreadable_setting_keeps_no_node_in_maintenance_and_says_so(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(":memory:")
    journal.save_setting(SETTING, text)
    state = ClusterState(EventBus("c1"))
    with caplog.at_level(logging.WARNING):
        assert restore_drains(state, journal) == []
    assert SETTING in caplog.text and "unreadable" in caplog.text
