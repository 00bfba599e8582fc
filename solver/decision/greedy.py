"""Greedy best-fit moves: the fallback for large cycles and the complete hint for CP-SAT.

Capacity rule shared with the CP-SAT models (so a greedy plan is always a feasible hint): a
host's risk is its load plus z·sqrt(sum of its VMs' squared spreads); a VM moving in adds its
demand plus z times its own spread (an upper bound on the rise of the square root).
"""

from __future__ import annotations

import numpy as np
from vmgrid.solver.decision.snapshot import F64


def best_fit(
    need: float, demand: float, spare: F64, vm_limit: F64, allowed: np.ndarray, rank: F64
) -> int:
    """The allowed host of the best efficiency ``rank`` with the least spare left after taking
    ``need``; -1 if none fits. Filling efficient hosts first leaves the others light, so that
    consolidation can empty them."""
    ok = allowed & (spare >= need) & (vm_limit >= demand)
    if not ok.any():
        return -1
    rows = np.flatnonzero(ok)
    best = rows[rank[rows] == rank[rows].min()]
    return int(best[int(np.argmin(spare[best] - need))])


def drain_host(
    vms: list[int],
    need: F64,
    demand: F64,
    spare: F64,
    vm_limit: F64,
    allowed: np.ndarray,
    rank: F64,
) -> list[tuple[int, int]] | None:
    """Place every VM of a host elsewhere (largest first), or None; ``spare`` is updated only on
    success."""
    trial = spare.copy()
    placed: list[tuple[int, int]] = []
    for v in sorted(vms, key=lambda x: -need[x]):
        d = best_fit(float(need[v]), float(demand[v]), trial, vm_limit, allowed, rank)
        if d < 0:
            return None
        trial[d] -= need[v]
        placed.append((v, d))
    spare[:] = trial
    return placed
