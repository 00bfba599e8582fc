"""From an answer (a host per VM) to what `solve` returns: the heuristic that starts the
search, the nodes switched off, the rules checked on a configuration, and the first answer the
planner can order (in full, else a valid part of it)."""

from __future__ import annotations

from dataclasses import replace

from vmgrid.solver.constraints import MaxOnline
from vmgrid.solver.explain import move_reasons
from vmgrid.solver.heuristics import HeuristicResult, first_fit_decreasing, greedy_repair
from vmgrid.solver.lns_eval import Judge
from vmgrid.solver.model import Model, NodeState, VMState
from vmgrid.solver.objectives import parse
from vmgrid.solver.plan import Plan
from vmgrid.solver.planner import PlannerOptions, build_plan
from vmgrid.solver.problem import Prepared, Problem, all_constraints, target_model


def heuristic(prep: Prepared, name: str, consolidating: bool) -> HeuristicResult:
    """``auto`` when consolidating: the better of first-fit decreasing from scratch and the
    greedy repair from the current placement: complete first (FFD may leave a VM unplaced where
    the placement is a valid answer, and a complete answer lets the search start), then fewer
    broken rules, fewer nodes used, fewer VMs moved (FFD moves nearly every VM)."""
    if name == "greedy" or (name == "auto" and not consolidating):
        return greedy_repair(prep)
    ffd = first_fit_decreasing(prep)
    if name == "auto":
        ffd = keep_home(prep, ffd)
    placed = sum(1 for vm in prep.src.vms.values() if vm.running)
    if name == "ffd" or (
        ffd.dst is not None and not ffd.violated and 2 * placed < len(prep.src.vms)
    ):
        return ffd  # mostly placing from scratch: the greedy would only pack worse, slowly
    greedy = greedy_repair(prep)
    return min((ffd, greedy), key=lambda h: _rank(prep, h))


def keep_home(prep: Prepared, h: HeuristicResult) -> HeuristicResult:
    """The same packing with fewer VMs moved: nodes of equal capacity and power are
    interchangeable, so each node's contents ("bin") go to the interchangeable node that
    already holds most of them (greedy matching). Nodes with pinned VMs or forbidden by a rule
    keep theirs; the answer is kept only when it breaks no more rules than before."""
    if h.dst is None:
        return h
    src = prep.src
    fixed = {src.vms[v].host for v in prep.pinned} | set(prep.forbidden)
    groups: dict[tuple[object, ...], list[str]] = {}
    for name, node in src.nodes.items():
        if name not in fixed:
            key = (tuple(sorted(node.capacity.items())), prep.node_state[name])
            groups.setdefault(key, []).append(name)
    overlap: dict[tuple[str, str], int] = {}
    for v, vm in src.vms.items():
        bin_ = h.hosts.get(v)
        if vm.running and bin_ is not None and vm.host is not None and bin_ not in fixed:
            overlap[bin_, vm.host] = overlap.get((bin_, vm.host), 0) + 1
    group_of = {n: key for key, nodes in groups.items() for n in nodes}
    relabel: dict[str, str] = {}
    taken: set[str] = set()
    for (bin_, home), _ in sorted(overlap.items(), key=lambda x: -x[1]):
        same = group_of.get(bin_) is not None and group_of.get(bin_) == group_of.get(home)
        if same and bin_ not in relabel and home not in taken:
            relabel[bin_] = home
            taken.add(home)
    bins = set(h.hosts.values())
    for nodes in groups.values():  # bins without a match take the group's free nodes
        free = iter([n for n in nodes if n not in taken])
        for n in nodes:
            if n not in relabel and n in bins:
                relabel[n] = next(free)
    if all(a == b for a, b in relabel.items()):
        return h
    hosts = {v: (relabel.get(n, n) if n is not None else None) for v, n in h.hosts.items()}
    dst = target_model(prep, hosts)
    broken = violated(prep, dst)
    if len(broken) > len(h.violated):
        return h
    why = "consolidation: pack VMs onto fewer nodes"
    reasons = {v: h.reasons.get(v, why) for v in hosts if hosts[v] != src.vms[v].host}
    return HeuristicResult(dst, hosts, reasons, [], broken)


