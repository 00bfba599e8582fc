"""Receiver neighbourhoods, graded by the independent checker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from roadef_cases import generated
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.eject import can_take
from vmgrid.solver.roadef.instance import RoadefInstance, parse_assignment, parse_model
from vmgrid.solver.roadef.lns import solve_neighbourhood
from vmgrid.solver.roadef.receive import receive_neighbourhood
from vmgrid.solver.roadef.solve import pick_neighbourhood
from vmgrid.solver.roadef.state import AssignmentState


def _walked(seed: int) -> tuple[RoadefInstance, np.ndarray, AssignmentState]:
    """A generated instance and a state where random valid moves took processes from home."""
    model, assignment = generated(seed, machines=10, services=16, resources=3)
    instance = parse_model(model)
    initial = parse_assignment(assignment, instance)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(seed + 100)
    for _ in range(20):
        p = int(rng.integers(instance.processes))
        _delta, ok = state.shift_options(p)
        if ok.any():
            state.move(p, int(rng.choice(np.flatnonzero(ok))))
    return instance, initial, state


@pytest.mark.parametrize("seed", range(4))
def test_can_take_on_some_machines_is_those_columns_of_every_machine(seed: int) -> None:
    instance, _initial, state = _walked(seed)
    procs = np.arange(instance.processes)
    everywhere = can_take(state, procs)
    some = np.array([7, 2, 5])
    assert (can_take(state, procs, some) == everywhere[:, some]).all()


@pytest.mark.parametrize("seed", range(6))
def test_receive_frees_paying_processes_with_receivers_that_could_take_them(seed: int) -> None:
    instance, _initial, state = _walked(seed)
    hood = receive_neighbourhood(state, 4, 30, np.random.default_rng(seed))
    assert hood is not None and hood.domains is not None
    assert len(hood.domains) == len(hood.processes) <= 30
    assert len(set(hood.processes)) == len(hood.processes)
    for q, domain in zip(hood.processes, hood.domains, strict=True):
        assert int(state.x[q]) in domain and int(state.initial[q]) in domain
        assert set(domain) <= set(hood.machines)
    # The first freed process is a rival: it sits on a machine paying load cost, and the other
    # machines it may take are receivers that could take it.
    p = hood.processes[0]
    src, home = int(state.x[p]), int(state.initial[p])
    assert (state.used[src] > instance.safety[src]).any()
    receivers = [m for m in hood.domains[0] if m not in (src, home)]
    assert receivers and can_take(state, np.array([p]), np.array(receivers)).all()


def test_receive_is_none_when_no_machine_pays_load_cost() -> None:
    instance, initial, _state = _walked(0)
    roomy = dataclasses.replace(instance, safety=instance.capacity.copy())
    state = AssignmentState(roomy, initial, initial)
    assert receive_neighbourhood(state, 4, 30, np.random.default_rng(0)) is None


@pytest.mark.parametrize("seed", range(6))
def test_receive_neighbourhoods_solve_to_valid_cheaper_or_equal_assignments(seed: int) -> None:
    instance, initial, state = _walked(seed)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        hood = pick_neighbourhood(state, "receive", 4, 30, rng)
        assert hood.kind == "receive"
        cost = state.total
        gain, _proven = solve_neighbourhood(state, hood, 0.5, 1, seed)
        report = check(instance, initial, state.x)
        assert report.valid, report.violations
        assert report.cost.total == state.total == cost - gain
        if hood.domains is not None:
            for q, domain in zip(hood.processes, hood.domains, strict=True):
                assert int(state.x[q]) in domain
