"""The manager's cluster as the decision policy sees it, and the policy's moves as a plan.

The cluster manager and the PlanetLab replay run the same ``vmgrid.solver.decision``
``DecisionPolicy``; this module is the manager's side of that seam (the replay's is
``vmgrid.solver.replay.vmgrid_adapter``). Both only translate:

- hosts are the connected nodes that are not draining, in snapshot order (then, when the
  manager may power nodes on, those it powered off: empty hosts the policy may wake, for which
  the plan gets a BOOT_NODE before the first migration in); capacity is the
  node's CPU in millicores, and the most a single VM can get there is the node's capacity unless
  a caller knows better (``vm_limit_millicores``);
- idle and peak watts come from ``watts`` when given; agents do not report power figures yet,
  so every node gets the same ``DEFAULT_IDLE_W``/``DEFAULT_PEAK_W`` and the policy's efficiency
  order (capacity per idle watt) is then capacity alone;
- VMs are the running VMs of those hosts, ordered by a stable integer id per uuid (``VmIds``,
  kept by the loop across cycles: the policy's hysteresis is keyed on it); demand is the latest
  CPU reading, history the recent readings newest first, RAM the memory allocated to the VM.
  A reading above the largest node's capacity is start-up noise and is capped there.

The policy looks at CPU only, so ``plan_moves`` replays its moves against memory, skips a move
that would overflow its destination's memory (saying why), drops the rest of a consolidation
whose host could then not be emptied, and lets ``vmgrid.solver.planner`` order the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from vmgrid.agents.cluster.rules.check import involving, moves_keeping_rules
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.migration_estimate import MigrationLink, migrate_attributes
from vmgrid.agents.cluster.state.nodes import RecordVms, running_columns
from vmgrid.agents.cluster.state.solver_view import MIB
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus, NodeView
from vmgrid.agents.model import HOLDS_MEMORY_STATES, RUNNING_STATES
from vmgrid.solver import decision
from vmgrid.solver.decision import Move
from vmgrid.solver.model import CPU, MEMORY, VM, Model, ModelError, Node, NodeState, VMState
from vmgrid.solver.plan import Plan
from vmgrid.solver.planner import PlanError, PlannerOptions, build_plan

DEFAULT_IDLE_W = 100.0
"""Idle watts assumed for every node (no node reports its power figures yet)."""
DEFAULT_PEAK_W = 200.0
"""Peak watts assumed for every node."""


class VmIds:
    """A stable integer per VM uuid, in order of first sight, for the life of the loop."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def of(self, uuid: str) -> int:
        known = self._ids.get(uuid)
        if known is None:
            known = self._ids[uuid] = len(self._ids)
        return known

    def of_all(self, uuids: Sequence[str]) -> list[int]:
        """`of` each of `uuids`, in order (new ones numbered in that order): one dict lookup
        a VM when every one is known already, as in every cycle after the first."""
        get = self._ids.get
        found = [get(u) for u in uuids]
        if None not in found:
            return found  # type: ignore[return-value]
        return [self.of(u) if i is None else i for u, i in zip(uuids, found, strict=True)]


@dataclass(frozen=True)
class PolicyView:
    """A policy snapshot and the names behind its indices."""

    snapshot: decision.ClusterSnapshot
    node_ids: tuple[str, ...]
    """Host index -> node id."""
    vm_uuids: tuple[str, ...]
    """VM index -> uuid."""


@dataclass(frozen=True)
class MovePlan:
    """The moves that survived the memory check, their plan, and why the others did not."""

    plan: Plan | None
    moves: tuple[Move, ...]
    skipped: tuple[str, ...]
    active_nodes: tuple[int, int] | None = None
    """Nodes of the whole cluster hosting VMs before and after the plan."""


def eligible_nodes(snapshot: ClusterSnapshot, powered_off: bool = False) -> list[NodeView]:
    """Nodes that may host VMs the policy places: connected and not in maintenance; then, with
    `powered_off`, those the manager powered off (a move there powers the node on first).
    Powered-off nodes come last, so that among empty hosts a running one is woken first."""
    on = [v for v in snapshot.nodes if v.status is NodeStatus.CONNECTED and not v.draining]
    if not powered_off:
        return on
    return on + [v for v in snapshot.nodes if v.status is NodeStatus.POWERED_OFF and not v.draining]


