"""vmgrid's decision policy: predict, relieve overload, consolidate with hysteresis.

One cycle:
1. Predict: each VM's next demand is its current demand; its risk is the spread of its recent
   one-step changes. A host's risk is load + z·sqrt(Σ spread²).
2. Relieve: a host whose risk exceeds ``overload_level`` of its capacity, or holding a VM that
   wants more than one core of it, sheds VMs down to ``fill_level`` (CP-SAT, cheapest
   migrations, waking a sleeping host only when no running one has room).
3. Consolidate: light hosts are emptied all-or-nothing into running hosts filled up to
   ``fill_level`` (CP-SAT on the few best candidates; greedy when many hosts are light, as after
   a cold start). Hosts that just received VMs and VMs that just moved are left alone for
   ``cooldown_steps`` cycles: the band between ``fill_level`` and ``overload_level`` and the
   cooldown are the hysteresis that keeps VMs from bouncing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from vmgrid.solver.decision import cpsat
from vmgrid.solver.decision.errors import DecisionError
from vmgrid.solver.decision.greedy import best_fit, drain_host
from vmgrid.solver.decision.predict import demand_spread, host_risk
from vmgrid.solver.decision.snapshot import F64, ClusterSnapshot

MAX_MODEL_LITERALS = 3000


@dataclass(frozen=True)
class PolicyConfig:
    """Production defaults of the decision loop."""

    z: float = 2.0
    """Spreads of headroom a host is filled to (about a 2 % chance per cycle of outgrowing it)."""
    trigger_z: float = 0.0
    """Spreads of headroom below capacity at which a host counts as overloaded. 0: relieve what
    is overloaded now; prevention is the job of the placement headroom ``z``. (Relieving a
    predicted overload costs the same migrations as relieving it when it happens.)"""
    spread_window: int = 12
    """Past cycles used to measure a VM's spread (one hour at 300 s)."""
    default_spread_share: float = 0.1
    """Spread assumed, as a share of demand, for a VM with too little history."""
    overload_level: float = 1.0
    """Host risk / capacity above which the host is relieved."""
    fill_level: float = 1.0
    """Host risk / capacity up to which relief and consolidation fill a host."""
    cooldown_steps: int = 3
    """Cycles during which a moved VM stays and a host that received VMs is not emptied."""
    drain_candidates: int = 8
    """Light hosts the consolidation model considers per cycle."""
    destinations: int = 16
    """Running hosts with the most room offered as targets to each model."""
    wake_candidates: int = 4
    """Sleeping hosts offered to the relief model."""
    solver_deterministic_s: float = 0.03
    solver_workers: int = 1
    max_moves: int | None = None
    """Most moves per cycle: relief first, then consolidation of whole hosts while they fit in
    what is left (a host is emptied all or nothing). None: no limit."""

    def __post_init__(self) -> None:
        if not 0 < self.fill_level <= self.overload_level:
            raise DecisionError(
                f"fill_level {self.fill_level} must be in (0, overload_level={self.overload_level}]"
            )
        if self.max_moves is not None and self.max_moves < 1:
            raise DecisionError(f"max_moves {self.max_moves} must be >= 1 (None: no limit)")
        if self.z < 0 or self.spread_window < 2:
            raise DecisionError(
                f"z {self.z} must be >= 0 and spread_window {self.spread_window} >= 2"
            )


@dataclass(frozen=True)
class Move:
    """One migration the policy asks for, and why."""

    vm: int
    vm_id: int
    source: int
    destination: int
    reason: str
    """"overload" or "consolidation"."""


@dataclass(frozen=True)
class Decision:
    """A cycle's answer: the moves, in order, and counters that explain them."""

    moves: tuple[Move, ...]
    overloaded_hosts: tuple[int, ...]
    emptied_hosts: tuple[int, ...]
    used_solver: dict[str, bool] = field(default_factory=dict)
    over_budget_hosts: int = 0
    """Light hosts not emptied because they hold more VMs than the cycle's budget had left
    (``max_moves``: a host is emptied whole or not at all)."""


@dataclass
class _Cycle:
    """Working values of one cycle."""

    snap: ClusterSnapshot
    demand: F64
    need: F64
    spread: F64
    cost: F64
    room: F64
    powered: np.ndarray
    overloaded: np.ndarray
    host_vms: list[list[int]]
    rank: F64
    """Host efficiency class: 0 for the most capacity per idle watt; targets fill in this order."""
    over_budget: int = 0
    """Consolidation candidates skipped for holding more VMs than the budget left."""


def _efficiency_rank(efficiency: F64) -> F64:
    """Dense rank of capacity per idle watt, best first (equal models share a rank)."""
    levels = np.unique(np.round(efficiency, 6))[::-1]
    return np.searchsorted(-levels, -np.round(efficiency, 6)).astype(np.float64)


