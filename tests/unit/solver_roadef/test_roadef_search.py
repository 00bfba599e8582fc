"""Incremental state, local search and CP-SAT neighbourhoods, each graded by the checker."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from roadef_cases import TINY_INITIAL_COST, generated, tiny
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.instance import RoadefInstance, parse_assignment, parse_model
from vmgrid.solver.roadef.lns import solve_neighbourhood
from vmgrid.solver.roadef.local import try_swap
from vmgrid.solver.roadef.solve import KINDS, RoadefOptions, pick_neighbourhood, solve_roadef
from vmgrid.solver.roadef.state import AssignmentState

DATA = Path(__file__).parents[2] / "data" / "roadef"


def _generated(seed: int) -> tuple[RoadefInstance, np.ndarray]:
    model, assignment = generated(seed)
    instance = parse_model(model)
    return instance, parse_assignment(assignment, instance)


@pytest.mark.parametrize("seed", range(6))
def test_generated_initial_assignment_is_valid(seed: int) -> None:
    instance, initial = _generated(seed)
    assert check(instance, initial, initial).valid


@pytest.mark.parametrize("seed", range(6))
def test_shift_options_agree_with_the_checker_on_every_machine(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed)
    for _ in range(40):
        p = int(rng.integers(instance.processes))
        delta, ok = state.shift_options(p)
        before = check(instance, initial, state.x).cost.total
        assert state.total == before
        for m in range(instance.machines):
            if m == state.x[p]:
                continue
            trial = state.x.copy()
            trial[p] = m
            report = check(instance, initial, trial)
            assert bool(ok[m]) == report.valid, (p, m, report.violations)
            if report.valid:
                assert int(delta[m]) == report.cost.total - before
        choices = np.flatnonzero(ok)
        if choices.size:
            state.move(p, int(rng.choice(choices)))


@pytest.mark.parametrize("seed", range(4))
def test_swaps_are_kept_only_when_valid_and_cheaper(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed)
    for _ in range(60):
        p, q = (int(v) for v in rng.choice(instance.processes, 2, replace=False))
        before = state.x.copy()
        gain = try_swap(state, p, q)
        report = check(instance, initial, state.x)
        assert report.valid, report.violations
        assert report.cost.total == state.total
        if gain == 0:
            assert state.x.tolist() == before.tolist()


@pytest.mark.parametrize(("seed", "kind"), [(s, k) for s in range(3) for k in KINDS])
def test_cp_sat_neighbourhood_keeps_the_assignment_valid_and_no_worse(seed: int, kind: str) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        cost = state.total
        hood = pick_neighbourhood(state, kind, 4, 50, rng)
        gain, _proven = solve_neighbourhood(state, hood, 2.0, 1, seed)
        report = check(instance, initial, state.x)
        assert report.valid, report.violations
        assert report.cost.total == state.total == cost - gain


def test_cp_sat_finds_the_best_move_of_the_tiny_instance() -> None:
    instance, initial = tiny()
    state = AssignmentState(instance, initial, initial)
    hood = pick_neighbourhood(state, "random", 3, 10, np.random.default_rng(0))
    gain, proven = solve_neighbourhood(state, hood, 5.0, 1, 0)
    assert proven
    # The whole instance is the neighbourhood, so the result is optimal: no valid assignment
    # of the four processes is cheaper (checked by enumeration).
    best = min(
        report.cost.total
        for a in np.ndindex(3, 3, 3, 3)
        if (report := check(instance, initial, np.array(a))).valid
    )
    assert state.total == best == TINY_INITIAL_COST - gain


@pytest.mark.parametrize("seed", range(3))
def test_solver_returns_a_valid_assignment_no_worse_than_the_original(seed: int) -> None:
    instance, initial = _generated(seed)
    result = solve_roadef(instance, initial, 3.0, RoadefOptions(workers=1, seed=seed))
    report = check(instance, initial, result.assignment)
    assert report.valid, report.violations
    assert report.cost.total == result.cost <= result.original_cost
    assert result.original_cost == check(instance, initial, initial).cost.total


def test_solver_improves_challenge_instance_a1_1() -> None:
    instance = parse_model(gzip.decompress((DATA / "model_a1_1.txt.gz").read_bytes()).decode())
    text = gzip.decompress((DATA / "assignment_a1_1.txt.gz").read_bytes()).decode()
    initial = parse_assignment(text, instance)
    result = solve_roadef(instance, initial, 4.0, RoadefOptions(workers=1))
    report = check(instance, initial, result.assignment)
    assert report.valid, report.violations
    assert report.cost.total == result.cost < 49_528_750


def test_conflict_neighbourhood_pairs_a_costly_machine_with_machines_fitting_its_process() -> None:
    instance, initial = tiny()
    state = AssignmentState(instance, initial, initial)
    # Only m1 pays load cost (r0: 8 > safety 5); its largest r0 process is p3 (5, 3), whose
    # requirement fits under the safety capacity of m0 (8, 8) and of m2 (6, 6).
    for seed in range(5):
        hood = pick_neighbourhood(state, "conflict", 2, 10, np.random.default_rng(seed))
        assert hood.machines[0] == 1
        assert hood.machines[1] in (0, 2)
        assert set(hood.processes) == {p for p in range(4) if int(state.x[p]) in hood.machines}
