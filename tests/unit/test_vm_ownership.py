"""One node per VM uuid: a second node's copy is hidden and reported, never shown twice."""

from __future__ import annotations

import logging

import pytest
from test_cluster_state import FakeClock, drain, make_hello, make_vm, report
from vmgrid.agents import model as m
from vmgrid.agents.cluster.grid.summary import cluster_summary
from vmgrid.agents.cluster.state.events import EventBus, EventKind
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> ClusterState:
    cluster = ClusterState(
        EventBus("c1"), history_window=3, heartbeat_timeout_s=10, monotonic=clock
    )
    cluster.node_connected(make_hello("n1"), 1)
    cluster.node_connected(make_hello("n2"), 2)
    return cluster


def placed(state: ClusterState) -> list[tuple[str, str]]:
    return sorted((node, vm.uuid) for node, vm in state.snapshot().vms())


def test_the_first_reporter_keeps_the_vm_and_the_second_copy_is_hidden_and_reported(
    state: ClusterState, caplog: pytest.LogCaptureFixture
) -> None:
    sub = state.bus.subscribe()
    state.apply_report("n1", report(1, make_vm("a"), make_vm("b")))
    with caplog.at_level(logging.WARNING):
        state.apply_report("n2", report(1, make_vm("a"), make_vm("c")))
        state.apply_report("n2", report(2, make_vm("a"), make_vm("c")))
    assert placed(state) == [("n1", "a"), ("n1", "b"), ("n2", "c")]
    assert [vm.uuid for vm in state.view("n2").vms] == ["c"]
    assert state.find_vm("a")[0] == "n1"
    conflicts = [e for e in iter(sub.get_nowait, None) if e.kind is EventKind.VM_CONFLICT]
    assert len(conflicts) == 1  # once, when the conflict starts
    assert conflicts[0].node_id == "n2" and conflicts[0].vm_uuid == "a"
    assert "already on n1" in conflicts[0].message
    assert sum("reported by n2 is already on n1" in r.getMessage() for r in caplog.records) == 1
    summary = cluster_summary(state.snapshot())
    assert sorted(vm.vm_uuid for vm in summary.movable_vms) == ["a", "b", "c"]
    assert state.owners.hidden("n2") == {"a"}


def test_the_vm_passes_to_the_other_node_when_its_owner_stops_reporting_it(
    state: ClusterState,
) -> None:
    state.apply_report("n1", report(1, make_vm("a")))
    state.apply_report("n2", report(1, make_vm("a")))
    state.apply_report("n1", report(2))
    assert placed(state) == [("n2", "a")]  # at once: n2's hidden copy takes over
    state.apply_report("n2", report(2, make_vm("a")))
    assert placed(state) == [("n2", "a")]
    assert state.owners.hidden("n2") == frozenset()


def test_a_running_copy_takes_the_vm_from_a_shut_off_one_as_a_migration_ends(
    state: ClusterState,
) -> None:
    sub = state.bus.subscribe()
    state.apply_report("n1", report(1, make_vm("a")))
    state.apply_report("n2", report(1, make_vm("a", m.VmState.PAUSED)))  # incoming migration
    assert placed(state) == [("n1", "a")]
    state.apply_report("n2", report(2, make_vm("a", m.VmState.PAUSED)))
    state.apply_report("n1", report(2, make_vm("a", m.VmState.MIGRATING)))
    assert placed(state) == [("n1", "a")]  # in flight: the source's copy counts
    state.apply_report("n1", report(3, make_vm("a", m.VmState.SHUT_OFF)))
    state.apply_report("n2", report(3, make_vm("a", m.VmState.RUNNING)))
    assert placed(state) == [("n2", "a")]
    kinds = drain(sub)
    assert EventKind.VM_DISAPPEARED in kinds
    state.apply_report("n1", report(4, make_vm("a", m.VmState.SHUT_OFF)))
    assert placed(state) == [("n2", "a")]  # the left-over copy stays hidden


def test_a_lost_owner_gives_the_vm_up_to_the_node_that_reports_it(
    state: ClusterState, clock: FakeClock
) -> None:
    state.apply_report("n1", report(1, make_vm("a")))
    clock.now += 60
    state.touch("n2")
    assert state.check_timeouts() == ["n1"]
    assert state.node_status("n1") is NodeStatus.LOST
    state.apply_report("n2", report(1, make_vm("a")))
    assert placed(state) == [("n2", "a")]
    assert state.view("n1").vms == ()


def test_an_incoming_paused_copy_reported_first_does_not_hide_the_running_source(
    state: ClusterState,
) -> None:
    state.apply_report("n2", report(1, make_vm("a", m.VmState.PAUSED)))
    state.apply_report("n1", report(1, make_vm("a", m.VmState.MIGRATING)))
    assert placed(state) == [("n1", "a")]


def test_a_migration_leaves_no_conflict_event(state: ClusterState) -> None:
    sub = state.bus.subscribe()
    state.apply_report("n1", report(1, make_vm("a", m.VmState.MIGRATING)))
    state.apply_report("n2", report(1, make_vm("a", m.VmState.PAUSED)))
    state.apply_report("n2", report(2, make_vm("a", m.VmState.RUNNING)))
    state.apply_report("n1", report(2, make_vm("a", m.VmState.SHUT_OFF)))
    assert placed(state) == [("n2", "a")]
    assert EventKind.VM_CONFLICT not in drain(sub)


def test_forgetting_the_owner_hands_its_vms_to_the_hidden_copies(state: ClusterState) -> None:
    state.apply_report("n1", report(1, make_vm("a"), make_vm("b")))
    state.apply_report("n2", report(1, make_vm("a")))
    state.owners.forget_node("n1", {})  # as the cluster forgets n1 (no record left for it)
    assert state.owners.owner("a") is None and state.owners.owner("b") is None
    state.apply_report("n2", report(2, make_vm("a")))
    assert state.owners.owner("a") == "n2"
