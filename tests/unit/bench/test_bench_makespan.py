"""The makespan benchmark's physics and schedules (small batches, pure)."""

from __future__ import annotations

import argparse

import pytest
from vmgrid.bench.makespan import (
    Migration,
    capped_baseline,
    fair_shares,
    lower_bound_s,
    make_batch,
    make_cycle_batch,
    planned_order,
    run,
    simulate,
)


def test_full_duplex_nic_carries_one_flow_each_way_at_full_speed() -> None:
    shares = fair_shares({0: ("n1", "n2"), 1: ("n2", "n1")}, 1000)
    assert shares == {0: 1000, 1: 1000}


def test_flows_out_of_one_nic_share_it_and_leftovers_go_to_the_others() -> None:
    # 0 and 1 leave n1; 2 enters n3 with 0, so 0 is held by n1's share of 500.
    shares = fair_shares({0: ("n1", "n3"), 1: ("n1", "n2"), 2: ("n4", "n3")}, 1000)
    assert shares == {0: 500, 1: 500, 2: 500}


def test_precopy_lasts_memory_over_bandwidth_minus_dirty_rate() -> None:
    batch = [Migration(0, "vm0", "n1", "n2", 1000)]
    seconds = simulate(batch, capped_baseline(batch, 2), 1000, 200)
    assert seconds == pytest.approx(1000 * 8 * 1.048576 / 800)


def test_sharing_a_nic_direction_costs_time_when_guests_dirty_memory() -> None:
    batch = [Migration(0, "vm0", "n1", "n2", 1000), Migration(1, "vm1", "n1", "n3", 1000)]
    shared = simulate(batch, capped_baseline(batch, 2), 1000, 300)
    ordered, rule = planned_order(batch, 4, 1000)
    one_at_a_time = simulate(ordered, rule, 1000, 300)
    assert one_at_a_time < shared
    assert one_at_a_time == pytest.approx(lower_bound_s(batch, 1000, 300))


def test_planned_schedule_reaches_the_lower_bound_and_beats_the_cap_on_a_batch() -> None:
    batch = make_batch(6, 18, seed=7)
    ordered, rule = planned_order(batch, 6, 1000)
    planned = simulate(ordered, rule, 1000, 150)
    baseline = simulate(batch, capped_baseline(batch, 2), 1000, 150)
    assert planned == pytest.approx(lower_bound_s(batch, 1000, 150), rel=0.01)
    assert planned < baseline


def test_bad_seeds_are_named() -> None:
    args = argparse.Namespace(nodes=4, vms=4, nic_mbit=1000, dirty_mbit=150, seeds="1,x")
    with pytest.raises(ValueError, match="--seeds '1,x'"):
        run(args)


def args_for(**over: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "nodes": 4,
        "vms": 10,
        "nic_mbit": 1000,
        "dirty_mbit": 150,
        "seeds": "3",
        "schedule": "mttr",
        "schedule_time_limit": 1.0,
        "pivots": 3,
        "cycles": False,
    }
    return argparse.Namespace(**(base | over))


def test_cpsat_schedule_is_reported_beside_the_greedy_one_and_validates() -> None:
    out = run(args_for())
    plan = out["seeds"][0]["plan"]  # type: ignore[index]
    assert out["cpsat_valid"] is True
    assert plan["valid"] is True
    timed = (plan["cpsat_mttr_s"], plan["cpsat_makespan_s"])
    greedy = (plan["greedy_mttr_s"], plan["greedy_makespan_s"])
    assert timed <= greedy
    assert (plan["used"] == "cpsat") == (timed < greedy)
    for key in ("cpsat_makespan_s", "cpsat_mttr_s", "vmgrid_mttr_s", "baseline_mttr_s"):
        assert float(out[key]) > 0  # type: ignore[arg-type]


def test_a_full_ring_makes_the_planner_pivot_and_the_model_may_pivot_otherwise() -> None:
    out = run(args_for(nodes=5, vms=8, cycles=True, schedule="makespan", seeds="1,2"))
    assert out["cycles"] is True and out["migrations"] == 8  # 4 ring nodes, 2 slots
    assert int(out["greedy_pivots"]) > 0  # type: ignore[call-overload]
    for seed in out["seeds"]:  # type: ignore[attr-defined]
        plan = seed["plan"]
        assert plan["valid"] is True
        timed = (plan["cpsat_makespan_s"], plan["cpsat_mttr_s"])
        assert timed <= (plan["greedy_makespan_s"], plan["greedy_mttr_s"])
        assert plan["rerouted"] == 0 or plan["used"] == "cpsat"


def test_a_cycle_batch_rotates_full_nodes() -> None:
    batch, memory = make_cycle_batch(6, 12, seed=3)
    ring = [f"n{i}" for i in range(5)]  # one spare node: n5
    assert len(batch) == 10 and {m.src for m in batch} == set(ring)
    for node in ring:
        held = sum(m.memory_mib for m in batch if m.src == node)
        assert held == memory[node] == sum(m.memory_mib for m in batch if m.dst == node)
    assert all(m.src != m.dst for m in batch) and memory["n5"] >= max(m.memory_mib for m in batch)


def test_bad_schedule_time_limit_is_named() -> None:
    with pytest.raises(ValueError, match="--schedule-time-limit 0"):
        run(args_for(schedule_time_limit=0))
