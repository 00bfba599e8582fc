"""DecisionPolicy.max_moves: relief first, then whole hosts within what is left."""

from __future__ import annotations

import numpy as np
import pytest
from vmgrid.solver.decision import DecisionPolicy, PolicyConfig
from vmgrid.solver.decision.errors import DecisionError
from vmgrid.solver.decision.snapshot import ClusterSnapshot


def light_cluster(hosts: int, vms_per_host: int) -> ClusterSnapshot:
    vms = hosts * vms_per_host
    demand = np.full(vms, 100.0)
    return ClusterSnapshot(
        step=0,
        host_capacity_millicores=np.full(hosts, 8000.0),
        host_vm_limit_millicores=np.full(hosts, 8000.0),
        host_idle_w=np.full(hosts, 100.0),
        host_peak_w=np.full(hosts, 200.0),
        vm_id=np.arange(vms, dtype=np.int64),
        vm_host=np.repeat(np.arange(hosts, dtype=np.int64), vms_per_host),
        vm_demand_millicores=demand,
        vm_history_millicores=np.tile(demand[:, None], (1, 4)),
        vm_history_len=np.full(vms, 4, dtype=np.int64),
        vm_ram_mib=np.full(vms, 1024.0),
    )


def test_unbounded_policy_empties_many_hosts() -> None:
    moves = DecisionPolicy(PolicyConfig()).decide(light_cluster(40, 3)).moves
    assert len({m.source for m in moves}) > 10


@pytest.mark.parametrize("budget", [1, 3, 7, 10])
def test_budget_bounds_moves_and_empties_whole_hosts(budget: int) -> None:
    snap = light_cluster(40, 3)
    moves = DecisionPolicy(PolicyConfig(max_moves=budget)).decide(snap).moves
    assert 0 < len(moves) <= budget or budget < 3
    sources = {m.source for m in moves}
    for host in sources:  # all or nothing per emptied host
        assert sum(1 for m in moves if m.source == host) == 3
    assert len(sources) == budget // 3


def test_budget_must_be_positive() -> None:
    with pytest.raises(DecisionError, match="max_moves 0"):
        PolicyConfig(max_moves=0)


def test_relief_cut_by_the_budget_is_not_mistaken_for_relief_without_headroom() -> None:
    from vmgrid.agents import model as m
    from vmgrid.agents.cluster.decide.control import ControlConfig, Trigger, TriggerKind
    from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider, policy_config
    from vmgrid.agents.cluster.state.events import EventBus
    from vmgrid.agents.cluster.state.state import ClusterState

    state = ClusterState(EventBus("c1"))
    load = {f"n{i}": [1500, 1500, 1500] for i in (1, 2, 3)} | {f"n{i}": [100] for i in (4, 5, 6)}
    for node in load:
        identity = m.NodeIdentity(node, node, "")
        state.node_connected(m.NodeHello(identity, m.NodeCapacity(4000, 2**36, 10**10)), 1)
    for seq in range(1, 5):
        for node, cpus in load.items():
            vms = tuple(
                m.VmUsage(f"{node}-{i}", f"{node}-{i}", m.VmState.RUNNING, 2, cpu, 2**30, 2**30)
                for i, cpu in enumerate(cpus)
            )
            host = m.HostUsage(min(sum(cpus), 4000), 2**32, 2**36)
            state.apply_report(node, m.NodeReport(seq * 10**9, seq, host, vms))
    from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy

    config = ControlConfig(operator_policy=OperatorPolicy(migrations_per_cycle=1))
    decider = PolicyDecider(policy_config(config))
    trigger = Trigger(TriggerKind.OVERLOAD, ("n1", "n2", "n3"), "hot")
    decision = decider.decide(state.snapshot(), trigger, config)
    assert decision.plan is not None and decision.plan.migrations == 1
    assert decision.stats["no_headroom_relief"] is False


def test_light_hosts_too_big_for_the_budget_are_counted_not_emptied() -> None:
    snap = light_cluster(40, 3)
    stuck = DecisionPolicy(PolicyConfig(max_moves=2)).decide(snap)
    assert stuck.moves == () and stuck.over_budget_hosts == 40
    fits = DecisionPolicy(PolicyConfig(max_moves=3)).decide(snap)
    assert len(fits.moves) == 3 and fits.over_budget_hosts == 0


def test_the_decider_says_the_budget_keeps_light_nodes_as_they_are() -> None:
    """Every node light, each with more VMs than a cycle may move: the decision says so
    rather than that no node is below the band."""
    from vmgrid.agents import model as m
    from vmgrid.agents.cluster.decide.control import ControlConfig, Trigger, TriggerKind
    from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
    from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider, policy_config
    from vmgrid.agents.cluster.state.events import EventBus
    from vmgrid.agents.cluster.state.state import ClusterState

    state = ClusterState(EventBus("c1"))
    nodes = [f"n{i}" for i in range(4)]
    for node in nodes:
        identity = m.NodeIdentity(node, node, "")
        state.node_connected(m.NodeHello(identity, m.NodeCapacity(8000, 2**36, 10**10)), 1)
    for seq in range(1, 5):
        for node in nodes:
            vms = tuple(
                m.VmUsage(f"{node}-{i}", f"{node}-{i}", m.VmState.RUNNING, 1, 100, 2**30, 2**30)
                for i in range(3)
            )
            state.apply_report(
                node, m.NodeReport(seq * 10**9, seq, m.HostUsage(300, 2**32, 2**36), vms)
            )
    trigger = Trigger(TriggerKind.UNDERLOAD, tuple(nodes), "cold")
    for budget, planned in ((2, False), (3, True)):
        config = ControlConfig(operator_policy=OperatorPolicy(migrations_per_cycle=budget))
        decision = PolicyDecider(policy_config(config)).decide(state.snapshot(), trigger, config)
        assert (decision.plan is not None) is planned, decision.summary
        if not planned:
            assert "4 light node(s) each hold more VMs than the 2 migration(s)" in decision.summary
