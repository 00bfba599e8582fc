"""Incremental state, local search and CP-SAT neighbourhoods, each graded by the checker."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from roadef_cases import TINY_INITIAL_COST, generated, tiny
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.hoods import pick_neighbourhood
from vmgrid.solver.roadef.instance import RoadefInstance, parse_assignment, parse_model
from vmgrid.solver.roadef.lns import solve_neighbourhood
from vmgrid.solver.roadef.local import local_search, shift_pass, try_swap
from vmgrid.solver.roadef.solve import KINDS, STEPS, KindChooser, RoadefOptions, solve_roadef
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


# r0 plain, r1 transient. m0 has no safety capacity (everything on it pays load cost) and hosts
# p0 (4, 4). m1 and m2 both have safety (8, 8) above p0's needs, but m1's own process p1 holds
# 8 of its 10 units of r1 wherever p1 goes, so m1 can never take p0; m2's p2 holds only 2.
SINK_MODEL = """
2
0 1
1 1
3
0 0 10 10 0 0 0 1 1
0 0 10 10 8 8 1 0 1
0 0 10 10 8 8 1 1 0
3
1 0
1 0
1 0
3
0 4 4 1
1 6 8 1
2 6 2 1
0
1 1 1
"""


def test_conflict_neighbourhood_skips_machines_whose_transient_capacity_is_held_for_good() -> None:
    instance = parse_model(SINK_MODEL)
    initial = parse_assignment("0 1 2", instance)
    state = AssignmentState(instance, initial, initial)
    for seed in range(8):
        hood = pick_neighbourhood(state, "conflict", 2, 10, np.random.default_rng(seed))
        assert hood.machines == (0, 2)
        # Even when the neighbourhood frees fewer processes than its machines hold, the
        # process that could leave the costly machine is among them.
        small = pick_neighbourhood(state, "conflict", 2, 1, np.random.default_rng(seed))
        assert small.processes == (0,)
    gain, _ = solve_neighbourhood(state, hood, 5.0, 1, 0)
    assert gain > 0 and int(state.x[0]) == 2
    assert check(instance, initial, state.x).valid


def test_kind_chooser_favours_the_kind_that_gains_and_keeps_trying_the_others() -> None:
    chooser = KindChooser(100, np.random.default_rng(0))
    for _ in range(20):
        chooser.record("conflict", 1_000, 1_000_000, False, 0.3)
        chooser.record("random", 0, 1_000_000, False, 0.3)
    picks = [chooser.pick() for _ in range(2_000)]
    share = {k: picks.count(k) / len(picks) for k in KINDS}
    assert share["conflict"] > 0.6
    # The uniform share (EXPLORE spread over every step) keeps every kind in play.
    uniform = KindChooser.EXPLORE / len(STEPS)
    assert all(share[k] > 0.8 * uniform for k in KINDS)


def test_kind_chooser_sizes_each_kind_on_its_own() -> None:
    chooser = KindChooser(100, np.random.default_rng(0))
    start = chooser.size["cost"]
    for _ in range(3):
        chooser.record("cost", 0, 1_000, False, 0.3)  # neither proven nor gaining: shrink
        chooser.record("zone", 0, 1_000, True, 0.01)  # proven optimal: grow
    assert chooser.size["cost"] == max(2, start - 3)
    assert chooser.size["zone"] == start + 3
    assert chooser.size["random"] == start
    for _ in range(200):
        chooser.record("zone", 0, 1_000, True, 0.01)
    assert chooser.size["zone"] == 40  # capped at min(machines, 40)


def _away_with_two_improving_moves(
    instance: RoadefInstance, initial: np.ndarray
) -> tuple[AssignmentState, int, int] | None:
    """A feasible assignment, a process away from home, and a machine other than home that it
    improves more by moving to than by going home (both moves improving)."""
    for current in np.ndindex(*(instance.machines,) * instance.processes):
        x = np.array(current)
        if not check(instance, initial, x).valid:
            continue
        state = AssignmentState(instance, initial, x)
        for p in range(instance.processes):
            home = int(initial[p])
            if int(x[p]) == home:
                continue
            delta, ok = state.shift_options(p)
            if not (ok[home] and delta[home] < 0):
                continue
            better = [m for m in range(instance.machines) if ok[m] and delta[m] < delta[home]]
            if better:
                return state, p, home
    return None


@pytest.mark.parametrize("seed", [2, 22, 34, 39])  # seeds with such a process
def test_lock_penalty_sends_a_process_home_and_never_raises_the_cost(seed: int) -> None:
    model, assignment = generated(seed, machines=3, services=2)
    instance = parse_model(model)
    initial = parse_assignment(assignment, instance)
    found = _away_with_two_improving_moves(instance, initial)
    assert found is not None
    state, p, home = found
    plain = AssignmentState(instance, initial, state.x)
    shift_pass(plain, np.array([p]), float("inf"))
    assert int(plain.x[p]) != home  # the plain pass takes the larger gain
    before = state.total
    shift_pass(state, np.array([p]), float("inf"), lock=1e6)
    assert int(state.x[p]) == home  # with a large penalty the process goes home
    assert state.total < before
    assert check(instance, initial, state.x).cost.total == state.total


@pytest.mark.parametrize("seed", range(4))
def test_local_search_with_lock_penalty_keeps_the_assignment_valid(seed: int) -> None:
    instance, initial = _generated(seed)
    state = AssignmentState(instance, initial, initial)
    before = state.total
    local_search(state, float("inf"), np.random.default_rng(seed), lock=1.0)
    report = check(instance, initial, state.x)
    assert report.valid, report.violations
    assert report.cost.total == state.total <= before


def test_kind_chooser_tries_every_kind_before_gains_decide() -> None:
    chooser = KindChooser(100, np.random.default_rng(0))
    first = [chooser.pick() for _ in range(KindChooser.WARMUP * (len(KINDS) + 1))]
    assert set(STEPS) == {*KINDS, "local", "walk"}
    assert all(first.count(k) == KindChooser.WARMUP for k in (*KINDS, "walk"))
    banned = KindChooser(100, np.random.default_rng(0))
    banned.banned.add("walk")  # no C compiler: the walk is never drawn
    picks = [banned.pick() for _ in range(500)]
    assert "walk" not in picks and all(picks.count(k) >= KindChooser.WARMUP for k in KINDS)


def test_kind_chooser_keeps_local_search_going_while_it_gains_most() -> None:
    chooser = KindChooser(100, np.random.default_rng(0))
    for _ in range(20):
        chooser.record("local", 50_000, 1_000_000, False, 2.0)  # 2.5 % per second
        chooser.record("conflict", 1_000, 1_000_000, True, 0.3)  # 0.3 % per second
    picks = [chooser.pick() for _ in range(2_000)]
    assert picks.count("local") > 0.6 * len(picks)


def test_kind_chooser_caps_freed_processes_when_its_machines_hold_too_many() -> None:
    chooser = KindChooser(100, np.random.default_rng(0), max_free=200)
    size, free = chooser.size["home"], chooser.free["home"]
    # Sampled neighbourhoods that CP-SAT neither proves nor improves: fewer processes, same
    # machines (two machines of 50 processes each are no smaller a model than four).
    for _ in range(3):
        chooser.record("home", 0, 1_000, False, 0.3, capped=True)
    assert chooser.size["home"] == size
    assert chooser.free["home"] < free
    shrunk = chooser.free["home"]
    chooser.record("home", 0, 1_000, True, 0.05, capped=True)
    assert chooser.free["home"] > shrunk and chooser.size["home"] == size
    # Once every process of its machines is freed, proofs grow the machines again.
    chooser.record("home", 0, 1_000, True, 0.05, capped=False)
    assert chooser.size["home"] == size + 1
    assert all(chooser.free[k] <= 200 for k in KINDS)


def test_kind_chooser_forgets_faster_after_a_long_step_that_gains_nothing() -> None:
    short, long = (
        KindChooser(100, np.random.default_rng(0)),
        KindChooser(100, np.random.default_rng(0)),
    )
    for chooser in (short, long):
        chooser.record("local", 50_000, 1_000_000, False, 0.3)
    short.record("local", 0, 1_000_000, False, 0.3)
    long.record("local", 0, 1_000_000, False, 2.0)
    assert long.rate["local"] < 0.6 * short.rate["local"]
