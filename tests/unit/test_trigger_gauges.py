"""The decision loop's trigger read from the manager's node records (gauges) is the trigger
read from a snapshot, and reading it builds no VM object; a forked cycle with nothing to do
ends without the snapshot, and one with a trigger decides as `think` does on a snapshot.

Reports go through the real codec (columns and the integer block), as from agents."""

from __future__ import annotations

import pickle
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents.cluster.decide.control import ControlConfig, find_trigger, trigger_from
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.decide.thinking import CycleRequest, Thought, think, think_on_state
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.gauges import gauge_of_view
from vmgrid.agents.cluster.state.nodes import RecordVms
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.common.node_codec import ReportDecoder, ReportEncoder
from vmgrid.agents.model import (
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)

GIB = 2**30
SECOND = 1_000_000_000
STATES = [VmState.RUNNING, VmState.PAUSED, VmState.SHUTTING_DOWN, VmState.SHUT_OFF]

CONFIG = ControlConfig(
    hold_s=20,
    operator_policy=OperatorPolicy(
        cpu_high=0.85,
        memory_high=0.85,
        cpu_low=0.4,
        memory_low=0.4,
        migrations_per_cycle=0,
        migrations_per_hour=0,
        migrations_per_node_hour=0,
        min_move_interval_s=0,
        return_after_s=0,
    ),
)

# a node: its VMs as (state index, memory GiB, CPU millicores), its host CPU, draining
NODE = st.tuples(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(0, 1500)), max_size=4),
    st.integers(0, 4000),
    st.booleans(),
)


def cluster(nodes: list[tuple[list[tuple[int, int, int]], int, bool]]) -> ClusterState:
    """Nodes of 4 cores and 8 GiB reporting every 5 s for 30 s through the codec."""
    now = [1_000 * SECOND]
    state = ClusterState(EventBus("c1"), clock_ns=lambda: now[0])
    streams = {}
    for i, (_, _, draining) in enumerate(nodes):
        node_id = f"n{i}"
        identity = NodeIdentity(node_id, node_id, f"test:///{node_id}", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(4000, 8 * GIB, 10**9)), 1)
        state.set_draining(node_id, draining)
        streams[node_id] = (ReportEncoder(), ReportDecoder())
    for sequence in range(1, 8):
        for i, (vms, host_cpu, _) in enumerate(nodes):
            node_id = f"n{i}"
            usage = tuple(
                VmUsage(f"{node_id}-v{k}", f"v{k}", STATES[s], 1, cpu, GIB, gib * GIB)
                for k, (s, gib, cpu) in enumerate(vms)
            )
            report = NodeReport(now[0], sequence, HostUsage(host_cpu, GIB, 8 * GIB), usage)
            encoder, decoder = streams[node_id]
            assert state.apply_report(node_id, decoder.decode(encoder.encode(report)))
        now[0] += 5 * SECOND
    return state


def built(state: ClusterState) -> list[str]:
    return [n for n, node in state._nodes.items() if node.built_vms]  # noqa: SLF001


@settings(max_examples=60, deadline=None)
@given(st.lists(NODE, min_size=1, max_size=6))
def test_the_trigger_from_gauges_is_the_trigger_from_a_snapshot(nodes) -> None:
    state = cluster(nodes)
    gauges, histories = state.gauges(), state.node_histories()
    from_records = [trigger_from(gauges, histories, CONFIG, drains) for drains in (True, False)]
    assert built(state) == []  # no VmUsage was built to find them
    snapshot = state.snapshot()
    assert from_records == [find_trigger(snapshot, CONFIG, drains) for drains in (True, False)]
    assert gauges == [gauge_of_view(v) for v in snapshot.nodes]
    assert state.gauges() == gauges  # from the VmUsage objects, now built


