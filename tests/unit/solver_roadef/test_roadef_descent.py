"""The compiled first local search (`descent.py`), graded by the independent checker."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from roadef_cases import CHAIN_MODEL, generated_instance
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.descent import descend, steered_cost
from vmgrid.solver.roadef.instance import RoadefInstance, parse_assignment, parse_model
from vmgrid.solver.roadef.local import lock_weight
from vmgrid.solver.roadef.solve import (
    TRANSIENT_DESCENTS,
    RoadefOptions,
    descents_for,
    solve_roadef,
)
from vmgrid.solver.roadef.state import AssignmentState
from vmgrid.solver.roadef.walk import available

pytestmark = pytest.mark.skipif(not available(), reason="no C compiler for the walk")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lock=st.sampled_from([0.0, 0.25, 1.0]),
    threads=st.sampled_from([1, 2]),
)
def test_descent_keeps_every_rule_and_never_raises_the_steered_cost(
    seed: int, lock: float, threads: int
) -> None:
    """From the initial assignment and from one a hot walk left away from home, the descent
    ends on an assignment the checker finds valid and costs as the state does, with a steered
    cost (exact cost plus the lock charge of the processes away) no higher than where it began;
    unsteered, its exact cost does not rise. With two walks side by side per chunk too."""
    instance, initial = generated_instance(seed)
    rng = np.random.default_rng(seed)
    start = AssignmentState(instance, initial, initial)
    charges = lock * lock_weight(start).astype(np.float64) if lock > 0 else None
    ended = descend(start, lock, time.monotonic() + 0.3, rng, chunk=0.02, threads=threads)
    report = check(instance, initial, ended.x)
    assert report.valid, report.violations[:3]
    assert report.cost.total == ended.total
    assert steered_cost(ended, charges) <= steered_cost(start, charges)
    if lock == 0:
        assert ended.total <= start.total


@pytest.mark.parametrize("seed", range(4))
def test_unsteered_descent_leaves_next_to_no_improving_shift(seed: int) -> None:
    """The generated instances have usage above safety, so improving shifts exist at the
    start; the descent takes such moves until a chunk gains next to nothing (each shift is
    drawn hundreds of times per chunk here). At most a tenth of the processes that had an
    improving shift may have one at the end: sideways moves (no cost change) late in the last
    chunk can open one; 40 seeds tried left none."""
    instance, initial = generated_instance(seed)
    state = AssignmentState(instance, initial, initial)

    def improvable(s: AssignmentState) -> int:
        options = (s.shift_options(p) for p in range(instance.processes))
        return sum(bool(((delta < 0) & ok).any()) for delta, ok in options)

    before = improvable(state)
    assert before > 0
    ended = descend(state, 0.0, time.monotonic() + 5.0, np.random.default_rng(seed), chunk=0.1)
    assert ended.total < state.total
    assert improvable(ended) <= before // 10


def test_descent_past_its_deadline_returns_the_state_given() -> None:
    instance, initial = generated_instance(0)
    state = AssignmentState(instance, initial, initial)
    assert descend(state, 0.0, time.monotonic() - 1.0, np.random.default_rng(0)) is state


def test_descent_makes_room_by_ejection_chains() -> None:
    """`roadef_cases.CHAIN_MODEL`: no single shift improves, the optimum
    needs a resident to leave first; the descent (chains included) reaches that optimum."""
    instance = parse_model(CHAIN_MODEL)
    initial = parse_assignment("0 1 2", instance)
    state = AssignmentState(instance, initial, initial)
    ended = descend(state, 0.0, time.monotonic() + 2.0, np.random.default_rng(0), chunk=0.05)
    assert ended.total < state.total
    report = check(instance, initial, ended.x)
    assert report.valid and report.cost.total == ended.total


@pytest.mark.parametrize("first_walk", [True, False])
def test_search_with_either_first_search_is_valid_and_no_worse(first_walk: bool) -> None:
    for seed in range(3):
        instance, initial = generated_instance(seed)
        options = RoadefOptions(seed=seed, workers=1, first_walk=first_walk, walk_step=0.2)
        result = solve_roadef(instance, initial, 1.5, options)
        report = check(instance, initial, result.assignment)
        assert report.valid and report.cost.total == result.cost < result.original_cost
        assert result.stats["first_walk"] == int(first_walk)


def _descents_per_part(
    monkeypatch: pytest.MonkeyPatch,
    instance: RoadefInstance,
    initial: np.ndarray,
    options: RoadefOptions,
) -> list[tuple[float, int]]:
    """(lock weight, walks side by side) of each part of the first local search, in order;
    the answer graded valid by the checker."""
    import vmgrid.solver.roadef.solve as solve_module

    calls: list[tuple[float, int]] = []

    def recording(state, lock, deadline, rng, chains=0.3, chunk=1.0, threads=1):  # type: ignore[no-untyped-def]
        calls.append((lock, threads))
        return descend(state, lock, deadline, rng, chains, chunk, threads=threads)

    monkeypatch.setattr(solve_module, "descend", recording)
    result = solve_roadef(instance, initial, 2.0, options)
    report = check(instance, initial, result.assignment)
    assert report.valid and report.cost.total == result.cost <= result.original_cost
    return calls


def _each_search(calls: list[tuple[float, int]], parts: list[tuple[float, int]]) -> bool:
    """`calls` are those of one or more whole first searches, each with these parts."""
    searches = len(calls) // len(parts)
    return searches >= 1 and calls == parts * searches


def _first_searches(
    monkeypatch: pytest.MonkeyPatch,
    instance: RoadefInstance,
    initial: np.ndarray,
    options: RoadefOptions,
    timeout: float = 2.0,
) -> tuple[list[int], int, int]:
    """The cost each first search ended at, the cost the search after them started from,
    and the answer's cost (graded valid by the checker)."""
    import vmgrid.solver.roadef.solve as solve_module

    ends: list[int] = []
    real = solve_module._first_search  # noqa: SLF001

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real(*args, **kwargs)
        ends.append(found.state.total)
        return found

    monkeypatch.setattr(solve_module, "_first_search", recording)
    said: list[str] = []
    result = solve_roadef(instance, initial, timeout, options, said.append)
    report = check(instance, initial, result.assignment)
    assert report.valid and report.cost.total == result.cost <= result.original_cost
    (done,) = [line for line in said if line.startswith("local search done")]
    found = re.search(r"cost ([\d,]+),", done)
    assert found is not None, done
    started = int(found.group(1).replace(",", ""))
    assert result.stats["first_searches"] == len(ends)
    return ends, started, result.cost


