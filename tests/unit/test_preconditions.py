"""The applier's re-check on a real ClusterState: rules with migrations in flight, starts."""

from __future__ import annotations

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.driver import ManagerDriver
from vmgrid.agents.cluster.act.executor import Verdict
from vmgrid.agents.cluster.act.preconditions import Preconditions
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.solver.constraints import Gather, Spread
from vmgrid.solver.model import VM, VMState
from vmgrid.solver.plan import Action, ActionKind

GIB = 2**30


def cluster(placement: dict[str, list[tuple[str, m.VmState]]]) -> ClusterManager:
    manager = ClusterManager(ClusterConfig(insecure=True))
    for node, vms in placement.items():
        hello = m.NodeHello(
            m.NodeIdentity(node, f"{node}.lab", ""), m.NodeCapacity(8000, 16 * GIB, 10**10)
        )
        session = manager.open_session(hello)
        usages = tuple(m.VmUsage(u, u, s, 1, 100, GIB, GIB) for u, s in vms)
        manager.handle_report(
            session, m.NodeReport(1, 1, m.HostUsage(500, 2 * GIB, 16 * GIB), usages)
        )
    return manager


def migrate(vm: str, src: str, dst: str) -> Action:
    return Action(0, ActionKind.MIGRATE, vm, src, dst, 0, 1, "test")


def test_a_move_that_breaks_a_rule_only_with_a_migration_in_flight_is_refused() -> None:
    manager = cluster(
        {"n1": [("a", m.VmState.RUNNING)], "n2": [("b", m.VmState.RUNNING)], "n3": []}
    )
    manager.state.rules.add("ab", Spread(("a", "b")))
    in_flight: list[tuple[str, str]] = []
    checks = Preconditions(manager.state, lambda node: [], lambda: in_flight)
    assert checks.check(migrate("b", "n2", "n3")).verdict is Verdict.READY
    in_flight.append(("a", "n3"))  # a is on its way to n3
    refused = checks.check(migrate("b", "n2", "n3"))
    assert refused.verdict is Verdict.STALE and "rule ab" in refused.reason


def test_a_start_is_refused_where_the_vm_already_runs_elsewhere() -> None:
    manager = cluster({"n1": [("a", m.VmState.RUNNING)], "n2": [("a", m.VmState.SHUT_OFF)]})
    checks = Preconditions(manager.state, lambda node: [])
    start = Action(0, ActionKind.BOOT_VM, "a", None, "n2", 0, 1, "test")
    refused = checks.check(start)
    assert refused.verdict is Verdict.STALE and "already runs on n1" in refused.reason


def test_a_start_on_a_node_over_its_cpu_waits_for_memory_only() -> None:
    manager = cluster({"n1": [("a", m.VmState.SHUT_OFF)], "n2": []})
    busy = m.NodeReport(1, 2, m.HostUsage(9000, 2 * GIB, 16 * GIB), ())
    for session in list(manager._sessions.values()):  # noqa: SLF001 - two nodes, test only
        if session.node_id == "n1":
            hog = tuple(
                m.VmUsage(f"h{i}", f"h{i}", m.VmState.RUNNING, 4, 4000, GIB, GIB) for i in range(3)
            )
            manager.handle_report(
                session,
                m.NodeReport(
                    1, 2, busy.host, (*hog, m.VmUsage("a", "a", m.VmState.SHUT_OFF, 1, 0, GIB, GIB))
                ),
            )
    checks = Preconditions(manager.state, lambda node: [])
    start = Action(0, ActionKind.BOOT_VM, "a", None, "n1", 0, 1, "HA restart")
    assert checks.check(start).verdict is Verdict.READY  # 12,000 of 8,000 millicores in use
    onto = checks.check(migrate("h0", "n1", "n2"))
    assert onto.verdict is Verdict.READY


