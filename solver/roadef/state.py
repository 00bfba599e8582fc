"""The current assignment with every count the rules and the objective need, kept incrementally.

Moving one process touches two machines, one service and at most two locations and two
neighbourhoods, so a move updates a handful of rows instead of recomputing the objective. The
local search evaluates a process's move to every machine at once with numpy over these arrays.
The independent `checker` recomputes everything from scratch; tests compare the two.
"""

from __future__ import annotations

import numpy as np
from vmgrid.solver.roadef.instance import BoolArray, IntArray, RoadefInstance


class AssignmentState:
    """Usage, held transient usage, per-service placement counts and the cost terms."""

    def __init__(self, instance: RoadefInstance, initial: IntArray, current: IntArray) -> None:
        inst = self.inst = instance
        self.initial = initial.astype(np.int64).copy()
        self.x = current.astype(np.int64).copy()
        n_m, n_s = inst.machines, inst.services
        self.used = np.zeros((n_m, inst.resources), dtype=np.int64)
        np.add.at(self.used, self.x, inst.requirement)
        # What each machine's original processes use: on a transient resource they hold it there
        # wherever they go, so capacity minus this is all a machine can ever take from others.
        self.original_used = np.zeros_like(self.used)
        np.add.at(self.original_used, self.initial, inst.requirement)
        moved = self.x != self.initial
        self.held = self.used.copy()  # usage plus processes that left (transient resources)
        np.add.at(self.held, self.initial[moved], inst.requirement[moved])
        self.on_machine = np.zeros((n_s, n_m), dtype=np.int32)
        np.add.at(self.on_machine, (inst.service, self.x), 1)
        self.in_location = np.zeros((n_s, inst.locations), dtype=np.int32)
        np.add.at(self.in_location, (inst.service, inst.location[self.x]), 1)
        self.in_zone = np.zeros((n_s, inst.neighborhoods), dtype=np.int32)
        np.add.at(self.in_zone, (inst.service, inst.neighborhood[self.x]), 1)
        self.spread = (self.in_location > 0).sum(axis=1)
        self.moved_count = np.bincount(inst.service[moved], minlength=n_s).astype(np.int64)
        sizes = np.bincount(inst.service, minlength=n_s)
        self.moved_histogram = np.bincount(self.moved_count, minlength=int(sizes.max()) + 2)
        self.dependents: list[list[int]] = [[] for _ in range(n_s)]
        for s, deps in enumerate(inst.dependencies):
            for s2 in deps:
                self.dependents[s2].append(s)
        self.dep_array = [np.array(d, dtype=np.int64) for d in inst.dependencies]
        self.rdep_array = [np.array(d, dtype=np.int64) for d in self.dependents]
        self.transient_cols = np.flatnonzero(inst.transient)
        self.solid_cols = np.flatnonzero(~inst.transient)
        self.machine_load = self.load_of(self.used, np.arange(n_m))
        self.machine_balance = self.balance_of(self.used, np.arange(n_m))
        self.process_move = int(inst.process_move_cost[moved].sum())
        self.machine_move = int(inst.machine_move_cost[self.initial, self.x].sum())

    # --- cost terms -------------------------------------------------------------------------
    def load_of(self, used: IntArray, machines: IntArray) -> IntArray:
        """Load cost of machines `machines` if their usage were the rows of `used`."""
        over = np.maximum(0, used - self.inst.safety[machines])
        result: IntArray = over @ self.inst.load_weight
        return result

    def balance_of(self, used: IntArray, machines: IntArray) -> IntArray:
        if not self.inst.balances:
            return np.zeros(used.shape[:-1], dtype=np.int64)
        free = self.inst.capacity[machines] - used
        total = np.zeros(free.shape[:-1], dtype=np.int64)
        for b in self.inst.balances:
            total += b.weight * np.maximum(0, b.target * free[..., b.r1] - free[..., b.r2])
        return total

    @property
    def service_move(self) -> int:
        return int(np.flatnonzero(self.moved_histogram)[-1])

    @property
    def total(self) -> int:
        inst = self.inst
        return int(
            self.machine_load.sum()
            + self.machine_balance.sum()
            + inst.weight_process_move * self.process_move
            + inst.weight_service_move * self.service_move
            + inst.weight_machine_move * self.machine_move
        )

    # --- moves ------------------------------------------------------------------------------
    def move(self, p: int, dest: int) -> None:
        """Put process `p` on machine `dest`, with no feasibility check (callers check)."""
        inst = self.inst
        src = int(self.x[p])
        if src == dest:
            return
        home = int(self.initial[p])
        req = inst.requirement[p]
        s = int(inst.service[p])
        self.used[src] -= req
        self.used[dest] += req
        if src != home:
            self.held[src] -= req
        if dest != home:
            self.held[dest] += req
        self.on_machine[s, src] -= 1
        self.on_machine[s, dest] += 1
        l1, l2 = inst.location[src], inst.location[dest]
        self.in_location[s, l1] -= 1
        self.in_location[s, l2] += 1
        self.spread[s] = int((self.in_location[s] > 0).sum())
        self.in_zone[s, inst.neighborhood[src]] -= 1
        self.in_zone[s, inst.neighborhood[dest]] += 1
        both = np.array([src, dest])
        self.machine_load[both] = self.load_of(self.used[both], both)
        self.machine_balance[both] = self.balance_of(self.used[both], both)
        step = int(dest != home) - int(src != home)
        if step:
            self.process_move += step * int(inst.process_move_cost[p])
            self.moved_histogram[self.moved_count[s]] -= 1
            self.moved_count[s] += step
            self.moved_histogram[self.moved_count[s]] += 1
        mmc = inst.machine_move_cost[home]
        self.machine_move += int(mmc[dest] - mmc[src])
        self.x[p] = dest

    # --- feasibility ------------------------------------------------------------------------
    def machine_ok(self, m: int) -> bool:
        cap = self.inst.capacity[m]
        t = self.transient_cols
        return bool((self.used[m] <= cap).all() and (self.held[m, t] <= cap[t]).all())

    def service_ok(self, s: int, zones: tuple[int, ...]) -> bool:
        """Conflict and spread of `s`, dependency of `s` and its dependents in `zones`."""
        if self.on_machine[s].max(initial=0) > 1 or self.spread[s] < self.inst.spread_min[s]:
            return False
        for n in zones:
            if self.in_zone[s, n] > 0:
                deps = self.dep_array[s]
                if deps.size and (self.in_zone[deps, n] == 0).any():
                    return False
            else:
                rdeps = self.rdep_array[s]
                if rdeps.size and (self.in_zone[rdeps, n] > 0).any():
                    return False
        return True

    def feasible_after(self, machines: set[int], services: set[int], zones: set[int]) -> bool:
        """Exact check of the rules a change to these machines, services and zones can break."""
        z = tuple(zones)
        return all(self.machine_ok(m) for m in machines) and all(
            self.service_ok(s, z) for s in services
        )

    def feasible_everywhere(self) -> bool:
        """Every rule on every machine and service (for an assignment built elsewhere)."""
        inst = self.inst
        cap = inst.capacity
        t = self.transient_cols
        if (self.used > cap).any() or (self.held[:, t] > cap[:, t]).any():
            return False
        if self.on_machine.max(initial=0) > 1 or (self.spread < inst.spread_min).any():
            return False
        present = self.in_zone > 0
        return all(
            not (present[s] & ~present[deps].all(axis=0)).any()
            for s, deps in enumerate(self.dep_array)
            if deps.size
        )

    def shift_options(self, p: int) -> tuple[IntArray, BoolArray]:
        """Cost change and feasibility of moving `p` to each machine (its own is infeasible)."""
        inst = self.inst
        src = int(self.x[p])
        home = int(self.initial[p])
        s = int(inst.service[p])
        req = inst.requirement[p]
        n_m = inst.machines
        all_m = np.arange(n_m)
        grown = self.used + req
        ok = (grown[:, self.solid_cols] <= inst.capacity[:, self.solid_cols]).all(axis=1)
        t = self.transient_cols
        if t.size:
            away = (all_m != home).astype(np.int64)[:, None]
            ok &= (self.held[:, t] + away * req[t] <= inst.capacity[:, t]).all(axis=1)
        ok &= self.on_machine[s] == 0
        ok[src] = False
        if inst.spread_min[s] > 1:
            l1 = inst.location[src]
            base = self.spread[s] - int(self.in_location[s, l1] == 1)
            per_loc = base + (self.in_location[s] == 0).astype(np.int64)
            per_loc[l1] = self.spread[s]
            ok &= per_loc[inst.location] >= inst.spread_min[s]
        n1 = int(inst.neighborhood[src])
        zone_ok = np.ones(inst.neighborhoods, dtype=np.bool_)
        deps = self.dep_array[s]
        if deps.size:
            zone_ok &= (self.in_zone[deps] > 0).all(axis=0)
        rdeps = self.rdep_array[s]
        if self.in_zone[s, n1] == 1 and rdeps.size and (self.in_zone[rdeps, n1] > 0).any():
            zone_ok[:] = False
        zone_ok[n1] = True
        ok &= zone_ok[inst.neighborhood]
        removed = (self.used[src] - req)[None, :]
        one = np.array([src])
        src_delta = int(
            self.load_of(removed, one)[0]
            + self.balance_of(removed, one)[0]
            - self.machine_load[src]
            - self.machine_balance[src]
        )
        delta = (
            self.load_of(grown, all_m)
            + self.balance_of(grown, all_m)
            - self.machine_load
            - self.machine_balance
            + src_delta
        )
        away_now = int(src != home)
        away_new = (all_m != home).astype(np.int64)
        delta += inst.weight_process_move * int(inst.process_move_cost[p]) * (away_new - away_now)
        mmc = inst.machine_move_cost[home]
        delta += inst.weight_machine_move * (mmc - mmc[src])
        delta += inst.weight_service_move * self._service_move_step(s, away_new - away_now)
        return delta, ok

    def _service_move_step(self, s: int, step: IntArray) -> IntArray:
        """Change of the largest moved count if service `s` moves `step` more processes."""
        top = self.service_move
        c = int(self.moved_count[s])
        up = max(top, c + 1) - top
        down = -1 if (c == top and self.moved_histogram[c] == 1 and c > 0) else 0
        return np.where(step > 0, up, np.where(step < 0, down, 0))
