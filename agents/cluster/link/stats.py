"""Ingest counters and a window of report latencies (report sent_at -> applied)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IngestStats:
    """Counters and latency percentiles over the recent window."""

    reports_total: int
    vm_samples_total: int
    rejected_total: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_samples: int


class IngestRecorder:
    """Fixed-size ring of latencies: recording is O(1), percentiles are computed on demand."""

    def __init__(self, window: int = 131072) -> None:
        self._ring = [0.0] * window
        self._next = 0
        self._count = 0
        self.reports_total = 0
        self.vm_samples_total = 0
        self.rejected_total = 0
        self.listeners: list[Callable[[float, int], None]] = []
        """Called with (latency_ms, vm_count) of each applied report (metrics)."""

    def record(self, latency_ms: float, vm_count: int) -> None:
        """Count one applied report."""
        self._ring[self._next] = latency_ms
        self._next = (self._next + 1) % len(self._ring)
        self._count += 1
        self.reports_total += 1
        self.vm_samples_total += vm_count
        for listener in self.listeners:
            listener(latency_ms, vm_count)

    def read(self, reset: bool = False) -> IngestStats:
        """Current figures; ``reset`` starts a fresh measurement window."""
        n = min(self._count, len(self._ring))
        values = (
            sorted(self._ring[:n])
            if self._count >= len(self._ring)
            else sorted(self._ring[: self._next])
        )

        def pct(q: float) -> float:
            return values[min(n - 1, int(q * n))] if n else 0.0

        stats = IngestStats(
            self.reports_total,
            self.vm_samples_total,
            self.rejected_total,
            pct(0.50),
            pct(0.99),
            values[-1] if n else 0.0,
            n,
        )
        if reset:
            self._next = self._count = 0
            self.reports_total = self.vm_samples_total = self.rejected_total = 0
        return stats
