"""Local search: improving shifts (one process to another machine) and swaps (two processes).

Shifts are evaluated for all machines at once (`AssignmentState.shift_options`). Swaps are scored
with numpy against a sample of partner processes on load and balance and move costs, then the
best candidates are applied and kept only when the exact rules hold and the exact total drops,
so the search never leaves the feasible region.
"""

from __future__ import annotations

import time

import numpy as np
from vmgrid.solver.roadef.instance import IntArray
from vmgrid.solver.roadef.state import AssignmentState


def lock_weight(state: AssignmentState) -> IntArray:
    """Per process, the load-cost weight of the transient resources it would hold at home
    after leaving it: capacity that no other process can use until it comes back."""
    inst = state.inst
    t = state.transient_cols
    weight: IntArray = inst.requirement[:, t] @ inst.load_weight[t]
    return weight


def shift_pass(state: AssignmentState, order: IntArray, deadline: float, lock: float = 0.0) -> int:
    """Move each process of `order` to its best machine when that lowers the cost.

    With `lock` > 0 a move away from home must also pay `lock` times the process's
    `lock_weight`, and a move back home earns it; a move is still made only when the exact
    cost drops, so the penalty only steers which improving move is taken."""
    gained = 0
    held = lock_weight(state) if lock > 0 else None
    for i, p in enumerate(order.tolist()):
        if i % 16 == 0 and time.monotonic() > deadline:
            break
        delta, ok = state.shift_options(p)
        ok &= delta < 0
        if not ok.any():
            continue
        score = delta.astype(np.float64)
        if held is not None:
            home = int(state.initial[p])
            away = (np.arange(delta.shape[0]) != home).astype(np.float64)
            score += lock * float(held[p]) * (away - float(int(state.x[p]) != home))
        masked = np.where(ok, score, np.inf)
        best = int(masked.argmin())
        if masked[best] < 0:
            gained -= int(delta[best])
            state.move(p, best)
    return gained


INFEASIBLE = np.iinfo(np.int64).max
"""Score of a swap that breaks a rule the prefilter checks."""


def _swap_scores(state: AssignmentState, p: int, partners: IntArray, lock: float = 0.0) -> IntArray:
    """Approximate cost change of swapping `p` with each partner (service move cost left out).

    Conflicts are checked first on the whole sample, capacity next on what is left, and costs
    only on the swaps that fit: most partners fail a cheap test, so few pay for the costs."""
    inst = state.inst
    src = int(state.x[p])
    s_p = int(inst.service[p])
    result = np.full(partners.shape[0], INFEASIBLE, dtype=np.int64)
    dest_all: IntArray = state.x[partners]
    keep = np.flatnonzero(
        (dest_all != src)
        & (inst.service[partners] != s_p)
        & (state.on_machine[s_p, dest_all] == 0)
        & (state.on_machine[inst.service[partners], src] == 0)
    )
    if keep.size == 0:
        return result
    q = partners[keep]
    dest = dest_all[keep]
    rp = inst.requirement[p]
    diff = inst.requirement[q] - rp  # usage change at src; at dest it is -diff
    slack = inst.capacity - state.used
    fits = (diff <= slack[src]).all(axis=1) & (-diff <= slack[dest]).all(axis=1)
    home_p = int(state.initial[p])
    home_q: IntArray = state.initial[q]
    t = state.transient_cols
    if t.size:
        room = inst.capacity[:, t] - state.held[:, t]
        rpt, rqt = rp[t], diff[:, t] + rp[t]
        # src holds q unless it is q's home, and stops holding p only if p is not at home there
        grow_src = (home_q != src).astype(np.int64)[:, None] * rqt - int(src != home_p) * rpt
        grow_dest = (dest != home_p).astype(np.int64)[:, None] * rpt - (dest != home_q).astype(
            np.int64
        )[:, None] * rqt
        fits &= (grow_src <= room[src]).all(axis=1) & (grow_dest <= room[dest]).all(axis=1)
    ok = np.flatnonzero(fits)
    if ok.size == 0:
        return result
    q, dest, diff, home_q = q[ok], dest[ok], diff[ok], home_q[ok]
    excess = state.used - inst.safety
    lw = inst.load_weight
    score = (
        np.maximum(0, excess[src] + diff) @ lw
        - state.machine_load[src]
        + np.maximum(0, excess[dest] - diff) @ lw
        - state.machine_load[dest]
    )
    if inst.balances:
        src_rows = np.full(q.shape[0], src)
        score += (
            state.balance_of(state.used[src] + diff, src_rows)
            - state.machine_balance[src]
            + state.balance_of(state.used[dest] - diff, dest)
            - state.machine_balance[dest]
        )
    pmc = inst.process_move_cost
    p_away = (dest != home_p).astype(np.int64) - int(src != home_p)
    q_away = (home_q != src).astype(np.int64) - (dest != home_q).astype(np.int64)
    score += inst.weight_process_move * (pmc[p] * p_away + pmc[q] * q_away)
    mmc = inst.machine_move_cost
    score += inst.weight_machine_move * (
        mmc[home_p, dest] - mmc[home_p, src] + mmc[home_q, src] - mmc[home_q, dest]
    )
    if lock > 0:
        held = lock_weight(state)
        score = score + (lock * (held[p] * p_away + held[q] * q_away)).astype(np.int64)
    result[keep[ok]] = score
    return result


def try_swap(state: AssignmentState, p: int, q: int) -> int:
    """Swap `p` and `q` if the result is feasible and cheaper; return the gain (0 if not)."""
    inst = state.inst
    before = state.total
    mp, mq = int(state.x[p]), int(state.x[q])
    state.move(p, mq)
    state.move(q, mp)
    zones = {int(inst.neighborhood[mp]), int(inst.neighborhood[mq])}
    services = {int(inst.service[p]), int(inst.service[q])}
    after = state.total
    if after < before and state.feasible_after({mp, mq}, services, zones):
        return before - after
    state.move(q, mq)
    state.move(p, mp)
    return 0


def swap_pass(
    state: AssignmentState,
    order: IntArray,
    deadline: float,
    rng: np.random.Generator,
    sample: int = 1500,
    tries: int = 8,
    lock: float = 0.0,
) -> int:
    """For each process, try the few most promising swaps with a sample of other processes."""
    n_p = state.inst.processes
    gained = 0
    for i, p in enumerate(order.tolist()):
        if i % 4 == 0 and time.monotonic() > deadline:
            break
        partners = np.arange(n_p) if n_p <= sample else rng.choice(n_p, sample, replace=False)
        scores = _swap_scores(state, p, partners, lock)
        k = min(tries, partners.shape[0])
        best = np.argpartition(scores, k - 1)[:k]
        for j in best[np.argsort(scores[best])].tolist():
            if scores[j] >= 0:
                break
            gain = try_swap(state, p, int(partners[j]))
            if gain:
                gained += gain
                break
    return gained


def local_search(
    state: AssignmentState,
    deadline: float,
    rng: np.random.Generator,
    max_rounds: int = 50,
    lock: float = 0.0,
) -> int:
    """Alternate shift and swap passes in random order until no gain or out of time (`lock`:
    see `shift_pass`)."""
    gained = 0
    for _ in range(max_rounds):
        if time.monotonic() > deadline:
            break
        order = rng.permutation(state.inst.processes)
        g = shift_pass(state, order, deadline, lock)
        g += swap_pass(state, order, deadline, rng, lock=lock)
        gained += g
        if g == 0:
            break
    return gained
