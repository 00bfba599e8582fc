"""Pressure (PSI) from the node link to the manager: codec, state and history, JSON views,
and the overload trigger that reads it (the gauges: metrics/test_metrics_pressure.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.cluster.decide.control import ControlConfig, TriggerKind, find_trigger
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.pressure import as_full, pressured_nodes
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.main import build_parser, build_settings
from vmgrid.agents.cluster.service.runtime import RuntimeOptions
from vmgrid.agents.cluster.state.events import EventBus
from vmgrid.agents.cluster.state.state import ClusterState
from vmgrid.agents.common import node_codec
from vmgrid.agents.errors import ConfigError, MalformedMessage
from vmgrid.coordinator.web import cluster_json

GIB = 2**30


def settings(tmp_path: Path, toml: str, *flags: str) -> tuple[ClusterConfig, RuntimeOptions]:
    path = tmp_path / "cluster.toml"
    path.write_text(toml)
    args = build_parser().parse_args(
        ["--insecure", "--config", str(path), "--state-dir", str(tmp_path / "state"), *flags]
    )
    return build_settings(args)


SECOND = 1_000_000_000
HOT = m.Pressure(cpu=m.PressureStall(62.5, 3.0, 9_000_000, 400_000), io=m.PressureStall(1.5))


def test_pressure_round_trips_on_the_node_link() -> None:
    host = m.HostUsage(1000, GIB, 4 * GIB, pressure=HOT)
    report = m.NodeReport(5, 1, host, (), (m.VmPressure("u1", HOT),))
    back = node_codec.decode_report(node_codec.encode_report(report))
    assert back.host.pressure == HOT
    assert back.vm_pressure == (m.VmPressure("u1", HOT),)


def test_a_report_without_pressure_decodes_as_unavailable() -> None:
    back = node_codec.decode_report(
        node_codec.encode_report(m.NodeReport(5, 1, m.HostUsage(1, 1, 1)))
    )
    assert back.host.pressure is m.NO_PRESSURE and not back.host.pressure.available
    assert back.vm_pressure == ()


def test_an_avg10_that_is_not_a_percentage_is_refused_naming_the_field() -> None:
    wire = node_codec.encode_report(m.NodeReport(5, 1, m.HostUsage(1, 1, 1, pressure=HOT)))
    wire.host.pressure.cpu.some_avg10 = 250.0
    with pytest.raises(MalformedMessage, match=r"report\.host\.pressure\.cpu\.some_avg10.*250"):
        node_codec.decode_report(wire)


def test_a_vm_pressure_row_without_uuid_is_refused() -> None:
    wire = node_codec.encode_report(m.NodeReport(5, 1, m.HostUsage(1, 1, 1)))
    wire.vm_pressure.add()
    with pytest.raises(MalformedMessage, match=r"report\.vm_pressure\[0\]\.uuid"):
        node_codec.decode_report(wire)


class Cluster:
    """A ClusterState with a hand-driven clock; nodes have 4 cores and 8 GiB."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * SECOND
        self.state = ClusterState(EventBus("c1"), clock_ns=lambda: self.now_ns)
        self.sequence = 0

    def node(self, node_id: str) -> Cluster:
        identity = m.NodeIdentity(node_id, node_id, f"qemu:///{node_id}")
        self.state.node_connected(m.NodeHello(identity, m.NodeCapacity(4000, 8 * GIB, 10**9)), 1)
        return self

    def report(
        self, node_id: str, cpu: int, pressure: m.Pressure = m.NO_PRESSURE, seconds: int = 30
    ) -> Cluster:
        """One 1 GiB VM using `cpu` millicores, reported every 5 s for `seconds`."""
        for _ in range(seconds // 5 + 1):
            self.sequence += 1
            vm = m.VmUsage(f"uuid-{node_id}", f"vm-{node_id}", m.VmState.RUNNING, 2, cpu, GIB, GIB)
            host = m.HostUsage(cpu, GIB, 8 * GIB, pressure=pressure)
            rows = (m.VmPressure(vm.uuid, pressure),) if pressure.available else ()
            self.state.apply_report(
                node_id, m.NodeReport(self.now_ns, self.sequence, host, (vm,), rows)
            )
            self.now_ns += 5 * SECOND
        return self


def test_the_manager_keeps_node_pressure_in_its_history_and_vm_pressure_in_views() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 1000, HOT).report("n2", 1000)
    snapshot = c.state.snapshot()
    assert all(u.pressure == HOT for _, u in snapshot.node_history["n1"])
    assert snapshot.node("n1").vm_pressure == {"uuid-n1": HOT}
    assert snapshot.node("n2").vm_pressure == {}


