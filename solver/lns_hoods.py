"""Neighbourhoods of the large-neighbourhood search: which VMs to free, on which nodes.

Three kinds, each sized by a number of nodes that the search adapts:

- ``node``: a few of the least filled nodes that host VMs (the fullest ones when the objective
  has ``balance``) and the nodes with most room left; every VM on them is free. Emptying a light
  node onto the others is how CP-SAT saves a node that first-fit left open (consolidation), and
  spreading the fullest ones is how it lowers a peak (balance).
- ``conflict``: when the answer is invalid (repair), a node over capacity or the VMs of a rule
  it breaks, with nodes with most room. Otherwise, a node that VMs of the source had to leave (for an overload, a rule, a node
  going offline, or a repacking), with the nodes those VMs run on now and a few nodes with most
  room; every VM on them is free, so CP-SAT can bring some home and find the others a place.
  Offered when the objective counts migrations.
- ``rule``: the VMs of one rule (spread, among, gather, lonely, split, resourceCapacity...), the
  nodes they are on and the nodes with most room they may use; every VM there is free, so the
  rule is re-solved as a whole instead of one member at a time.

Pinned VMs (root, quarantine) are never free. A neighbourhood frees at most `max_free` VMs,
taken node by node in the order above.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from vmgrid.solver.heuristics import Placer
from vmgrid.solver.model import NodeState
from vmgrid.solver.objectives import parse
from vmgrid.solver.problem import Prepared

KINDS = ("node", "conflict", "rule")


@dataclass(frozen=True)
class Hood:
    kind: str
    free: frozenset[str]
    nodes: frozenset[str]


class Hoods:
    """The current answer's per-node view and the neighbourhood builders over it."""

    def __init__(self, prep: Prepared, hosts: Mapping[str, str], seed: int) -> None:
        self.prep = prep
        self.rng = random.Random(seed)
        self.placer = Placer(prep, dict(hosts))
        self.on: dict[str, set[str]] = {n: set() for n in prep.src.nodes}
        for v, n in hosts.items():
            self.on[n].add(v)
        self.online = np.array(
            [prep.node_state[n] is NodeState.ONLINE for n in self.placer.nodes], dtype=bool
        )
        moves = {"migrations", "memory", "mttr"}
        names = {n for lv in parse(prep.problem.objective) for _, n in lv}
        self.counts_moves = bool(names & moves)
        self.balancing = "balance" in names
        self.rules = [
            c for c in prep.problem.constraints if len(c.vms_in_scope()) >= 2 or _counts(c)
        ]
        self.broken: tuple[list[str], list[Any]] = ([], [])
        """An invalid answer's nodes over capacity and broken rules (`Judge.conflicts`)."""

    def move(self, vm: str, node: str) -> None:
        old = self.placer.hosts.get(vm)
        if old is not None:
            self.on[old].discard(vm)
        self.placer.remove(vm)
        self.placer.place(vm, node)
        self.on[node].add(vm)

    def kinds(self) -> list[str]:
        out = ["node"]
        if self.counts_moves or any(self.broken):
            out.append("conflict")
        if self.rules:
            out.append("rule")
        return out

    def build(self, kind: str, size: int, max_free: int) -> Hood | None:
        if kind == "node":
            nodes = self._light(max(1, size // 3), self.balancing) + self._roomy(size, None)
        elif kind == "conflict":
            nodes = self._broken(size) if any(self.broken) else self._home(size)
        else:
            nodes = self._rule(size)
        if not nodes:
            return None
        picked = list(dict.fromkeys(nodes))[:size]
        free: list[str] = []
        for n in picked:
            free.extend(sorted(v for v in self.on[n] if v not in self.prep.pinned))
        return Hood(kind, frozenset(free[:max_free]), frozenset(picked))

    def _fill(self) -> np.ndarray:
        """Per node, the largest share of a resource in use (0 on empty nodes)."""
        p = self.placer
        fill = np.zeros(len(p.nodes))
        for r in range(len(p.res)):
            fill = np.maximum(fill, p.load[:, r] / np.maximum(p.cap[:, r], 1))
        return fill

    def _light(self, count: int, fullest: bool = False) -> list[str]:
        """`count` nodes drawn among the 3 x `count` least (or most) filled nodes that host
        VMs."""
        fill = -self._fill() if fullest else self._fill()
        used = np.array([bool(self.on[n]) for n in self.placer.nodes]) & (fill != 0)
        idx = np.nonzero(used)[0]
        if len(idx) == 0:
            return []
        pool = idx[np.argsort(fill[idx], kind="stable")[: 3 * count]]
        chosen = self.rng.sample(list(pool), min(count, len(pool)))
        return [self.placer.nodes[int(i)] for i in chosen]

    def _roomy(self, count: int, vm: str | None) -> list[str]:
        """Nodes with most room left that `vm` may use (any VM: online, not forbidden), those
        already hosting VMs first: an empty node is rarely where a better answer goes."""
        p = self.placer
        mask = (p._allowed_mask(vm) if vm is not None else self.online) & ~p.forbidden
        room = p.worst_room()
        used = np.array([bool(self.on[n]) for n in p.nodes])
        score = np.where(mask, room + np.where(used, 0.0, -2.0), -np.inf)
        k = min(count, int(mask.sum()))
        if k <= 0:
            return []
        idx = np.argpartition(-score, k - 1)[:k]
        idx = idx[np.isfinite(score[idx])]
        return [p.nodes[int(i)] for i in idx[np.argsort(-score[idx], kind="stable")]]

    def _broken(self, size: int) -> list[str]:
        """A node over capacity, or the nodes of a broken rule's VMs (and of its node scope
        for a counting rule), with nodes with most room."""
        over, broken = self.broken
        pick = self.rng.choice([*over, *broken])
        if isinstance(pick, str):
            return [pick, *self._roomy(size, None)]
        members = [v for v in pick.vms_in_scope() if self.placer.hosts.get(v) is not None]
        nodes = [str(self.placer.hosts[v]) for v in members]
        if _counts(pick):
            nodes += [n for n in pick.nodes_in_scope() if self.on.get(n)]
        probe = members[0] if members else None
        return list(dict.fromkeys(nodes))[: max(1, size // 2)] + self._roomy(size, probe)

    def _home(self, size: int) -> list[str]:
        """A node some of whose source VMs now run elsewhere (their source node still allowed
        for them), and the nodes they run on now."""
        src, hosts = self.prep.src, self.placer.hosts
        away: dict[str, list[str]] = {}
        for v, n in hosts.items():
            home = src.vms[v].host
            if n is None or home in (None, n) or not src.vms[v].running:
                continue
            if v not in self.prep.pinned and self.prep.may_host(v, str(home)):
                away.setdefault(str(home), []).append(v)
        if not away:
            return []
        homes = sorted(away)
        if any(self.on[h] for h in homes):  # a node that stays on is where a VM can go back
            homes = [h for h in homes if self.on[h]]
        home = self.rng.choice(homes)
        gone = [str(hosts[v]) for v in away[home]]
        self.rng.shuffle(gone)
        return [home, *dict.fromkeys(gone)][:size] + self._roomy(max(1, size // 4), away[home][0])

    def _rule(self, size: int) -> list[str]:
        c = self.rng.choice(self.rules)
        members = [v for v in c.vms_in_scope() if self.placer.hosts.get(v) is not None]
        nodes = [str(self.placer.hosts[v]) for v in members]
        nodes += [n for n in c.nodes_in_scope() if self.on.get(n)][:size]
        self.rng.shuffle(nodes)
        probe = members[0] if members else None
        return list(dict.fromkeys(nodes))[: max(1, size // 2)] + self._roomy(size, probe)


def _counts(c: object) -> bool:
    """Rules over nodes whose VMs matter together (resourceCapacity, runningCapacity)."""
    return getattr(c, "kind", "") in ("resourceCapacity", "runningCapacity")
