"""Cluster state: reports, events on change only, history windows, timeouts, snapshots."""

from __future__ import annotations

import dataclasses

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.cluster.state.events import EventBus, EventKind, Subscription
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus
from vmgrid.agents.errors import NotFound


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_hello(node_id: str = "n1") -> m.NodeHello:
    return m.NodeHello(
        m.NodeIdentity(node_id, f"{node_id}.lab", f"qemu+tcp://{node_id}/system"),
        m.NodeCapacity(8000, 16 * 2**30, 10**10),
    )


def make_vm(uuid: str, state: m.VmState = m.VmState.RUNNING, cpu: int = 100) -> m.VmUsage:
    return m.VmUsage(uuid, uuid, state, 1, cpu, 2**20, 2**21)


def report(seq: int, *vms: m.VmUsage) -> m.NodeReport:
    return m.NodeReport(seq * 1_000_000_000, seq, m.HostUsage(500, 2**30, 2**34), vms)


def drain(sub: Subscription) -> list[EventKind]:
    kinds = []
    while (event := sub.get_nowait()) is not None:
        kinds.append(event.kind)
    return kinds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> ClusterState:
    return ClusterState(EventBus("c1"), history_window=3, heartbeat_timeout_s=10, monotonic=clock)


def test_new_node_joins_and_vms_appear_once(state: ClusterState) -> None:
    sub = state.bus.subscribe()
    assert state.node_connected(make_hello(), 1) is False
    state.apply_report("n1", report(1, make_vm("a"), make_vm("b")))
    state.apply_report("n1", report(2, make_vm("a", cpu=900), make_vm("b")))
    assert drain(sub) == [EventKind.NODE_JOINED, EventKind.VM_APPEARED, EventKind.VM_APPEARED]
    assert {vm.uuid: vm.cpu_used_millicores for vm in state.view("n1").vms} == {"a": 900, "b": 100}


def test_state_change_and_disappearance_publish_events(state: ClusterState) -> None:
    state.node_connected(make_hello(), 1)
    state.apply_report("n1", report(1, make_vm("a"), make_vm("b")))
    sub = state.bus.subscribe()
    state.apply_report("n1", report(2, make_vm("a", m.VmState.PAUSED)))
    events = [sub.get_nowait(), sub.get_nowait()]
    assert [e.kind for e in events if e] == [EventKind.VM_STATE_CHANGED, EventKind.VM_DISAPPEARED]
    assert events[0] is not None and events[0].previous_vm_state is m.VmState.RUNNING


def test_stale_report_is_ignored(state: ClusterState) -> None:
    state.node_connected(make_hello(), 1)
    state.apply_report("n1", report(5, make_vm("a", cpu=1)))
    assert state.apply_report("n1", report(4, make_vm("a", cpu=2))) is False
    assert state.view("n1").vms[0].cpu_used_millicores == 1


def test_history_is_bounded_by_the_window(state: ClusterState) -> None:
    state.node_connected(make_hello(), 1)
    for seq in range(1, 6):
        state.apply_report("n1", report(seq, make_vm("a", cpu=seq)))
    snap = state.snapshot()
    assert [sample.cpu_used_millicores for sample in snap.vm_samples("a")] == [3, 4, 5]
    assert [t for t, _ in snap.node_history["n1"]] == [3 * 10**9, 4 * 10**9, 5 * 10**9]


