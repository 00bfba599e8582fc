"""The hour of usage behind the dashboard's charts: bucket means equal the means of what the
agents reported, a VM keeps its history across a move, the last window stays at report
resolution, and memory stays bounded as VMs come and go."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents import model as m
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.cluster.state.trend import BucketStore, UsageTrends
from vmgrid.agents.errors import NotFound

S = 1_000_000_000


def hello(node_id: str) -> m.NodeHello:
    return m.NodeHello(
        m.NodeIdentity(node_id, node_id, f"test:///{node_id}"),
        m.NodeCapacity(8000, 16 * 2**30, 10**10),
    )


def vm(uuid: str, cpu: int, rx: int = 0) -> m.VmUsage:
    return m.VmUsage(uuid, uuid, m.VmState.RUNNING, 1, cpu, 2**20, 2**21, rx, 2 * rx)


def host(cpu: int) -> m.HostUsage:
    return m.HostUsage(cpu, 2**30 + cpu, 2**34, cpu * 10, cpu * 20)


def cluster(window: int = 4, bucket_s: int = 10, span_s: int = 60) -> ClusterState:
    state = ClusterState(
        EventBus("c1"), history_window=window, trends=UsageTrends(bucket_s, span_s)
    )
    for node in ("n1", "n2"):
        state.node_connected(hello(node), 1)
    return state


SEQUENCE = itertools.count(1)


def send(state: ClusterState, node: str, t_s: float, cpu: int, *vms: m.VmUsage) -> None:
    report = m.NodeReport(int(t_s * S), next(SEQUENCE), host(cpu), vms)
    assert state.apply_report(node, report)


def test_buckets_hold_the_mean_of_each_series_and_the_window_the_samples() -> None:
    state = cluster(window=4, bucket_s=10)
    for t in range(30):  # three 10 s buckets, one report a second
        send(state, "n1", 1000 + t, 100 * t, vm("a", 10 * t, rx=t))
    history = state.node_usage_history("n1", 0)
    # buckets [1000, 1010) and [1010, 1020) end before the window's first sample (1026 s)
    assert history.buckets == 2
    assert history.times_unix_ms[:2] == (1_005_000, 1_015_000)
    assert history.series["cpu_used_millicores"][:2] == (450.0, 1450.0)
    assert history.series["net_tx_bytes_per_second"][:2] == (9000.0, 29000.0)
    assert history.times_unix_ms[2:] == (1_026_000, 1_027_000, 1_028_000, 1_029_000)
    assert history.series["cpu_used_millicores"][2:] == (2600.0, 2700.0, 2800.0, 2900.0)
    vm_history = state.vm_usage_history("a", 0)
    assert vm_history.series["cpu_used_millicores"] == (45.0, 145.0, 260.0, 270.0, 280.0, 290.0)
    assert vm_history.series["net_tx_bytes_per_second"][:2] == (9.0, 29.0)


def test_a_window_shorter_than_a_bucket_is_folded_before_it_wraps() -> None:
    state = cluster(window=3, bucket_s=10)
    for t in range(20):
        send(state, "n1", 2000 + t, 0, vm("a", t))
    # 10 samples in the first bucket went through a 3-row window: the mean is still exact
    assert state.vm_usage_history("a", 0).series["cpu_used_millicores"][0] == 4.5


def test_a_vm_that_moves_keeps_one_history_and_both_halves_of_a_bucket() -> None:
    state = cluster(window=2, bucket_s=10)
    for t in range(5):
        send(state, "n1", 3000 + t, 0, vm("a", 100))
        send(state, "n2", 3000 + t, 0)
    for t in range(5, 20):
        send(state, "n1", 3000 + t, 0)
        send(state, "n2", 3000 + t, 0, vm("a", 300))
    history = state.vm_usage_history("a", 0)
    assert history.buckets == 1
    assert history.series["cpu_used_millicores"] == (200.0, 300.0, 300.0)


def test_a_vm_that_left_the_cluster_keeps_its_history_for_the_span_then_is_forgotten() -> None:
    state = cluster(window=2, bucket_s=10, span_s=30)
    for t in range(15):
        send(state, "n1", 4000 + t, 0, vm("gone", 50))
    for t in range(15, 25):
        send(state, "n1", 4000 + t, 0)
    assert state.vm_usage_history("gone", 0).series["cpu_used_millicores"] == (50.0, 50.0)
    for t in range(25, 70):
        send(state, "n1", 4000 + t, 0)
    with pytest.raises(NotFound, match="'gone'"):
        state.vm_usage_history("gone", 0)
    with pytest.raises(NotFound, match="'nobody'"):
        state.vm_usage_history("nobody", 0)
    with pytest.raises(NotFound, match="'n9'"):
        state.node_usage_history("n9", 0)


def test_since_drops_older_points() -> None:
    state = cluster(window=2, bucket_s=10)
    for t in range(40):
        send(state, "n1", 5000 + t, t)
    history = state.node_usage_history("n1", 5020 * S)
    assert history.times_unix_ms[0] >= 5_020_000
    assert history.series["cpu_used_millicores"][0] == 24.5


def test_memory_is_bounded_as_vms_come_and_go() -> None:
    state = cluster(window=2, bucket_s=10, span_s=30)
    for t in range(400):
        send(state, "n1", 6000 + t, 0, vm(f"vm{t // 10}", 10), vm("stays", 20))
    # 40 VMs passed through; only the span's ones keep a row, and the matrix stopped growing
    assert len(state.trends.vms) <= 6
    assert state.trends.vms.nbytes <= 8 * 4 * 5 * 4
    assert state.vm_usage_history("stays", 0).buckets == state.trends.vms.columns == 4


def test_power_off_keeps_what_the_node_reported() -> None:
    state = cluster(window=8, bucket_s=10)
    for t in range(5):
        send(state, "n1", 7000 + t, 40, vm("a", 7))
    state.mark_powered_off("n1")
    assert state.vm_usage_history("a", 0).series["cpu_used_millicores"] == (7.0,)
    assert state.node_usage_history("n1", 0).series["cpu_used_millicores"][0] == 40.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1000)), min_size=1, max_size=60),
    st.integers(1, 6),
)
def test_bucket_means_equal_the_plain_means_whatever_the_window(
    steps: list[tuple[int, int]], window: int
) -> None:
    """Random gaps between reports and VMs that come and go: every bucket's mean is the
    plain mean of the values reported in it."""
    state = cluster(window=window, bucket_s=5, span_s=600)
    t, reported = 10_000, {}
    for gap, cpu in steps:
        t += gap
        present = cpu % 3 != 0
        send(state, "n1", t, 0, *([vm("a", cpu)] if present else []))
        if present:
            reported.setdefault(t // 5, []).append(cpu)
    send(state, "n1", t + 100, 0)  # closes the last bucket
    history = state.vm_usage_history("a", 0) if reported else None
    if history is None:
        return
    expected = [float(np.mean(reported[b])) for b in sorted(reported)]
    assert history.series["cpu_used_millicores"] == pytest.approx(
        tuple(expected), rel=1e-5, abs=1e-3
    )


def test_a_bucket_store_refuses_a_bucket_longer_than_its_span() -> None:
    with pytest.raises(ValueError, match="bucket_s 120"):
        BucketStore(("x",), 120, 60)


def test_a_value_unavailable_in_a_bucket_is_null_there_and_nowhere_else() -> None:
    state = cluster(window=4, bucket_s=10)
    for t in range(30):
        usage = host(100)
        if t == 3:  # e.g. a pressure figure the host could not read for one report
            usage = m.HostUsage(100, None, 2**34, 1, 2)  # type: ignore[arg-type]
        report = m.NodeReport(int((8000 + t) * S), next(SEQUENCE), usage, ())
        assert state.apply_report("n1", report)
    history = state.node_usage_history("n1", 0)
    assert history.series["memory_used_bytes"][0] is None
    assert history.series["memory_used_bytes"][1] == pytest.approx(2**30 + 100, rel=1e-6)
    assert history.series["cpu_used_millicores"][:2] == (100.0, 100.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(4, 40), st.lists(st.integers(0, 2), min_size=20, max_size=40))
def test_buckets_that_end_together_are_written_spread_over_the_nodes_reports(
    window: int, gaps: list[int]
) -> None:
    """Every node's bucket ends in the same second; each node writes it with a later report
    of its own (spread by node id, never after its rows leave the window), with the plain
    mean of what was reported in it, and the VMs' rows of the new bucket are not mixed in."""
    state = ClusterState(EventBus("c1"), history_window=window, trends=UsageTrends(10, 600))
    nodes = [f"node-{i:03d}" for i in range(12)]
    for node in nodes:
        state.node_connected(hello(node), 1)
    t, reported, written_at_end = 9_000, {}, {}
    for gap in gaps:
        t += gap
        for k, node in enumerate(nodes):
            cpu = (t * 7 + k * 13) % 500
            send(state, node, t, cpu, vm(f"{node}-a", cpu + 1))
            reported.setdefault((node, t // 10), []).append(cpu + 1)
        bucket = t // 10
        if (bucket - 1) * 10 >= 9_000 and bucket not in written_at_end:
            written_at_end[bucket] = sum(
                (bucket - 1) in state.trends.vms.read(f"{n}-a", 0)[0] for n in nodes
            )
    assert all(count < len(nodes) for count in written_at_end.values())  # not all at once
    state.settle_history()
    for node in nodes:
        buckets, means = state.trends.vms.read(f"{node}-a", 0)
        expected = [float(np.mean(reported[node, b])) for b in buckets]
        assert buckets == sorted(b for n, b in reported if n == node)[: len(buckets)]
        assert [m[0] for m in zip(*means, strict=True)] == pytest.approx(expected, rel=1e-5)
        assert len(buckets) == len({b for n, b in reported if n == node}) - 1  # open one


def test_a_node_lost_while_its_bucket_closes_has_that_bucket_written() -> None:
    now = [0.0]
    state = ClusterState(
        EventBus("c1"),
        history_window=30,
        heartbeat_timeout_s=5.0,
        monotonic=lambda: now[0],
        trends=UsageTrends(10, 600),
    )
    node = "node-lost"
    assert state.trends.stagger_ns(node) > 0  # its bucket is not written by the first report
    state.node_connected(hello(node), 1)
    for t in range(10):
        send(state, node, 7000 + t, 100 + t, vm("v", 50 + t))
    send(state, node, 7010, 0, vm("v", 0))  # opens bucket 701: bucket 700 is closing
    assert state.trends.vms.read("v", 0)[0] == []
    now[0] = 60.0
    assert state.check_timeouts() == [node]
    buckets, means = state.trends.vms.read("v", 0)
    assert buckets == [700]
    assert means[0] == [pytest.approx(54.5)]
    assert state.trends.nodes.read(node, 0)[1][0] == [pytest.approx(104.5)]
