"""Short-term demand prediction: how far a VM's demand may move before the next cycle.

Five-minute CPU demand is close to a random walk: the best point forecast for the next cycle is
the current value, and the risk is the spread of recent step-to-step changes. A host's risk adds
those spreads in quadrature (independent VMs), so a host with many small VMs needs relatively
less headroom than one with a few large ones.
"""

from __future__ import annotations

import numpy as np
from vmgrid.solver.decision.snapshot import F64, I64

MIN_SAMPLES = 4
"""Fewer values than this give no usable spread; a default share of demand is used instead."""


def demand_spread(history: F64, length: I64, demand: F64, window: int, default_share: float) -> F64:
    """Standard deviation of each VM's recent one-step changes (millicores)."""
    w = min(window, history.shape[1])
    recent = history[:, :w]
    diffs = recent[:, :-1] - recent[:, 1:]
    valid = np.arange(w - 1)[None, :] < (np.minimum(length, w) - 1)[:, None]
    count = valid.sum(axis=1)
    mean = np.where(count > 0, (diffs * valid).sum(axis=1) / np.maximum(count, 1), 0.0)
    var = ((diffs - mean[:, None]) ** 2 * valid).sum(axis=1) / np.maximum(count - 1, 1)
    spread = np.sqrt(var)
    fallback = default_share * demand
    return np.where(count + 1 >= MIN_SAMPLES, np.maximum(spread, 0.25 * fallback), fallback)


def host_risk(load: F64, spread_sq_sum: F64, z: float) -> F64:
    """Demand bound a host should stay under: current load plus z combined spreads."""
    return load + z * np.sqrt(spread_sq_sum)
