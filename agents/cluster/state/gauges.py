"""What the decision loop's trigger reads of each node (`decide/control.py`, `trigger_from`),
taken from a snapshot's views or straight from the manager's node records.

Most cycles find nothing to do. Deciding that from a snapshot means building every VM's
VmUsage object first (at 5,000 nodes of 20 VMs, about 1.5 s of a forked child's CPU, and
seconds of its life during which each page the manager writes is copied); from the records it
reads the VMs' states and one column of their last report, and builds no VM object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress

from vmgrid.agents.cluster.state.nodes import NodeRecord, NodeStatus, NodeView
from vmgrid.agents.model import HOLDS_MEMORY_STATES, RUNNING_STATES, VmState, VmUsage
from vmgrid.agents.report_rows import column_of

DRAIN_MOVES = RUNNING_STATES - {VmState.SHUTTING_DOWN}
"""States of the VMs a drain still has to move off a node."""


@dataclass(frozen=True, slots=True)
class NodeGauge:
    """A node as the trigger reads it."""

    node_id: str
    status: NodeStatus
    draining: bool
    cpu_millicores: int
    """Its CPU capacity."""
    vm_count: int
    moves_on_drain: bool
    """Some VM of it is in a state a drain has to move (DRAIN_MOVES)."""
    memory_fraction: float
    """Memory held by its running and paused VMs, as a fraction of its memory (as
    solver_view.memory_fraction says of its view)."""


def memory_fraction(view: NodeView) -> float:
    """Memory held by the node's running and paused VMs, as a fraction of its memory."""
    return held_bytes(view.vms) / max(1, view.capacity.memory_bytes)


def held_bytes(vms: Iterable[VmUsage]) -> int:
    """Memory allocated to those of `vms` that hold theirs (running and paused)."""
    return sum(vm.memory_allocated_bytes for vm in vms if vm.state in HOLDS_MEMORY_STATES)


def gauge_of_view(view: NodeView) -> NodeGauge:
    """The gauge of a snapshot's node."""
    return NodeGauge(
        view.node_id,
        view.status,
        view.draining,
        view.capacity.cpu_millicores,
        len(view.vms),
        any(vm.state in DRAIN_MOVES for vm in view.vms),
        memory_fraction(view),
    )


def gauge_of_record(node: NodeRecord) -> NodeGauge:
    """The gauge of a node record, from its VMs' states and the memory column of its last
    report's rows (its VmUsage objects are used when they are built already, never built)."""
    states = node.states
    capacity = node.hello.capacity
    return NodeGauge(
        node.hello.identity.node_id,
        node.status,
        node.draining,
        capacity.cpu_millicores,
        len(states),
        any(state in DRAIN_MOVES for state in states),
        record_memory_fraction(node),
    )


def record_memory_fraction(node: NodeRecord) -> float:
    """A record's `memory_fraction`: memory held by its running and paused VMs, as a fraction
    of its memory (its VmUsage objects are used when they are built already, never built)."""
    built = node.built_vms
    if built is not None:
        held = held_bytes(built.values())
    else:
        # the rows and the states are the same report's, in the same order
        allocated = column_of(node.rows, "memory_allocated_bytes")
        states = node.states
        if len(allocated) != len(states):
            node_id = node.hello.identity.node_id
            raise ValueError(f"node {node_id}: {len(allocated)} rows for {len(states)} states")
        holding = node.holding
        if holding is None or holding[0] is not states:
            # the decoder hands the same states tuple while they do not change, so a node is
            # asked again (QuietWatch, every cycle) for one sum of its report's memory column
            mask = tuple(s in HOLDS_MEMORY_STATES for s in states)
            holding = node.holding = (states, None if all(mask) else mask)
        held = sum(allocated) if holding[1] is None else sum(compress(allocated, holding[1]))
    return held / max(1, node.hello.capacity.memory_bytes)
