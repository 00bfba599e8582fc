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
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
from vmgrid.agents.cluster.state.history import NodeHistory, VmSample
from vmgrid.agents.cluster.state.host_window import HostWindow
from vmgrid.agents.cluster.state.trend_pressure import (
    PRESSURE_SERIES,
    VmPressureFold,
    pressure_values,
    with_pressure,
)
from vmgrid.agents.cluster.state.trend_store import BucketStore as BucketStore
from vmgrid.agents.common.node_codec.report_errors import VM_SAMPLED_FIELDS
from vmgrid.agents.model import HostUsage, Pressure

VM_SERIES = VM_SAMPLED_FIELDS
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


class NodeFold:
    """A node's open bucket: the rows of its windows not folded yet, and the sums so far;
    and the bucket it is closing, if any (UsageTrends.before_report)."""

    __slots__ = (
        "bucket",
        "pending",
        "host_pending",
        "counts",
        "sums",
        "host_count",
        "host_sums",
        "pressure",
        "closing",
        "closing_rows",
        "closing_host_rows",
        "close_at",
        "closing_node",
        "closing_hosts",
        "closing_pressure",
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
        self.closing = -1
        """The bucket before ``bucket`` while it is not written yet (-1: none): its sums are
        ``counts``, ``sums`` and ``host_*`` plus the ``closing_rows`` window rows older than
        the ``pending`` ones (``closing_host_rows`` host samples); the new bucket's rows are
        folded only once it is written."""
        self.closing_rows = 0
        self.closing_host_rows = 0
        self.close_at = _NEVER
        """sent_at from which a report writes the closing bucket (_NEVER: none closing)."""
        self.closing_node = ""
        self.closing_hosts: Sequence[tuple[int, HostUsage]] = ()
        self.closing_pressure: tuple[list[str], list[float], list[list[float]]] | None = None


_NEVER = 2**63 - 1


class UsageTrends:
    """Bucketed usage of every node and VM of a cluster (owned by ClusterState).

    Every node's bucket ends in the same wall-clock second; writing them all then (~0.2 ms a
    node) would hold the event loop for 0.4 s at 2,000 nodes. So a bucket is written by the
    node's first report after a delay spread over half a bucket by node id (``stagger_ns``),
    sooner when its rows would leave the window, or when the node's history is read or
    changed (``settle``, a VM leaving, a power-off): its rows stay in the window until then.
    """

    def __init__(self, bucket_s: int = BUCKET_S, span_s: int = SPAN_S) -> None:
        self.bucket_s = bucket_s
        self.span_s = span_s
        self.nodes = BucketStore(NODE_SERIES, bucket_s, span_s)
        self.vms = BucketStore(VM_SERIES, bucket_s, span_s)
        self.vm_pressure = BucketStore(PRESSURE_SERIES, bucket_s, span_s)
        """VMs' pressure: rows only for VMs that ever reported some."""
        self._bucket_ns = bucket_s * 1_000_000_000

    def stagger_ns(self, node_id: str) -> int:
        """How long after a bucket ends the node's report writes it: in [0, bucket / 2)."""
        return zlib.crc32(node_id.encode()) % 4096 * (self._bucket_ns // 2) // 4096

    def before_report(
        self,
        node_id: str,
        fold: NodeFold,
        history: NodeHistory,
        hosts: Sequence[tuple[int, HostUsage]],
        sent_at_ns: int,
    ) -> None:
        """Call before a report is stored (its host sample and its VM rows): starts closing
        the node's bucket when the report opens a new one, writes a closing bucket when due,
        or folds the windows in before they wrap. `hosts` is the node's window of
        (sent_at, HostUsage), as long as `history`'s."""
        bucket = sent_at_ns // self._bucket_ns
        window = history.window
        if bucket != fold.bucket:
            self._open(node_id, fold, history, hosts, bucket)
        elif (
            sent_at_ns >= fold.close_at
            or fold.pending + fold.closing_rows >= window
            or fold.host_pending + fold.closing_host_rows >= window
        ):
            self.settle(fold, history, hosts)
            if fold.pending >= window or fold.host_pending >= window:
                self._fold(fold, history)
                self._fold_hosts(fold, hosts)

    def _open(
        self,
        node_id: str,
        fold: NodeFold,
        history: NodeHistory,
        hosts: Sequence[tuple[int, HostUsage]],
        bucket: int,
    ) -> None:
        """A report opens `bucket`: the open one starts closing (its rows folded now when
        they would not outlast this report in the window)."""
        self.settle(fold, history, hosts)
        if fold.bucket >= 0:
            if fold.pending >= history.window or fold.host_pending >= history.window:
                self._fold(fold, history)
                self._fold_hosts(fold, hosts)
            fold.closing, fold.closing_node, fold.closing_hosts = fold.bucket, node_id, hosts
            fold.closing_rows, fold.closing_host_rows = fold.pending, fold.host_pending
            fold.pending = fold.host_pending = 0
            fold.close_at = bucket * self._bucket_ns + self.stagger_ns(node_id)
            if fold.pressure is not None and fold.pressure.sums:
                fold.closing_pressure = fold.pressure.take()
        fold.bucket = bucket

    def settle(
        self, fold: NodeFold, history: NodeHistory, hosts: Sequence[tuple[int, HostUsage]]
    ) -> None:
        """Write the node's closing bucket, if any, now (before its history is read)."""
        if fold.closing < 0:
            return
        skip, host_skip = fold.pending, fold.host_pending
        self._fold_rows(fold, history, fold.closing_rows, skip)
        fold.host_pending = fold.closing_host_rows
        self._fold_hosts(fold, hosts, host_skip)
        pressure, fold.closing_pressure = fold.closing_pressure, None
        self._write(fold.closing_node, fold, fold.closing, history, pressure)
        fold.closing, fold.closing_rows, fold.closing_host_rows = -1, 0, 0
        fold.close_at, fold.closing_node, fold.closing_hosts = _NEVER, "", ()
        fold.host_pending = host_skip

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
        self.settle(fold, history, fold.closing_hosts)
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
        """Write the node's closing and open buckets so far (the node powers off)."""
        self.settle(fold, history, hosts)
        if fold.bucket < 0:
            return
        self._fold(fold, history)
        self._fold_hosts(fold, hosts)
        pressure = (
            fold.pressure.take() if fold.pressure is not None and fold.pressure.sums else None
        )
        self._write(node_id, fold, fold.bucket, history, pressure)

    def _write(
        self,
        node_id: str,
        fold: NodeFold,
        bucket: int,
        history: NodeHistory,
        pressure: tuple[list[str], list[float], list[list[float]]] | None,
    ) -> None:
        """Add the folded sums to `bucket` of the stores; the fold's sums start again."""
        self.vms.tick(bucket)
        if fold.host_count:
            self.nodes.add([node_id], bucket, [fold.host_count], [fold.host_sums])
        held = [(u, s) for u, s in history.slots.items() if s < len(fold.counts)]
        held = [(u, s) for u, s in held if fold.counts[s]]
        if held:
            slots = np.array([s for _, s in held], dtype=np.int64)
            self.vms.add([u for u, _ in held], bucket, fold.counts[slots], fold.sums[slots])
        fold.counts[:] = 0
        fold.sums[:] = 0.0
        fold.host_count = 0
        fold.host_sums = [0.0] * len(NODE_SERIES)
        if pressure is not None:
            uuids, counts, sums = pressure
            self.vm_pressure.add(uuids, bucket, counts, sums)

    @staticmethod
    def _fold_hosts(fold: NodeFold, hosts: Sequence[tuple[int, HostUsage]], skip: int = 0) -> None:
        """Add the host samples not folded yet (the `host_pending` before the newest `skip`
        of `hosts`)."""
        end = len(hosts) - skip
        pending = min(fold.host_pending, end)
        if isinstance(hosts, HostWindow):  # a node's own window: no sample built
            rows = hosts.series(end - pending, end)
        else:
            rows = [host_values(hosts[k][1]) for k in range(end - pending, end)]
        for i, column in enumerate(zip(*rows, strict=True)):
            try:
                fold.host_sums[i] += sum(column)
            except TypeError:  # a value unavailable (None) in this bucket
                fold.host_sums[i] = math.nan
        fold.host_count += pending
        fold.host_pending = 0

    @classmethod
    def _fold(cls, fold: NodeFold, history: NodeHistory) -> None:
        if fold.pending:
            cls._fold_rows(fold, history, fold.pending, 0)
            fold.pending = 0

    @staticmethod
    def _fold_rows(fold: NodeFold, history: NodeHistory, rows: int, skip: int) -> None:
        """Add the window's `rows` rows before its newest `skip` to the fold's sums."""
        if not rows:
            return
        counts, sums = history.totals(rows, skip)
        width = len(counts)
        if len(fold.counts) < width:
            grow = width - len(fold.counts)
            fold.counts = np.concatenate([fold.counts, np.zeros(grow, dtype=np.int64)])
            fold.sums = np.concatenate([fold.sums, np.zeros((grow, len(VM_SERIES)))])
        fold.counts[:width] += counts
        fold.sums[:width] += sums


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
