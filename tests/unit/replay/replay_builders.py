"""Small hand-made workloads for the replay tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vmgrid.solver.replay.trace import Workload


def constant_workload(percent: Sequence[float], samples: int = 12) -> Workload:
    """VMs whose CPU use stays at ``percent[i]`` % all along (types follow file order)."""
    util = np.repeat(np.asarray(percent, dtype=np.float64)[:, None] / 100.0, samples + 1, axis=1)
    names = tuple(f"vm{i:02d}" for i in range(len(percent)))
    return Workload("handmade", names, util)
