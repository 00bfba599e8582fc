"""The rules a plan must keep while it runs: continuous rules indexed by VM and node, and the
nodes a pivot may use."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from vmgrid.solver.constraints import Constraint
from vmgrid.solver.constraints.base import PlanView
from vmgrid.solver.model import Model


class PlanState:
    """The planner's state at the current instant, as continuous rules read it (`PlanView`);
    it reads the planner's own tables, so it always shows the present."""

    def __init__(
        self,
        src: Model,
        present: Mapping[str, AbstractSet[str]],
        load: Mapping[str, Mapping[str, int]],
        at: Mapping[str, AbstractSet[str]],
        demand: Callable[[str], Mapping[str, int]],
    ) -> None:
        self.src, self._present, self._load, self._at, self._demand = src, present, load, at, demand

    def present(self, node: str) -> AbstractSet[str]:
        return self._present[node]

    def load(self, node: str, rc: str) -> int:
        return self._load[node].get(rc, 0)

    def demand(self, vm: str) -> Mapping[str, int]:
        return self._demand(vm)

    def origin(self, vm: str) -> str | None:
        old = self.src.vms.get(vm)
        return old.host if old is not None and old.running else None

    def locations(self, vm: str) -> AbstractSet[str]:
        return self._at.get(vm, frozenset())


class RuleIndex:
    """Continuous rules by the VMs and nodes whose arrivals and departures they judge."""

    def __init__(self, rules: Sequence[Constraint]) -> None:
        self.everywhere: list[Constraint] = []
        self.of_vm: dict[str, list[Constraint]] = {}
        self.of_node: dict[str, list[Constraint]] = {}
        for c in rules:
            if not c.continuous:
                continue
            scope = c.plan_scope()
            if scope is None:
                self.everywhere.append(c)
                continue
            for vm in scope[0]:
                self.of_vm.setdefault(vm, []).append(c)
            for node in scope[1]:
                self.of_node.setdefault(node, []).append(c)

    def _rules(self, vm: str, node: str) -> list[Constraint]:
        found = self.of_vm.get(vm, []) + self.of_node.get(node, [])
        if len(found) > 1:  # by identity: hashing a rule hashes all its VMs and nodes
            found = list({id(c): c for c in found}.values())
        return found + self.everywhere if self.everywhere else found

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        return all(c.admits_arrival(view, vm, node) for c in self._rules(vm, node))

    def admits_departure(self, view: PlanView, vm: str, node: str) -> bool:
        return all(c.admits_departure(view, vm, node) for c in self._rules(vm, node))


def pivot_filter(
    src: Model,
    constraints: Sequence[Constraint],
    given: Mapping[str, frozenset[str]] | None,
) -> dict[str, frozenset[str]]:
    """Per VM, the only nodes a pivot may use: every rule's whitelist (ban, fence, among...).
    `given` is that intersection already made (`Prepared.allowed`), taken as is."""
    if given is not None:
        return dict(given)
    out: dict[str, frozenset[str]] = {}
    for c in constraints:
        for vm, nodes in (c.allowed(src) or {}).items():
            out[vm] = out[vm] & nodes if vm in out else nodes
    return out
