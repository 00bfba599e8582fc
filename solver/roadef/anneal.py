"""Temperatures for the annealing walk (`walk.py`): their scale and which one pays.

A walk's temperature is given in units of a typical uphill shift of the current assignment
(`temperature_scale`), so one setting means the same on instances whose costs differ by orders
of magnitude. Which multiple pays still differs between instances (a walk that takes uphill
moves freely undoes early choices on one, wanders off on another), so `HeatChooser` learns it
during the run: it keeps each heat's gain per second and draws the best one, with a share of
uniform draws so that every heat keeps being tried.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
from vmgrid.solver.roadef.local import lock_weight
from vmgrid.solver.roadef.state import AssignmentState
from vmgrid.solver.roadef.walk import WalkResult, run_walk, side_by_side


def temperature_scale(
    state: AssignmentState, rng: np.random.Generator, samples: int = 200
) -> float:
    """A typical uphill cost change of one shift: the lower quartile of the positive cost
    changes of feasible shifts of sampled processes (0 if no shift is feasible or uphill)."""
    ups: list[np.ndarray] = []
    n_p = state.inst.processes
    for p in rng.choice(n_p, min(samples, n_p), replace=False).tolist():
        delta, ok = state.shift_options(p)
        d = delta[ok]
        ups.append(d[d > 0])
    pooled = np.concatenate(ups) if ups else np.zeros(0)
    return float(np.quantile(pooled, 0.25)) if pooled.size else 0.0


class HeatChooser:
    """Draw a walk's starting heat by its decaying average gain per second."""

    HEATS = (0.3, 1.0, 3.0)
    EXPLORE = 0.3
    DECAY = 0.7

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rate = dict.fromkeys(self.HEATS, 0.0)
        self.tried = dict.fromkeys(self.HEATS, 0)

    def pick(self) -> float:
        return self.picks(1)[0]

    def picks(self, k: int) -> list[float]:
        """Heats for `k` walks side by side: the untried ones first, each once, then drawn."""
        untried = [h for h in self.HEATS if not self.tried[h]][:k]
        return untried + [self._drawn() for _ in range(k - len(untried))]

    def _drawn(self) -> float:
        if self.rng.random() < self.EXPLORE:
            return self.HEATS[int(self.rng.integers(len(self.HEATS)))]
        return max(self.HEATS, key=lambda h: self.rate[h])

    def record(self, heat: float, gain: int, cost: int, seconds: float) -> None:
        self.tried[heat] += 1
        relative = gain / max(cost, 1) / max(seconds, 1e-3)
        self.rate[heat] = self.DECAY * self.rate[heat] + (1 - self.DECAY) * relative


def anneal_step(
    state: AssignmentState,
    seconds: float,
    heats: HeatChooser,
    rng: np.random.Generator,
    stats: dict[str, int],
    lock: float = 0.0,
    chains: float = 0.0,
    threads: int = 1,
) -> AssignmentState:
    """Annealing walks from `state`; the cheapest assignment they saw (or `state`).

    `threads` walks run side by side (the compiled walk releases the interpreter lock), each
    from `state` with its own heat and seed, and the cheapest answer is kept: on two cores the
    second core would otherwise idle while a walk runs.

    With `lock` > 0 (and a transient resource) the walk is steered by `lock` times each
    process's `local.lock_weight`: an uphill move away from home that would hold transient
    capacity there for good is taken as that much dearer, a move home as that much cheaper.
    `chains`: the share of attempts that are ejection chains (`walk.run_walk`)."""
    began = time.monotonic()
    scale = temperature_scale(state, rng)
    if scale <= 0 or seconds <= 0.1:
        return state
    charges = None
    if lock > 0 and state.transient_cols.size:
        charges = lock * lock_weight(state).astype(np.float64)
    drawn = [(heat, int(rng.integers(2**62))) for heat in heats.picks(max(1, threads))]

    def one(heat: float, seed: int) -> WalkResult | None:
        t = heat * scale
        return run_walk(state, seconds, t, t / 100, seed, lock=charges, chain_share=chains)

    results = side_by_side([partial(one, heat, seed) for heat, seed in drawn])
    best = state
    for (heat, _), result in zip(drawn, results, strict=True):
        if result is None:
            continue
        gain = state.total - result.state.total
        heats.record(heat, gain, state.total, time.monotonic() - began)
        stats["walk_moves"] = stats.get("walk_moves", 0) + result.moves
        stats["walk_attempts"] = stats.get("walk_attempts", 0) + result.attempts
        stats["walk_disagreed"] = stats.get("walk_disagreed", 0) + int(result.disagreed)
        if result.state.total < best.total:
            best = result.state
    return best
