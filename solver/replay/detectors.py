"""CloudSim's host overload detectors (THR, IQR, MAD, LR/LRR), on a host's utilisation history.

A host's history is the sum of its current VMs' histories, each scaled by VM MIPS / host MIPS
(PowerHostUtilizationHistory): VM histories move with the VMs. Adaptive detectors fall back to
THR-0.7 until the history is long enough (12 values for IQR/MAD, 10 for LR/LRR). In CloudSim
3.0.3 LR and LRR both fit plain least squares on the newest 10 values (the robust weights are
never applied), and predict one interval ahead (every migration here takes < 300 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vmgrid.solver.replay.state import F64, I64, B

FALLBACK_THRESHOLD = 0.7
LR_WINDOW = 10
STATS_MIN_LENGTH = 12

_x = np.arange(1, LR_WINDOW + 1, dtype=np.float64)
_xc = _x - _x.mean()
# Least-squares prediction at x = 11 from y at x = 1..10 (oldest first), as weights on the
# newest-first history h[0..9]: y_x = h[10 - x].
LR_WEIGHTS: F64 = (1.0 / LR_WINDOW + _xc * (LR_WINDOW + 1 - _x.mean()) / float((_xc**2).sum()))[
    ::-1
].copy()


@dataclass(frozen=True)
class Detector:
    """One overload rule: ``kind`` in thr/iqr/mad/lr and its parameter."""

    kind: str
    parameter: float

    def overloaded(self, utilisation: F64, history: F64, length: I64) -> B:
        """Hosts judged overloaded; ``utilisation`` is requested MIPS / host MIPS now."""
        if self.kind == "thr":
            return utilisation > self.parameter
        fallback = utilisation > FALLBACK_THRESHOLD
        if self.kind == "lr":
            predicted = self.parameter * (history[:, :LR_WINDOW] @ LR_WEIGHTS)
            return np.where(length >= LR_WINDOW, predicted >= 1.0, fallback)
        upper = 1.0 - self.parameter * _spread(self.kind, history, length)
        return np.where(length >= STATS_MIN_LENGTH, utilisation > upper, fallback)


def _spread(kind: str, history: F64, length: I64) -> F64:
    """IQR (CloudSim's rounded quartile indices) or MAD of each row's first ``length`` values."""
    out = np.zeros(history.shape[0])
    for n in np.unique(length):
        if n < STATS_MIN_LENGTH:
            continue
        rows = np.flatnonzero(length == n)
        data = np.sort(history[rows, :n], axis=1)
        if kind == "iqr":
            q1 = int(np.floor(0.25 * (n + 1) + 0.5)) - 1
            q3 = int(np.floor(0.75 * (n + 1) + 0.5)) - 1
            out[rows] = data[:, q3] - data[:, q1]
        else:
            med = np.median(data, axis=1)
            out[rows] = np.median(np.abs(data - med[:, None]), axis=1)
    return out
