"""The many-rings CPU matrix reads exactly what each ring's own reader gives, capped."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from vmgrid.agents.cluster.history import UsageRing, cpu_matrix


@given(
    st.lists(st.lists(st.integers(0, 10_000), max_size=25), min_size=1, max_size=6),
    st.integers(1, 12),
    st.integers(1, 12_000),
)
def test_matrix_rows_match_each_ring_newest_first(
    samples: list[list[int]], window: int, cap: int
) -> None:
    rings = []
    for values in samples:
        ring = UsageRing(window)
        for t, cpu in enumerate(values):
            ring.append(t, cpu, 0, 0, 0)
        rings.append(ring)
    matrix, lengths = cpu_matrix([*rings, None], cap)
    assert matrix.shape == (len(rings) + 1, window)
    for row, ring in enumerate(rings):
        expected = [min(c, cap) for c in ring.cpu_newest_first()]
        assert lengths[row] == len(expected)
        assert matrix[row, : len(expected)].tolist() == expected
        assert not matrix[row, len(expected) :].any()
    assert lengths[-1] == 0 and not np.any(matrix[-1])
