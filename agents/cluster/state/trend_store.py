"""Count and sums per (subject, bucket) for the last hour: the matrices behind the
dashboard's history charts (trend.py folds the nodes' windows into them).

The layout is bucket-major: each chunk of subjects is a (buckets, subjects, 1 + series)
float32 array, so the things done often touch few pages. Opening a bucket clears one
contiguous column block per chunk (2.4 MB for 100,000 VMs), and writing a node's 20 VMs into a
bucket writes 480 consecutive bytes. With subjects as the outer axis, the clear touched every
page of the matrix (about 250 MB at 100,000 VMs) and a node's write about 15: while a forked
decision process shared those pages, each first write copied one, so opening a bucket under a
decision held the event loop for about 0.23 s and copied the whole matrix.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

CHUNK_ROWS = 1024
"""Subjects per chunk once the store has grown (the first chunks are 4, 4, 8, 16, ... rows)."""


class BucketStore:
    """Count and sums per (subject, bucket) for the last ``span_s`` seconds."""

    def __init__(self, series: Sequence[str], bucket_s: int, span_s: int) -> None:
        if bucket_s < 1 or span_s < bucket_s:
            raise ValueError(f"bucket_s {bucket_s} must be >= 1 and <= span_s {span_s}")
        self.series = tuple(series)
        self.bucket_s = bucket_s
        self.columns = span_s // bucket_s + 1  # the open bucket and a full span before it
        self._chunks: list[npt.NDArray[np.float32]] = []  # each buckets x rows x (1 + series)
        self._starts: list[int] = []  # first row of each chunk
        self._capacity = 0
        self._held = np.full(self.columns, -1, dtype=np.int64)  # bucket held by each column
        self._last = np.zeros(0, dtype=np.int64)  # newest bucket written per row
        self._rows: dict[str, int] = {}
        self._names: list[str | None] = []
        self._free: list[int] = []  # rows to hand out, the lowest last; all zero
        self.newest = -1
        self._grow()

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrices (the bound: rows x columns x (1 + series) x 4)."""
        return sum(int(chunk.nbytes) for chunk in self._chunks)

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
            for chunk in self._chunks:
                chunk[column] = 0
            self._held[column] = bucket
        self.tick(bucket)
        rows = np.fromiter((self._row(s) for s in subjects), dtype=np.int64, count=len(subjects))
        values = np.empty((len(rows), 1 + len(self.series)), dtype=np.float32)
        values[:, 0] = counts
        values[:, 1:] = sums
        first, start = self._where(int(rows.min()))
        if int(rows.max()) < start + self._chunks[first].shape[1]:
            # the usual case: one node's VMs, handed out together, in one chunk
            self._chunks[first][column, rows - start] += values
        else:
            which = np.searchsorted(self._starts, rows, side="right") - 1
            for k in np.unique(which).tolist():
                mine = which == k
                self._chunks[k][column, rows[mine] - self._starts[k]] += values[mine]
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
        chunk, start = self._where(row)
        values = self._chunks[chunk][columns, row - start].astype(np.float64)
        kept = values[:, 0] > 0
        buckets = self._held[columns][kept].tolist()
        means = values[kept, 1:] / values[kept, :1]
        return buckets, [means[:, i].tolist() for i in range(len(self.series))]

    def known(self, subject: str) -> bool:
        return subject in self._rows

    def _where(self, row: int) -> tuple[int, int]:
        """(chunk, first row of the chunk) of `row`."""
        chunk = bisect_right(self._starts, row) - 1
        return chunk, self._starts[chunk]

    def _row(self, subject: str) -> int:
        row = self._rows.get(subject)
        if row is None:
            if not self._free:
                self._grow()
            row = self._free.pop()
            self._rows[subject] = row
            self._names[row] = subject
            self._last[row] = -1
        return row

    def _grow(self) -> None:
        """One more chunk of rows (zero-filled): as many as there are (at least 4) up to
        CHUNK_ROWS, so at most half the rows stand empty while the store is small and one
        chunk's once it is large; growing never copies the rows there are."""
        old = self._capacity
        size = min(CHUNK_ROWS, max(4, old))
        self._chunks.append(np.zeros((self.columns, size, 1 + len(self.series)), np.float32))
        self._starts.append(old)
        self._capacity = old + size
        self._last = np.concatenate([self._last, np.full(size, -1, dtype=np.int64)])
        self._names.extend([None] * size)
        self._free.extend(range(self._capacity - 1, old - 1, -1))

    def _expire(self) -> None:
        """Give back the rows of subjects with no bucket left in the span (zeroed, so a row
        handed out is always clean)."""
        stale = np.flatnonzero((self._last >= 0) & (self._last <= self.newest - self.columns))
        for row in stale.tolist():
            name = self._names[row]
            if name is not None:
                del self._rows[name]
                self._names[row] = None
                self._free.append(row)
            chunk, start = self._where(row)
            self._chunks[chunk][:, row - start] = 0
            self._last[row] = -1