def test_snapshot_is_unaffected_by_later_reports(state: ClusterState) -> None:
    state.node_connected(make_hello(), 1)
    state.apply_report("n1", report(1, make_vm("a")))
    snap = state.snapshot()
    state.apply_report("n1", report(2, make_vm("a", cpu=999), make_vm("b")))
    assert [vm.uuid for _, vm in snap.vms()] == ["a"]
    assert [s.cpu_used_millicores for s in snap.vm_samples("a")] == [100]
    with pytest.raises(NotFound, match="VM 'b' has no history"):
        snap.vm_samples("b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.nodes = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.node_history["n2"] = ()  # type: ignore[index]


def test_silent_node_is_lost_after_timeout_and_returns_on_reconnect(
    state: ClusterState, clock: FakeClock
) -> None:
    sub = state.bus.subscribe()
    state.node_connected(make_hello(), 1)
    clock.now += 9
    assert state.check_timeouts() == []
    clock.now += 2
    assert state.check_timeouts() == ["n1"]
    assert state.node_status("n1") is NodeStatus.LOST
    assert state.node_connected(make_hello(), 2) is True
    assert state.node_status("n1") is NodeStatus.CONNECTED
    assert drain(sub) == [EventKind.NODE_JOINED, EventKind.NODE_LOST, EventKind.NODE_RETURNED]


def test_unknown_node_is_named_in_not_found(state: ClusterState) -> None:
    with pytest.raises(NotFound, match="node 'ghost' is not known to cluster 'c1'"):
        state.view("ghost")


def test_slow_subscriber_loses_oldest_events_without_blocking() -> None:
    bus = EventBus("c1")
    sub = bus.subscribe(max_queued=2)
    for _ in range(5):
        bus.publish(EventKind.NODE_JOINED, node_id="n")
    first = sub.get_nowait()
    assert sub.dropped == 3 and first is not None and first.sequence == 4


def test_cpu_history_newest_first_matches_the_samples_for_every_fill_level() -> None:
    from vmgrid.agents.cluster.state.history import NodeHistory, cpu_matrix

    for window, count in ((5, 0), (5, 3), (5, 5), (5, 7), (5, 12)):
        history = NodeHistory(window)
        slot = history.add("a")
        for k in range(count):
            history.write(slot, k, 100 + k, 0, 0, 0)
            history.advance()
        expected = [s.cpu_used_millicores for s in reversed(history.samples("a"))]
        matrix, lengths = cpu_matrix([history], ["a"], 10**6)
        assert matrix[0, : lengths[0]].tolist() == expected, (window, count)
        assert expected == [100 + k for k in reversed(range(max(0, count - window), count))]


def test_powered_off_node_is_never_lost_and_returns_with_its_agent(
    state: ClusterState, clock: FakeClock
) -> None:
    state.node_connected(make_hello(), 1)
    state.apply_report("n1", report(1, make_vm("left-just-before")))
    sub = state.bus.subscribe()
    state.mark_powered_off("n1")
    state.mark_powered_off("n1")  # said once
    assert state.node_status("n1") is NodeStatus.POWERED_OFF
    assert state.view("n1").usage is None and state.view("n1").vms == ()
    with pytest.raises(NotFound):  # its last report's VMs went with the power
        state.find_vm("left-just-before")
    clock.now += 60
    assert state.check_timeouts() == []
    # a last report while it shuts down is ignored: still off, still empty
    assert state.apply_report("n1", report(2, make_vm("left-just-before"))) is False
    assert state.node_status("n1") is NodeStatus.POWERED_OFF and state.view("n1").vms == ()
    state.node_connected(make_hello(), 2)
    assert state.node_status("n1") is NodeStatus.CONNECTED
    assert state.view("n1").usage is None  # on, but not running until it reports
    assert drain(sub) == [
        EventKind.VM_DISAPPEARED,
        EventKind.NODE_POWER_CHANGED,
        EventKind.NODE_POWER_CHANGED,
    ]


def test_powering_off_an_unknown_node_names_it(state: ClusterState) -> None:
    with pytest.raises(NotFound, match="'n9'"):
        state.mark_powered_off("n9")


def test_the_ingest_form_of_a_report_has_the_same_effect_as_the_report(clock: FakeClock) -> None:
    """Reports decoded for ingestion (rows, no VmUsage) and NodeReports, through the same
    changes (VMs appear, change state, leave, are listed in another order, a report without
    sent_at), leave the same views, samples and events."""
    from vmgrid.agents.common.node_codec import decode_report_rows, encode_report

    paused = m.VmState.PAUSED
    reports = [
        report(1, make_vm("a"), make_vm("b")),
        report(2, make_vm("a", cpu=900), make_vm("b", paused)),
        report(3, make_vm("b", paused), make_vm("a", cpu=800)),
        report(4, make_vm("c"), make_vm("a", paused)),
        dataclasses.replace(report(5, make_vm("c", cpu=7), make_vm("a")), sent_at_unix_ns=0),
        report(6),
        report(7, make_vm("d")),
    ]
    outcomes = []
    for as_rows in (False, True):
        state = ClusterState(EventBus("c1"), history_window=3, monotonic=clock, clock_ns=lambda: 77)
        sub = state.bus.subscribe()
        state.node_connected(make_hello(), 1)
        for r in reports:
            state.apply_report("n1", decode_report_rows(encode_report(r)) if as_rows else r)
        events = []
        while (event := sub.get_nowait()) is not None:
            events.append(dataclasses.replace(event, at_unix_ns=0, sequence=0))
        snap = state.snapshot()
        outcomes.append((events, state.view("n1"), snap.vm_samples("d"), state.find_vm("d")))
    assert outcomes[0] == outcomes[1]
    events = outcomes[1][0]
    assert [e.kind for e in events].count(EventKind.VM_DISAPPEARED) == 3  # b, then c and a
    assert [e.kind for e in events].count(EventKind.VM_STATE_CHANGED) == 3


def test_a_hot_spell_is_told_once_when_its_hold_is_complete(state: ClusterState) -> None:
    told: list[tuple[str, int]] = []
    state.node_connected(make_hello(), 1)  # 8000 millicores
    state.watch_hot(0.5, 2.0, lambda node: told.append((node, len(history))))
    history: list[int] = []
    for seq, cpu in enumerate([5000, 5000, 5000, 5000, 100, 5000, 4100, 5000, 5000, 3000], 1):
        history.append(seq)
        usage = m.HostUsage(cpu, 2**30, 2**34)
        state.apply_report("n1", m.NodeReport(seq * 1_000_000_000, seq, usage, ()))
    # hot from t=1: held at t=3 (told once, not again at t=4); cool at t=5; hot from t=6,
    # held at t=8 on the node's clock
    assert told == [("n1", 3), ("n1", 8)]


def test_find_vm_follows_vms_as_they_move_between_nodes(state: ClusterState) -> None:
    state.node_connected(make_hello("n1"), 1)
    state.node_connected(make_hello("n2"), 2)
    state.apply_report("n1", report(1, make_vm("a"), make_vm("b")))
    state.apply_report("n2", report(1, make_vm("c")))
    assert state.find_vm("b")[0] == "n1" and state.find_vm("c")[0] == "n2"
    state.apply_report("n2", report(2, make_vm("c"), make_vm("b", m.VmState.PAUSED)))
    assert state.find_vm("b")[0] == "n1"  # on both while it migrates: the first node's
    state.apply_report("n1", report(2, make_vm("a")))
    assert state.find_vm("b") == ("n2", make_vm("b", m.VmState.PAUSED))
    state.mark_powered_off("n1")
    with pytest.raises(NotFound, match="'a'"):
        state.find_vm("a")
