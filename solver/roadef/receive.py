"""Receiver neighbourhoods: a few machines that could take processes paying load cost elsewhere,
every such process that could go there, and the processes that arrived there first.

Where the transient resources are tight, only a handful of machines can take a large process
(their capacity minus what their own original processes hold for good), and many processes from
many machines compete for them. Which of those processes a receiving machine should hold is one
packing decision over all the competitors at once: an ejection neighbourhood (`eject.py`) starts
from a few processes and sees only their rivals already on the receivers, and a neighbourhood of
whole machines sees the receivers without the processes waiting elsewhere. This one frees the
receivers' newcomers and the competitors together, so CP-SAT can swap one large process for two
smaller ones, or hand a receiver to the process whose leaving saves most.
"""

from __future__ import annotations

import numpy as np
from vmgrid.solver.roadef.eject import _choices, can_take
from vmgrid.solver.roadef.instance import IntArray
from vmgrid.solver.roadef.lns import Neighbourhood
from vmgrid.solver.roadef.state import AssignmentState

POOL = 400
"""Processes paying load cost sampled (by the load cost their leaving saves) to weigh the
machines that could take them."""


def receive_neighbourhood(
    state: AssignmentState, receivers: int, max_free: int, rng: np.random.Generator
) -> Neighbourhood | None:
    """Draw up to `receivers` machines, each weighed by the load cost it could save by taking,
    under its safety capacity, the processes on machines paying load cost; free the processes
    paying load cost that could go to them (the largest savings first, up to half of
    `max_free`), each with its machine, its home and the receivers that could take it, and the
    processes on the receivers (those that arrived first), each with its machine, its home, the
    receivers and its cheapest single moves. None when no process pays load cost that a
    machine could take without paying it too."""
    inst = state.inst
    over = np.maximum(0, state.used - inst.safety)
    relief = (np.minimum(inst.requirement, over[state.x]) @ inst.load_weight).astype(np.float64)
    paying = np.flatnonzero(relief > 0)
    if paying.size == 0:
        return None
    pool = rng.choice(
        paying, min(paying.size, POOL), replace=False, p=relief[paying] / relief[paying].sum()
    )
    weight = relief[pool] @ can_take(state, pool, safe=True)
    if weight.sum() <= 0:
        return None
    k = min(max(1, receivers), int((weight > 0).sum()))
    chosen = rng.choice(inst.machines, k, replace=False, p=weight / weight.sum())
    fits = can_take(state, pool, chosen)
    rivals = np.flatnonzero(fits.any(axis=1) & ~np.isin(state.x[pool], chosen))
    rivals = rivals[np.argsort(-relief[pool[rivals]], kind="stable")][: max(1, max_free // 2)]
    domains: list[tuple[int, ...]] = []
    for i in rivals.tolist():
        p = int(pool[i])
        mine = [int(m) for m in chosen[fits[i]]]
        domains.append(tuple(dict.fromkeys([int(state.x[p]), int(state.initial[p]), *mine])))
    movers = pool[rivals]
    others = _residents(state, chosen, max(0, max_free - movers.shape[0]), rng)
    near = [int(m) for m in chosen]
    for q in others.tolist():
        domains.append(_choices(state, q, near))
    on_chosen = int(np.isin(state.x, chosen).sum())
    machines = sorted({m for dom in domains for m in dom})
    free = tuple(int(p) for p in np.concatenate([movers, others]))
    capped = on_chosen > others.shape[0]
    return Neighbourhood(tuple(machines), free, "receive", capped, tuple(domains))


def _residents(
    state: AssignmentState, machines: IntArray, room: int, rng: np.random.Generator
) -> IntArray:
    """Up to `room` processes on `machines`, those away from home first (they can go back)."""
    on = np.flatnonzero(np.isin(state.x, machines))
    arrived = on[state.initial[on] != state.x[on]]
    stayed = on[state.initial[on] == state.x[on]]
    first = rng.permutation(arrived)[:room]
    rest = rng.permutation(stayed)[: room - first.shape[0]]
    return np.concatenate([first, rest]).astype(np.int64)
