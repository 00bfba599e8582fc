"""No look-ahead: the `vmgrid` policy's decisions up to step k depend on nothing after k + 1.

The policy gets the whole simulator, trace included, so nothing in the types stops it from
reading the future. The guard replays four hours of real traces twice, the second time with every
sample after k + 1 replaced by random values, and compares the decisions of steps 1 ... k. (The
event of step k happens at 300·k + 0.1 s, interpolated between samples k and k + 1, as in
CloudSim, so sample k + 1 is legitimately part of what step k sees.) A policy that peeks two
samples ahead fails the same guard; a digest of every snapshot the simulator hands the policy
catches a leak in the simulator itself too small to change a move (for instance interpolating
towards sample k + 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from vmgrid.solver.decision import ClusterSnapshot
from vmgrid.solver.replay import Policy, load_day, make_policy
from vmgrid.solver.replay.engine import Migration, Simulator
from vmgrid.solver.replay.trace import Workload
from vmgrid.solver.replay.vmgrid_adapter import VmgridPolicy

EXCERPT = Path(__file__).resolve().parents[2] / "data" / "planetlab" / "excerpt-20110303"
HOSTS = 60
K = 30

Decisions = list[tuple[int, list[Migration]]]


class Recorder:
    """Passes a policy's decisions through and keeps them, step by step."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.initial_threshold = policy.initial_threshold
        self.decisions: Decisions = []

    def decide(self, sim: Simulator) -> Sequence[Migration]:
        moves = list(self.policy.decide(sim))
        self.decisions.append((sim.step, moves))
        return moves


class PeekingPolicy(VmgridPolicy):
    """vmgrid's policy fed the demand two samples ahead: the look-ahead the guard must catch."""

    name = "peeking"

    def snapshot(self, sim: Simulator) -> ClusterSnapshot:
        snap = super().snapshot(sim)
        live = np.flatnonzero(sim.vm_alive)
        ahead = min(sim.step + 2, sim.workload.steps)
        future = sim.workload.utilisation[live, ahead] * sim.vm_mips[live]
        return dataclasses.replace(snap, vm_demand_millicores=future)


class InputRecorder(VmgridPolicy):
    """vmgrid's policy that also keeps a digest of every snapshot it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[tuple[int, str]] = []

    def snapshot(self, sim: Simulator) -> ClusterSnapshot:
        snap = super().snapshot(sim)
        digest = hashlib.sha256()
        for value in vars(snap).values():
            digest.update(np.asarray(value).tobytes())
        self.inputs.append((sim.step, digest.hexdigest()))
        return snap


def decisions(workload: Workload, policy: Policy) -> Decisions:
    recorder = Recorder(policy)
    Simulator(workload, HOSTS).run(recorder)
    return recorder.decisions


def future_randomised(workload: Workload, after: int, seed: int = 17) -> Workload:
    """The same workload with every sample after ``after`` replaced by random percentages."""
    util = workload.utilisation.copy()
    rng = np.random.default_rng(seed)
    util[:, after + 1 :] = rng.integers(0, 101, size=util[:, after + 1 :].shape) / 100.0
    return Workload(workload.name, workload.vm_names, util)


def up_to(log: Decisions, k: int) -> Decisions:
    return [(step, moves) for step, moves in log if step <= k]


def after(log: Decisions, k: int) -> Decisions:
    return [(step, moves) for step, moves in log if step > k]


@pytest.fixture(scope="module")
def workload() -> Workload:
    return load_day(EXCERPT)


def _guard(workload: Workload, make: Callable[[], Policy]) -> tuple[Decisions, Decisions]:
    return decisions(workload, make()), decisions(future_randomised(workload, K + 1), make())


def test_vmgrid_decisions_up_to_k_ignore_the_trace_after_k_plus_1(workload: Workload) -> None:
    real, randomised = _guard(workload, lambda: make_policy("vmgrid"))
    # The guard has something to compare: moves at several steps before k, not only the first.
    steps_with_moves = [step for step, moves in up_to(real, K) if moves]
    assert len(steps_with_moves) >= 4 and steps_with_moves[-1] > 10
    assert up_to(randomised, K) == up_to(real, K)
    # ... and the random future did reach the replay: what comes after k + 1 changes.
    assert after(randomised, K + 1) != after(real, K + 1)


def test_the_guard_catches_a_policy_that_peeks_two_samples_ahead(workload: Workload) -> None:
    real, randomised = _guard(workload, PeekingPolicy)
    assert up_to(randomised, K) != up_to(real, K)


def test_what_the_simulator_hands_vmgrid_up_to_k_ignores_the_trace_after_k_plus_1(
    workload: Workload,
) -> None:
    # Stricter than the decisions: a leak too small to change a move still changes a digest.
    runs = []
    for w in (workload, future_randomised(workload, K + 1)):
        policy = InputRecorder()
        Simulator(w, HOSTS).run(policy)
        runs.append(policy.inputs)
    real, randomised = runs
    assert [i for i in randomised if i[0] <= K] == [i for i in real if i[0] <= K]
    assert [i for i in randomised if i[0] > K + 1] != [i for i in real if i[0] > K + 1]
