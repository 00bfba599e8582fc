"""A reconfiguration problem and what follows from it before any search.

`prepare` derives, once, the facts every stage needs: destination VM and node states, the new
demands after `preserve`, per-VM node whitelists, forbidden nodes, VMs pinned in place, and the
VMs that must be free to repair a violation. The heuristics and the CP-SAT builder share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from vmgrid.solver.constraints import Capacity, Constraint, Preserve
from vmgrid.solver.model import Model, ModelError, Node, NodeState, VMState

OBJECTIVES = ("mttr", "migrations", "memory", "consolidation", "balance")


@dataclass(frozen=True)
class Problem:
    """The source configuration, the constraints on the destination, and what to optimise.

    `objective` is a name of `vmgrid.solver.objectives.OBJECTIVES` or a lexicographic chain such as
    ``"consolidation>mttr"``.
    """

    model: Model
    constraints: Sequence[Constraint] = ()
    objective: str = "mttr"


@dataclass
class Prepared:
    """Facts derived from a `Problem`; read-only after `prepare`."""

    problem: Problem
    vm_state: dict[str, VMState]
    node_state: dict[str, NodeState]
    demand: dict[str, Mapping[str, int]]
    allowed: dict[str, frozenset[str]]
    forbidden: frozenset[str]
    pinned: frozenset[str]
    must_move: set[str]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def src(self) -> Model:
        return self.problem.model

    def may_host(self, vm: str, node: str) -> bool:
        """Cheap unary filter: node power, whitelists, forbidden nodes (except the VM's host)."""
        if self.node_state.get(node) is not NodeState.ONLINE:
            return False
        host = self.src.vms[vm].host
        if node in self.forbidden and node != host:
            return False
        allowed = self.allowed.get(vm)
        return allowed is None or node in allowed


def prepare(problem: Problem) -> Prepared:
    src = problem.model
    vm_state = {name: vm.state for name, vm in src.vms.items()}
    node_state = {name: node.state for name, node in src.nodes.items()}
    demand: dict[str, Mapping[str, int]] = {name: vm.demand for name, vm in src.vms.items()}
    allowed: dict[str, frozenset[str]] = {}
    forbidden: set[str] = set()
    pinned: set[str] = set()
    must_move: set[str] = set()
    reasons: dict[str, str] = {}
    checked: dict[int, tuple[str, ...]] = {}  # node scopes shared by several rules, by identity
    for c in problem.constraints:
        for vm in c.vms_in_scope():
            if vm not in src.vms:
                raise ModelError(f"{c.label()}: unknown VM {vm!r}")
        scope = c.nodes_in_scope()
        if checked.get(id(scope)) is not scope:
            for node in scope:
                if node not in src.nodes:
                    raise ModelError(f"{c.label()}: unknown node {node!r}")
            if len(scope) > 16:
                checked[id(scope)] = scope
        vm_state.update(c.vm_states())
        node_state.update(c.node_states())
        if isinstance(c, Preserve):
            demand[c.vm] = c.new_demand(demand[c.vm])
        restriction = c.allowed(src)
        if restriction:
            for vm, nodes in restriction.items():
                allowed[vm] = allowed[vm] & nodes if vm in allowed else nodes
        forbidden.update(c.forbidden_nodes())
        pinned.update(c.fixed_vms(src))
    for c in problem.constraints:
        for name in c.repair_scope(src):
            if name not in pinned:
                must_move.add(name)
                reasons.setdefault(name, f"{c.label()} is violated")
    for name, now in src.vms.items():
        if now.host is not None and node_state[now.host] is NodeState.OFFLINE:
            must_move.add(name)
            reasons[name] = f"node {now.host} must go offline"
        elif vm_state[name] is VMState.RUNNING and now.state is not VMState.RUNNING:
            must_move.add(name)
            reasons.setdefault(name, f"VM must run (now {now.state.value})")
    for name, nodes in allowed.items():
        host = src.vms[name].host
        if host is not None and host not in nodes and name not in pinned:
            must_move.add(name)
            reasons.setdefault(name, f"node {host} is not allowed for it")
    return Prepared(
        problem,
        vm_state,
        node_state,
        demand,
        allowed,
        frozenset(forbidden),
        frozenset(pinned),
        must_move,
        reasons,
    )


def target_model(prep: Prepared, hosts: Mapping[str, str | None]) -> Model:
    """The destination configuration for `hosts` (VM -> node for the VMs that end on a node)."""
    src = prep.src
    nodes = {
        n: node if node.state is prep.node_state[n] else _with_state(node, prep.node_state[n])
        for n, node in src.nodes.items()
    }
    vms = {}
    for name, vm in src.vms.items():
        state = prep.vm_state[name]
        host = None if state is VMState.READY else hosts.get(name, vm.host)
        if state is not VMState.READY and host is None:
            raise ModelError(f"VM {name!r} must be {state.value} but no host was chosen")
        new = vm
        if host != vm.host or state is not vm.state or prep.demand[name] is not vm.demand:
            new = replace(vm, host=host, state=state, demand=prep.demand[name])
        vms[name] = new
    return Model(nodes, vms)


def _with_state(node: Node, state: NodeState) -> Node:
    return replace(node, state=state)


def all_constraints(problem: Problem) -> list[Constraint]:
    """The problem's constraints plus the implicit capacity constraint."""
    cs = list(problem.constraints)
    if not any(isinstance(c, Capacity) for c in cs):
        cs.append(Capacity())
    return cs
