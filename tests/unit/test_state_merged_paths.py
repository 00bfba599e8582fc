"""ClusterState's report path where its parts meet: the row-based ingest, one owner per VM
uuid (eviction, adoption), per-VM pressure, the hot-node watch and the hour of usage trends.

Every scenario runs with both input forms (a NodeReport, and the ReportRows the codec gives
the ingest) and checks the state's records against each other after every report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.cluster.state.events import EventBus, EventKind
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus
from vmgrid.agents.cluster.state.trend import UsageTrends
from vmgrid.agents.common.node_codec import decode_report_rows, encode_report
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.report_rows import ReportRows
from vmgrid.agents.wire_limits import MAX_CAPACITY, MAX_ID_CHARS

S = 1_000_000_000
RUNNING, PAUSED, SHUT_OFF = m.VmState.RUNNING, m.VmState.PAUSED, m.VmState.SHUT_OFF

Form = Callable[[m.NodeReport], "m.NodeReport | ReportRows"]
FORMS: dict[str, Form] = {
    "NodeReport": lambda r: r,
    "ReportRows": lambda r: decode_report_rows(encode_report(r)),
}


def hello(node_id: str) -> m.NodeHello:
    return m.NodeHello(
        m.NodeIdentity(node_id, node_id, f"test:///{node_id}"),
        m.NodeCapacity(8000, 16 * 2**30, 10**10),
    )


def vm(uuid: str, state: m.VmState = RUNNING, cpu: int = 100) -> m.VmUsage:
    return m.VmUsage(uuid, uuid, state, 1, cpu, 2**20, 2**21)


def pressure(some: float) -> m.Pressure:
    return m.Pressure(cpu=m.PressureStall(some, 0.0, 1, 0))


class Cluster:
    """A ClusterState of nodes n1..n3 fed reports in one form, checked after each one."""

    def __init__(self, form: Form, window: int = 3, bucket_s: int = 10) -> None:
        self.form = form
        self.state = ClusterState(
            EventBus("c1"), history_window=window, trends=UsageTrends(bucket_s, 600)
        )
        self.sub = self.state.bus.subscribe()
        self.sequence = itertools.count(1)
        for node in ("n1", "n2", "n3"):
            self.state.node_connected(hello(node), 1)

    def send(
        self,
        node: str,
        t_s: float,
        *vms: m.VmUsage,
        cpu: int = 500,
        vm_pressure: tuple[m.VmPressure, ...] = (),
    ) -> None:
        usage = m.HostUsage(cpu, 2**30, 2**34)
        report = m.NodeReport(int(t_s * S), next(self.sequence), usage, vms, vm_pressure)
        assert self.state.apply_report(node, self.form(report))
        check_consistent(self.state)

    def shown(self) -> dict[str, list[str]]:
        return {v.node_id: [vm.uuid for vm in v.vms] for v in self.state.views()}

    def events(self, kind: EventKind) -> list[tuple[str, str]]:
        out = []
        while (event := self.sub.get_nowait()) is not None:
            if event.kind is kind:
                out.append((event.node_id, event.vm_uuid))
        return out


def check_consistent(state: ClusterState) -> None:
    """Each node's rows, objects, history slots, the uuid index and the owners agree."""
    seen: dict[str, str] = {}
    index: dict[str, set[str]] = {}
    for node_id in state.node_ids():
        node = state._nodes[node_id]
        assert len(node.uuids) == len(node.states) == len(node.rows)
        assert [r[0] for r in node.rows] == list(node.uuids)
        assert [r[2] for r in node.rows] == list(node.states)
        assert list(node.vms) == list(node.uuids)
        if node.status is not NodeStatus.POWERED_OFF:
            assert set(node.vm_history.slots) == set(node.uuids), node_id
        for uuid in node.uuids:
            assert uuid not in seen, f"{uuid} shown on {seen[uuid]} and {node_id}"
            seen[uuid] = node_id
            assert state.owners.owner(uuid) == node_id
            index.setdefault(uuid, set()).add(node_id)
    assert state._vm_nodes == index


@pytest.fixture(params=list(FORMS))
def form(request: pytest.FixtureRequest) -> Form:
    return FORMS[request.param]


def test_a_migration_trace_is_hidden_without_a_conflict_and_the_vm_passes_on(form: Form) -> None:
    c = Cluster(form)
    c.send("n1", 1, vm("a"), vm("b"))
    c.send("n2", 1, vm("c"), vm("a", PAUSED))  # incoming copy of a live migration
    assert c.shown() == {"n1": ["a", "b"], "n2": ["c"], "n3": []}
    c.send("n1", 2, vm("a", SHUT_OFF), vm("b"))  # done: the source keeps a definition
    assert c.shown() == {"n1": ["b"], "n2": ["c", "a"], "n3": []}
    c.send("n2", 2, vm("c"), vm("a"))
    c.send("n1", 3, vm("a", SHUT_OFF), vm("b"))
    assert c.shown() == {"n1": ["b"], "n2": ["c", "a"], "n3": []}
    assert c.state.find_vm("a")[0] == "n2"
    assert c.events(EventKind.VM_CONFLICT) == []
    c.send("n1", 4, vm("b"))  # the definition is gone: nothing is hidden any more
    assert not c.state.owners.contested


