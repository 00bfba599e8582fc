"""The CP-SAT interval model of a plan whose cycle VMs may change route
(`vmgrid.solver.schedule_cpsat` drives it; the facts come from `schedule_model` and
`schedule_routes`).

Every action of `Routes.actions` is an interval of fixed length; an action of a VM that may
change route is optional, present when its route's literal is true (exactly one route per
VM). Presences (`schedule_model.stays`, per route for those VMs), NIC shares and inbound
migrations are cumulatives over those intervals, so an absent route holds nothing anywhere.
Units: seconds; resources as in the model; Mbit/s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model
from vmgrid.solver.plan import ActionKind, Plan
from vmgrid.solver.schedule_model import Stay, stays, vm_stays
from vmgrid.solver.schedule_routes import Routes

Nic = dict[int, tuple[int, list[tuple[str, str]]]]


@dataclass(frozen=True)
class Found:
    """A schedule CP-SAT found: each action's start and the route chosen per VM."""

    starts: list[int]
    routes: dict[str, int]


class IntervalModel:
    """The CP-SAT model of one plan; `start[i]` is action i's start."""

    def __init__(self, plan: Plan, routes: Routes, objective: str, hint: Found) -> None:
        self.plan, self.routes, self.cp = plan, routes, cp_model.CpModel()
        self.horizon = plan.makespan_s if objective == "makespan" else 2 * plan.makespan_s
        self.use = {
            vm: [self.cp.new_bool_var(f"route_{vm}_{k}") for k in range(len(rs))]
            for vm, rs in routes.of_vm.items()
        }
        for vm, lits in self.use.items():
            self.cp.add_exactly_one(lits)
            for k, lit in enumerate(lits):
                self.cp.add_hint(lit, hint.routes.get(vm, 0) == k)
        optional = routes.optional
        self.lit = {i: self.use[vm][k] for i, (vm, k) in optional.items()}
        self.start: list[cp_model.IntVar] = []
        self.end: list[cp_model.IntVar] = []
        self.interval: list[cp_model.IntervalVar] = []
        ends: list[cp_model.IntVar] = []
        for a, h in zip(routes.actions, hint.starts, strict=True):
            d = a.duration_s
            s = self.cp.new_int_var(0, max(0, self.horizon - d), f"start{a.id}")
            e = self.cp.new_int_var(d, max(d, self.horizon), f"end{a.id}")
            self.start.append(s)
            self.end.append(e)
            self.cp.add_hint(s, h)
            opt = self.lit.get(a.id)
            if opt is None:
                self.interval.append(self.cp.new_interval_var(s, d, e, f"action{a.id}"))
                ends.append(e)
                continue
            if d > self.horizon:
                self.cp.add(opt == 0)
            self.interval.append(self.cp.new_optional_interval_var(s, d, e, opt, f"action{a.id}"))
            counted = self.cp.new_int_var(0, max(d, self.horizon), f"counted{a.id}")
            self.cp.add(counted == e).only_enforce_if(opt)
            self.cp.add(counted == 0).only_enforce_if(~opt)
            ends.append(counted)
        total = sum(ends)
        if objective == "makespan":
            last = self.cp.new_int_var(0, self.horizon, "makespan")
            self.cp.add_max_equality(last, ends)
            self.cp.minimize(last * (len(ends) * self.horizon + 1) + total)
        else:
            self.cp.add(total <= plan.mttr_s)
            self.cp.minimize(total)

    def post(
        self,
        pairs: Iterable[tuple[int, int]],
        nic: Nic,
        inbound_cap: int | None,
        bandwidth: dict[str, int],
    ) -> bool:
        """Post precedences (between present actions) and cumulatives; False when a fixed base
        already overflows."""
        for before, after in pairs:
            both = [self.lit[i] for i in (before, after) if i in self.lit]
            self.cp.add(self.end[before] <= self.start[after]).only_enforce_if(both)
        if not self._capacity():
            return False
        on_side: dict[tuple[str, str], list[int]] = {}
        for i, (_, sides) in nic.items():
            for side in sides:
                on_side.setdefault(side, []).append(i)
        for (node, _), ids in on_side.items():
            self._cumulative(ids, [nic[i][0] for i in ids], bandwidth[node])
        if inbound_cap:
            inbound: dict[str, list[int]] = {}
            for a in self.routes.actions:
                if a.kind is ActionKind.MIGRATE and a.dst is not None:
                    inbound.setdefault(a.dst, []).append(a.id)
            for ids in inbound.values():
                self._cumulative(ids, [1] * len(ids), inbound_cap)
        return True

    def ban(self, routes: Mapping[str, int]) -> None:
        """Never these route choices (VM -> route index) all together."""
        if routes:
            self.cp.add_bool_or([~self.use[vm][k] for vm, k in routes.items()])

    def found(self, solver: cp_model.CpSolver) -> Found:
        starts = [int(solver.value(s)) for s in self.start]
        chosen = {
            vm: next(k for k, lit in enumerate(lits) if solver.boolean_value(lit))
            for vm, lits in self.use.items()
        }
        return Found(starts, chosen)

    def _cumulative(self, ids: Sequence[int], demands: Sequence[int], capacity: int) -> None:
        if sum(demands) > capacity:
            self.cp.add_cumulative([self.interval[i] for i in ids], demands, capacity)

    def _presences(self) -> list[tuple[Stay, cp_model.BoolVarT | None]]:
        out: list[tuple[Stay, cp_model.BoolVarT | None]] = [
            (x, None) for x in stays(self.plan, skip=set(self.routes.of_vm))
        ]
        for vm, rs in self.routes.of_vm.items():
            for r, lit in zip(rs, self.use[vm], strict=True):
                out += [(x, lit) for x in vm_stays(self.plan, vm, r.actions)]
        return out

    def _capacity(self) -> bool:
        base: dict[tuple[str, str], int] = {}
        moving: dict[tuple[str, str], list[tuple[cp_model.IntervalVar, int]]] = {}
        for k, (stay, lit) in enumerate(self._presences()):
            if stay.since is None and stay.until is None:
                for rc, q in stay.demand.items():
                    base[(stay.node, rc)] = base.get((stay.node, rc), 0) + q
                continue
            span = self._span(k, stay.since, stay.until, lit)
            for rc, q in stay.demand.items():
                if q:
                    moving.setdefault((stay.node, rc), []).append((span, q))
        for (node, rc), items in moving.items():
            room = self.plan.src.nodes[node].cap(rc) - base.get((node, rc), 0)
            if room < 0:
                return False
            if sum(q for _, q in items) > room:
                self.cp.add_cumulative([x for x, _ in items], [q for _, q in items], room)
        return True

    def _span(
        self, k: int, since: int | None, until: int | None, lit: cp_model.BoolVarT | None
    ) -> cp_model.IntervalVar:
        """The interval of a presence: from `since`'s start (0) to `until`'s end (horizon),
        optional with its route's literal."""
        start: cp_model.LinearExprT = 0 if since is None else self.start[since]
        end: cp_model.LinearExprT = self.horizon if until is None else self.end[until]
        size = self.cp.new_int_var(0, self.horizon, f"stay{k}")
        if lit is None:
            return self.cp.new_interval_var(start, size, end, f"stay{k}")
        return self.cp.new_optional_interval_var(start, size, end, lit, f"stay{k}")
