"""The independent checker against costs and violations computed by hand."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from roadef_cases import TINY_INITIAL_COST, tiny
from vmgrid.solver.roadef.checker import CostBreakdown, check, cost_of, violations_of
from vmgrid.solver.roadef.instance import parse_assignment, parse_model

DATA = Path(__file__).parents[2] / "data" / "roadef"


def test_initial_assignment_costs_load_plus_balance_and_is_valid() -> None:
    instance, initial = tiny()
    report = check(instance, initial, initial)
    assert report.valid and report.violations == []
    assert report.cost == CostBreakdown(30, 36, 0, 0, 0, TINY_INITIAL_COST)


def test_one_move_pays_process_service_and_machine_move_costs() -> None:
    instance, initial = tiny()
    # p1 m1 -> m2: load 0; balance 3 * (6 + 3 + 3); process 7; service 1 * 10; machine 3 * 100.
    report = check(instance, initial, np.array([0, 2, 0, 1]))
    assert report.valid, report.violations
    assert report.cost == CostBreakdown(0, 36, 7, 1, 3, 0 + 36 + 7 + 10 + 300)


def test_service_move_cost_is_the_largest_count_of_moved_processes_in_one_service() -> None:
    instance, initial = tiny()
    # p0 and p1 (both s0) on m2: load 10 * (7 - 6); balance 3 * (12 + 3 + 0).
    cost = cost_of(instance, initial, np.array([2, 2, 0, 1]))
    assert cost == CostBreakdown(10, 45, 12, 2, 5, 10 + 45 + 12 + 20 + 500)


def test_conflict_and_capacity_are_reported_with_machine_and_amounts() -> None:
    instance, initial = tiny()
    found = violations_of(instance, initial, np.array([0, 0, 0, 1]))
    assert "conflict: service 0 has 2 processes on machine 0" in found
    assert "capacity: machine 0 resource 1 uses 9 > 8" in found


def test_spread_below_minimum_is_reported() -> None:
    instance, initial = tiny()
    found = violations_of(instance, initial, np.array([2, 1, 0, 1]))
    assert found == ["spread: service 0 spans 1 locations < spreadMin 2"]


def test_dependency_outside_the_neighborhood_of_the_needed_service_is_reported() -> None:
    instance, initial = tiny()
    found = violations_of(instance, initial, np.array([0, 1, 0, 2]))
    assert found == ["dependency: service 1 runs in neighborhood 1 without service 0"]


def test_transient_resource_counts_on_both_machines_of_a_move() -> None:
    instance, initial = tiny()
    # Swap p2 and p3: m0 uses 5 of r1 but still holds p2's 4 while it leaves: 9 > 8.
    found = violations_of(instance, initial, np.array([0, 1, 1, 0]))
    assert found == ["transient: machine 0 resource 1 holds 9 > 8 counting processes moving away"]


def test_wrong_length_and_unknown_machine_are_invalid() -> None:
    instance, initial = tiny()
    assert not check(instance, initial, np.array([0, 1, 0])).valid
    report = check(instance, initial, np.array([0, 1, 0, 7]))
    assert report.violations == ["process 3 is on machine 7, which does not exist"]


def test_challenge_instance_a1_1_original_cost_matches_the_published_value() -> None:
    instance = parse_model(gzip.decompress((DATA / "model_a1_1.txt.gz").read_bytes()).decode())
    text = gzip.decompress((DATA / "assignment_a1_1.txt.gz").read_bytes()).decode()
    initial = parse_assignment(text, instance)
    report = check(instance, initial, initial)
    assert report.valid
    assert report.cost.total == 49_528_750
