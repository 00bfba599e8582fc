"""Pressure in the hour of history: each resource's some avg10 per node and per VM, as bucket
means and then the recent samples; unavailable (no PSI, the libvirt test driver) is None,
never 0, and a cluster whose agents report no VM pressure keeps no VM pressure at all."""

from __future__ import annotations

import itertools

from vmgrid.agents import model as m
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.cluster.state.trend import UsageTrends
from vmgrid.agents.cluster.state.trend_pressure import PRESSURE_SERIES

S = 1_000_000_000
CPU, MEM, IO = PRESSURE_SERIES
SEQUENCE = itertools.count(1)


def cluster(window: int = 4) -> ClusterState:
    state = ClusterState(EventBus("c1"), history_window=window, trends=UsageTrends(10, 60))
    for node in ("n1", "n2"):
        hello = m.NodeHello(
            m.NodeIdentity(node, node, f"test:///{node}"), m.NodeCapacity(8000, 2**34, 10**10)
        )
        state.node_connected(hello, 1)
    return state


def vm(uuid: str, cpu: int = 100) -> m.VmUsage:
    return m.VmUsage(uuid, uuid, m.VmState.RUNNING, 1, cpu, 2**20, 2**21)


def psi(cpu: float | None, memory: float | None = 0.5, io: float | None = None) -> m.Pressure:
    def stall(value: float | None) -> m.PressureStall | None:
        return None if value is None else m.PressureStall(value)

    return m.Pressure(stall(cpu), stall(memory), stall(io))


def send(
    state: ClusterState,
    node: str,
    t_s: float,
    vms: tuple[m.VmUsage, ...] = (),
    host_pressure: m.Pressure = m.NO_PRESSURE,
    vm_pressure: dict[str, m.Pressure] | None = None,
) -> None:
    host = m.HostUsage(1000, 2**30, 2**34, 0, 0, host_pressure)
    pressures = tuple(m.VmPressure(u, p) for u, p in (vm_pressure or {}).items())
    report = m.NodeReport(int(t_s * S), next(SEQUENCE), host, vms, pressures)
    assert state.apply_report(node, report)


def test_without_pressure_every_pressure_point_is_unavailable_and_no_vm_row_is_kept() -> None:
    state = cluster()
    for t in range(25):
        send(state, "n1", 1000 + t, (vm("a"), vm("b")))
    for history in (state.node_usage_history("n1", 0), state.vm_usage_history("a", 0)):
        assert history.buckets == 2
        for name in PRESSURE_SERIES:
            assert history.series[name] == (None,) * len(history.times_unix_ms), name
        assert history.series["cpu_used_millicores"][0] is not None
    assert len(state.trends.vm_pressure) == 0  # nothing per VM was folded or kept


def test_node_pressure_buckets_are_means_and_a_resource_without_psi_stays_null() -> None:
    state = cluster(window=4)
    for t in range(30):
        send(state, "n1", 2000 + t, host_pressure=psi(float(t), memory=2.0))
    history = state.node_usage_history("n1", 0)
    assert history.buckets == 2
    assert history.series[CPU] == (4.5, 14.5, 26.0, 27.0, 28.0, 29.0)
    assert history.series[MEM] == (2.0,) * 6
    assert history.series[IO] == (None,) * 6  # io unavailable: null, not 0


def test_a_node_bucket_mixing_unavailable_samples_is_unavailable_alone() -> None:
    state = cluster(window=2)
    for t in range(30):  # the agent reads no PSI during the second bucket's first second
        pressure = m.NO_PRESSURE if t == 10 else psi(1.0)
        send(state, "n1", 3000 + t, host_pressure=pressure)
    assert state.node_usage_history("n1", 0).series[CPU] == (1.0, None, 1.0, 1.0)


def test_vm_pressure_follows_the_vms_that_report_it_and_not_the_others() -> None:
    state = cluster(window=4)
    for t in range(30):
        pressures = {"a": psi(float(t), memory=None)} if t < 28 else {}
        send(state, "n1", 4000 + t, (vm("a"), vm("b")), vm_pressure=pressures)
    a = state.vm_usage_history("a", 0)
    assert a.buckets == 2 and len(a.series[CPU]) == len(a.times_unix_ms) == 6
    assert a.series[CPU] == (4.5, 14.5, 26.0, 27.0, None, None)  # stopped reporting at 28 s
    assert a.series[MEM] == (None,) * 6
    assert a.series["cpu_used_millicores"] == (100.0,) * 6
    b = state.vm_usage_history("b", 0)
    assert b.series[CPU] == (None,) * len(b.times_unix_ms)
    assert state.trends.vm_pressure.known("a") and not state.trends.vm_pressure.known("b")


def test_vm_pressure_of_a_node_powered_off_is_kept_in_its_bucket() -> None:
    state = cluster(window=8)
    for t in range(5):
        send(state, "n1", 5000 + t, (vm("a"),), vm_pressure={"a": psi(3.0)})
    state.mark_powered_off("n1")
    send(state, "n2", 5011, (vm("a"),))  # the VM runs on elsewhere, without pressure
    history = state.vm_usage_history("a", 0)
    assert history.buckets == 1
    assert history.series[CPU] == (3.0, None)
