"""Plans of the decision loop time a real node's migrations with the same pre-copy estimate as
an operator's migration (#16): the solver's view gives each VM of a real node its estimate as
its ``migrate`` duration, from what its agent measured; a test-driver node's VM keeps the
solver's 1 s. Both deciders are checked (the vmgrid policy, the default, and the solver)."""

from __future__ import annotations

import pytest
from cluster_builder import Cluster
from vmgrid.agents.cluster.act.driver import DriverOptions
from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    PolicyKind,
    TriggerKind,
    decide,
    find_trigger,
)
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.operator.dry_run import propose
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.cluster.state.migration_estimate import (
    REAL_MIGRATION_FIXED_S,
    MigrationLink,
)
from vmgrid.agents.cluster.state.solver_view import ViewOptions, to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.agents.model import MigrationJob
from vmgrid.solver.plan import ActionKind

LINK = MigrationLink(400_000_000)  # libvirt gets 47 MiB/s
# 940 MiB at 47 MiB/s (20 s), a 10 MiB round re-sent (0.2 s) and the fixed cost: 21 s;
# 470 MiB and no dirtying: 11 s
EXPECTED_S = {"uuid-a": 21, "uuid-b": 11}
BAND = OperatorPolicy(
    cpu_high=0.85, memory_high=0.85, cpu_low=0.4, memory_low=0.4, migrations_per_cycle=0,
    migrations_per_hour=0, migrations_per_node_hour=0, min_move_interval_s=0, return_after_s=0,
)  # fmt: skip


def overloaded(simulated: bool) -> ClusterSnapshot:
    """n1 held above the band by a (940 MiB resident, dirtying 10 MiB/s) and b; n2 idle."""
    c = Cluster().node("n1", simulated=simulated).node("n2", simulated=simulated)
    c.vms("n1", a=2600, b=1900).measured("a", 940, 10).measured("b", 470)
    return c.run(30).state.snapshot()


def test_a_real_nodes_vm_migrates_for_its_estimate_in_the_solvers_view() -> None:
    model = to_model(overloaded(simulated=False), ViewOptions(migration_link=LINK))
    assert {v: model.vms[v].duration_s("migrate") for v in EXPECTED_S} == EXPECTED_S
    assert EXPECTED_S["uuid-b"] == round(470 / 47 + REAL_MIGRATION_FIXED_S)
    # without a link (the view's other callers, which do not time migrations): 1 s
    assert to_model(overloaded(simulated=False)).vms["uuid-a"].duration_s("migrate") == 1


def test_a_test_driver_nodes_vm_keeps_the_solvers_default() -> None:
    model = to_model(overloaded(simulated=True), ViewOptions(migration_link=LINK))
    assert {v.duration_s("migrate") for v in model.vms.values()} == {1}


def decided(policy: PolicyKind, snapshot: ClusterSnapshot) -> Decision:
    config = ControlConfig(hold_s=20, operator_policy=BAND, policy=policy, migration_link=LINK)
    trigger = find_trigger(snapshot, config)
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD
    if policy is PolicyKind.VMGRID:
        return PolicyDecider().decide(snapshot, trigger, config)
    return decide(snapshot, trigger, config)


@pytest.mark.parametrize("policy", [PolicyKind.VMGRID, PolicyKind.SOLVER])
def test_a_decided_plan_times_a_real_migration_with_its_estimate(policy: PolicyKind) -> None:
    plan = decided(policy, overloaded(simulated=False)).plan
    assert plan is not None
    moves = {a.subject: a.duration_s for a in plan.actions if a.kind is ActionKind.MIGRATE}
    assert moves and moves == {vm: EXPECTED_S[vm] for vm in moves}
    # the same cluster of test-driver nodes: 1 s, as before
    plan = decided(policy, overloaded(simulated=True)).plan
    assert plan is not None
    assert {a.duration_s for a in plan.actions if a.kind is ActionKind.MIGRATE} == {1}


def test_an_operators_balance_plan_times_a_real_migration_with_its_estimate() -> None:
    config = ControlConfig(operator_policy=BAND, migration_link=LINK)
    plan = propose(overloaded(simulated=False), config, "balance").plan
    assert plan is not None
    moves = {a.subject: a.duration_s for a in plan.actions if a.kind is ActionKind.MIGRATE}
    assert moves and moves == {vm: EXPECTED_S[vm] for vm in moves}


def learned(fixed_s: float) -> ClusterSnapshot:
    """The overloaded cluster once the manager has learned `fixed_s` from a migration (one
    that sent 188 MiB, 4 s at 47 MiB/s)."""
    c = Cluster().node("n1", simulated=False).node("n2", simulated=False)
    c.vms("n1", a=2600, b=1900).measured("a", 940, 10).measured("b", 470)
    state = c.run(30).state
    state.migration_fixed.learn(MigrationJob(round((4 + fixed_s) * 1000), 188 << 20), LINK)
    return state.snapshot()


# with 3.6 s learned instead of 0.7 s: a 23.8 s, b 13.6 s
LEARNED_S = {"uuid-a": 24, "uuid-b": 14}


@pytest.mark.parametrize("policy", [PolicyKind.VMGRID, PolicyKind.SOLVER])
def test_a_decided_plan_counts_the_learned_fixed_cost(policy: PolicyKind) -> None:
    snapshot = learned(3.6)
    assert snapshot.migration_fixed_s == pytest.approx(3.6)
    plan = decided(policy, snapshot).plan
    assert plan is not None
    moves = {a.subject: a.duration_s for a in plan.actions if a.kind is ActionKind.MIGRATE}
    assert moves and moves == {vm: LEARNED_S[vm] for vm in moves}
    config = ControlConfig(operator_policy=BAND, migration_link=LINK)
    plan = propose(snapshot, config, "balance").plan
    assert plan is not None
    moves = {a.subject: a.duration_s for a in plan.actions if a.kind is ActionKind.MIGRATE}
    assert moves and moves == {vm: LEARNED_S[vm] for vm in moves}


def test_the_manager_gives_its_decisions_the_link_its_driver_migrates_with() -> None:
    driver = DriverOptions(migration_bandwidth_bps=250_000_000, migration_max_downtime_ms=120)
    config = ClusterConfig(cluster_id="c1", listen="127.0.0.1:0", insecure=True)
    runtime = ClusterRuntime(config, RuntimeOptions(driver=driver, decisions=False))
    assert runtime.loop.config.migration_link == MigrationLink(250_000_000, 120)
