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
from vmgrid.solver.roadef.eject import can_take, choices_of, draw_paying, residents
from vmgrid.solver.roadef.instance import IntArray
from vmgrid.solver.roadef.lns import Neighbourhood
from vmgrid.solver.roadef.state import AssignmentState

POOL = 400
"""Processes paying load cost sampled (by the load cost their leaving saves) to weigh the
machines that could take them."""


def receive_neighbourhood(
    state: AssignmentState, size: int, max_free: int, rng: np.random.Generator
) -> Neighbourhood | None:
    """Draw up to half of `size` machines (at least one), each weighed by the load cost it
    could save by taking processes on machines paying load cost (`_saving_if_emptied`, over a
    sample of those processes); free the processes whose move to one of them could save (the
    largest saving first, up to half of `max_free`), each with its machine, its home and those
    receivers, and the processes on the receivers (those that arrived first), each with its
    machine, its home, the receivers and its cheapest single moves. None when no process pays
    load cost that another machine could take for less."""
    inst = state.inst
    paying = draw_paying(state, POOL, rng)
    if paying is None:
        return None
    pool, relief = paying
    saving = _saving_if_emptied(state, pool, relief)
    weight = saving.sum(axis=0)
    if weight.sum() <= 0:
        return None
    k = min(max(1, size // 2), int((weight > 0).sum()))
    chosen = rng.choice(inst.machines, k, replace=False, p=weight / weight.sum())
    best = saving[:, chosen].max(axis=1)
    fits = saving[:, chosen] > 0
    rivals = np.flatnonzero((best > 0) & ~np.isin(state.x[pool], chosen))
    rivals = rivals[np.argsort(-best[rivals], kind="stable")][: max(1, max_free // 2)]
    domains: list[tuple[int, ...]] = []
    for i in rivals.tolist():
        p = int(pool[i])
        mine = [int(m) for m in chosen[fits[i]]]
        domains.append(tuple(dict.fromkeys([int(state.x[p]), int(state.initial[p]), *mine])))
    movers = pool[rivals]
    others, capped = residents(state, chosen, movers, max(0, max_free - movers.shape[0]), rng)
    near = [int(m) for m in chosen]
    for q in others.tolist():
        domains.append(choices_of(state, q, near))
    machines = sorted({m for dom in domains for m in dom})
    free = tuple(int(p) for p in np.concatenate([movers, others]))
    return Neighbourhood(tuple(machines), free, "receive", capped, tuple(domains))


def _saving_if_emptied(state: AssignmentState, pool: IntArray, relief: np.ndarray) -> np.ndarray:
    """[len(pool), M]: what moving each process to each machine that could take it would save
    if that machine held nothing else: its relief less the load cost it alone would pay there."""
    inst = state.inst
    alone = np.maximum(0, inst.requirement[pool][:, None, :] - inst.safety[None, :, :])
    saving = np.maximum(0.0, relief[:, None] - alone @ inst.load_weight)
    result: np.ndarray = saving * can_take(state, pool)
    return result