def to_policy_snapshot(
    snapshot: ClusterSnapshot,
    ids: VmIds,
    step: int,
    vm_limit_millicores: Mapping[str, int] | None = None,
    watts: Mapping[str, tuple[float, float]] | None = None,
    powered_off: bool = False,
) -> PolicyView:
    """The decision policy's view of `snapshot` (see the module docstring for the mapping);
    with `powered_off`, nodes the manager powered off are hosts too (empty: asleep)."""
    nodes = eligible_nodes(snapshot, powered_off)
    limits = vm_limit_millicores or {}
    power = watts or {}
    largest = max((v.capacity.cpu_millicores for v in nodes), default=0)
    uuids: list[str] = []
    hosts: list[int] = []
    cpu: list[int] = []
    memory: list[int] = []
    for index, view in enumerate(nodes):
        if isinstance(view.vms, RecordVms):  # a decision process's: read, not built
            u, c, m = view.vms.running(RUNNING_STATES)
        else:
            u, c, m = running_columns(view.vms, RUNNING_STATES)
        uuids += u
        cpu += c
        memory += m
        hosts += [index] * len(u)
    # node by node (each node's VMs share a history: one matrix pass each), then by id
    history, history_len = snapshot.vm_cpu_matrix(uuids, largest)
    vm_ids = np.array(ids.of_all(uuids), dtype=np.int64)
    order = np.argsort(vm_ids, kind="stable")
    demand = np.array(cpu, dtype=np.float64)
    ram = np.array([b // MIB for b in memory], dtype=np.float64)
    cap = [float(v.capacity.cpu_millicores) for v in nodes]
    policy_snapshot = decision.ClusterSnapshot(
        step=step,
        host_capacity_millicores=np.array(cap, dtype=np.float64),
        host_vm_limit_millicores=np.array(
            [float(limits.get(v.node_id, v.capacity.cpu_millicores)) for v in nodes],
            dtype=np.float64,
        ),
        host_idle_w=np.array(
            [power.get(v.node_id, (DEFAULT_IDLE_W, DEFAULT_PEAK_W))[0] for v in nodes],
            dtype=np.float64,
        ),
        host_peak_w=np.array(
            [power.get(v.node_id, (DEFAULT_IDLE_W, DEFAULT_PEAK_W))[1] for v in nodes],
            dtype=np.float64,
        ),
        vm_id=vm_ids[order],
        vm_host=np.array(hosts, dtype=np.int64)[order],
        vm_demand_millicores=np.minimum(demand, float(largest))[order],
        vm_history_millicores=history[order],
        vm_history_len=history_len[order],
        vm_ram_mib=ram[order],
    )
    return PolicyView(
        policy_snapshot, tuple(v.node_id for v in nodes), tuple(uuids[i] for i in order.tolist())
    )


def plan_moves(
    snapshot: ClusterSnapshot,
    view: PolicyView,
    moves: Sequence[Move],
    memory_high: float = 1.0,
    link: MigrationLink | None = None,
) -> MovePlan:
    """Check `moves` against memory (a destination is filled to `memory_high` of it at most)
    and turn those that fit into a timed plan: a real node's VM migrates for its pre-copy
    estimate over `link` with the snapshot's learned fixed cost (whole seconds), any other
    for the solver's 1 s.

    Only the nodes the moves leave or reach matter to either, so the plan's models hold those
    nodes alone (a plan over a 2,000-node cluster stays as small as its moves);
    ``MovePlan.active_nodes`` counts the whole cluster.
    """
    if not moves:
        return MovePlan(None, (), ())
    touched = {view.node_ids[m.source] for m in moves} | {
        view.node_ids[m.destination] for m in moves
    }
    rules = involving(
        snapshot.rules,
        (view.vm_uuids[m.vm] for m in moves),
        (view.node_ids[m.destination] for m in moves),
    )
    touched |= _rule_nodes(snapshot, rules)
    try:
        src = _model(snapshot, view, touched, link)
    except ModelError as exc:  # the reports disagree with themselves; decide next cycle
        return MovePlan(None, (), (f"the cluster's reports do not form a model: {exc}",))
    kept, skipped = _memory_checked(src, view, moves, memory_high)
    if rules:
        kept, skipped = _rules_checked(src, view, kept, skipped, rules)
    if not kept:
        return MovePlan(None, (), skipped)
    moved = [src.vms[view.vm_uuids[m.vm]].on(view.node_ids[m.destination]) for m in kept]
    woken = {view.node_ids[m.destination] for m in kept} - set(src.online_nodes())
    dst = src.with_vms(moved).with_nodes(
        replace(src.nodes[n], state=NodeState.ONLINE) for n in woken
    )
    reasons = {view.vm_uuids[m.vm]: _reason(src, view, m) for m in kept}
    try:
        plan = build_plan(src, dst, (), PlannerOptions(), reasons)
    except (PlanError, ModelError) as exc:
        return MovePlan(None, (), (*skipped, f"no plan orders these moves: {exc}"))
    before = sum(
        1 for v in eligible_nodes(snapshot) if any(m.state in HOLDS_MEMORY_STATES for m in v.vms)
    )
    used_before, used_after = set(src.used_nodes()), set(dst.used_nodes())
    after = before - len(used_before - used_after) + len(used_after - used_before)
    return MovePlan(plan, kept, skipped, (before, after))


def _rule_nodes(snapshot: ClusterSnapshot, rules: Sequence[Rule]) -> set[str]:
    """Nodes a rule check must see: those holding the rules' VMs, and those they name."""
    vms = {vm for rule in rules for vm in rule.constraint.vms_in_scope()}
    nodes = {node for rule in rules for node in rule.constraint.nodes_in_scope()}
    if any(not rule.constraint.vms_in_scope() for rule in rules):
        return {v.node_id for v in snapshot.nodes}  # a cluster-wide rule sees every node
    for view in snapshot.nodes:
        if any(vm.uuid in vms for vm in view.vms):
            nodes.add(view.node_id)
    return nodes


def _rules_checked(
    src: Model,
    view: PolicyView,
    moves: tuple[Move, ...],
    skipped: tuple[str, ...],
    rules: Sequence[Rule],
) -> tuple[tuple[Move, ...], tuple[str, ...]]:
    """The moves that keep every placement rule holding, in order (the applier would refuse
    the others before starting them)."""
    pairs = [(view.vm_uuids[m.vm], view.node_ids[m.destination]) for m in moves]
    allowed, refused = moves_keeping_rules(rules, src, pairs)
    kept = tuple(m for m, pair in zip(moves, pairs, strict=True) if pair in allowed)
    return kept, (*skipped, *refused)


def _model(
    snapshot: ClusterSnapshot, view: PolicyView, touched: set[str], link: MigrationLink | None
) -> Model:
    """The `touched` eligible nodes (CPU millicores, memory MiB) and their running and paused
    VMs; running VMs demand what the policy saw, so the planner orders moves on the policy's
    figures, and migrate for their estimate over `link` (`migrate_attributes`)."""
    snap = view.snapshot
    index = {u: i for i, u in enumerate(view.vm_uuids)}
    nodes: list[Node] = []
    vms: list[VM] = []
    by_id = {v.node_id: v for v in snapshot.nodes}
    for node_id in view.node_ids:
        if node_id not in touched:
            continue
        node = by_id[node_id]
        cap = {CPU: node.capacity.cpu_millicores, MEMORY: node.capacity.memory_bytes // MIB}
        off = node.status is NodeStatus.POWERED_OFF
        nodes.append(Node(node_id, cap, NodeState.OFFLINE if off else NodeState.ONLINE))
        for vm in node.vms:
            if vm.state not in HOLDS_MEMORY_STATES:
                continue
            state = VMState.RUNNING  # a paused VM still holds its memory on the node
            i = index.get(vm.uuid)
            cpu = int(np.ceil(snap.vm_demand_millicores[i])) if i is not None else 0
            need = {CPU: cpu, MEMORY: max(1, vm.memory_allocated_bytes // MIB)}
            timing = migrate_attributes(
                vm, node.identity.simulated, link, snapshot.migration_fixed_s
            )
            vms.append(VM(vm.uuid, need, state, node_id, {"name": vm.name, **timing}))
    return Model.of(nodes, vms)


def _memory_checked(
    src: Model, view: PolicyView, moves: Sequence[Move], memory_high: float
) -> tuple[tuple[Move, ...], tuple[str, ...]]:
    """Moves whose destinations keep enough memory, in order; a consolidation that loses one
    move loses all of its host's moves (the host would not be emptied)."""
    dropped: set[int] = set()
    while True:
        free = {n: _memory_free(src, n, memory_high) for n in src.nodes}
        kept: list[Move] = []
        skipped: list[str] = []
        lost: set[int] = set()
        for m in moves:
            uuid, dst = view.vm_uuids[m.vm], view.node_ids[m.destination]
            name = str(src.vms[uuid].attributes.get("name", uuid))
            if m.reason == "consolidation" and m.source in dropped:
                skipped.append(f"{name}: consolidation of {view.node_ids[m.source]} dropped")
                continue
            need = src.vms[uuid].need(MEMORY)
            if need > free[dst]:
                skipped.append(
                    f"{name} -> {dst}: needs {need} MiB, {dst} has {max(free[dst], 0)} MiB free "
                    "within the band"
                )
                if m.reason == "consolidation":
                    lost.add(m.source)
                continue
            free[dst] -= need
            free[view.node_ids[m.source]] += need
            kept.append(m)
        if lost <= dropped:
            return tuple(kept), tuple(skipped)
        dropped |= lost


def _memory_free(model: Model, node: str, memory_high: float) -> int:
    """MiB left on `node` below `memory_high` of it; a paused VM keeps its memory, so it
    counts too."""
    held = sum(model.vms[v].need(MEMORY) for v in model.hosted(node))
    return int(model.nodes[node].cap(MEMORY) * memory_high) - held


def _reason(src: Model, view: PolicyView, move: Move) -> str:
    source = view.node_ids[move.source]
    load, cap = src.load(source, CPU), src.nodes[source].cap(CPU)
    if move.reason == "overload":
        return f"vmgrid policy: relieve {source} ({load} of {cap} millicores in use)"
    return f"vmgrid policy: consolidate, empty {source} ({load} of {cap} millicores in use)"
