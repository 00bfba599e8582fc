"""Coordinator pieces without a network: codec validation, registry, config, planning input."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import ConfigError, MalformedMessage
from vmgrid.coordinator.config import CoordinatorConfig, add_arguments, from_args, load_toml
from vmgrid.coordinator.main import main as coordinator_main
from vmgrid.coordinator.planning import measured_topology, planner_input
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.service import Coordinator
from vmgrid.solver import grid

TOPOLOGY = Path(__file__).parents[2] / "data" / "coordinator" / "topology-three.graphml"
GIB = 2**30
CAPACITY = m.Capacity(10_000, 32 * GIB, 10**10)


def make_summary(
    sequence: int = 1,
    cpu_used: int = 1_000,
    vms: tuple[m.VmDemand, ...] = (),
    traffic: tuple[m.InterClusterTraffic, ...] = (),
    health: m.HealthState = m.HealthState.HEALTHY,
) -> m.ClusterSummary:
    return m.ClusterSummary(
        sequence, 1_700_000_000_000_000_000, CAPACITY, m.Capacity(cpu_used, GIB, 10**8), vms,
        traffic, m.ClusterHealth(health, nodes_total=3),
    )  # fmt: skip


def record(
    cluster_id: str, summary: m.ClusterSummary | None, lost: bool = False
) -> m.ClusterRecord:
    state = m.ClusterState.LOST if lost else m.ClusterState.CONNECTED
    return m.ClusterRecord(m.ClusterHello(cluster_id, CAPACITY), state, 1, summary)


# --- codec ---------------------------------------------------------------------------------


def test_summary_round_trips_through_the_wire() -> None:
    original = make_summary(
        vms=(m.VmDemand("u1", "web", "n1", 500, GIB, 10**6),),
        traffic=(m.InterClusterTraffic("u1", "p1", "c2", 1000),),
    )
    assert grid_codec.decode_summary(grid_codec.encode_summary(original), "c1") == original


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda w: setattr(w, "sequence", 0), "summary.sequence", "start at 1"),
        (
            lambda w: setattr(w.capacity, "memory_bytes", -1),
            "summary.capacity.memory_bytes",
            ">= 0",
        ),
        (lambda w: setattr(w.usage, "network_bps", -1), "summary.usage.network_bps", "-1"),
        (lambda w: w.movable_vms.add(vm_uuid=""), "summary.movable_vms[1].vm_uuid", "empty"),
        (lambda w: w.movable_vms.add(vm_uuid="u1"), "summary.movable_vms[1].vm_uuid", "twice"),
        (
            lambda w: w.inter_cluster_traffic.add(
                vm_uuid="u1", peer_vm_uuid="p", peer_cluster_id="c1"
            ),
            "summary.inter_cluster_traffic[0].peer_cluster_id",
            "reporting cluster",
        ),
        (lambda w: setattr(w.health, "state", 42), "summary.health.state", "42"),
    ],
)
def test_bad_summary_fields_are_named(mutate: object, field: str, words: str) -> None:
    wire = grid_codec.encode_summary(make_summary(vms=(m.VmDemand("u1"),)))
    mutate(wire)  # type: ignore[operator]
    with pytest.raises(MalformedMessage) as info:
        grid_codec.decode_summary(wire, "c1")
    assert info.value.field == field
    assert words in str(info.value)


def test_hello_needs_a_valid_cluster_id_and_non_negative_capacity() -> None:
    with pytest.raises(MalformedMessage, match="'a b' is not a cluster id"):
        grid_codec.decode_hello(grid_codec.encode_hello(m.ClusterHello("a b", CAPACITY)))
    wire = grid_codec.encode_hello(m.ClusterHello("ok", CAPACITY))
    wire.capacity.cpu_millicores = -5
    with pytest.raises(MalformedMessage, match="hello.capacity.cpu_millicores: -5 must be >= 0"):
        grid_codec.decode_hello(wire)
    # A cluster whose nodes have not reported yet says hello with no capacity.
    empty = grid_codec.decode_hello(
        grid_codec.encode_hello(m.ClusterHello("ok", m.Capacity(0, 0, 0)))
    )
    assert empty.capacity == m.Capacity(0, 0, 0)


# --- registry ------------------------------------------------------------------------------


def test_registry_keeps_clusters_and_summaries_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite")
    registry = Registry(path)
    stored = record("c1", make_summary(vms=(m.VmDemand("u1", cpu_millicores=5),)), lost=True)
    registry.put(stored)
    registry.put(record("c0", None))
    registry.close()
    reopened = Registry(path)
    assert [r.cluster_id for r in reopened.records()] == ["c0", "c1"]
    assert reopened.get("c1") == stored
    with pytest.raises(Exception, match="cluster 'zz' is not registered; known: c0, c1"):
        reopened.get("zz")


def test_registry_names_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Registry(str(tmp_path / "nope" / "r.sqlite"))


# --- config --------------------------------------------------------------------------------


def test_config_errors_name_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listen: 'nowhere' is not host:port"):
        CoordinatorConfig(listen="nowhere", insecure=True).validate()
    with pytest.raises(ConfigError, match="cluster_timeout_s: 1.0 must exceed summary_period_s"):
        CoordinatorConfig(insecure=True, cluster_timeout_s=1.0, summary_period_s=2.0).validate()
    with pytest.raises(ConfigError, match="tls_ca_file: not set"):
        CoordinatorConfig().validate()
    with pytest.raises(ConfigError, match="topology_file: 'x.graphml' is not a readable file"):
        CoordinatorConfig(insecure=True, topology_file="x.graphml").validate()
    bad = tmp_path / "c.toml"
    bad.write_text('[coordinator]\nlisten = "127.0.0.1:1"\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load_toml(str(bad))
    bad.write_text("cluster_timeout_s = 'soon'\n")
    with pytest.raises(ConfigError, match="cluster_timeout_s = 'soon' must be a float"):
        load_toml(str(bad))


def test_flags_override_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("cluster_timeout_s = 12\ninsecure = true\ngrid_id = 'eu'\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = from_args(parser.parse_args(["--config", str(path), "--grid-id", "us"]))
    assert (cfg.cluster_timeout_s, cfg.insecure, cfg.grid_id) == (12.0, True, "us")


def test_bad_topology_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "t.graphml"
    bad.write_text(TOPOLOGY.read_text().replace('<data key="bw">1000</data>', ""))
    argv = ["--insecure", "--topology-file", str(bad), "--state-db", ":memory:"]
    assert coordinator_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "missing bandwidth_mbps" in err and "'c3'" in err


# --- planning input and liveness -----------------------------------------------------------


def test_inter_cluster_traffic_becomes_one_group_and_measured_link_usage() -> None:
    topology = grid.load_topology(TOPOLOGY)
    c1 = make_summary(
        vms=(m.VmDemand("a", memory_bytes=GIB), m.VmDemand("b", memory_bytes=GIB)),
        traffic=(m.InterClusterTraffic("a", "x", "c2", 25_000_000),),
    )
    c2 = make_summary(
        vms=(m.VmDemand("x", memory_bytes=GIB),),
        traffic=(m.InterClusterTraffic("x", "a", "c1", 12_500_000),),
        health=m.HealthState.OVERLOADED,
    )
    records = [record("c1", c1), record("c2", c2), record("c3", None), record("zz", c1)]
    inputs = planner_input(records, topology)
    by_id = {s.id: s for s in inputs.summaries}
    assert set(by_id) == {"c1", "c2"}
    assert by_id["c1"].groups == (grid.VmGroup("g-a", ("a",), 200),)
    assert by_id["c1"].vms[0].demand.memory_mib == 1024
    assert by_id["c2"].health is grid.Health.DEGRADED
    assert any("'c3' has sent no summary" in n for n in inputs.notes)
    assert any("'zz' is not in the topology" in n for n in inputs.notes)
    measured = measured_topology(topology, records[:2])
    assert measured.graph.edges["c1", "core"]["utilisation"] == pytest.approx(0.02)


def test_silent_cluster_is_declared_lost_after_the_timeout_and_returns() -> None:
    now = [0]
    cfg = CoordinatorConfig(insecure=True, cluster_timeout_s=2.0, summary_period_s=1.0)
    coordinator = Coordinator(cfg, Registry(":memory:"), None, clock_ns=lambda: now[0])
    events = coordinator.bus.subscribe()
    session = coordinator.open_session(m.ClusterHello("c1", CAPACITY))
    coordinator.handle_summary(session, make_summary(sequence=1))
    now[0] = 1_900_000_000
    assert coordinator.check_timeouts() == []
    now[0] = 2_100_000_000
    assert coordinator.check_timeouts() == ["c1"]
    assert coordinator.registry.get("c1").state is m.ClusterState.LOST
    coordinator.handle_summary(session, make_summary(sequence=2))
    kinds = []
    while (event := events.get_nowait()) is not None:
        kinds.append(event.kind)
    assert kinds == [
        m.GridEventKind.CLUSTER_JOINED,
        m.GridEventKind.CLUSTER_LOST,
        m.GridEventKind.CLUSTER_RETURNED,
    ]
