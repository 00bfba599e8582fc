"""The simulator's accounting on cases small enough to compute by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from replay_builders import constant_workload
from vmgrid.solver.replay import datacenter as dc
from vmgrid.solver.replay.cloudsim import NoMigrationPolicy
from vmgrid.solver.replay.engine import Migration, Simulator
from vmgrid.solver.replay.errors import ReplayError
from vmgrid.solver.replay.state import compute_state

G4, G5 = np.array([0]), np.array([1])


def p4(u: float) -> float:
    return float(dc.power_w(np.array([u]), G4)[0])


def p5(u: float) -> float:
    return float(dc.power_w(np.array([u]), G5)[0])


def test_power_interpolates_between_specpower_points() -> None:
    assert p4(0.5) == pytest.approx(102.0)
    assert p4(0.05) == pytest.approx(87.7)
    assert p5(1.0) == pytest.approx(135.0)
    assert p5(0.95) == pytest.approx(134.0)


def test_migration_time_is_ram_over_half_a_gigabit() -> None:
    assert dc.migration_time_s([870, 1740, 613]).tolist() == pytest.approx([13.92, 27.84, 9.808])


def test_vm_types_follow_sorted_file_order() -> None:
    assert dc.vm_type_indices(10).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_one_host_two_vms_energy_without_violation() -> None:
    # VM0 (2500 MIPS) at 40 % and VM1 (2000 MIPS) at 50 %: 2000 MIPS on the G5 host.
    sim = Simulator(constant_workload([40, 50]), host_count=2)
    result = sim.run(NoMigrationPolicy(), steps=3)
    assert sim.vm_host.tolist() == [1, 1]
    expected_w = p5(2000 / 5320)
    assert expected_w == pytest.approx(108.797, abs=1e-3)
    # Booked from the first event (300.1 s) to the second (600.1 s), as CloudSim does.
    assert result.energy_kwh == pytest.approx(expected_w * 300 / 3.6e6)
    assert result.slatah == 0.0
    assert result.pdm == 0.0
    assert result.migrations == 0


def test_request_above_one_core_counts_as_violation_all_the_time() -> None:
    # Both VMs on the G4 host: VM0 asks 2000 MIPS but one core gives 1860.
    sim = Simulator(constant_workload([80, 10]), host_count=1)
    sim.place([0, 0])
    result = sim.run(NoMigrationPolicy(), steps=4, placed=True)
    assert result.slatah == pytest.approx(1.0)
    assert result.energy_kwh == pytest.approx(p4(2060 / 3720) * 600 / 3.6e6)
    # Sampled every 10 s from 310 s to 900 s (60 samples, 600 s): VM0 misses 140 of 2500 MIPS.
    assert result.sample_s == 10.0
    assert result.demand_cpu_s == pytest.approx((0.8 + 0.1) * 600)
    assert result.unmet_cpu_s == pytest.approx(140 / 2500 * 600)
    assert result.unmet_share == pytest.approx(140 / 2500 * 600 / 540)
    assert result.unmet_migration_cpu_s == 0.0


def test_oversubscribed_host_scales_and_floors_every_share() -> None:
    state = compute_state(
        requested=np.array([3000.0, 3000.0]),
        vm_host=np.array([0, 0]),
        migrating_out=np.array([False, False]),
        in_requested=np.zeros(0),
        in_host=np.zeros(0, dtype=np.int64),
        host_total=np.array([5320.0]),
        host_pe=np.array([2660.0]),
    )
    assert state.vm_allocated_mips.tolist() == [2660.0, 2660.0]
    assert bool(state.violating[0])


class MoveOnce:
    name = "move-once"
    initial_threshold = 0.0

    def __init__(self, moves: Sequence[Migration]) -> None:
        self.moves = list(moves)

    def decide(self, sim: Simulator) -> Sequence[Migration]:
        moves, self.moves = self.moves, []
        return moves


def test_migration_degrades_source_and_counts_destination_as_violating() -> None:
    # VM0 (2500) at 20 % and VM1 (2000, 1740 MB) at 10 % on the G5 host; VM1 moves to the G4.
    sim = Simulator(constant_workload([20, 10]), host_count=2)
    sim.place([1, 1])
    result = sim.run(MoveOnce([(1, 0)]), steps=3, placed=True)
    d = 1740 / 62.5
    rest = 300 - d
    assert result.migrations == 1
    assert sim.vm_host.tolist() == [1, 0]
    energy_j = (p5(700 / 5320) + p4(20 / 3720)) * d + (p5(500 / 5320) + p4(200 / 3720)) * rest
    assert result.energy_kwh == pytest.approx(energy_j / 3.6e6)
    # Only the destination is short (it reserves 10 % but counts the whole request).
    assert result.slatah == pytest.approx(d / 600)
    assert result.pdm == pytest.approx(0.1 * 200 * d / (700 * 300))
    # Unmet demand: only the 10 % VM1 loses on its source while it moves, at the sampling
    # instants inside the migration (310 s and 320 s; it ends at 327.94 s); the destination's
    # reservation, which SLATAH counts as a violation, takes nothing from any VM.
    assert result.unmet_migration_cpu_s == pytest.approx(2 * 10 * 0.1 * 200 / 2000)
    assert result.unmet_cpu_s == pytest.approx(result.unmet_migration_cpu_s)


def test_finer_sampling_measures_the_migration_loss_more_closely() -> None:
    sim = Simulator(constant_workload([20, 10]), host_count=2, sample_s=0.5)
    sim.place([1, 1])
    result = sim.run(MoveOnce([(1, 0)]), steps=3, placed=True)
    # Instants 300.5 ... 327.5 s: 55 samples of 0.5 s, against 27.84 s of migration.
    assert result.unmet_cpu_s == pytest.approx(55 * 0.5 * 0.1 * 200 / 2000)


@pytest.mark.parametrize("period", [0.0, -1.0, 301.0])
def test_sampling_period_outside_one_interval_is_rejected(period: float) -> None:
    with pytest.raises(ReplayError, match=f"sampling period {period} s is not in"):
        Simulator(constant_workload([20]), host_count=1, sample_s=period)


def test_vm_that_asks_for_nothing_leaves_the_simulation() -> None:
    sim = Simulator(constant_workload([30, 0]), host_count=2)
    sim.run(NoMigrationPolicy(), steps=3)
    assert sim.vm_alive.tolist() == [True, False]
