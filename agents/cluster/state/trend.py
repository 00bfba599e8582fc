"""The last hour of usage, averaged into time buckets: what the dashboard's history charts read.

The decision loop's windows (``history.py``) keep the last ``history_window`` reports at full
resolution; an hour of one report a second would be 3,600 rows per VM. Here each bucket of
``bucket_s`` seconds keeps a sample count and the sum of every series, per node and per VM, in
one float32 matrix per kind shared by all its subjects (subjects x buckets x (1 + series)): with
30 s buckets an hour is 121 columns, 2.4 KB per VM, about what the 60-sample window costs.

Buckets are aligned on the wall clock (bucket = sent_at // bucket_s), so a VM that moves within
a bucket adds both halves into the same one. A node's VM rows are folded in from its window with
numpy when one of its reports opens a new bucket (or before the window wraps), never sample by
sample: the ingest path only compares two integers per report. A subject with no bucket left in
the span (a VM deleted an hour ago) gives its row back.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from vmgrid.agents.cluster.state.history import NodeHistory, VmSample
from vmgrid.agents.cluster.state.trend_pressure import (
    PRESSURE_SERIES,
    VmPressureFold,
    pressure_values,
    with_pressure,
)
from vmgrid.agents.model import HostUsage, Pressure

VM_SERIES = (
    "cpu_used_millicores",
    "memory_used_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
)
"""The VM series, in the order of the window's columns (history.VmSample after its time)."""

HOST_SERIES = tuple(
    f.name for f in fields(HostUsage) if str(f.type).split(" | ")[0] in ("int", "float")
)
"""Every numeric field a node reports (new HostUsage fields are kept without a change here)."""

NODE_SERIES = HOST_SERIES + PRESSURE_SERIES
"""A node's series: its usage, then its pressure (trend_pressure.py)."""

_HOST_VALUES = operator.attrgetter(*HOST_SERIES)


def host_values(usage: HostUsage) -> tuple[float | None, ...]:
    """A host sample's values in NODE_SERIES order (pressure None where unavailable)."""
    return _HOST_VALUES(usage) + pressure_values(usage.pressure)


BUCKET_S = 30
SPAN_S = 3600


