"""What a constraint plugin sees when it posts itself into a CP-SAT model.

The model builder (`vmgrid.solver.cpsat`) fills a `PostContext`: for every VM that ends running,
the literals saying on which node it ends (a fixed VM has the constant 1 on its host); for every
node, whether it ends online. Plugins only read these and add constraints, each enforced by the
literals of `enforce(constraint)` so that an infeasible model can name the culprits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ortools.sat.python import cp_model
from vmgrid.solver.model import Model, VMState

if TYPE_CHECKING:
    from vmgrid.solver.constraints.base import Constraint

Lit = cp_model.IntVar | int
"""A 0/1 literal: a CP-SAT Boolean variable or the constant 0/1."""


@dataclass
class PostContext:
    """Variables of one CP-SAT reconfiguration model, shared by every plugin."""

    cp: cp_model.CpModel
    src: Model
    target_state: Mapping[str, VMState]
    demand: Mapping[str, Mapping[str, int]]
    placement: dict[str, dict[str, Lit]]
    node_on: dict[str, Lit]
    enforcement: dict[int, cp_model.IntVar] = field(default_factory=dict)
    costs: list[tuple[Any, int]] = field(default_factory=list)
    _by_node: dict[str, list[tuple[str, Lit]]] | None = None

    def place(self, vm: str) -> Mapping[str, Lit]:
        """node -> literal "VM ends running there"; empty if the VM does not end running."""
        return self.placement.get(vm, {})

    def lit(self, vm: str, node: str) -> Lit:
        return self.placement.get(vm, {}).get(node, 0)

    def on_node(self, node: str) -> list[tuple[str, Lit]]:
        """Every (VM, literal) that may end running on `node`."""
        if self._by_node is None:
            index: dict[str, list[tuple[str, Lit]]] = {}
            for vm, row in self.placement.items():
                for n, lit in row.items():
                    index.setdefault(n, []).append((vm, lit))
            self._by_node = index
        return self._by_node.get(node, [])

    def nodes_of(self, vms: Iterable[str]) -> set[str]:
        """Nodes where any of `vms` may end running."""
        out: set[str] = set()
        for vm in vms:
            out.update(self.place(vm))
        return out

    def is_free(self, vm: str) -> bool:
        row = self.placement.get(vm, {})
        return any(not isinstance(lit, int) for lit in row.values())

    def enforce(self, constraint: Constraint) -> list[cp_model.IntVar]:
        """Enforcement literals for `constraint` (none unless the model explains infeasibility)."""
        lit = self.enforcement.get(id(constraint))
        return [] if lit is None else [lit]

    def add_cost(self, expr: Any, weight: int) -> None:
        """A soft term the objective adds with `weight` (network affinity uses it)."""
        self.costs.append((expr, weight))


def any_of(ctx: PostContext, lits: list[Lit], name: str) -> Lit:
    """A literal true iff some literal of `lits` is true (constant-folded)."""
    if any(isinstance(x, int) and x == 1 for x in lits):
        return 1
    var_lits = [x for x in lits if not isinstance(x, int)]
    if not var_lits:
        return 0
    if len(var_lits) == 1:
        return var_lits[0]
    b = ctx.cp.new_bool_var(name)
    ctx.cp.add_max_equality(b, var_lits)
    return b