class DecisionPolicy:
    """Stateful only for hysteresis: when each VM last moved and each host last received."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self._vm_moved: dict[int, int] = {}
        self._host_received: dict[int, int] = {}

    def decide(self, snap: ClusterSnapshot) -> Decision:
        cyc = self._cycle(snap)
        relief, used_relief = self._relieve(cyc)
        if self.config.max_moves is not None:
            relief = relief[: self.config.max_moves]
        touched = {m.source for m in relief} | {m.destination for m in relief}
        budget = None if self.config.max_moves is None else self.config.max_moves - len(relief)
        consolidation, emptied, used_drain = self._consolidate(cyc, touched, budget)
        moves = tuple(relief + consolidation)
        for m in moves:
            self._vm_moved[m.vm_id] = snap.step
            self._host_received[m.destination] = snap.step
        return Decision(
            moves=moves,
            overloaded_hosts=tuple(int(h) for h in np.flatnonzero(cyc.overloaded)),
            emptied_hosts=tuple(emptied),
            used_solver={"relief": used_relief, "consolidation": used_drain},
            over_budget_hosts=cyc.over_budget,
        )

    def _cycle(self, snap: ClusterSnapshot) -> _Cycle:
        c = self.config
        demand = snap.vm_demand_millicores
        spread = demand_spread(
            snap.vm_history_millicores,
            snap.vm_history_len,
            demand,
            c.spread_window,
            c.default_spread_share,
        )
        hosts = snap.host_count
        cap = snap.host_capacity_millicores
        load = np.asarray(np.bincount(snap.vm_host, demand, hosts), dtype=np.float64)
        spread_sq = np.asarray(np.bincount(snap.vm_host, spread**2, hosts), dtype=np.float64)
        risk = host_risk(load, spread_sq, c.z)
        trigger = host_risk(load, spread_sq, c.trigger_z)
        powered = snap.host_powered()
        too_big = np.bincount(
            snap.vm_host, demand > snap.host_vm_limit_millicores[snap.vm_host], hosts
        )
        overloaded = powered & ((trigger > cap * c.overload_level) | (too_big > 0))
        host_vms: list[list[int]] = [[] for _ in range(hosts)]
        for v, h in enumerate(snap.vm_host.tolist()):
            host_vms[h].append(v)
        migration_s = snap.vm_ram_mib / 62.5
        return _Cycle(
            snap=snap,
            demand=demand,
            need=demand + c.z * spread,
            spread=spread,
            cost=np.ceil(10 * migration_s * (1 + demand / np.maximum(cap.mean(), 1))),
            room=cap * c.fill_level - risk,
            powered=powered,
            overloaded=overloaded,
            host_vms=host_vms,
            rank=_efficiency_rank(cap / snap.host_idle_w),
        )

    def _budget(self) -> cpsat.Budget:
        return cpsat.Budget(self.config.solver_deterministic_s, self.config.solver_workers)

    def _relieve(self, cyc: _Cycle) -> tuple[list[Move], bool]:
        snap, c = cyc.snap, self.config
        sources = [int(h) for h in np.flatnonzero(cyc.overloaded)]
        if not sources:
            return [], False
        cap, limit = snap.host_capacity_millicores, snap.host_vm_limit_millicores
        running = cyc.powered & ~cyc.overloaded
        asleep = ~cyc.powered
        efficiency = cap / snap.host_idle_w
        wake = [
            int(h)
            for h in np.flatnonzero(asleep)[np.argsort(-efficiency[asleep], kind="stable")][
                : c.wake_candidates
            ]
        ]
        room = cyc.room.copy()
        room[asleep] = cap[asleep] * c.fill_level
        excess = {s: int(np.ceil(-cyc.room[s])) for s in sources}
        must = {v for s in sources for v in cyc.host_vms[s] if cyc.demand[v] > limit[s]}
        hint: dict[int, int] = {}
        trial = room.copy()
        for s in sources:
            shed = 0.0
            order = sorted(
                cyc.host_vms[s],
                key=lambda v: (v not in must, float(cyc.cost[v]) / max(float(cyc.demand[v]), 1.0)),
            )
            for v in order:
                if shed >= excess[s] and v not in must:
                    break
                d = best_fit(
                    float(cyc.need[v]), float(cyc.demand[v]), trial, limit, running, cyc.rank
                )
                if d < 0:
                    d = best_fit(
                        float(cyc.need[v]), float(cyc.demand[v]), trial, limit, asleep, cyc.rank
                    )
                if d < 0:
                    continue
                trial[d] -= cyc.need[v]
                running[d] = running[d] or bool(asleep[d])
                asleep[d] = False
                hint[v] = d
                shed += cyc.demand[v]
        by_room = np.flatnonzero(cyc.powered & ~cyc.overloaded)
        by_room = by_room[np.argsort(-room[by_room], kind="stable")][: c.destinations]
        targets = sorted(set(by_room.tolist()) | set(hint.values()) | set(wake))
        result = None
        movable = [v for s in sources for v in cyc.host_vms[s]]
        fits = {
            v: [h for h in targets if cyc.need[v] <= room[h] and cyc.demand[v] <= limit[h]]
            for v in movable
        }
        if sum(len(f) for f in fits.values()) <= MAX_MODEL_LITERALS:
            result = cpsat.relieve(
                sources,
                {s: cyc.host_vms[s] for s in sources},
                excess,
                must,
                {v: int(np.ceil(cyc.demand[v])) for v in movable},
                {v: int(np.ceil(cyc.need[v])) for v in movable},
                fits,
                {h: int(np.floor(room[h])) for h in targets},
                {h: 20000 for h in targets if not cyc.powered[h]},
                {v: int(cyc.cost[v]) for v in movable},
                hint,
                self._budget(),
            )
        plan = hint if result is None else result
        moves = [
            Move(v, int(snap.vm_id[v]), int(snap.vm_host[v]), d, "overload")
            for v, d in plan.items()
        ]
        for m in moves:
            cyc.room[m.destination] -= cyc.need[m.vm]
            cyc.powered[m.destination] = True
        return moves, result is not None

    def _candidates(self, cyc: _Cycle, touched: set[int]) -> list[int]:
        snap, c = cyc.snap, self.config
        recent = snap.step - c.cooldown_steps
        ok = cyc.powered & ~cyc.overloaded
        for h in touched:
            ok[h] = False
        for h, at in self._host_received.items():
            if at > recent and h < snap.host_count:
                ok[h] = False
        moved = np.array(
            [self._vm_moved.get(int(i), -(10**9)) > recent for i in snap.vm_id], dtype=bool
        )
        if moved.any():
            ok[np.unique(snap.vm_host[moved])] = False
        cap = snap.host_capacity_millicores
        fill = 1 - cyc.room / cap
        order = np.lexsort((fill, -cyc.rank))
        return [int(h) for h in order if ok[h]]

    def _consolidate(
        self, cyc: _Cycle, touched: set[int], budget: int | None
    ) -> tuple[list[Move], list[int], bool]:
        snap, c = cyc.snap, self.config
        candidates = self._candidates(cyc, touched)
        if not candidates or budget == 0:
            return [], [], False
        limit = snap.host_vm_limit_millicores
        room = cyc.room.copy()
        allowed = cyc.powered & ~cyc.overloaded
        for h in touched:
            allowed[h] = allowed[h] and not cyc.overloaded[h]
        greedy: dict[int, int] = {}
        emptied: list[int] = []
        receivers: set[int] = set()
        for h in candidates:
            if h in receivers:
                continue
            if budget is not None and len(greedy) + len(cyc.host_vms[h]) > budget:
                if budget - len(greedy) < 1:
                    break
                cyc.over_budget += 1
                continue  # too many VMs for what is left; a lighter host may still fit
            allowed[h] = False
            placed = drain_host(
                cyc.host_vms[h], cyc.need, cyc.demand, room, limit, allowed, cyc.rank
            )
            if placed is None:
                allowed[h] = True
                continue
            emptied.append(h)
            for v, d in placed:
                greedy[v] = d
                receivers.add(d)
        if len(emptied) > c.drain_candidates:
            return self._moves(cyc, greedy, "consolidation"), emptied, False
        group_hosts = list(dict.fromkeys(candidates[: c.drain_candidates] + emptied))
        running = np.flatnonzero(cyc.powered & ~cyc.overloaded)
        others = [
            int(h)
            for h in running[np.argsort(-cyc.room[running], kind="stable")]
            if int(h) not in group_hosts
        ]
        targets = sorted(set(others[: c.destinations]) | set(greedy.values()) | set(group_hosts))
        vms = [v for h in group_hosts for v in cyc.host_vms[h]]
        fits = {
            v: [t for t in targets if cyc.need[v] <= cyc.room[t] and cyc.demand[v] <= limit[t]]
            for v in vms
        }
        if sum(len(f) for f in fits.values()) > MAX_MODEL_LITERALS:
            return self._moves(cyc, greedy, "consolidation"), emptied, False
        result = cpsat.drain(
            [cyc.host_vms[h] for h in group_hosts],
            group_hosts,
            [int(300 * snap.host_idle_w[h]) for h in group_hosts],
            targets,
            {t: int(np.floor(max(cyc.room[t], 0))) for t in targets},
            {v: int(np.ceil(cyc.need[v])) for v in vms},
            fits,
            {v: int(cyc.cost[v]) for v in vms},
            greedy,
            self._budget(),
        )
        if result is None or (budget is not None and len(result) > budget):
            return self._moves(cyc, greedy, "consolidation"), emptied, False
        moved_from = {int(snap.vm_host[v]) for v in result}
        return self._moves(cyc, result, "consolidation"), sorted(moved_from), True

    @staticmethod
    def _moves(cyc: _Cycle, plan: dict[int, int], reason: str) -> list[Move]:
        snap = cyc.snap
        return [
            Move(v, int(snap.vm_id[v]), int(snap.vm_host[v]), d, reason) for v, d in plan.items()
        ]