class BucketStore:
    """Count and sums per (subject, bucket) for the last ``span_s`` seconds."""

    def __init__(self, series: Sequence[str], bucket_s: int, span_s: int) -> None:
        if bucket_s < 1 or span_s < bucket_s:
            raise ValueError(f"bucket_s {bucket_s} must be >= 1 and <= span_s {span_s}")
        self.series = tuple(series)
        self.bucket_s = bucket_s
        self.columns = span_s // bucket_s + 1  # the open bucket and a full span before it
        self._data = np.zeros((4, self.columns, 1 + len(self.series)), dtype=np.float32)
        self._held = np.full(self.columns, -1, dtype=np.int64)  # bucket held by each column
        self._last = np.full(4, -1, dtype=np.int64)  # newest bucket written per row
        self._rows: dict[str, int] = {}
        self._names: list[str | None] = [None] * 4
        self._free = [3, 2, 1, 0]
        self.newest = -1

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrix (the bound: rows x columns x (1 + series) x 4)."""
        return int(self._data.nbytes)

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        subjects: Sequence[str],
        bucket: int,
        counts: npt.ArrayLike,
        sums: npt.ArrayLike,
    ) -> None:
        """Add `counts` samples summing to `sums` (one row per subject) to `bucket`."""
        if not len(subjects) or bucket <= self.newest - self.columns:
            return  # nothing, or older than the span
        column = bucket % self.columns
        if self._held[column] != bucket:
            if self._held[column] > bucket:
                return
            self._data[:, column, :] = 0
            self._held[column] = bucket
        self.tick(bucket)
        rows = np.fromiter((self._row(s) for s in subjects), dtype=np.int64, count=len(subjects))
        self._data[rows, column, 0] += np.asarray(counts, dtype=np.float32)
        self._data[rows, column, 1:] += np.asarray(sums, dtype=np.float32)
        self._last[rows] = np.maximum(self._last[rows], bucket)

    def tick(self, bucket: int) -> None:
        """Time has reached `bucket` (someone reported in it): expire what fell out."""
        if bucket > self.newest:
            self.newest = bucket
            self._expire()

    def read(self, subject: str, since_bucket: int) -> tuple[list[int], list[list[float]]]:
        """(buckets, means per series) of `subject` from `since_bucket` on, oldest first."""
        row = self._rows.get(subject)
        if row is None:
            return [], [[] for _ in self.series]
        first = max(since_bucket, self.newest - self.columns + 1)
        columns = np.flatnonzero(self._held >= first)
        columns = columns[np.argsort(self._held[columns])]
        values = self._data[row, columns].astype(np.float64)
        kept = values[:, 0] > 0
        buckets = self._held[columns][kept].tolist()
        means = values[kept, 1:] / values[kept, :1]
        return buckets, [means[:, i].tolist() for i in range(len(self.series))]

    def known(self, subject: str) -> bool:
        return subject in self._rows

    def _row(self, subject: str) -> int:
        row = self._rows.get(subject)
        if row is None:
            if not self._free:
                self._grow()
            row = self._free.pop()
            self._rows[subject] = row
            self._names[row] = subject
            self._data[row] = 0
            self._last[row] = -1
        return row

    def _grow(self) -> None:
        """A quarter more rows (at least 4), in place: numpy's resize reallocates, which moves
        a large block's pages rather than copying them, so 40,000 VMs' hour (about 100 MB)
        never needs a second copy beside it, and at most a quarter of the rows stand empty."""
        old = self._data.shape[0]
        new = old + max(4, old // 4)
        self._data.resize((new, *self._data.shape[1:]), refcheck=False)  # zero-filled
        self._last = np.concatenate([self._last, np.full(new - old, -1, dtype=np.int64)])
        self._names.extend([None] * (new - old))
        self._free.extend(range(new - 1, old - 1, -1))

    def _expire(self) -> None:
        """Give back the rows of subjects with no bucket left in the span."""
        stale = np.flatnonzero((self._last >= 0) & (self._last <= self.newest - self.columns))
        for row in stale.tolist():
            name = self._names[row]
            if name is not None:
                del self._rows[name]
                self._names[row] = None
                self._free.append(row)
            self._last[row] = -1


class NodeFold:
    """A node's open bucket: the rows of its windows not folded yet, and the sums so far."""

    __slots__ = (
        "bucket",
        "pending",
        "host_pending",
        "counts",
        "sums",
        "host_count",
        "host_sums",
        "pressure",
    )

    def __init__(self) -> None:
        self.bucket = -1
        self.pending = 0
        self.host_pending = 0
        self.counts = np.zeros(0, dtype=np.int64)
        self.sums = np.zeros((0, len(VM_SERIES)), dtype=np.float64)
        self.host_count = 0
        self.host_sums = [0.0] * len(NODE_SERIES)
        self.pressure: VmPressureFold | None = None
        """Its VMs' pressure, from the first report that carried some (else None)."""


