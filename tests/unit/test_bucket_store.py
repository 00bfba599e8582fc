"""The bucket store behind the hour of history: what it reads back is what was added, over
many chunks of subjects, as subjects expire and their rows are handed out again; and opening
a bucket while a forked process shares its pages copies a few pages, not the whole matrix."""

from __future__ import annotations

import os
import resource
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents.cluster.state.trend_store import CHUNK_ROWS, BucketStore

SERIES = ("cpu", "memory")
COLUMNS = 4  # span 30 s of 10 s buckets: the open bucket and three before it


class Plain:
    """The same contract written plainly: sums per (subject, bucket) within the span."""

    def __init__(self) -> None:
        self.sums: dict[str, dict[int, list[float]]] = defaultdict(dict)
        self.newest = -1

    def add(self, subjects: list[str], bucket: int, counts: list[int], sums: list[list[float]]):
        if not subjects or bucket <= self.newest - COLUMNS:
            return
        self.newest = max(self.newest, bucket)
        for subject, count, values in zip(subjects, counts, sums, strict=True):
            cell = self.sums[subject].setdefault(bucket, [0.0] * (1 + len(SERIES)))
            cell[0] += count
            for i, value in enumerate(values):
                cell[1 + i] += value

    def read(self, subject: str) -> tuple[list[int], list[list[float]]]:
        first = self.newest - COLUMNS + 1
        cells = sorted((b, c) for b, c in self.sums.get(subject, {}).items() if b >= first)
        cells = [(b, c) for b, c in cells if c[0] > 0]
        means = [[c[1 + i] / c[0] for _, c in cells] for i in range(len(SERIES))]
        return [b for b, _ in cells], means


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # how far time moves on (0-3 buckets)
            st.lists(st.integers(0, 2999), min_size=1, max_size=25, unique=True),
            st.integers(1, 5),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_reads_what_was_added_across_chunks_and_reused_rows(
    steps: list[tuple[int, list[int], int]],
) -> None:
    """Subjects from a pool of 3,000 (several chunks), each add mixing subjects handed out
    far apart, time jumping past the span so rows are given back and handed out again: every
    subject reads exactly what the plain model holds."""
    store, plain = BucketStore(SERIES, 10, 30), Plain()
    bucket = 100
    for gap, picked, count in steps:
        bucket += gap
        subjects = [f"vm-{i}" for i in picked]
        counts = [count] * len(picked)
        sums = [[float(i * count), float(bucket)] for i in picked]
        store.add(subjects, bucket, counts, sums)
        plain.add(subjects, bucket, counts, sums)
    for subject in plain.sums:
        buckets, means = store.read(subject, 0)
        expected_buckets, expected_means = plain.read(subject)
        assert buckets == expected_buckets
        for got, want in zip(means, expected_means, strict=True):
            assert got == pytest.approx(want, rel=1e-6)
    # rows of subjects with no bucket left in the span were given back, the others kept
    live = [s for s, cells in plain.sums.items() if max(cells) > plain.newest - COLUMNS]
    assert len(store) == len(live)


def test_rows_grow_by_chunks_without_copying_and_stay_bounded() -> None:
    store = BucketStore(SERIES, 10, 30)
    per_row = COLUMNS * (1 + len(SERIES)) * 4
    for n in (1, 5, 100, 3 * CHUNK_ROWS + 7):
        store.add([f"vm-{i}" for i in range(n)], 7, [1] * n, [[1.0, 2.0]] * n)
        # at most half the rows stand empty while small, at most a chunk's once large
        assert store.nbytes <= max(2 * n * per_row, (n + CHUNK_ROWS) * per_row, 8 * per_row)
    assert store.read(f"vm-{3 * CHUNK_ROWS + 6}", 0) == ([7], [[1.0], [2.0]])


def test_opening_a_bucket_under_a_fork_copies_a_few_pages_not_the_matrix() -> None:
    """A forked decision process shares the manager's pages; each page the manager then
    writes first is copied. Opening a bucket clears its column: that must touch a block per
    chunk, not every page of the matrix (20,000 VMs' hour: about 14,000 pages)."""
    n = 20_000
    store = BucketStore(("cpu", "memory", "rx", "tx"), 30, 3600)
    subjects = [f"vm-{i}" for i in range(n)]
    for start in range(0, n, 20):  # nodes of 20 VMs, as reports write them
        store.add(subjects[start : start + 20], 500, [30] * 20, np.ones((20, 4)))
    matrix_pages = store.nbytes // resource.getpagesize()
    assert matrix_pages > 10_000
    hold, release = os.pipe()
    child = os.fork()
    if child == 0:  # the "decision process": holds the pages until the parent is done
        os.close(release)
        os.read(hold, 1)
        os._exit(0)
    try:
        os.close(hold)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        store.add(subjects[:20], 501, [30] * 20, np.ones((20, 4)))  # opens bucket 501
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    finally:
        os.close(release)
        os.waitpid(child, 0)
    assert faults < matrix_pages // 20, f"{faults} pages copied of {matrix_pages}"
    assert store.read(subjects[0], 0)[0] == [500, 501]
    assert store.read(subjects[-1], 0)[0] == [500]