def test_a_real_conflict_is_reported_once_and_the_copy_shows_when_the_owner_drops_it(
    form: Form,
) -> None:
    c = Cluster(form)
    c.send("n1", 1, vm("a"))
    for t in (1, 2, 3):
        c.send("n2", t, vm("a"), vm("x"))
    assert c.events(EventKind.VM_CONFLICT) == [("n2", "a")]
    c.send("n1", 2)
    assert c.shown() == {"n1": [], "n2": ["x", "a"], "n3": []}
    c.send("n2", 4, vm("a"), vm("x"))
    assert c.shown() == {"n1": [], "n2": ["a", "x"], "n3": []}


def test_a_running_copy_evicts_a_shut_off_owner_and_its_slot_is_reused_cleanly(
    form: Form,
) -> None:
    c = Cluster(form, window=4, bucket_s=10)
    for t in range(3):  # a at 100 on n1, w at 700 beside it
        c.send("n1", 1000 + t, vm("a", cpu=100), vm("w", cpu=700))
    c.send("n1", 1003, vm("a", SHUT_OFF, cpu=0), vm("w", cpu=700))
    c.send("n2", 1004, vm("a", cpu=300))  # evicts n1's shut-off copy
    assert c.shown() == {"n1": ["w"], "n2": ["a"], "n3": []}
    for t in range(5, 10):  # n1 keeps reporting the definition (hidden), a new VM arrives
        c.send("n1", 1000 + t, vm("a", SHUT_OFF, cpu=0), vm("w", cpu=700), vm("new", cpu=50))
        c.send("n2", 1000 + t, vm("a", cpu=300))
    for t in range(10, 12):  # the next bucket closes the first one
        c.send("n1", 1000 + t, vm("w", cpu=700), vm("new", cpu=50))
        c.send("n2", 1000 + t, vm("a", cpu=300))
    c.state.settle_history()  # the closed buckets are written a little later, spread by node
    trends = c.state.trends.vms

    def first_bucket(uuid: str) -> float:
        buckets, means = trends.read(uuid, 0)
        assert buckets[0] == 100
        return means[0][0]

    # a: 100, 100, 100, 0 on n1 then 300 x 6 on n2 (t = 1004..1009)
    assert first_bucket("a") == pytest.approx((300 + 0 + 300 * 6) / 10)
    assert first_bucket("w") == 700.0  # never mixed with a's rows
    assert first_bucket("new") == 50.0  # the slot a left holds none of a's rows


def test_vm_pressure_is_kept_for_the_vms_the_node_shows(form: Form) -> None:
    c = Cluster(form)
    c.send("n1", 1, vm("a"), vm_pressure=(m.VmPressure("a", pressure(10.0)),))
    c.send(
        "n2",
        1,
        vm("a"),
        vm("b"),
        vm_pressure=(m.VmPressure("a", pressure(50.0)), m.VmPressure("b", pressure(5.0))),
    )
    assert dict(c.state.view("n1").vm_pressure) == {"a": pressure(10.0)}
    assert dict(c.state.view("n2").vm_pressure) == {"b": pressure(5.0)}


def test_a_powered_off_node_passes_its_vms_to_their_hidden_copies_and_can_be_forgotten(
    form: Form,
) -> None:
    c = Cluster(form)
    c.send("n1", 1, vm("a"), vm("b"))
    c.send("n2", 1, vm("a", PAUSED))
    c.state.mark_powered_off("n1")
    check_consistent(c.state)
    assert c.shown() == {"n1": [], "n2": ["a"], "n3": []}
    assert not c.state.apply_report("n1", form(m.NodeReport(2 * S, 99, m.HostUsage(1, 1, 1), ())))
    c.state.forget_node("n1")
    check_consistent(c.state)
    c.send("n3", 2, vm("b"))
    assert c.shown() == {"n2": ["a"], "n3": ["b"]}


def test_a_lost_owner_loses_its_vm_to_a_reporting_node_and_hides_its_copy_on_return(
    form: Form,
) -> None:
    c = Cluster(form)
    c.send("n1", 1, vm("a"))
    c.state._nodes["n1"].status = NodeStatus.LOST
    c.send("n2", 1, vm("a"))
    assert c.shown() == {"n1": [], "n2": ["a"], "n3": []}
    assert not c.state.owners.contested  # the lost node's copy is dropped, not hidden
    c.send("n1", 2, vm("a"))  # back, still running it: a real conflict, n2 keeps it
    assert c.shown() == {"n1": [], "n2": ["a"], "n3": []}
    assert c.events(EventKind.VM_CONFLICT) == [("n1", "a")]


