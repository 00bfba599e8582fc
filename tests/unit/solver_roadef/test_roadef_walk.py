"""The compiled annealing walk, graded by the independent checker."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from roadef_cases import CHAIN_MODEL, generated_instance
from vmgrid.solver.roadef import walk
from vmgrid.solver.roadef.anneal import HeatChooser, anneal_step, temperature_scale
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.instance import parse_assignment, parse_model
from vmgrid.solver.roadef.local import lock_weight
from vmgrid.solver.roadef.solve import RoadefOptions, solve_roadef
from vmgrid.solver.roadef.state import AssignmentState
from vmgrid.solver.roadef.walk import available, run_walk, side_by_side

pytestmark = pytest.mark.skipif(not available(), reason="no C compiler for the walk")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    heat=st.sampled_from([0.1, 1.0, 100.0, 1e6]),
    shares=st.sampled_from([(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.3, 0.4), (0.0, 1.0)]),
    locked=st.booleans(),
)
def test_walk_running_cost_is_the_checkers_cost_of_where_it_ends(
    seed: int, heat: float, shares: tuple[float, float], locked: bool
) -> None:
    """After many random moves (hot walks accept most feasible ones), the walk's move-by-move
    total equals the checker's cost of the assignment it ended on, which keeps every rule;
    its best is valid, no dearer than the start, and costed exactly. Shares: (swaps, ejection
    chains), the rest shifts."""
    instance, initial = generated_instance(seed)
    state = AssignmentState(instance, initial, initial)
    lock = lock_weight(state).astype(np.float64) if locked else None
    swap_share, chain_share = shares
    result = run_walk(state, 0.05, heat, heat / 10, seed, swap_share, lock, chain_share)
    assert result is not None and not result.disagreed
    assert result.attempts > 0
    last = check(instance, initial, result.last)
    assert last.valid, last.violations[:3]
    assert last.cost.total == result.last_cost
    best = check(instance, initial, result.state.x)
    assert best.valid and best.cost.total == result.state.total <= state.total


def test_hot_walk_moves_and_returns_to_the_cheapest_seen() -> None:
    instance, initial = generated_instance(3)
    state = AssignmentState(instance, initial, initial)
    result = run_walk(state, 0.1, 1e9, 1e9, 1)
    assert result is not None
    assert result.moves > 100
    assert not np.array_equal(result.last, initial)
    assert check(instance, initial, result.state.x).cost.total <= state.total


def test_walk_without_its_best_hands_back_the_state_and_a_valid_end() -> None:
    """`keep_best=False` (the descent's use): the state given comes back as it was, and the
    assignment the walk ended on keeps every rule and costs what the walk counted."""
    instance, initial = generated_instance(3)
    state = AssignmentState(instance, initial, initial)
    result = run_walk(state, 0.05, 1e-3, 1e-4, 1, keep_best=False)
    assert result is not None and result.state is state
    assert not np.array_equal(result.last, initial)
    report = check(instance, initial, result.last)
    assert report.valid and report.cost.total == result.last_cost < state.total


@pytest.mark.parametrize("seed", range(4))
def test_cold_walk_finds_an_improving_shift_where_one_exists(seed: int) -> None:
    instance, initial = generated_instance(seed)
    state = AssignmentState(instance, initial, initial)
    improving = any(
        ((delta < 0) & ok).any()
        for delta, ok in (state.shift_options(p) for p in range(instance.processes))
    )
    assert improving  # the generator puts usage above safety somewhere
    result = run_walk(state, 0.05, 1e-3, 1e-4, seed, 0.0)
    assert result is not None
    report = check(instance, initial, result.state.x)
    assert report.valid and report.cost.total == result.state.total < state.total


def test_cold_chain_walk_makes_room_where_no_shift_improves() -> None:
    """Where no shift improves and the gain needs a resident to leave first, a cold walk of
    ejection chains reaches the optimum (found by enumerating every assignment, graded by the
    checker) and a cold walk of shifts stays where it started."""
    instance = parse_model(CHAIN_MODEL)
    initial = parse_assignment("0 1 2", instance)
    state = AssignmentState(instance, initial, initial)
    assert not any(
        ((delta < 0) & ok).any()
        for delta, ok in (state.shift_options(p) for p in range(instance.processes))
    )
    reports = (check(instance, initial, np.array(x)) for x in itertools.product(range(3), repeat=3))
    optimum = min(r.cost.total for r in reports if r.valid)
    assert optimum < state.total
    shifts = run_walk(state, 0.05, 1e-3, 1e-4, 0, 0.0)
    chains = run_walk(state, 0.05, 1e-3, 1e-4, 0, 0.0, None, 0.5)
    assert shifts is not None and chains is not None
    assert shifts.state.total == state.total
    report = check(instance, initial, chains.state.x)
    assert report.valid and report.cost.total == chains.state.total == optimum


def test_temperature_scale_is_a_positive_uphill_shift() -> None:
    instance, initial = generated_instance(1)
    state = AssignmentState(instance, initial, initial)
    scale = temperature_scale(state, np.random.default_rng(0))
    ups = []
    for p in range(instance.processes):
        delta, ok = state.shift_options(p)
        ups += [int(d) for d in delta[ok] if d > 0]
    assert min(ups) <= scale <= max(ups)


def test_heat_chooser_tries_every_heat_then_prefers_the_gaining_one() -> None:
    chooser = HeatChooser(np.random.default_rng(0))
    first = []
    for _ in HeatChooser.HEATS:
        heat = chooser.pick()
        first.append(heat)
        chooser.record(heat, 100 if heat == 1.0 else 0, 10_000, 1.0)
    picks = [chooser.pick() for _ in range(200)]
    assert set(first) == set(HeatChooser.HEATS)
    assert picks.count(1.0) > 120 and len(set(picks)) == 3


def test_side_by_side_runs_the_calls_at_once_and_keeps_their_order() -> None:
    """Each call waits for the other at a barrier: one after the other, the first would
    wait out the barrier's timeout and break it."""
    barrier = threading.Barrier(3, timeout=10)

    def call(k: int) -> int:
        barrier.wait()
        return k

    assert side_by_side([lambda: call(1), lambda: call(2), lambda: call(3)]) == [1, 2, 3]
    assert side_by_side([lambda: 7]) == [7]


def test_walks_asking_for_the_compiled_walk_at_once_all_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first use loads the library; a walk asking meanwhile waits for it instead of being
    told there is none (a race that once dropped a side-by-side descent's first chunk)."""
    monkeypatch.setattr(walk, "_tried", False)
    monkeypatch.setattr(walk, "_lib", None)
    barrier = threading.Barrier(4, timeout=10)

    def ask() -> bool:
        barrier.wait()
        return available()

    assert side_by_side([ask, ask, ask, ask]) == [True, True, True, True]


def test_walks_side_by_side_each_draw_a_heat_and_the_answer_keeps_every_rule() -> None:
    instance, initial = generated_instance(2)
    state = AssignmentState(instance, initial, initial)
    rng = np.random.default_rng(0)
    heats, stats = HeatChooser(rng), dict[str, int]()
    ended = anneal_step(state, 0.3, heats, rng, stats, chains=0.3, threads=3)
    assert sorted(heats.tried.values()) == [1, 1, 1]  # three walks, one per untried heat
    assert stats["walk_attempts"] > 0 and stats["walk_disagreed"] == 0
    report = check(instance, initial, ended.x)
    assert report.valid and report.cost.total == ended.total <= state.total


@pytest.mark.parametrize("anytime", [False, True])
def test_search_with_walks_stays_valid_and_no_worse(anytime: bool) -> None:
    for seed in range(3):
        instance, initial = generated_instance(seed)
        options = RoadefOptions(
            seed=seed, walk_step=0.2, walk_tail=0.4, walk_anytime=anytime, workers=1
        )
        result = solve_roadef(instance, initial, 2.0, options)
        report = check(instance, initial, result.assignment)
        assert report.valid and report.cost.total == result.cost <= result.original_cost
        assert result.stats["walk_attempts"] > 0
        assert result.stats.get("walk_disagreed", 0) == 0


def test_search_without_walks_never_walks() -> None:
    instance, initial = generated_instance(0)
    result = solve_roadef(instance, initial, 1.0, RoadefOptions(walk_step=0, workers=1))
    assert result.stats["lns_walk"] == 0 and "walk_attempts" not in result.stats