def test_a_migration_counts_as_in_flight_from_the_moment_it_is_started() -> None:
    """Two moves of one plan, checked in the same pass: the second sees the first."""
    manager = cluster(
        {"n1": [("a", m.VmState.RUNNING)], "n2": [("b", m.VmState.RUNNING)], "n3": []}
    )
    manager.state.rules.add("ab", Spread(("a", "b")))
    driver = ManagerDriver(manager)
    first, second = migrate("a", "n1", "n3"), migrate("b", "n2", "n3")
    assert driver.check(first).verdict is Verdict.READY
    started = driver.execute(first, "p/0/1", lambda action, fraction: None)
    try:
        refused = driver.check(second)
        assert refused.verdict is Verdict.STALE and "rule ab" in refused.reason
    finally:
        started.close()  # type: ignore[attr-defined]  # never scheduled: nothing is sent


def _lose(manager: ClusterManager, node: str) -> None:
    """`node` silent past the heartbeat timeout: the manager marks it lost."""
    state = manager.state
    state._nodes[node].last_seen_monotonic -= state.heartbeat_timeout_s + 1  # noqa: SLF001
    assert state.check_timeouts() == [node]


def test_a_gather_partner_on_a_lost_node_still_binds_the_vm_arriving_elsewhere() -> None:
    """A lost node's VMs come back with it: starting a's gather partner elsewhere meanwhile
    (a VM brought in by a grid move, say) would break the rule the moment n1 reports again,
    so it is refused as it is while n1 is connected."""
    manager = cluster({"n1": [("a", m.VmState.RUNNING)], "n3": [("b", m.VmState.SHUT_OFF)]})
    manager.state.rules.add("ab", Gather(("a", "b")))
    checks = Preconditions(manager.state, lambda node: [])
    start = Action(0, ActionKind.BOOT_VM, "b", None, "n3", 0, 1, "grid move")
    connected = checks.check(start)
    assert connected.verdict is Verdict.STALE and "rule ab" in connected.reason
    _lose(manager, "n1")
    lost = checks.check(start)
    assert lost.verdict is Verdict.STALE and "rule ab" in lost.reason


def test_a_lost_nodes_vm_that_a_plan_holds_does_not_bind_the_others() -> None:
    """HA restarting a gather group off a lost node holds its members: the first restarted
    one is not refused because its partner is still on the lost node."""
    manager = cluster(
        {
            "n1": [("a", m.VmState.RUNNING), ("b", m.VmState.RUNNING)],
            "n2": [],
            "n3": [("b", m.VmState.SHUT_OFF)],
        }
    )
    manager.state.rules.add("ab", Gather(("a", "b")))
    _lose(manager, "n1")
    held: set[str] = set()
    checks = Preconditions(manager.state, lambda node: [], held=lambda vm: vm in held)
    restart = Action(0, ActionKind.BOOT_VM, "b", None, "n3", 0, 1, "HA restart")
    refused = checks.check(restart)
    assert refused.verdict is Verdict.STALE and "rule ab" in refused.reason
    held.update({"a", "b"})
    assert checks.check(restart).verdict is Verdict.READY


def test_an_arrival_is_judged_as_its_start_will_be() -> None:
    """`arrival_breaks` (what a grid reservation and arrival ask) names the rules `check`
    refuses the start for, on the same model: a gather partner on a lost node binds the VM to
    that node, so the rule is named for every other node; once it is reported impossible (as
    a grid arrival that must start does), neither refuses any more."""
    manager = cluster({"n1": [("a", m.VmState.RUNNING)], "n2": [], "n3": []})
    manager.state.rules.add("ab", Gather(("a", "b")))
    checks = Preconditions(manager.state, lambda node: [])
    arriving = VM("b", {"cpu": 100, "memory": 1024}, VMState.READY, None, {"name": "b"})
    assert [r.rule_id for r in checks.arrival_breaks("n3", arriving)] == ["ab"]
    assert checks.arrival_breaks("n1", arriving) == []
    _lose(manager, "n1")
    assert [r.rule_id for r in checks.arrival_breaks("n3", arriving)] == ["ab"]
    manager.state.report_impossible("ab", "b arrived on n3")
    assert checks.arrival_breaks("n3", arriving) == []
    manager.state.rules.add("ac", Spread(("a", "c")))
    assert checks.arrival_breaks("n3", arriving) == []  # a rule not naming b or n3
