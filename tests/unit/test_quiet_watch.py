"""QuietWatch (state/quiet.py): the manager's cheap "can any node trigger?" against the
trigger itself (`trigger_from` on the same state), and the loop that ends a quiet cycle without
a snapshot or a decision process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.executor import PlanExecutor
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.decide.control import ControlConfig
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.thinking import CycleRequest, nothing_to_trigger
from vmgrid.agents.cluster.decide.triggers import trigger_from
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.quiet import QuietBand
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.common.node_codec import ReportDecoder, ReportEncoder
from vmgrid.agents.psi import Pressure, PressureStall

CPU = 10_000
MEMORY = 2**34
STATES = [m.VmState.RUNNING, m.VmState.PAUSED, m.VmState.SHUT_OFF, m.VmState.MIGRATING]


def hello(node_id: str, cpu: int = CPU) -> m.NodeHello:
    return m.NodeHello(
        m.NodeIdentity(node_id, node_id, f"test://{node_id}"), m.NodeCapacity(cpu, MEMORY, 10**10)
    )


def report(
    seq: int, at: int, cpu: int, avg10: float | None, vms: list[tuple[int, int]], on: str = ""
) -> m.NodeReport:
    """A report at `at` (ns); `vms`: (index in STATES, GiB allocated) each, named after `on`."""
    pressure = Pressure(cpu=None if avg10 is None else PressureStall(avg10))
    host = m.HostUsage(cpu, 2**30, MEMORY, pressure=pressure)
    usage = tuple(
        m.VmUsage(f"{on}vm{k}", f"{on}vm{k}", STATES[state], 1, 10, 2**20, gib * 2**30)
        for k, (state, gib) in enumerate(vms)
    )
    return m.NodeReport(at, seq, host, usage)


def one_node(cpu: int, gib: int, seconds: int = 11) -> ClusterState:
    """A state with node "a" reporting `cpu` millicores and one running VM of `gib` GiB once
    a second for `seconds` s."""
    state = ClusterState(EventBus("c1"), clock_ns=lambda: 1)
    state.node_connected(hello("a"), 1)
    for s in range(1, seconds + 1):
        state.apply_report("a", report(s, s * 10**9, cpu, None, [(0, gib)], "a-"))
    return state


def config_of(
    band: tuple[float, float, float, float], hold_s: float, pressure: float
) -> ControlConfig:
    cpu_low, cpu_high, memory_low, memory_high = band
    policy = OperatorPolicy(
        cpu_low=cpu_low, cpu_high=cpu_high, memory_low=memory_low, memory_high=memory_high
    )
    return ControlConfig(operator_policy=policy, hold_s=hold_s, pressure_trigger=pressure)


def quiet_band(config: ControlConfig) -> QuietBand:
    band = config.operator_policy
    return QuietBand(band.cpu_low, band.cpu_high, band.memory_high, config.pressure_trigger)


bands = st.tuples(
    st.sampled_from([0.1, 0.3, 0.4]),
    st.sampled_from([0.5, 0.7, 0.9]),
    st.sampled_from([0.1, 0.3]),
    st.sampled_from([0.5, 0.75]),
)
samples = st.tuples(
    st.integers(0, 4),  # node
    st.integers(-3, 6),  # seconds after the node's last sample (a clock may step back)
    st.sampled_from([0, 999, 1000, 3000, 3001, 4000, 5000, 7000, 9000, 9001, CPU]),
    st.sampled_from([None, 0.0, 5.0, 50.0]),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 12)), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    runs=st.lists(st.lists(samples, max_size=30), min_size=1, max_size=3),
    configs=st.lists(
        st.tuples(bands, st.sampled_from([0.0, 2.0, 5.0, 20.0]), st.sampled_from([0.0, 10.0])),
        min_size=1,
        max_size=3,
    ),
    draining=st.sets(st.integers(0, 4), max_size=2),
    window=st.sampled_from([3, 10, 60]),
    cpus=st.lists(st.sampled_from([CPU, 3000]), min_size=5, max_size=5),
)
def test_a_quiet_answer_is_never_wrong(
    runs: list[list[tuple[int, int, int, float | None, list[tuple[int, int]]]]],
    configs: list[tuple[tuple[float, float, float, float], float, float]],
    draining: set[int],
    window: int,
    cpus: list[int],
) -> None:
    """Whatever the samples (clocks stepping back included), the band, its changes between
    checks, a hello with another capacity and the kept window: when `may_trigger` says no node
    can trigger, the trigger on the same state finds nothing."""
    state = ClusterState(EventBus("c1"), history_window=window, clock_ns=lambda: 1)
    last = dict.fromkeys(range(5), 10**12)
    for n in range(5):
        state.node_connected(hello(f"n{n}"), n)
    for n in draining:
        state.set_draining(f"n{n}", True)
    seq = 0
    for k, run in enumerate(runs):
        for node, step, cpu, avg10, vms in run:
            seq += 1
            last[node] += step * 10**9
            state.apply_report(f"n{node}", report(seq, last[node], cpu, avg10, vms, f"n{node}-"))
        if k == 1:  # a new hello: same history, another capacity
            state.node_connected(hello("n0", cpus[0]), 10)
        for band, hold_s, pressure in configs:
            config = config_of(band, hold_s, pressure)
            may = state.may_trigger(quiet_band(config), hold_s)
            found = trigger_from(state.gauges(), state.node_histories(), config)
            assert may or found is None, (found, band, hold_s, pressure)


def test_a_cluster_in_its_band_is_quiet_and_one_held_below_it_is_not() -> None:
    config = config_of((0.3, 0.7, 0.3, 0.75), 5.0, 0.0)
    state = ClusterState(EventBus("c1"), clock_ns=lambda: 1)
    state.node_connected(hello("a"), 1)
    state.node_connected(hello("b"), 2)
    for s in range(1, 12):
        state.apply_report("a", report(s, s * 10**9, 5000, None, [(0, 8)], "a-"))
        cpu = 5000 if s < 6 else 1000
        state.apply_report("b", report(s, s * 10**9, cpu, None, [(0, 1)], "b-"))
        if s == 9:  # b has been under the floor for 3 s only
            assert not state.may_trigger(quiet_band(config), 5.0)
            assert trigger_from(state.gauges(), state.node_histories(), config) is None
    assert state.may_trigger(quiet_band(config), 5.0)  # b: 6 s under the floor
    found = trigger_from(state.gauges(), state.node_histories(), config)
    assert found is not None and found.nodes == ("b",)
    # a tighter band counts the same samples again: every node is now under its floor
    wide = config_of((0.6, 0.8, 0.6, 0.9), 5.0, 0.0)
    assert state.may_trigger(quiet_band(wide), 5.0)
    found = trigger_from(state.gauges(), state.node_histories(), wide)
    assert found is not None and found.nodes == ("a", "b")


def test_a_clock_stepping_back_inside_a_run_still_counts_from_its_earliest_sample() -> None:
    """Samples at 10, 4 (the node's clock stepped back), 5, ..., 9 s, all above the top: the
    trigger's anchor for a 5 s hold is the sample at 4 s, so the node is held hot although
    the run's first sample is younger than the hold."""
    config = config_of((0.3, 0.7, 0.3, 0.75), 5.0, 0.0)
    state = ClusterState(EventBus("c1"), clock_ns=lambda: 1)
    state.node_connected(hello("a"), 1)
    state.may_trigger(quiet_band(config), 5.0)
    for seq, at in enumerate([10, 4, 5, 6, 7, 8, 9], start=1):
        state.apply_report("a", report(seq, at * 10**9, 9000, None, [(0, 8)], "a-"))
    found = trigger_from(state.gauges(), state.node_histories(), config)
    assert found is not None and found.nodes == ("a",)
    assert state.may_trigger(quiet_band(config), 5.0)


def test_a_new_capacity_counts_the_kept_samples_again() -> None:
    """3,000 millicores used of 10,000 is in the band; the same samples of a node that says
    hello again with 3,000 are above it."""
    config = config_of((0.2, 0.7, 0.2, 0.75), 5.0, 0.0)
    state = one_node(3000, 8)
    assert not state.may_trigger(quiet_band(config), 5.0)
    state.node_connected(hello("a", cpu=3000), 2)
    found = trigger_from(state.gauges(), state.node_histories(), config)
    assert found is not None and found.nodes == ("a",)
    assert state.may_trigger(quiet_band(config), 5.0)


def test_memory_above_the_band_or_a_drain_is_never_quiet() -> None:
    config = config_of((0.3, 0.7, 0.3, 0.75), 5.0, 0.0)
    state = one_node(5000, 14)  # 14 of 16 GiB
    assert state.may_trigger(quiet_band(config), 5.0)
    state.apply_report("a", report(20, 20 * 10**9, 5000, None, [(0, 8)], "a-"))
    assert not state.may_trigger(quiet_band(config), 5.0)
    state.set_draining("a", True)
    assert state.may_trigger(quiet_band(config), 5.0)


def test_memory_a_vm_stops_holding_is_released_for_the_watch_and_the_gauge() -> None:
    """14 of 16 GiB held is above the top; once that VM reports shut off, neither the watch
    nor the trigger's gauge counts its memory (the mask of who holds memory follows the
    states). Through the codec, as agents report: no VmUsage object is built."""
    config = config_of((0.3, 0.7, 0.3, 0.75), 5.0, 0.0)
    state = ClusterState(EventBus("c1"), clock_ns=lambda: 1)
    state.node_connected(hello("a"), 1)
    encoder, decoder = ReportEncoder(), ReportDecoder()
    for s in range(1, 13):
        vm_state = 0 if s < 12 else 2  # running, then shut off
        r = report(s, s * 10**9, 5000, None, [(vm_state, 14)], "a-")
        state.apply_report("a", decoder.decode(encoder.encode(r)))
        if s == 11:
            assert state.may_trigger(quiet_band(config), 5.0)
    assert state.gauges()[0].memory_fraction == 0
    assert not state.may_trigger(quiet_band(config), 5.0)


def test_nothing_to_trigger_ends_a_quiet_cycle_but_never_an_undrain() -> None:
    config = config_of((0.3, 0.7, 0.3, 0.75), 5.0, 0.0)
    state = one_node(5000, 8)
    assert nothing_to_trigger(state, CycleRequest(), config)
    assert not nothing_to_trigger(state, CycleRequest(returning="a"), config)


def test_the_loop_counts_quiet_cycles_and_still_decides_on_a_trigger(tmp_path: Path) -> None:
    """A cycle with no node able to trigger ends in the manager (counted, nothing decided);
    once a node has been under the band for the hold time, the next cycle decides as before."""
    config = config_of((0.3, 0.7, 0.3, 0.75), 5.0, 0.0)
    manager = ClusterManager(ClusterConfig(cluster_id="c1"))
    journal = Journal(tmp_path / "journal.sqlite")
    loop = ControlLoop(manager, PlanExecutor(None, journal), config)  # type: ignore[arg-type]
    state = manager.state
    for node in ("a", "b"):
        state.node_connected(hello(node), 1)
    for s in range(1, 12):
        for node in ("a", "b"):
            state.apply_report(node, report(s, s * 10**9, 5000, None, [(0, 8)], f"{node}-"))
    assert asyncio.run(loop.cycle()) is None
    assert loop.quiet_cycles == 1 and not loop.decisions
    for s in range(12, 20):
        state.apply_report("a", report(s, s * 10**9, 5000, None, [(0, 8)], "a-"))
        state.apply_report("b", report(s, s * 10**9, 1000, None, [(0, 1)], "b-"))
    decision = asyncio.run(loop.cycle())
    assert loop.quiet_cycles == 1
    assert decision is not None and decision.trigger.nodes == ("b",)
    journal.close()
