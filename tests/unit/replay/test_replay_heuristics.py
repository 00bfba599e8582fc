"""Each reference heuristic's decisions on small scenarios, and vmgrid's policy on its own."""

from __future__ import annotations

import numpy as np
from replay_builders import constant_workload
from vmgrid.solver.decision import ClusterSnapshot, DecisionPolicy
from vmgrid.solver.replay import make_policy
from vmgrid.solver.replay.detectors import Detector
from vmgrid.solver.replay.engine import Simulator


def _hist(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    h = np.zeros((len(rows), 30))
    for i, r in enumerate(rows):
        h[i, : len(r)] = r
    return h, np.array([len(r) for r in rows])


def test_thr_relieves_with_least_ram_vm_onto_cheapest_host() -> None:
    # Hosts G4, G5, G4, G5. Host 1 holds VM0 (2500), VM1 (2000), VM2 (1000) at 90 %: 93 % > 80 %.
    sim = Simulator(constant_workload([90, 90, 90, 50]), host_count=4)
    sim.place([1, 1, 1, 0])
    sim.observe(1)
    moves = make_policy("thr-mmt-0.8").decide(sim)
    # MMT takes VM0 (870 MB); only a G5 core fits its 2250 MIPS; the light G4 cannot be emptied.
    assert list(moves) == [(0, 3)]


def test_thr_empties_the_least_used_host_all_or_nothing() -> None:
    sim = Simulator(constant_workload([20, 20, 20, 10]), host_count=4)
    sim.place([1, 1, 3, 3])
    sim.observe(1)
    moves = make_policy("thr-mmt-1.0").decide(sim)
    assert sorted(moves) == [(2, 1), (3, 1)]


def test_lr_predicts_a_rising_history_as_overload() -> None:
    lr = Detector("lr", 1.2)
    hist, length = _hist([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05], [0.3] * 10])
    assert lr.overloaded(np.array([0.5, 0.3]), hist, length).tolist() == [True, False]


def test_adaptive_detectors_fall_back_to_thr_07_on_short_history() -> None:
    hist, length = _hist([[0.75] * 5])
    for kind, s in (("lr", 1.2), ("iqr", 1.5), ("mad", 2.5)):
        assert Detector(kind, s).overloaded(np.array([0.75]), hist, length).tolist() == [True]
        assert Detector(kind, s).overloaded(np.array([0.65]), hist, length).tolist() == [False]


def test_iqr_and_mad_lower_the_threshold_for_a_variable_host() -> None:
    steady, n1 = _hist([[0.6] * 12])
    wild, n2 = _hist([[0.2, 0.9] * 6])
    for det in (Detector("iqr", 1.5), Detector("mad", 2.5)):
        assert det.overloaded(np.array([0.75]), steady, n1).tolist() == [False]
        assert det.overloaded(np.array([0.75]), wild, n2).tolist() == [True]


def _snapshot(vm_host: list[int], demand: list[float], step: int = 1) -> ClusterSnapshot:
    vms = len(vm_host)
    return ClusterSnapshot(
        step=step,
        host_capacity_millicores=np.array([4000.0, 4000.0, 4000.0]),
        host_vm_limit_millicores=np.array([2000.0, 2000.0, 2000.0]),
        host_idle_w=np.array([90.0, 90.0, 90.0]),
        host_peak_w=np.array([130.0, 130.0, 130.0]),
        vm_id=np.arange(vms, dtype=np.int64),
        vm_host=np.array(vm_host, dtype=np.int64),
        vm_demand_millicores=np.array(demand),
        vm_history_millicores=np.tile(np.array(demand)[:, None], (1, 12)),
        vm_history_len=np.full(vms, 12, dtype=np.int64),
        vm_ram_mib=np.full(vms, 1024.0),
    )


def test_vmgrid_relieves_an_overloaded_host_with_one_move() -> None:
    decision = DecisionPolicy().decide(_snapshot([0, 0, 0, 1], [1500, 1500, 1500, 1000]))
    assert decision.overloaded_hosts == (0,)
    assert [(m.source, m.destination, m.reason) for m in decision.moves] == [(0, 1, "overload")]


def test_vmgrid_empties_a_light_host_then_leaves_it_alone() -> None:
    policy = DecisionPolicy()
    first = policy.decide(_snapshot([0, 0, 1], [1000, 1000, 500]))
    assert [(m.vm, m.destination, m.reason) for m in first.moves] == [(2, 0, "consolidation")]
    # Next cycle the host that received the VM may not be emptied, even though it could be.
    second = policy.decide(_snapshot([0, 0, 0], [300, 300, 300], step=2))
    assert second.moves == ()
