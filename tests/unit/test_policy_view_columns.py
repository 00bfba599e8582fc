"""The policy's view of a cluster (``to_policy_snapshot``) against a plain per-VM reading of
the same snapshot: the view is gathered node by node with one history pass per node, and must
say exactly what reading each running VM on its own says."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.policy_view import VmIds, eligible_nodes, to_policy_snapshot
from vmgrid.agents.cluster.state.state import ClusterSnapshot, ClusterState
from vmgrid.agents.common.node_codec import ReportDecoder, ReportEncoder
from vmgrid.agents.model import (
    RUNNING_STATES,
    HostUsage,
    NodeCapacity,
    NodeHello,
    NodeIdentity,
    NodeReport,
    VmState,
    VmUsage,
)

MIB = 2**20
SECOND = 1_000_000_000
NAMES = [f"vm{i}" for i in range(10)]

vm_report = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(list(VmState)),
    st.integers(0, 9000),  # may exceed the largest node's CPU: capped
    st.integers(1, 4096),  # MiB allocated
)
round_of_reports = st.dictionaries(
    st.integers(0, 4),  # node index
    st.lists(vm_report, max_size=6, unique_by=lambda r: r[0]),
    max_size=5,
)


def _state(
    capacities: list[int], rounds: list[dict[int, list[tuple[str, VmState, int, int]]]]
) -> ClusterState:
    now = [1_000 * SECOND]
    state = ClusterState(EventBus("c1"), clock_ns=lambda: now[0], history_window=4)
    for i, cpu in enumerate(capacities):
        identity = NodeIdentity(f"n{i}", f"n{i}", f"test:///n{i}", simulated=True)
        state.node_connected(NodeHello(identity, NodeCapacity(cpu, 64 * 2**30, 10**9)), i + 1)
    streams = [(ReportEncoder(), ReportDecoder()) for _ in capacities]
    for sequence, reports in enumerate(rounds, start=1):
        for index, vms in sorted(reports.items()):
            if index >= len(capacities):
                continue
            usage = tuple(
                VmUsage(f"uuid-{n}", n, s, 1, cpu, mib * MIB, mib * MIB) for n, s, cpu, mib in vms
            )
            host = HostUsage(sum(v.cpu_used_millicores for v in usage), 0, 64 * 2**30)
            report = NodeReport(now[0], sequence, host, usage)
            if sequence % 2:  # through the wire's codec (rows in columns), or as objects
                encoder, decoder = streams[index]
                assert state.apply_report(f"n{index}", decoder.decode(encoder.encode(report)))
            else:
                assert state.apply_report(f"n{index}", report)
        now[0] += 5 * SECOND
    return state


def _plain(snapshot: ClusterSnapshot, ids: VmIds) -> dict[str, tuple[object, ...]]:
    """Per running VM, read on its own: (id, host index, demand, MiB, history, length)."""
    nodes = eligible_nodes(snapshot)
    largest = max((v.capacity.cpu_millicores for v in nodes), default=0)
    out: dict[str, tuple[object, ...]] = {}
    for host, view in enumerate(nodes):
        for vm in view.vms:
            if vm.state not in RUNNING_STATES:
                continue
            samples = snapshot.vm_samples(vm.uuid)[::-1]  # newest first
            history = tuple(float(min(s.cpu_used_millicores, largest)) for s in samples)
            out[vm.uuid] = (
                ids.of(vm.uuid),
                host,
                float(min(vm.cpu_used_millicores, largest)),
                float(vm.memory_allocated_bytes // MIB),
                history,
                len(samples),
            )
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from([1000, 2000, 4000, 8000]), min_size=1, max_size=5),
    st.lists(round_of_reports, min_size=1, max_size=6),
    st.sets(st.integers(0, 4), max_size=2),
    st.permutations(NAMES[:6]),
)
def test_the_view_says_what_each_running_vm_says_on_its_own(
    capacities: list[int],
    rounds: list[dict[int, list[tuple[str, VmState, int, int]]]],
    draining: set[int],
    seen_first: list[str],
) -> None:
    state = _state(capacities, rounds)
    for index in sorted(draining):
        if index < len(capacities):
            state.set_draining(f"n{index}", True)
    ids, lazy_ids, plain_ids = VmIds(), VmIds(), VmIds()
    for known in (ids, lazy_ids, plain_ids):  # an earlier cycle's, not in the nodes' order
        known.of_all([f"uuid-{n}" for n in seen_first])
    for step in range(2):  # a second cycle reuses the ids of the first
        for node in state._nodes.values():  # noqa: SLF001 (as after a report: not built)
            node.set_rows(node.uuids, node.states, node.rows)
        # a decision process's snapshot: the VMs' columns are read, no VmUsage is built
        lazy = to_policy_snapshot(
            state.snapshot(copy_history=False, built_vms=False), lazy_ids, step
        )
        assert all(n.built_vms is None for n in state._nodes.values())  # noqa: SLF001
        snapshot = state.snapshot()
        view = to_policy_snapshot(snapshot, ids, step)
        assert lazy.node_ids == view.node_ids and lazy.vm_uuids == view.vm_uuids
        for name in ("vm_id", "vm_host", "vm_demand_millicores", "vm_ram_mib", "vm_history_len"):
            assert getattr(lazy.snapshot, name).tolist() == getattr(view.snapshot, name).tolist()
        assert np.array_equal(
            lazy.snapshot.vm_history_millicores, view.snapshot.vm_history_millicores
        )
        expected = _plain(snapshot, plain_ids)
        snap = view.snapshot
        assert sorted(view.vm_uuids) == sorted(expected)
        assert snap.vm_id.tolist() == sorted(snap.vm_id.tolist())  # ordered by id
        assert view.node_ids == tuple(v.node_id for v in eligible_nodes(snapshot))
        for row, uuid in enumerate(view.vm_uuids):
            vm_id, host, demand, mib, history, length = expected[uuid]
            assert snap.vm_id[row] == vm_id
            assert snap.vm_host[row] == host
            assert snap.vm_demand_millicores[row] == demand
            assert snap.vm_ram_mib[row] == mib
            assert snap.vm_history_len[row] == length
            assert tuple(snap.vm_history_millicores[row, :length].tolist()) == history
            assert not np.any(snap.vm_history_millicores[row, length:])