def test_a_quiet_cycle_ends_without_the_snapshot() -> None:
    state = cluster([([(0, 2, 2000)], 2000, False), ([(0, 2, 2200)], 2200, False)])
    assert find_trigger(state.snapshot(), CONFIG) is None
    state = cluster([([(0, 2, 2000)], 2000, False), ([(0, 2, 2200)], 2200, False)])
    thought = think_on_state(state, CycleRequest(), PolicyDecider(), CONFIG)
    assert thought == Thought()
    assert built(state) == []


def test_a_cycle_with_a_trigger_decides_as_think_does_on_a_snapshot() -> None:
    nodes = [([(0, 1, 1900), (0, 1, 1900)], 3800, False), ([(0, 1, 2000)], 2000, False)]
    config = replace(CONFIG, hold_s=20)
    expected = think(cluster(nodes).snapshot(), CycleRequest(), PolicyDecider(), config)
    assert expected.decision is not None  # n0 held above the band
    thought = think_on_state(cluster(nodes), CycleRequest(), PolicyDecider(), config)
    assert thought.decision is not None
    assert thought.decision.trigger == expected.decision.trigger
    assert thought.decision.summary == expected.decision.summary
    assert thought.decision.plan == expected.decision.plan


def test_a_busy_cycle_that_moves_nothing_builds_no_vm_object() -> None:
    # every node light (below 0.4 of CPU and memory), each with more VMs than a cycle's budget
    nodes = [([(0, 1, 300), (0, 1, 300), (0, 1, 300)], 900, False) for _ in range(3)]
    policy = replace(CONFIG.operator_policy, migrations_per_cycle=2)
    config = replace(CONFIG, hold_s=20, operator_policy=policy)
    expected = think(cluster(nodes).snapshot(), CycleRequest(), PolicyDecider(), config)
    state = cluster(nodes)
    thought = think_on_state(state, CycleRequest(), PolicyDecider(), config)
    assert thought.decision is not None and thought.decision.plan is None
    assert "3 light node(s) each hold more VMs than the 2 migration(s)" in thought.decision.summary
    assert thought.decision.summary == expected.decision.summary  # type: ignore[union-attr]
    assert built(state) == []  # the policy's view read the rows' columns


def test_vms_built_when_read_read_as_the_tuple_of_the_vms() -> None:
    state = cluster([([(0, 1, 300), (1, 2, 0)], 300, False)])
    lazy = state.snapshot(copy_history=False, built_vms=False).nodes[0].vms
    assert built(state) == []
    vms = state.snapshot().nodes[0].vms
    assert isinstance(vms, tuple) and lazy == vms and vms == lazy and hash(lazy) == hash(vms)
    assert list(lazy) == list(vms) and lazy[1] == vms[1] and len(lazy) == 2
    assert pickle.loads(pickle.dumps(lazy)) == vms
    assert isinstance(pickle.loads(pickle.dumps(lazy)), tuple)


def test_vms_built_when_read_are_those_of_the_snapshot_not_of_a_later_report() -> None:
    state = cluster([([(0, 1, 300), (0, 2, 500)], 800, False)])
    before = state.snapshot().nodes[0].vms
    for node in state._nodes.values():  # noqa: SLF001 (unbuilt again, as after a report)
        node.set_rows(node.uuids, node.states, node.rows)
    lazy = state.snapshot(copy_history=False, built_vms=False).nodes[0].vms
    later = VmUsage("n0-v9", "v9", VmState.RUNNING, 1, 100, GIB, GIB)
    report = NodeReport(10**15, 99, HostUsage(100, GIB, 8 * GIB), (later,))
    assert state.apply_report("n0", report)
    assert isinstance(lazy, RecordVms)
    uuids, cpu, memory = lazy.running(frozenset({VmState.RUNNING}))
    assert uuids == ["n0-v0", "n0-v1"] and cpu == [300, 500] and memory == [GIB, 2 * GIB]
    assert lazy == before and [vm.uuid for vm in lazy] == ["n0-v0", "n0-v1"]
