"""What the large-neighbourhood search compares and checks: objective values and validity.

`Destination` is a complete answer (VM -> node for every VM that ends running) with the nodes
that end online and the loads under the problem's new demands. Its `value` is the objective of
`vmgrid.solver.objectives` computed from its definition, level by level (a tuple compared
lexicographically, the network-affinity cost last), so that an LNS step is kept only when the
whole destination is better, not only its submodel. `violations` asks the independent
validator's rule checks (`vmgrid.solver.validate_rules`, written from each rule's definition,
demands from the problem after `preserve`), restricted to the rules and nodes a step touched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmgrid.solver import constraints as rules
from vmgrid.solver.model import MEMORY, Model, NodeState, Resources, VMState
from vmgrid.solver.objectives import parse
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.problem import Prepared
from vmgrid.solver.validate_rules import Final, Stay, as_rules, check_final, preserved_demands


class ScopeIndex:
    """The rules by the VMs and nodes they name (rules naming neither apply everywhere)."""

    def __init__(self, constraints: list[Any]) -> None:
        self.by_vm: dict[str, list[int]] = {}
        self.by_node: dict[str, list[int]] = {}
        self.always: list[int] = []
        for i, c in enumerate(constraints):
            vms, nodes = c.vms_in_scope(), c.nodes_in_scope()
            for v in vms:
                self.by_vm.setdefault(v, []).append(i)
            for n in nodes:
                self.by_node.setdefault(n, []).append(i)
            if not vms and not nodes:
                self.always.append(i)

    def around(self, vms: Iterable[str], nodes: Iterable[str]) -> list[int]:
        """Indices, in order, of the rules naming a VM of `vms` or a node of `nodes`, and of
        those naming neither."""
        idx = set(self.always)
        for v in vms:
            idx.update(self.by_vm.get(v, ()))
        for n in nodes:
            idx.update(self.by_node.get(n, ()))
        return sorted(idx)


def power_scope(prep: Prepared) -> tuple[bool, frozenset[str], frozenset[str]]:
    """(consolidating, nodes whose power the solver may switch off, nodes kept online)."""
    consolidating = any(n == "consolidation" for lv in parse(prep.problem.objective) for _, n in lv)
    forced = {n: s for c in prep.problem.constraints for n, s in c.node_states().items()}
    capped = {
        n for c in prep.problem.constraints if isinstance(c, rules.MaxOnline) for n in c.nodes
    }
    kept = frozenset(n for n, s in forced.items() if s is NodeState.ONLINE)
    switchable = (set(prep.src.nodes) if consolidating else capped) - set(forced)
    return consolidating, frozenset(switchable), kept


class Judge:
    """Objective and independent checks of destinations of one prepared problem."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        src = prep.src
        self.rules = as_rules(prep.problem.constraints)
        self.demands: dict[str, Resources] = {
            v: vm.demand for v, vm in src.vms.items()
        } | preserved_demands(src, self.rules)
        self.levels = parse(prep.problem.objective)
        self.consolidating, self.switchable, _ = power_scope(prep)
        self.index = ScopeIndex(self.rules)
        self.affinity = [c for c in self.rules if isinstance(c, rules.NetworkAffinity)]

    def online(self, hosts: Mapping[str, str]) -> set[str]:
        """Nodes that end online: the prepared states, minus the empty nodes the solver may
        switch off (every node when consolidating, the maxOnline nodes otherwise)."""
        used = set(hosts.values())
        return {
            n
            for n, s in self.prep.node_state.items()
            if s is NodeState.ONLINE and (n in used or n not in self.switchable)
        }

    def value(self, hosts: Mapping[str, str]) -> tuple[int, ...]:
        """The objective of `hosts`, one entry per lexicographic level, then the affinity cost."""
        out = []
        for level in self.levels:
            out.append(sum(w * self._term(name, hosts) for w, name in level))
        out.append(
            sum(
                mbit
                for c in self.affinity
                for a, b, mbit in c.pairs
                if a in hosts and b in hosts and hosts[a] != hosts[b]
            )
        )
        return tuple(out)

    def _term(self, name: str, hosts: Mapping[str, str]) -> int:
        src = self.prep.src
        if name == "consolidation":
            return len(self.online(hosts))
        if name == "balance":
            return self._balance(hosts)
        total = 0
        for v, vm in src.vms.items():
            if vm.running and vm.host is not None and v in hosts and hosts[v] != vm.host:
                if name == "migrations":
                    total += 1
                elif name == "memory":
                    total += max(1, vm.need(MEMORY))
                else:
                    total += vm.duration_s("migrate")
        return total

    def _balance(self, hosts: Mapping[str, str]) -> int:
        load = self.loads(hosts, None)
        total = 0
        for rc in self.prep.src.resources:
            peak = 0
            for n, per in load.items():
                cap = self.prep.src.nodes[n].cap(rc)
                if cap > 0:
                    peak = max(peak, math.ceil(1000 * per.get(rc, 0) / cap))
            total += peak
        return total

    def loads(self, hosts: Mapping[str, str], nodes: set[str] | None) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for v, n in hosts.items():
            if nodes is not None and n not in nodes:
                continue
            acc = out.setdefault(n, {})
            for rc, q in self.demands[v].items():
                acc[rc] = acc.get(rc, 0) + q
        return out

    def violations(
        self,
        hosts: Mapping[str, str],
        vms: Iterable[str] | None = None,
        nodes: set[str] | None = None,
    ) -> list[str]:
        """The validator's messages for `hosts`: every rule and node when `vms` is None, else
        the rules that name a VM of `vms`, a node of `nodes`, or a VM now on one of `nodes`."""
        src = self.prep.src
        if vms is None:
            picked: list[int] | range = range(len(self.rules))
            nodes = set(src.nodes)
            moved = [v for v, n in hosts.items() if src.vms[v].host not in (None, n)]
        else:
            nodes = set(nodes or ())
            wanted = set(vms) | {v for v, n in hosts.items() if n in nodes}
            picked = self.index.around(wanted, nodes)
            moved = [v for v in set(vms) if v in hosts and src.vms[v].host not in (None, hosts[v])]
        out: list[str] = []
        counted = set(nodes)
        for i in picked:
            rule = self.rules[i]
            if isinstance(rule, rules.ResourceCapacity):
                counted.update(rule.nodes)
        load = self.loads(hosts, counted)
        for n, per in load.items():
            if self.prep.node_state[n] is not NodeState.ONLINE:
                out.append(f"node {n} ends offline but hosts VMs")
            out.extend(
                f"node {n}: ends with {rc} {q} > {src.nodes[n].cap(rc)}"
                for rc, q in per.items()
                if q > src.nodes[n].cap(rc)
            )
        timeline = _Destination(src, self.prep.vm_state, moved, hosts, out)
        final = Final(hosts, self.online(hosts), load)
        check_final(timeline, [self.rules[i] for i in picked], final)
        return out

    def conflicts(self, hosts: Mapping[str, str]) -> tuple[list[str], list[Any]]:
        """What an invalid answer breaks: the nodes over capacity (or offline with VMs) and the
        rules the validator's checks refuse, one rule at a time."""
        src = self.prep.src
        load = self.loads(hosts, None)
        over = sorted(
            n
            for n, per in load.items()
            if self.prep.node_state[n] is not NodeState.ONLINE
            or any(q > src.nodes[n].cap(rc) for rc, q in per.items())
        )
        moved = [v for v, n in hosts.items() if src.vms[v].host not in (None, n)]
        timeline = _Destination(src, self.prep.vm_state, moved, hosts, [])
        final = Final(hosts, self.online(hosts), load)
        broken = []
        for c in self.rules:
            seen = len(timeline.messages)
            check_final(timeline, [c], final)
            if len(timeline.messages) > seen:
                broken.append(c)
        return over, broken


@dataclass
class _Destination:
    """The validator's `Timeline` of a destination without a plan: one migration per moved VM
    (what root and quarantine judge) and the prepared end states."""

    src: Model
    end_state: Mapping[str, VMState]
    moved: list[str]
    hosts: Mapping[str, str]
    messages: list[str]

    @property
    def stays(self) -> Mapping[str, list[Stay]]:
        return {}

    @property
    def actions(self) -> list[Action]:
        return [
            Action(i, ActionKind.MIGRATE, v, self.src.vms[v].host, self.hosts[v], 0, 1, "lns")
            for i, v in enumerate(self.moved)
        ]

    def flag(self, rule: str, message: str, time_s: int | None = None) -> None:
        self.messages.append(message)