def test_json_views_show_figures_or_unavailable() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 1000, HOT).report("n2", 1000)
    n1, n2 = c.state.view("n1"), c.state.view("n2")
    assert cluster_json.node_json(n1, "c1")["usage"]["pressure"] == {
        "available": True,
        "cpu": {
            "some_avg10": 62.5,
            "full_avg10": 3.0,
            "some_total_us": 9_000_000,
            "full_total_us": 400_000,
        },
        "memory": None,
        "io": {"some_avg10": 1.5, "full_avg10": 0.0, "some_total_us": 0, "full_total_us": 0},
    }
    assert cluster_json.node_json(n2, "c1")["usage"]["pressure"] == {
        "available": False,
        "cpu": None,
        "memory": None,
        "io": None,
    }
    vm = n1.vms[0]
    assert cluster_json.vm_json(vm, "n1", "c1", None, n1.vm_pressure.get(vm.uuid))["pressure"][
        "available"
    ]


PRESSURE_ON = ControlConfig(
    hold_s=20,
    operator_policy=OperatorPolicy(cpu_high=0.85, memory_high=0.85, cpu_low=0.2, memory_low=0.2),
    pressure_trigger=40,
)


def test_held_cpu_pressure_is_an_overload_when_the_trigger_is_on() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 2000, HOT).report("n2", 1000)
    trigger = find_trigger(c.state.snapshot(), PRESSURE_ON)
    assert trigger is not None and trigger.kind is TriggerKind.OVERLOAD
    assert trigger.nodes == ("n1",)
    assert "cpu pressure above 40 %" in trigger.reason


def test_pressure_is_ignored_when_the_trigger_is_off() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 2000, HOT).report("n2", 1000)
    off = ControlConfig(
        hold_s=20,
        operator_policy=OperatorPolicy(
            cpu_high=0.85, memory_high=0.85, cpu_low=0.2, memory_low=0.2
        ),
    )
    assert find_trigger(c.state.snapshot(), off) is None


def test_a_pressure_spike_shorter_than_the_hold_time_is_no_overload() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 2000).report("n1", 2000, HOT, seconds=5)
    c.report("n2", 1000)
    assert find_trigger(c.state.snapshot(), PRESSURE_ON) is None


def test_a_node_without_pressure_figures_is_judged_by_utilisation_alone() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 2000).report("n2", 1000)
    assert find_trigger(c.state.snapshot(), PRESSURE_ON) is None


def test_the_decision_sees_a_pressured_node_as_full() -> None:
    c = Cluster().node("n1").node("n2").report("n1", 2000, HOT).report("n2", 1000)
    snapshot = c.state.snapshot()
    trigger = find_trigger(snapshot, PRESSURE_ON)
    assert trigger is not None
    nodes = pressured_nodes(snapshot, trigger, PRESSURE_ON)
    assert nodes == ["n1"]
    seen = as_full(snapshot, nodes)
    assert seen.node("n1").capacity.cpu_millicores == 1800
    assert seen.node("n2").capacity.cpu_millicores == 4000
    assert snapshot.node("n1").capacity.cpu_millicores == 4000


@pytest.mark.parametrize(
    ("toml", "flags", "message"),
    [
        ("[control]\npressure_trigger = 150", (), "control.pressure_trigger: 150.0 must be a"),
        ("[control]\npressure_trigger = 'high'", (), "control.pressure_trigger = 'high'"),
        ("", ("--pressure-trigger", "-5"), "control.pressure_trigger: -5.0 must be a"),
    ],
)
def test_a_bad_pressure_trigger_is_named_in_one_line(
    tmp_path: Path, toml: str, flags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, toml, *flags)
    assert message in str(caught.value)


def test_the_pressure_trigger_is_read_from_the_control_table(tmp_path: Path) -> None:
    _, options = settings(tmp_path, "[control]\npressure_trigger = 35\n")
    assert options.control.pressure_trigger == 35.0