class UsageTrends:
    """Bucketed usage of every node and VM of a cluster (owned by ClusterState)."""

    def __init__(self, bucket_s: int = BUCKET_S, span_s: int = SPAN_S) -> None:
        self.bucket_s = bucket_s
        self.span_s = span_s
        self.nodes = BucketStore(NODE_SERIES, bucket_s, span_s)
        self.vms = BucketStore(VM_SERIES, bucket_s, span_s)
        self.vm_pressure = BucketStore(PRESSURE_SERIES, bucket_s, span_s)
        """VMs' pressure: rows only for VMs that ever reported some."""
        self._bucket_ns = bucket_s * 1_000_000_000

    def before_report(
        self,
        node_id: str,
        fold: NodeFold,
        history: NodeHistory,
        hosts: Sequence[tuple[int, HostUsage]],
        sent_at_ns: int,
    ) -> None:
        """Call before a report is stored (its host sample and its VM rows): closes the node's
        bucket when the report opens a new one, or folds the windows in before they wrap.
        `hosts` is the node's window of (sent_at, HostUsage), as long as `history`'s."""
        bucket = sent_at_ns // self._bucket_ns
        if bucket != fold.bucket:
            self.flush(node_id, fold, history, hosts)
            fold.bucket = bucket
        elif fold.pending >= history.window or fold.host_pending >= history.window:
            self._fold(fold, history)
            self._fold_hosts(fold, hosts)

    @staticmethod
    def vm_pressure_report(
        fold: NodeFold, window: int, sent_at_ns: int, pressures: Mapping[str, Pressure]
    ) -> None:
        """Call (after before_report) for a report that carries VM pressure, or the first
        that carries none after one that did; never for the others (no per-VM work)."""
        if fold.pressure is None:
            fold.pressure = VmPressureFold(window)
        fold.pressure.add(sent_at_ns, pressures)

    @staticmethod
    def after_report(fold: NodeFold) -> None:
        """Call after the report is stored: one more row of each window to fold."""
        fold.pending += 1
        fold.host_pending += 1

    def leaving(self, fold: NodeFold, history: NodeHistory, uuid: str) -> None:
        """Call before a VM's slot is removed from the node's window: its rows so far go into
        its bucket (a VM that moves on adds the rest from its new node)."""
        slot = history.slots.get(uuid)
        if slot is None or fold.bucket < 0:
            return
        self._fold(fold, history)
        if slot < len(fold.counts) and fold.counts[slot]:
            self.vms.add(
                [uuid], fold.bucket, fold.counts[slot : slot + 1], fold.sums[slot : slot + 1]
            )
            fold.counts[slot] = 0
            fold.sums[slot] = 0.0

    def flush(
        self,
        node_id: str,
        fold: NodeFold,
        history: NodeHistory,
        hosts: Sequence[tuple[int, HostUsage]],
    ) -> None:
        """Write the node's open bucket so far (a new bucket starts, or the node powers off)."""
        if fold.bucket < 0:
            return
        self._fold(fold, history)
        self._fold_hosts(fold, hosts)
        self.vms.tick(fold.bucket)
        if fold.host_count:
            self.nodes.add([node_id], fold.bucket, [fold.host_count], [fold.host_sums])
        held = [(u, s) for u, s in history.slots.items() if s < len(fold.counts)]
        held = [(u, s) for u, s in held if fold.counts[s]]
        if held:
            slots = np.array([s for _, s in held], dtype=np.int64)
            self.vms.add([u for u, _ in held], fold.bucket, fold.counts[slots], fold.sums[slots])
        fold.counts[:] = 0
        fold.sums[:] = 0.0
        fold.host_count = 0
        fold.host_sums = [0.0] * len(NODE_SERIES)
        if fold.pressure is not None and fold.pressure.sums:
            uuids, counts, sums = fold.pressure.take()
            self.vm_pressure.add(uuids, fold.bucket, counts, sums)

    @staticmethod
    def _fold_hosts(fold: NodeFold, hosts: Sequence[tuple[int, HostUsage]]) -> None:
        """Add the host samples not folded yet (the newest `host_pending` of `hosts`)."""
        pending = min(fold.host_pending, len(hosts))
        rows = [host_values(hosts[k][1]) for k in range(len(hosts) - pending, len(hosts))]
        for i, column in enumerate(zip(*rows, strict=True)):
            try:
                fold.host_sums[i] += sum(column)
            except TypeError:  # a value unavailable (None) in this bucket
                fold.host_sums[i] = math.nan
        fold.host_count += pending
        fold.host_pending = 0

    @staticmethod
    def _fold(fold: NodeFold, history: NodeHistory) -> None:
        if not fold.pending:
            return
        counts, sums = history.totals(fold.pending)
        width = len(counts)
        if len(fold.counts) < width:
            grow = width - len(fold.counts)
            fold.counts = np.concatenate([fold.counts, np.zeros(grow, dtype=np.int64)])
            fold.sums = np.concatenate([fold.sums, np.zeros((grow, len(VM_SERIES)))])
        fold.counts[:width] += counts
        fold.sums[:width] += sums
        fold.pending = 0


