"""A node's degraded reason: decoded from heartbeats, kept in its view, an event on change."""

from __future__ import annotations

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.cluster.operator import codec as cluster_views
from vmgrid.agents.cluster.state.events import EventBus, EventKind
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.common import node_codec as agent_codec
from vmgrid.agents.common import node_codec as cluster_codec
from vmgrid.coordinator.web.cluster_json import node_json

REASON = "cannot reach libvirt at 'qemu+tcp://127.0.0.1:1/system'"


def hello() -> m.NodeHello:
    return m.NodeHello(m.NodeIdentity("n1", "h1", ""), m.NodeCapacity(4000, 2**33, 10**9))


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState(EventBus("c1"))
    s.node_connected(hello(), 1)
    return s


def test_heartbeat_reason_survives_agent_encoding_and_manager_decoding() -> None:
    wire = agent_codec.heartbeat_to_wire(m.Heartbeat(5, 2), degraded_reason=REASON)
    assert cluster_codec.decode_heartbeat(wire.heartbeat) == m.Heartbeat(5, 2, REASON)
    assert agent_codec.heartbeat_from_wire(wire.heartbeat).degraded_reason == REASON


def test_reason_is_kept_in_the_view_listed_and_published_once_per_change(
    state: ClusterState,
) -> None:
    sub = state.bus.subscribe(lambda e: e.kind is EventKind.NODE_DEGRADED_CHANGED)
    state.set_degraded("n1", REASON)
    state.set_degraded("n1", REASON)
    view = state.view("n1")
    assert view.degraded_reason == REASON
    assert cluster_views.encode_node_info(view).degraded_reason == REASON
    assert node_json(view, "c1")["degraded_reason"] == REASON
    event = sub.get_nowait()
    assert event is not None and REASON in event.message
    assert sub.get_nowait() is None


def test_a_report_ends_the_degraded_spell(state: ClusterState) -> None:
    state.set_degraded("n1", REASON)
    sub = state.bus.subscribe(lambda e: e.kind is EventKind.NODE_DEGRADED_CHANGED)
    state.apply_report("n1", m.NodeReport(1, 1, m.HostUsage(0, 0, 2**33)))
    assert state.view("n1").degraded_reason == ""
    event = sub.get_nowait()
    assert event is not None and event.message == "hypervisor readable again"


def test_new_event_kind_has_a_wire_value() -> None:
    event = EventBus("c1").publish(EventKind.NODE_DEGRADED_CHANGED, node_id="n1")
    wire = cluster_views.encode_event(event)
    assert cluster_views.event_kind_from_wire(wire.kind) is EventKind.NODE_DEGRADED_CHANGED
