"""PlanetLab trace replay: CloudSim's data centre simulated with numpy, any policy on top.

``replay_day(trace_dir, make_policy(name))`` replays a day; the reference heuristics
(``thr-mmt-1.0`` ... ``lrr-mmt-1.2``, ``dvfs``) reproduce CloudSim 3.0.3 and ``vmgrid`` is the
production decision policy of ``vmgrid.solver.decision``.
"""

from __future__ import annotations

import os

from vmgrid.solver.replay.cloudsim import REFERENCE_POLICIES, CloudSimPolicy, NoMigrationPolicy
from vmgrid.solver.replay.engine import Policy, Simulator
from vmgrid.solver.replay.errors import ReplayError
from vmgrid.solver.replay.metrics import ReplayResult
from vmgrid.solver.replay.trace import Workload, load_day
from vmgrid.solver.replay.vmgrid_adapter import VmgridPolicy

POLICY_NAMES: tuple[str, ...] = ("vmgrid", *REFERENCE_POLICIES, "dvfs")


def make_policy(name: str) -> Policy:
    """A fresh policy by its benchmark name."""
    if name == "vmgrid":
        return VmgridPolicy()
    if name == "dvfs":
        return NoMigrationPolicy()
    if name in REFERENCE_POLICIES:
        return CloudSimPolicy(name, REFERENCE_POLICIES[name])
    raise ReplayError(f"unknown policy {name!r}; expected one of: {', '.join(POLICY_NAMES)}")


def replay_day(
    trace_dir: str | os.PathLike[str],
    policy: Policy,
    hosts: int = 800,
    steps: int | None = None,
    sample_s: float = 10.0,
) -> ReplayResult:
    """Replay one day (or its first ``steps`` intervals) on ``hosts`` simulated hosts, sampling
    the unmet CPU demand every ``sample_s`` seconds."""
    if steps is not None and steps < 2:
        raise ReplayError(f"steps {steps} is too small; expected at least 2 intervals")
    return Simulator(load_day(trace_dir), hosts, sample_s).run(policy, steps)


__all__ = [
    "POLICY_NAMES",
    "Policy",
    "ReplayError",
    "ReplayResult",
    "Simulator",
    "Workload",
    "load_day",
    "make_policy",
    "replay_day",
]
