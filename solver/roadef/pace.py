"""How much of a core the search gets: CP-SAT limits in wall seconds follow it.

A neighbourhood step's limit is wall time, so on a machine shared with other work the same limit
buys CP-SAT a fraction of the work it does on a quiet one: neighbourhoods that a quiet machine
proves optimal come back unproven (often without even a feasible answer), and the adaptive sizes
shrink every kind to its smallest. `Pace` measures the share of a core the search's own thread
gets while it runs pure Python (the local search: CPU time of the thread against wall time) and
scales the step limits by its inverse, bounded, so that a step gets about the CPU it would get
on a quiet machine; on a quiet machine the share is about 1 and nothing changes.
"""

from __future__ import annotations

import time


class Pace:
    """Share of a core the calling thread got over its measured spans, smoothed."""

    MAX_SLOWDOWN = 4.0
    """Largest factor applied to a step limit (the deadline bounds every step anyway)."""
    MIN_SPAN = 0.05
    """Shortest span (s) worth measuring: below it clock granularity dominates."""

    def __init__(self, weight: float = 0.5) -> None:
        self.share = 1.0
        self.weight = weight
        self._cpu = time.thread_time()
        self._wall = time.monotonic()

    def begin(self) -> None:
        """Start a span of work on this thread alone (no CP-SAT running)."""
        self._cpu = time.thread_time()
        self._wall = time.monotonic()

    def end(self) -> None:
        """Close the span and fold its share of a core into the average."""
        wall = time.monotonic() - self._wall
        if wall < self.MIN_SPAN:
            return
        share = min(1.0, (time.thread_time() - self._cpu) / wall)
        self.share = self.weight * share + (1 - self.weight) * self.share

    @property
    def slowdown(self) -> float:
        """Factor for wall-time limits: 1 on a quiet machine, up to `MAX_SLOWDOWN`."""
        return min(self.MAX_SLOWDOWN, 1.0 / max(self.share, 1.0 / self.MAX_SLOWDOWN))
