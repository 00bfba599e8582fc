"""The first local search in compiled code: a walk that never goes uphill, steered by locks.

The first local search (`solve.solve_roadef`) runs in parts, each steering its moves by a lock
weight (the transient capacity a move away from home holds there for good, `local.lock_weight`)
that is halved from part to part, then plainly. In Python (`local.local_search`) that took the
whole first half of the budget on the 5,000-process instances of set B; here each part is the
compiled walk (`walk.run_walk`) at zero temperature: it takes only the shifts, swaps and
ejection chains that do not raise the steered cost (exact cost plus each process's lock charge
while it is away from home), millions of attempts a second. A part ends once a chunk of it
lowers the steered cost by less than `min_rate` of it per second, or at its deadline.

Unlike `local.shift_pass`, a move home that raises the exact cost is taken when its lock
charge pays for it (that is what the lock steers toward); the search keeps the cheapest
assignment of its parts, so the first local search never ends dearer than it started.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
from vmgrid.solver.roadef.local import lock_weight
from vmgrid.solver.roadef.state import AssignmentState
from vmgrid.solver.roadef.walk import run_walk, side_by_side

COLD = 1e-9
"""The walk's temperature: only moves that do not raise the steered cost are taken."""


def steered_cost(state: AssignmentState, charges: np.ndarray | None) -> float:
    """Exact cost plus the lock charge of every process away from home."""
    if charges is None:
        return float(state.total)
    return float(state.total) + float(charges[state.x != state.initial].sum())


def descend(
    state: AssignmentState,
    lock: float,
    deadline: float,
    rng: np.random.Generator,
    chains: float = 0.3,
    chunk: float = 1.0,
    min_rate: float = 5e-4,
    threads: int = 1,
) -> AssignmentState:
    """One part of the first local search: zero-temperature walks of `chunk` seconds from
    `state`, steered by `lock` (see the module), until a chunk gains less than `min_rate` of the
    steered cost per second or `deadline` comes. Each chunk runs `threads` walks side by side
    from the same state with their own seeds and goes on from the one that ends lowest (by
    steered cost). Returns the state it ended on (the state given when the walk is not
    available or a walk's answer fails the state's own checks)."""
    charges = None
    if lock > 0 and state.transient_cols.size:
        charges = lock * lock_weight(state).astype(np.float64)
    steered = steered_cost(state, charges)
    while True:
        seconds = min(chunk, deadline - time.monotonic())
        if seconds < 0.01:
            return state
        began = time.monotonic()
        seeds = [int(rng.integers(2**62)) for _ in range(max(1, threads))]

        def one(seed: int, start: AssignmentState, seconds: float) -> AssignmentState | None:
            result = run_walk(
                start, seconds, COLD, COLD, seed, lock=charges, chain_share=chains, keep_best=False
            )
            if result is None:
                return None
            ended = AssignmentState(start.inst, start.initial, result.last)
            if ended.total != result.last_cost or not ended.feasible_everywhere():
                return None
            return ended

        ends = side_by_side([partial(one, seed, state, seconds) for seed in seeds])
        if any(e is None for e in ends):
            return state
        ended = min((e for e in ends if e is not None), key=lambda e: steered_cost(e, charges))
        before, state, steered = steered, ended, steered_cost(ended, charges)
        if (before - steered) / max(before, 1.0) / max(time.monotonic() - began, 1e-3) < min_rate:
            return state
