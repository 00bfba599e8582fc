"""Which machines and processes one CP-SAT neighbourhood frees, by kind (`solve.KINDS`).

Each kind aims at a different reason the local moves stall: machines paying load cost or
leaving headroom unused (`cost`), a process that could leave an overloaded machine once room is
made elsewhere (`conflict`), transient capacity held by processes that left (`home`), a
service's or a network zone's machines (`service`, `zone`), ejection and reception around one
process (`eject.py`, `receive.py`), or machines drawn at random.
"""

from __future__ import annotations

import numpy as np
from vmgrid.solver.roadef.eject import eject_neighbourhood
from vmgrid.solver.roadef.instance import BoolArray
from vmgrid.solver.roadef.lns import Neighbourhood
from vmgrid.solver.roadef.receive import receive_neighbourhood
from vmgrid.solver.roadef.state import AssignmentState


def pick_neighbourhood(
    state: AssignmentState, kind: str, size: int, max_free: int, rng: np.random.Generator
) -> Neighbourhood:
    """Choose `size` machines by `kind` and the processes on them (at most `max_free`)."""
    inst = state.inst
    n_m = inst.machines
    size = min(size, n_m)
    if kind in ("eject", "receive"):
        special = eject_neighbourhood if kind == "eject" else receive_neighbourhood
        hood = special(state, size, max_free, rng)
        if hood is not None:
            return hood
    chosen: list[int] = []
    keep = -1
    if kind == "cost":
        contribution = _wasted_headroom(state)
        if contribution.sum() <= 0:
            contribution = (state.machine_load + state.machine_balance).astype(np.float64)
        if contribution.sum() > 0:
            weights = contribution / contribution.sum()
            k = min(max(1, size // 2), int((contribution > 0).sum()))
            chosen = rng.choice(n_m, k, replace=False, p=weights).tolist()
            chosen += _holders_of_moved_originals(state, chosen, size - len(chosen), rng)
    elif kind == "conflict":
        chosen, keep = _conflict(state, size, rng)
    elif kind == "home":
        chosen = _locked(state, size, rng)
    elif kind == "service":
        s = int(inst.service[rng.integers(inst.processes)])
        hosts = np.flatnonzero(state.on_machine[s])
        chosen = rng.permutation(hosts)[:size].tolist()
    elif kind == "zone":
        seed_m = int(rng.integers(n_m))
        same = np.flatnonzero(inst.neighborhood == inst.neighborhood[seed_m])
        chosen = rng.permutation(same)[:size].tolist()
    rest = np.setdiff1d(np.arange(n_m), np.array(chosen, dtype=np.int64))
    fill = rng.permutation(rest)[: size - len(chosen)].tolist()
    machines = tuple(int(m) for m in chosen + fill)
    procs = np.flatnonzero(np.isin(state.x, machines))
    capped = procs.shape[0] > max_free
    if capped:
        # Processes away from a machine of the neighbourhood first: only they can go home.
        back = np.isin(state.initial[procs], machines) & (state.initial[procs] != state.x[procs])
        first = rng.permutation(procs[back])[:max_free]
        rest_p = rng.permutation(procs[~back])[: max_free - first.shape[0]]
        procs = np.concatenate([first, rest_p])
        if keep >= 0 and keep not in procs:
            procs[-1] = keep
    return Neighbourhood(machines, tuple(int(p) for p in procs), kind, capped)


def _conflict(state: AssignmentState, size: int, rng: np.random.Generator) -> tuple[list[int], int]:
    """A machine paying load cost, drawn by that cost, with one of its processes that could leave
    it and machines able to take that process: the compound move (make room on such a machine,
    then move the process there) that shifts and swaps miss. Returns the machines and the process.

    A machine can take a process only where its safety capacity holds the process and, on a
    transient resource, where its capacity minus what its own original processes hold (they hold
    it wherever they go) does; processes that could go nowhere are not drawn. The process is drawn
    by the load cost its leaving would save; the machines that need the least room made are
    preferred, with the homes of the processes that moved onto them (going home frees what they
    hold there)."""
    inst = state.inst
    over = np.maximum(0, state.used - inst.safety)
    paid = (over * inst.load_weight).sum(axis=1).astype(np.float64)
    if paid.sum() <= 0:
        return [], -1
    m = int(rng.choice(paid.shape[0], p=paid / paid.sum()))
    procs = np.flatnonzero(state.x == m)
    if procs.shape[0] == 0:
        return [m], -1
    req = inst.requirement[procs]
    relief = (np.minimum(req, over[m]) @ inst.load_weight).astype(np.float64)
    fits: BoolArray = np.asarray((inst.safety[None, :, :] >= req[:, None, :]).all(axis=2))
    t = state.transient_cols
    if t.size:
        room = inst.capacity[:, t] - state.original_used[:, t]
        takes: BoolArray = np.asarray((room[None, :, :] >= req[:, None, t]).all(axis=2))
        takes[np.arange(procs.shape[0]), state.initial[procs]] = True
        fits &= takes
    fits[:, m] = False
    weight = relief * fits.any(axis=1)
    if weight.sum() <= 0:
        return [m], -1
    i = int(rng.choice(procs.shape[0], p=weight / weight.sum()))
    p = int(procs[i])
    sinks = np.flatnonzero(fits[i])
    short = np.maximum(0, state.used[sinks] + inst.requirement[p] - inst.safety[sinks])
    if t.size:
        short[:, t] += np.maximum(
            0, state.held[sinks][:, t] + req[i, t] - inst.capacity[sinks][:, t]
        )
    need = short @ inst.load_weight
    k = max(1, size // 2)
    pool = sinks[np.argsort(need, kind="stable")][: 3 * k]
    chosen = [m] + [int(y) for y in rng.permutation(pool)[:k]]
    arrived = np.flatnonzero(np.isin(state.x, chosen[1:]) & (state.x != state.initial))
    homes = np.setdiff1d(np.unique(state.initial[arrived]), np.array(chosen, dtype=np.int64))
    chosen += [int(h) for h in rng.permutation(homes)[: max(0, size - len(chosen))]]
    return chosen, p


def _locked(state: AssignmentState, size: int, rng: np.random.Generator) -> list[int]:
    """Machines whose transient capacity is held by processes that left while they have room
    under safety (drawn by the weighted room such a return could fill), with the machines now
    hosting those processes: a process that goes home both frees what it holds there and
    refills the room, which a greedy search that moved it away can no longer see."""
    inst = state.inst
    t = state.transient_cols
    if not t.size:
        return []
    away = state.held[:, t] - state.used[:, t]
    room = np.maximum(0, inst.safety[:, t] - state.used[:, t])
    weight = (np.minimum(away, room) * inst.load_weight[t]).sum(axis=1).astype(np.float64)
    if weight.sum() <= 0:
        weight = away.sum(axis=1).astype(np.float64)
    if weight.sum() <= 0:
        return []
    k = min(max(1, size // 2), int((weight > 0).sum()))
    chosen: list[int] = rng.choice(
        weight.shape[0], k, replace=False, p=weight / weight.sum()
    ).tolist()
    return chosen + _holders_of_moved_originals(state, chosen, size - k, rng)


def _wasted_headroom(state: AssignmentState) -> np.ndarray:
    """Per machine, the weighted room left under safety on resources that are over safety in
    total: load cost that the pooled lower bound does not pay, so machines worth refilling."""
    inst = state.inst
    pooled_over = state.used.sum(axis=0) > inst.safety.sum(axis=0)
    room = np.maximum(0, inst.safety - state.used) * pooled_over
    waste: np.ndarray = (room @ inst.load_weight).astype(np.float64)
    return waste


def _holders_of_moved_originals(
    state: AssignmentState, machines: list[int], room: int, rng: np.random.Generator
) -> list[int]:
    """Machines now hosting processes that left `machines`: a process moving back home frees
    the transient resource it still holds there, which no other move can do."""
    left = np.flatnonzero(np.isin(state.initial, machines) & (state.x != state.initial))
    hosts = np.setdiff1d(np.unique(state.x[left]), np.array(machines, dtype=np.int64))
    return [int(m) for m in rng.permutation(hosts)[: max(0, room)]]
