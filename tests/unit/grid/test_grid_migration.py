"""Migration time: memory over rate, stretched by pre-copy's dirty-rate allowance."""

from __future__ import annotations

import pytest
from vmgrid.solver.grid import dirty_allowance, migration_seconds


def test_an_idle_guest_takes_memory_over_rate() -> None:
    assert migration_seconds(1024, 0, 1000) == pytest.approx(1024 * 8.388608 / 1000)


def test_dirty_pages_add_the_geometric_precopy_allowance() -> None:
    assert dirty_allowance(250, 1000, 0.9) == pytest.approx(0.25 / 0.75)
    assert migration_seconds(1024, 250, 1000) == pytest.approx(1024 * 8.388608 / 1000 / 0.75)


def test_a_guest_dirtying_faster_than_the_link_is_capped() -> None:
    assert dirty_allowance(5000, 1000, 0.9) == pytest.approx(9.0)