def not_worse(
    prep: Prepared, found: dict[str, str | None], than: dict[str, str | None] | None
) -> bool:
    """Is `found` at least as good as the valid answer `than` (None: no answer) by the
    objective? The restricted repair model frees only some VMs, so its optimum can be worse
    than a heuristic that moved many (FFD)."""
    if than is None:
        return True
    judge = Judge(prep)

    def value(hosts: dict[str, str | None]) -> tuple[int, ...]:
        running = {v for v, s in prep.vm_state.items() if s is VMState.RUNNING}
        return judge.value({v: n for v, n in hosts.items() if n is not None and v in running})

    return value(found) <= value(than)


def _rank(prep: Prepared, h: HeuristicResult) -> tuple[int, int, int, int]:
    if h.dst is None:
        return (1, 0, 0, 0)
    src = prep.src.vms
    moved = sum(1 for v, vm in h.dst.vms.items() if vm.running and vm.host != src[v].host)
    return (0, len(h.violated), len(h.dst.used_nodes()), moved)


def first_plan(
    problem: Problem,
    prep: Prepared,
    planner: PlannerOptions,
    why: dict[str, str],
    tried: list[tuple[dict[str, str | None], str]],
    deadline: float | None,
) -> tuple[Plan | None, Model, str, str]:
    """The plan towards the first destination of `tried` that can be ordered in full, with
    that destination and its source; else the first partial plan (a subset of the moves, valid
    at every instant) whose reached configuration keeps every rule, its source ending with
    "-partial"; else no plan and the last failure."""
    consolidating = any(n == "consolidation" for lv in parse(problem.objective) for _, n in lv)
    failure = ""
    partial: tuple[Plan, str] | None = None
    for hosts, source in tried:
        dst = power(problem, target_model(prep, hosts), consolidating)
        reasons = move_reasons(prep, dst, why)
        plan = build_plan(
            prep.src,
            dst,
            problem.constraints,
            planner,
            reasons,
            prep.allowed,
            partial=True,
            deadline=deadline,
        )
        if plan.dst is dst:
            return plan, dst, source, failure
        left = sum(1 for v, vm in dst.vms.items() if plan.dst.vms[v] != vm)
        broken = violated(prep, plan.dst)
        failure = f"{left} of the moves towards the {source} answer could not be ordered"
        if broken:
            failure += f"; without them {', '.join(broken[:3])} would be broken"
        elif consolidating and len(plan.dst.used_nodes()) > len(prep.src.used_nodes()):
            failure += "; without them more nodes would be used than now"
        elif partial is None:
            partial = (plan, source)
    if partial is not None:
        plan, source = partial
        return plan, plan.dst, f"{source}-partial", failure
    return None, dst, source, failure


def power(problem: Problem, dst: Model, consolidating: bool) -> Model:
    capped = {n for c in problem.constraints if isinstance(c, MaxOnline) for n in c.nodes}
    if consolidating or capped:
        return power_off_empty(problem, dst, None if consolidating else capped)
    return dst


def violated(prep: Prepared, dst: Model) -> list[str]:
    return [c.label() for c in all_constraints(prep.problem) if not c.is_satisfied(prep.src, dst)]


def power_off_empty(problem: Problem, dst: Model, scope: set[str] | None) -> Model:
    """Switch off the empty nodes of `scope` (None: every node) that nothing keeps online."""
    forced_on = {
        n for c in problem.constraints for n, s in c.node_states().items() if s is NodeState.ONLINE
    }
    off = [
        replace(node, state=NodeState.OFFLINE)
        for name, node in dst.nodes.items()
        if node.online
        and not dst.hosted(name)
        and name not in forced_on
        and (scope is None or name in scope)
    ]
    return dst.with_nodes(off) if off else dst
