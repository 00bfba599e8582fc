"""Swap scores and ejection neighbourhoods, graded by the independent checker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from roadef_cases import generated, tiny
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.eject import can_take, eject_neighbourhood
from vmgrid.solver.roadef.instance import RoadefInstance, parse_assignment, parse_model
from vmgrid.solver.roadef.lns import solve_neighbourhood
from vmgrid.solver.roadef.local import INFEASIBLE, _swap_scores
from vmgrid.solver.roadef.solve import RoadefOptions, evacuation_order, solve_roadef
from vmgrid.solver.roadef.state import AssignmentState


def _generated(seed: int) -> tuple[RoadefInstance, np.ndarray]:
    model, assignment = generated(seed, machines=10, services=16, resources=3)
    instance = parse_model(model)
    return instance, parse_assignment(assignment, instance)


def _walk(state: AssignmentState, rng: np.random.Generator, steps: int) -> None:
    """Random valid moves, so that processes are away from home and hold transient capacity."""
    for _ in range(steps):
        p = int(rng.integers(state.inst.processes))
        _delta, ok = state.shift_options(p)
        if ok.any():
            state.move(p, int(rng.choice(np.flatnonzero(ok))))


@pytest.mark.parametrize("seed", range(5))
def test_swap_scores_are_the_exact_change_of_every_valid_swap(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed)
    _walk(state, rng, 30)
    partners = np.arange(instance.processes)
    weight = instance.weight_service_move
    for p in rng.choice(instance.processes, 12, replace=False).tolist():
        scores = _swap_scores(state, p, partners)
        before = check(instance, initial, state.x).cost
        for q in partners.tolist():
            trial = state.x.copy()
            trial[p], trial[q] = state.x[q], state.x[p]
            report = check(instance, initial, trial)
            same_service = instance.service[p] == instance.service[q]
            if trial[p] == state.x[p] or same_service or not report.valid:
                continue
            assert scores[q] != INFEASIBLE, (p, q)
            service_step = weight * (report.cost.service_move - before.service_move)
            assert int(scores[q]) == report.cost.total - before.total - service_step


@pytest.mark.parametrize("seed", range(5))
def test_swap_scores_rule_out_swaps_breaking_capacity_transient_or_conflict(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed + 10)
    _walk(state, rng, 30)
    partners = np.arange(instance.processes)
    for p in rng.choice(instance.processes, 12, replace=False).tolist():
        scores = _swap_scores(state, p, partners)
        for q in np.flatnonzero(scores != INFEASIBLE).tolist():
            trial = state.x.copy()
            trial[p], trial[q] = state.x[q], state.x[p]
            kinds = {v.split(":")[0] for v in check(instance, initial, trial).violations}
            assert not kinds & {"capacity", "transient", "conflict"}, (p, q, kinds)


def test_swap_scores_count_the_balance_cost() -> None:
    instance, initial = tiny()
    state = AssignmentState(instance, initial, initial)
    scores = _swap_scores(state, 0, np.arange(instance.processes))
    before = check(instance, initial, initial).cost
    for q in np.flatnonzero(scores != INFEASIBLE).tolist():
        trial = initial.copy()
        trial[0], trial[q] = initial[q], initial[0]
        report = check(instance, initial, trial)
        assert report.valid
        step = instance.weight_service_move * (report.cost.service_move - before.service_move)
        assert int(scores[q]) == report.cost.total - before.total - step


@pytest.mark.parametrize("seed", range(6))
def test_eject_neighbourhood_frees_a_process_with_machines_that_could_take_it(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed)
    _walk(state, rng, 20)
    hood = eject_neighbourhood(state, 1, 30, rng)
    if hood is None:
        over = np.maximum(0, state.used - instance.safety) @ instance.load_weight
        paying = np.flatnonzero(over)
        movable = [can_take(state, np.flatnonzero(state.x == m)).any() for m in paying]
        assert not any(movable)
        return
    assert hood.domains is not None and len(hood.domains) == len(hood.processes) <= 30
    assert len(set(hood.processes)) == len(hood.processes)
    p = hood.processes[0]
    src = int(state.x[p])
    # The drawn process sits on a machine paying load cost and may only go where it fits.
    assert (state.used[src] > instance.safety[src]).any()
    home = int(state.initial[p])
    targets = [m for m in hood.domains[0] if m not in (src, home)]
    assert can_take(state, np.array([p]))[0, targets].all()
    for q, domain in zip(hood.processes, hood.domains, strict=True):
        assert int(state.x[q]) in domain and int(state.initial[q]) in domain
        assert set(domain) <= set(hood.machines)
    # Every other freed process sits on one of the drawn process's destinations.
    assert {int(state.x[q]) for q in hood.processes[1:]} <= set(targets) | {home}


@pytest.mark.parametrize("seed", range(6))
def test_eject_neighbourhood_solves_to_a_valid_cheaper_or_equal_assignment(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        hood = eject_neighbourhood(state, 3, 30, rng)
        if hood is None:
            break
        cost = state.total
        gain, _proven = solve_neighbourhood(state, hood, 0.5, 1, seed)
        report = check(instance, initial, state.x)
        assert report.valid, report.violations
        assert report.cost.total == state.total == cost - gain
        moved = np.flatnonzero(state.x != initial)
        allowed = dict(zip(hood.processes, hood.domains or (), strict=True))
        for q in moved.tolist():
            if q in allowed:
                assert int(state.x[q]) in allowed[q]


@pytest.mark.parametrize("seed", range(4))
def test_evacuation_order_puts_the_largest_load_relief_first(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    order = evacuation_order(state)
    # Relief of a process: the load cost its machine would stop paying if it left (by checker).
    relief = {}
    base = check(instance, initial, initial).cost.load
    for p in range(instance.processes):
        others = [q for q in range(instance.processes) if q != p]
        trial = instance.requirement[others]
        used = np.zeros_like(state.used)
        np.add.at(used, initial[others], trial)
        over = np.maximum(0, used - instance.safety) @ instance.load_weight
        relief[p] = base - int(over.sum())
    assert set(order.tolist()) == {p for p, v in relief.items() if v > 0}
    values = [relief[p] for p in order.tolist()]
    assert values == sorted(values, reverse=True)


def test_evacuation_runs_only_where_a_transient_resource_holds_capacity_for_good() -> None:
    instance, initial = _generated(0)
    plain = dataclasses.replace(instance, transient=np.zeros_like(instance.transient))
    for case, expected in ((instance, True), (plain, False)):
        said: list[str] = []
        options = RoadefOptions(workers=1, seed=0)
        result = solve_roadef(case, initial, 1.0, options, said.append)
        assert any(m.startswith("evacuation") for m in said) is expected
        report = check(case, initial, result.assignment)
        assert report.valid and report.cost.total == result.cost <= result.original_cost