def test_the_hot_watch_follows_the_band_after_a_retune(form: Form) -> None:
    c = Cluster(form)
    told: list[tuple[str, int]] = []
    t = itertools.count(1)
    c.state.watch_hot(0.9, 2.0, lambda node: told.append((node, now)))
    for now in itertools.islice(t, 4):
        c.send("n1", now, cpu=6400)  # 80 % of 8000: under the band's top of 90 %
    assert told == []
    c.state.retune_hot(0.75)
    for now in itertools.islice(t, 4):  # 5..8
        c.send("n1", now, cpu=6400)
    assert told == [("n1", 7)]
    c.state.retune_hot(0.95)
    c.send("n1", next(t), cpu=6400)  # the spell ends under the new top
    c.state.retune_hot(0.75)
    for now in itertools.islice(t, 3):  # 10..12: a new spell, held at 12
        c.send("n1", now, cpu=6400)
    assert told == [("n1", 7), ("n1", 12)]


def test_a_powered_off_node_drops_its_hidden_copies_and_a_conflict_on_power_on_is_told(
    form: Form,
) -> None:
    c = Cluster(form)
    c.send("n1", 1, vm("a"))
    c.send("n2", 1, vm("a"))
    assert c.events(EventKind.VM_CONFLICT) == [("n2", "a")]
    c.state.mark_powered_off("n2")
    assert not c.state.owners.contested  # reports no longer all take the slow path
    c.state.node_connected(hello("n2"), 2)
    c.send("n2", 2, vm("a"))
    assert c.shown() == {"n1": ["a"], "n2": [], "n3": []}
    assert c.events(EventKind.VM_CONFLICT) == [("n2", "a")]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"memory_used_bytes": MAX_CAPACITY + 1}, "report.vms[1].memory_used_bytes"),
        ({"disk_write_bytes_per_second": 2**62}, "report.vms[1].disk_write_bytes_per_second"),
        ({"cpu_used_millicores": -1}, "report.vms[1].cpu_used_millicores"),
        ({"uuid": "u" * (MAX_ID_CHARS + 1)}, "report.vms[1].uuid"),
        ({"name": "n" * (MAX_ID_CHARS + 1)}, "report.vms[1].name"),
    ],
)
def test_a_report_over_the_wire_limits_is_refused_with_the_field_named(
    change: dict[str, object], path: str
) -> None:
    wire = encode_report(m.NodeReport(S, 1, m.HostUsage(1, 1, 1), (vm("a"), vm("b"))))
    for name, value in change.items():
        setattr(wire.vms[1], name, value)
    with pytest.raises(MalformedMessage) as refused:
        decode_report_rows(wire)
    assert str(refused.value).startswith(path)
    state = Cluster(FORMS["NodeReport"]).state  # the state is untouched: nothing was applied
    assert state.view("n1").vms == ()


def test_max_capacity_itself_is_accepted_and_a_host_figure_above_it_is_named() -> None:
    edge = m.VmUsage("a", "a", RUNNING, 1, MAX_CAPACITY, MAX_CAPACITY, MAX_CAPACITY)
    rows = decode_report_rows(encode_report(m.NodeReport(S, 1, m.HostUsage(1, 1, 1), (edge,))))
    assert rows.rows[0][4] == MAX_CAPACITY
    wire = encode_report(m.NodeReport(S, 1, m.HostUsage(1, MAX_CAPACITY + 1, 1), ()))
    with pytest.raises(MalformedMessage, match=r"^report\.host\.memory_used_bytes"):
        decode_report_rows(wire)
    wire = encode_report(m.NodeReport(S, 1, m.HostUsage(1, 1, 1), ()))
    wire.host.pressure.cpu.available = True
    wire.host.pressure.cpu.some_avg10 = 101.0
    with pytest.raises(MalformedMessage, match=r"^report\.host\.pressure\.cpu\.some_avg10"):
        decode_report_rows(wire)


def test_a_node_clock_far_ahead_does_not_expire_the_other_nodes_usage_trends() -> None:
    now_s = 5000
    state = ClusterState(
        EventBus("c1"),
        history_window=4,
        trends=UsageTrends(10, 600),
        clock_ns=lambda: now_s * S,
    )
    for node in ("n1", "n2"):
        state.node_connected(hello(node), 1)
    sequence = itertools.count(1)

    def send(node: str, t_s: int, cpu: int) -> None:
        usage = m.HostUsage(cpu, 2**30, 2**34)
        report = m.NodeReport(t_s * S, next(sequence), usage, (vm(f"vm-{node}", cpu=cpu),))
        assert state.apply_report(node, report)

    for t in range(4900, 4950):
        send("n1", t, 100)
    before = state.node_usage_history("n1", 0).buckets
    assert before >= 4
    far = 4_000_000_000  # year 2096: within the wire's limits
    for t in (far, far + 20, far + 40):  # an agent whose clock is decades ahead
        send("n2", t, 900)
    for t in range(4950, 5000):
        send("n1", t, 100)
    assert state.node_usage_history("n1", 0).buckets == before + 5
    assert state.vm_usage_history("vm-n1", 0).buckets == before + 5
    assert state.trends.nodes.newest <= now_s // 10  # n2's reports count at the manager's time
