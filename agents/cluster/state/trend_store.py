"""Count and sums per (subject, bucket) for the last hour: the matrices behind the
dashboard's history charts (trend.py folds the nodes' windows into them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


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
