"""The history benchmark on a small cluster: its figures are the store's own, and bad sizes
are refused naming them."""

from __future__ import annotations

import argparse

import pytest
from vmgrid.bench.history import run


def args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = dict(
        nodes=4, vms_per_node=8, minutes=2.0, period=1.0, seed=1, rounds=1, pressure=False
    )
    values.update(overrides)
    return argparse.Namespace(**values)


def test_a_small_run_reports_the_hours_bytes_and_both_apply_times() -> None:
    result = run(args())
    assert result["vms"] == 32 and result["reports"] == 4 * 120
    # 121 buckets x 5 float32 values per row; the matrix grows by a quarter, so at most a
    # quarter of its rows (and never fewer than the VMs) stand empty
    row = 121 * 5 * 4
    assert row <= result["hour_bytes_per_vm"] <= 1.25 * row
    assert result["apply_us_per_report"] > 0 and result["apply_us_per_report_without_hour"] > 0
    assert result["read_ms_node_and_vm"] > 0


def test_with_pressure_the_vms_pressure_rows_are_kept_too() -> None:
    without, with_pressure = run(args()), run(args(pressure=True))
    assert (without["pressure"], with_pressure["pressure"]) == (False, True)
    # 32 VMs' pressure rows (121 buckets x (1 + 3) float32) instead of the empty initial 4,
    # with at most a quarter more rows than VMs
    grown = with_pressure["hour_bytes"] - without["hour_bytes"]
    assert (32 - 4) * 121 * 4 * 4 <= grown <= (1.25 * 32 - 4) * 121 * 4 * 4


def test_bad_sizes_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="--nodes 0"):
        run(args(nodes=0))
