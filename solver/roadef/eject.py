"""Ejection neighbourhoods: a process that should leave a machine paying load cost, the few
machines that can take it, and the processes that would have to make room there.

Where the transient resources are tight, a process can only move to a machine whose capacity
minus what that machine's own original processes hold for good (they hold it wherever they go)
takes it: often a handful of machines, whose room processes from elsewhere took first. Shifts
and swaps cannot undo that: moving one newcomer out gains nothing until the big process moves
in. This neighbourhood frees the big process with those machines as its choices and the
processes on them with a few choices each (where they are, home, where a shift would pay most,
and the other destinations), so CP-SAT can make the whole chain of moves at once. It frees
processes, not machines, so it stays small where machines hold tens of processes.
"""

from __future__ import annotations

import numpy as np
from vmgrid.solver.roadef.instance import BoolArray, IntArray
from vmgrid.solver.roadef.lns import Neighbourhood
from vmgrid.solver.roadef.state import AssignmentState

ALTERNATIVES = 3
"""Machines besides its own, its home and the destinations that a displaced process may take:
its best single moves by cost."""


def can_take(
    state: AssignmentState, procs: IntArray, machines: IntArray | None = None
) -> BoolArray:
    """[len(procs), len(machines)] (every machine by default): machines that could take each
    process once others made room: within capacity on every resource, within capacity minus
    what the machine's original processes hold for good on transient ones (a process's own home
    excepted), no other process of its service there, and not its current machine."""
    inst = state.inst
    ms = np.arange(inst.machines) if machines is None else machines
    req = inst.requirement[procs]
    cap = inst.capacity[ms]
    fits: BoolArray = np.asarray((cap[None, :, :] >= req[:, None, :]).all(axis=2))
    t = state.transient_cols
    if t.size:
        room = cap[:, t] - state.original_used[ms][:, t]
        takes: BoolArray = np.asarray((room[None, :, :] >= req[:, None, t]).all(axis=2))
        takes |= state.initial[procs][:, None] == ms[None, :]
        fits &= takes
    fits &= state.on_machine[inst.service[procs][:, None], ms[None, :]] == 0
    fits &= state.x[procs][:, None] != ms[None, :]
    return fits


def eject_neighbourhood(
    state: AssignmentState, sources: int, max_free: int, rng: np.random.Generator
) -> Neighbourhood | None:
    """Draw up to `sources` processes on machines paying load cost, by the load cost their
    leaving would save (among those some machine could take), and the machines that could take
    them; free those processes with those machines as their choices, and the processes on those
    machines (those that arrived there first: they can go home) with a few choices each, at most
    `max_free` in all. None when no process on a machine paying load cost could go anywhere."""
    paying = draw_paying(state, 4 * max(1, sources), rng)
    if paying is None:
        return None
    drawn, _relief = paying
    fits = can_take(state, drawn)
    movable = fits.any(axis=1)
    if not movable.any():
        return None
    picked = np.flatnonzero(movable)[: max(1, min(sources, max_free))]
    movers = drawn[picked]
    dests = np.flatnonzero(fits[picked].any(axis=0))
    others, capped = residents(state, dests, movers, max(0, max_free - movers.shape[0]), rng)
    domains: list[tuple[int, ...]] = []
    for i, p in zip(picked.tolist(), movers.tolist(), strict=True):
        mine = [int(d) for d in np.flatnonzero(fits[i])]
        domains.append(tuple(dict.fromkeys([int(state.x[p]), int(state.initial[p]), *mine])))
    near = dests.tolist() if dests.shape[0] <= 2 else []
    for q in others.tolist():
        domains.append(choices_of(state, q, near))
    machines = sorted({mm for dom in domains for mm in dom})
    free = tuple(int(p) for p in np.concatenate([movers, others]))
    return Neighbourhood(tuple(machines), free, "eject", capped, tuple(domains))


def draw_paying(
    state: AssignmentState, k: int, rng: np.random.Generator
) -> tuple[IntArray, np.ndarray] | None:
    """Up to `k` processes on machines paying load cost, drawn by the load cost their leaving
    would save, with those savings; None when no machine pays load cost."""
    inst = state.inst
    over = np.maximum(0, state.used - inst.safety)
    relief = (np.minimum(inst.requirement, over[state.x]) @ inst.load_weight).astype(np.float64)
    paying = np.flatnonzero(relief > 0)
    if paying.size == 0:
        return None
    weights = relief[paying] / relief[paying].sum()
    drawn: IntArray = rng.choice(paying, min(paying.size, k), replace=False, p=weights)
    return drawn, relief[drawn]


def residents(
    state: AssignmentState,
    machines: IntArray,
    besides: IntArray,
    room: int,
    rng: np.random.Generator,
) -> tuple[IntArray, bool]:
    """Up to `room` processes on `machines` other than `besides`, those that arrived there first
    (they can go home), and whether some were left out."""
    on = np.flatnonzero(np.isin(state.x, machines) & ~np.isin(np.arange(state.x.shape[0]), besides))
    arrived = on[state.initial[on] != state.x[on]]
    stayed = on[state.initial[on] == state.x[on]]
    first = rng.permutation(arrived)[:room]
    rest = rng.permutation(stayed)[: room - first.shape[0]]
    chosen: IntArray = np.concatenate([first, rest]).astype(np.int64)
    return chosen, on.shape[0] > chosen.shape[0]


def choices_of(state: AssignmentState, q: int, dests: list[int]) -> tuple[int, ...]:
    """Where a displaced process may go: where it is, home, the other destinations and its
    `ALTERNATIVES` cheapest single moves."""
    delta, ok = state.shift_options(q)
    best: list[int] = []
    if ok.any():
        cand = np.flatnonzero(ok)
        k = min(ALTERNATIVES, cand.shape[0])
        top = cand[np.argpartition(delta[cand], k - 1)[:k]]
        best = [int(y) for y in top]
    return tuple(dict.fromkeys([int(state.x[q]), int(state.initial[q]), *dests, *best]))
