"""One LNS step's CP-SAT model: a few VMs free on a few nodes, every other VM where it is now.

The free VMs may end on any node of the neighbourhood that the unary filters allow and that can
hold them once the free VMs are taken out, or stay where the current answer has them. The other
VMs the model must see (on a usable node, in a rule posted, on a node of a counting rule posted)
are constants on their current node (not their source node: the current answer moved them). Capacity is posted on the neighbourhood's nodes; every rule whose scope
touches a free VM, or names a node (or sits on a node) that a free VM may use, is posted in full
through its plugin, so the submodel's answers keep every rule. Node power: on the neighbourhood's
nodes the solver may switch off, a Boolean; elsewhere a constant (on when it hosts a VM or must
stay on). The objective is the problem's own, hinted with the current answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from ortools.sat.python import cp_model
from vmgrid.solver.constraints import Capacity, Constraint
from vmgrid.solver.context import Lit, PostContext
from vmgrid.solver.cpsat import post_capacity, touches
from vmgrid.solver.lns_eval import ScopeIndex, power_scope
from vmgrid.solver.model import NodeState
from vmgrid.solver.objectives import post_objective
from vmgrid.solver.problem import Prepared


def candidate_nodes(
    prep: Prepared, hosts: Mapping[str, str], free: set[str], nodes: set[str]
) -> dict[str, list[str]]:
    """Per free VM: its current node, and the nodes of `nodes` it may use and fits on alone
    once every free VM is taken out."""
    fixed_load: dict[str, dict[str, int]] = {n: {} for n in nodes}
    for v, n in hosts.items():
        if n in fixed_load and v not in free:
            acc = fixed_load[n]
            for rc, q in prep.demand[v].items():
                acc[rc] = acc.get(rc, 0) + q
    out: dict[str, list[str]] = {}
    for vm in sorted(free):
        demand = prep.demand[vm]
        chosen = {hosts[vm]}
        for n in nodes:
            if n in chosen or not prep.may_host(vm, n):
                continue
            cap, load = prep.src.nodes[n], fixed_load[n]
            if all(load.get(rc, 0) + q <= cap.cap(rc) for rc, q in demand.items()):
                chosen.add(n)
        out[vm] = sorted(chosen)
    return out


class RuleIndex:
    """The problem's rules (capacity aside) by the VMs and nodes they name, so that a step
    looks only at the rules near its neighbourhood before asking `touches`."""

    def __init__(self, prep: Prepared) -> None:
        self.rules = [c for c in prep.problem.constraints if not isinstance(c, Capacity)]
        self.switchable = power_scope(prep)[1]
        self.every_vm = "balance" in prep.problem.objective
        """`balance` bounds its peak by every node's load: every VM enters the model."""
        self.index = ScopeIndex(self.rules)

    def near(self, hosts: Mapping[str, str], free: set[str], usable: set[str]) -> list[Constraint]:
        """Rules naming a free VM, a usable node, or a VM on a usable node (a superset of the
        rules `touches` keeps)."""
        on_usable = {v for v, n in hosts.items() if n in usable}
        return [self.rules[i] for i in self.index.around(free | on_usable, usable)]

    def placed(
        self, hosts: Mapping[str, str], free: set[str], usable: set[str], near: list[Constraint]
    ) -> set[str]:
        """The VMs the model must see: free ones, those on usable nodes, those of the rules
        near the neighbourhood, and those on the nodes of the counting rules among them."""
        if self.every_vm:
            return set(hosts)
        counted = set(usable)
        out = set(free)
        for c in near:
            out.update(v for v in c.vms_in_scope() if v in hosts)
            if c.kind in ("resourceCapacity", "runningCapacity"):
                counted.update(c.nodes_in_scope())
        out.update(v for v, n in hosts.items() if n in counted)
        return out


def solve_hood(
    prep: Prepared,
    hosts: Mapping[str, str],
    free: set[str],
    nodes: set[str],
    time_limit_s: float,
    workers: int = 2,
    seed: int = 0,
    index: RuleIndex | None = None,
    deadline: float | None = None,
) -> tuple[str, dict[str, str] | None]:
    """(CP-SAT status, new nodes of the free VMs or None). `hosts` maps every VM that ends
    running to its node in the current answer; the search gets `time_limit_s`, cut at
    `deadline` (a `time.perf_counter()` value) once the model is built."""
    index = index or RuleIndex(prep)
    cands = candidate_nodes(prep, hosts, free, nodes)
    usable = {n for vm in free for n in cands[vm]}
    near = index.near(hosts, free, usable)
    cp = cp_model.CpModel()
    placement: dict[str, dict[str, Lit]] = {}
    for vm in index.placed(hosts, free, usable, near):
        if vm in free:
            placement[vm] = {n: cp.new_bool_var(f"x_{vm}_{n}") for n in cands[vm]}
            cp.add_exactly_one(list(placement[vm].values()))
        else:
            placement[vm] = {hosts[vm]: 1}
    node_on = _power(cp, prep, hosts, free, usable, index.switchable)
    ctx = PostContext(cp, prep.src, prep.vm_state, prep.demand, placement, node_on)
    post_capacity(ctx, prep, {"": Capacity()}, usable)
    for c in near:
        if touches(ctx, c, free, usable):
            c.post(ctx)
    post_objective(ctx, prep.problem.objective)
    for vm in free:
        for n, lit in placement[vm].items():
            cp.add_hint(lit, n == hosts[vm])  # type: ignore[arg-type]
    now_used = {hosts[v] for v in free}
    for n, on in node_on.items():
        if not isinstance(on, int):
            cp.add_hint(on, n in now_used)
    if deadline is not None:
        time_limit_s = min(time_limit_s, deadline - time.perf_counter())
    if time_limit_s < 0.05:
        return "skipped", None
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    watchdog = threading.Timer(time_limit_s + 0.5, solver.stop_search)
    watchdog.daemon = True
    watchdog.start()
    try:
        code = solver.solve(cp)
    finally:
        watchdog.cancel()
    status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible"}.get(code, "unknown")
    if code == cp_model.INFEASIBLE:
        status = "infeasible"
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return status, None
    out = {
        vm: next(n for n, lit in placement[vm].items() if solver.boolean_value(lit)) for vm in free
    }
    return status, out


def _power(
    cp: cp_model.CpModel,
    prep: Prepared,
    hosts: Mapping[str, str],
    free: set[str],
    usable: set[str],
    switchable: frozenset[str],
) -> dict[str, Lit]:
    """A Boolean for the neighbourhood's switchable nodes; constants elsewhere."""
    fixed_used = {n for v, n in hosts.items() if v not in free}
    out: dict[str, Lit] = {}
    for name in prep.src.nodes:
        online = prep.node_state[name] is NodeState.ONLINE
        if name not in switchable:
            out[name] = 1 if online else 0
        elif name in fixed_used:
            out[name] = 1
        elif name in usable and online:
            out[name] = cp.new_bool_var(f"on_{name}")
        else:
            out[name] = 0
    return out
