"""A node's window of host samples in columns (state/host_window.py): it reads as the bounded
deque of (sent_at, HostUsage) it replaces, whatever was added (pressure or none, values the
columns cannot hold), its column readers agree with a reading of each sample, and the reports
that fill a cluster's windows leave no object behind for the garbage collector."""

from __future__ import annotations

import gc
import itertools
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents import model as m
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.host_window import HostWindow
from vmgrid.agents.cluster.state.quiet import cpu_pressure
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.cluster.state.trend import host_values

INT64 = st.integers(-(2**63), 2**63 - 1)
COUNTER = st.one_of(INT64, INT64, INT64, st.none(), st.floats(allow_nan=False), st.just(2**70))
STALL = st.builds(
    m.PressureStall,
    st.floats(0, 100),
    st.floats(0, 100),
    st.one_of(st.integers(0, 2**53), st.just(2**53 + 1)),
    st.integers(0, 2**40),
)
PRESSURE = st.one_of(
    st.just(m.NO_PRESSURE),
    st.builds(m.Pressure, st.none() | STALL, st.none() | STALL, st.none() | STALL),
)
SAMPLE = st.tuples(
    st.integers(0, 2**62),
    st.builds(m.HostUsage, COUNTER, COUNTER, INT64, INT64, INT64, PRESSURE),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 8), st.lists(SAMPLE, max_size=30))
def test_a_window_reads_as_the_bounded_deque_of_its_samples(
    window: int, samples: list[tuple[int, m.HostUsage]]
) -> None:
    kept: deque[tuple[int, m.HostUsage]] = deque(maxlen=window)
    host = HostWindow(window)
    copies = []
    for sent_at, usage in samples:
        host.add(sent_at, usage)
        kept.append((sent_at, usage))
        copies.append((host.copy(), list(kept)))
        assert len(host) == len(kept)
        assert list(host) == list(kept) and host == kept
        assert [host[i] for i in range(-len(kept), len(kept))] == [*kept, *kept]
        assert host[1:-1] == list(kept)[1:-1]
        assert host.times() == [t for t, _ in kept]
        assert host.last_time() == kept[-1][0]
        assert host.series(0, len(kept)) == [host_values(u) for _, u in kept]
        if all(isinstance(u.cpu_used_millicores, int) for _, u in kept):
            assert host.cpu() == [u.cpu_used_millicores for _, u in kept]
        assert host.cpu_pressure() == [cpu_pressure(u) for _, u in kept]
    for copy, then in copies:  # a copy is not changed by later samples
        assert list(copy) == then


def test_reading_outside_the_window_names_the_index() -> None:
    host = HostWindow(3)
    host.add(1, m.HostUsage(1, 2, 3))
    for bad in (1, -2):
        try:
            host[bad]
        except IndexError as e:
            assert f"host sample {bad} of a window of 1" in str(e)
        else:
            raise AssertionError(f"index {bad} read")
    try:
        HostWindow(0)
    except ValueError as e:
        assert "not 0" in str(e)
    else:
        raise AssertionError("a window of 0 was made")


def test_reports_that_fill_the_windows_leave_no_object_to_collect() -> None:
    """Every report of a full cluster used to leave its host sample behind as two objects
    (three or more with pressure) until its window was full; the young generation's
    collections, every 10 s at 5,000 nodes, then held the event loop for about 0.1 s."""
    window, nodes = 60, 40
    state = ClusterState(EventBus("c1"), history_window=window)
    sequence = itertools.count(1)
    psi = m.Pressure(m.PressureStall(3.5, 1.0, 10**9, 10**8), None, m.PressureStall(0.5))
    names = [f"n{i}" for i in range(nodes)]
    vms = {
        name: tuple(
            m.VmUsage(f"{name}-{j}", f"{name}-{j}", m.VmState.RUNNING, 1, 100, 2**20, 2**21)
            for j in range(3)
        )
        for name in names
    }
    for name in names:
        hello = m.NodeHello(
            m.NodeIdentity(name, name, "test:///"), m.NodeCapacity(8000, 2**34, 10**10)
        )
        state.node_connected(hello, 1)

    def send(seconds: range) -> None:
        for t in seconds:
            for i, name in enumerate(names):
                host = m.HostUsage(1000 + t, 2**30, 2**34, 0, 0, psi if i % 2 else m.NO_PRESSURE)
                report = m.NodeReport(t * 10**9, next(sequence), host, vms[name])
                assert state.apply_report(name, report)

    send(range(1_200, 1_202))  # every node's and VM's structures exist from here on
    gc.collect()
    before = len(gc.get_objects())
    send(range(1_202, 1_200 + window))  # the windows fill, in one bucket of the trends
    gc.collect()
    assert len(gc.get_objects()) - before < nodes  # was 2 per report (3 with pressure)
    assert len(state.snapshot().node_history["n1"]) == window