def test_first_searches_repeat_within_their_share_and_the_cheapest_end_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a `first_share`, first searches from the original assignment repeat while one
    more fits in that share of the budget, and the search after them starts from the
    cheapest end; by default (a share of 0) one runs."""
    instance, initial = generated_instance(1)
    # chunks of 50 ms: a search here takes about 0.4 s (two chunks a part); a share of 2 s
    # holds two of them even on a machine twice as slow
    options = RoadefOptions(seed=1, workers=1, walk_step=0, descent_chunk=0.05)
    ends, started, cost = _first_searches(
        monkeypatch, instance, initial, replace(options, first_share=0.5), timeout=4.0
    )
    assert len(ends) >= 2, ends
    assert started == min(ends) and cost <= started
    assert RoadefOptions().first_share == 0.0
    assert len(_first_searches(monkeypatch, instance, initial, options)[0]) == 1


def test_locked_parts_and_the_plain_part_each_run_their_own_number_of_descents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each locked part (lock weight above 0) runs `locked_descent_threads` walks side by
    side, the plain part `descent_threads`, and the answer stays valid."""
    instance, initial = generated_instance(1)
    assert instance.transient.any()
    options = RoadefOptions(
        seed=1, workers=1, walk_step=0, locked_descent_threads=3, descent_threads=1
    )
    calls = _descents_per_part(monkeypatch, instance, initial, options)
    assert _each_search(calls, [*((lock, 3) for lock in options.locks), (0.0, 1)])


def test_by_default_every_part_runs_two_descents_where_a_resource_is_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the defaults, an instance with a transient resource gets TRANSIENT_DESCENTS walks
    side by side in every part, locked and plain; the same instance without one has only the
    plain part, with one walk."""
    instance, initial = generated_instance(1)
    assert instance.transient.any()
    options = RoadefOptions(seed=1, workers=1, walk_step=0)
    calls = _descents_per_part(monkeypatch, instance, initial, options)
    assert _each_search(calls, [(lock, TRANSIENT_DESCENTS) for lock in (*options.locks, 0.0)])
    assert TRANSIENT_DESCENTS == 2
    plain = replace(instance, transient=np.zeros_like(instance.transient))
    assert _descents_per_part(monkeypatch, plain, initial, options) == [(0.0, 1)]
    assert [descents_for(plain, options, locked) for locked in (False, True)] == [1, 2]
    named = RoadefOptions(descent_threads=3)
    assert descents_for(plain, named, False) == descents_for(instance, named, False) == 3