@dataclass(frozen=True, slots=True)
class UsageHistory:
    """A node's or a VM's usage over a span: buckets' means, then the window's samples."""

    subject: str
    bucket_s: int
    times_unix_ms: tuple[int, ...]
    series: Mapping[str, tuple[float | None, ...]]
    buckets: int
    """How many of the points (the first ones) are bucket means; the rest are samples."""


def combine(
    subject: str,
    store: BucketStore,
    since_ns: int,
    samples: Sequence[tuple[int, Sequence[float | None]]],
    extra: BucketStore | None = None,
) -> UsageHistory:
    """Buckets that end before the first of `samples` (sent_at_ns, values in the store's
    series order, then `extra`'s), then the samples from `since_ns` on: the hour at bucket
    resolution, the last minute at report resolution (points appear as reports arrive).
    `extra` holds more series of the same subject on the same buckets (a VM's pressure);
    a bucket it lacks is unavailable there."""
    bucket_ns = store.bucket_s * 1_000_000_000
    recent = [(t, v) for t, v in samples if t >= since_ns]
    first_sample = recent[0][0] if recent else None
    buckets, means = store.read(subject, since_ns // bucket_ns)
    keep = [
        i
        for i, b in enumerate(buckets)
        if first_sample is None or (b + 1) * bucket_ns <= first_sample
    ]
    times = [(buckets[i] * bucket_ns + bucket_ns // 2) // 1_000_000 for i in keep]
    series: dict[str, list[float | None]] = {
        name: [_finite(means[k][i]) for i in keep] for k, name in enumerate(store.series)
    }
    names = store.series
    if extra is not None:
        names = names + extra.series
        extra_buckets, extra_means = extra.read(subject, since_ns // bucket_ns)
        where = {b: i for i, b in enumerate(extra_buckets)}
        for k, name in enumerate(extra.series):
            found = [where.get(buckets[i]) for i in keep]
            series[name] = [None if j is None else _finite(extra_means[k][j]) for j in found]
    for t, values in recent:
        times.append(t // 1_000_000)
        for name, value in zip(names, values, strict=True):
            series[name].append(None if value is None else float(value))
    return UsageHistory(
        subject,
        store.bucket_s,
        tuple(times),
        {name: tuple(values) for name, values in series.items()},
        len(keep),
    )


def node_rows(hosts: Sequence[tuple[int, HostUsage]]) -> list[tuple[int, Sequence[float | None]]]:
    """A node's window of (sent_at, HostUsage) as rows in NODE_SERIES order for `combine`."""
    return [(t, host_values(usage)) for t, usage in hosts]


def vm_pressure_rows(
    rows: Sequence[tuple[int, Sequence[float | None]]], uuid: str, fold: NodeFold | None
) -> list[tuple[int, Sequence[float | None]]]:
    """`rows` of a VM (vm_rows) with its pressure from its node's fold (unavailable when
    the node's reports carried none)."""
    pressure = fold.pressure if fold is not None else None
    return with_pressure(rows, {} if pressure is None else pressure.at(uuid))


def vm_rows(samples: Sequence[VmSample]) -> list[tuple[int, Sequence[float | None]]]:
    """A VM window's samples as (sent_at_ns, values in VM_SERIES order) for `combine`."""
    return [
        (
            s.sent_at_unix_ns,
            (
                s.cpu_used_millicores,
                s.memory_used_bytes,
                s.net_rx_bytes_per_second,
                s.net_tx_bytes_per_second,
            ),
        )
        for s in samples
    ]


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)
