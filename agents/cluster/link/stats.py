"""Ingest counters and a window of report latencies (report sent_at -> applied)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
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


LATENCY_BUCKETS_MS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0)
"""Upper bounds of the cumulative latency histogram (``applied_buckets``), milliseconds."""


class IngestRecorder:
    """Fixed-size ring of latencies: recording is O(1), percentiles are computed on demand.

    Besides the window (reset by ``read(reset=True)``), it keeps totals that never reset:
    ``applied_total``, ``latency_sum_ms`` and per-bucket counts, which the metrics endpoint
    reads at scrape time (so no metric is updated per report).
    """

    def __init__(
        self, window: int = 131072, buckets_ms: Sequence[float] = LATENCY_BUCKETS_MS
    ) -> None:
        self._ring = [0.0] * window
        self._next = 0
        self._count = 0
        self.reports_total = 0
        self.vm_samples_total = 0
        self.rejected_total = 0
        self.buckets_ms = tuple(buckets_ms)
        self._bucket_counts = [0] * (len(self.buckets_ms) + 1)
        self.applied_total = 0
        self.latency_sum_ms = 0.0
        self.listeners: list[Callable[[float, int], None]] = []
        """Called with (latency_ms, vm_count) of each applied report."""

    def record(self, latency_ms: float, vm_count: int) -> None:
        """Count one applied report."""
        self._ring[self._next] = latency_ms
        self._next = (self._next + 1) % len(self._ring)
        self._count += 1
        self.reports_total += 1
        self.vm_samples_total += vm_count
        self.applied_total += 1
        self.latency_sum_ms += max(0.0, latency_ms)
        self._bucket_counts[bisect_left(self.buckets_ms, latency_ms)] += 1
        for listener in self.listeners:
            listener(latency_ms, vm_count)

    def applied_buckets(self) -> list[tuple[float, int]]:
        """Cumulative (upper bound ms, reports at or under it) since start, +inf last."""
        out, total = [], 0
        for bound, count in zip((*self.buckets_ms, float("inf")), self._bucket_counts, strict=True):
            total += count
            out.append((bound, total))
        return out

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
