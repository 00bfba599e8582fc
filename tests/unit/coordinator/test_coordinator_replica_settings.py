"""The coordinator's `[etcd]` table, and the lists of coordinator replicas the clusters'
uplinks and vmgridctl take."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.grid.uplink import GridUplink
from vmgrid.agents.cluster.service import settings
from vmgrid.agents.cluster.service.main import build_parser as cluster_parser
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.errors import ConfigError
from vmgrid.coordinator.cli import grid_cmd
from vmgrid.coordinator.config import add_arguments, from_args


def coordinator(tmp_path: Path, toml: str, *flags: str) -> ReplicaOptions:
    path = tmp_path / "coordinator.toml"
    path.write_text(toml)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--insecure", "--config", str(path), *flags])
    return from_args(args).replica


def test_the_coordinator_takes_an_etcd_table_and_its_flags(tmp_path: Path) -> None:
    assert coordinator(tmp_path, 'grid_id = "g"\n') == ReplicaOptions()
    toml = 'grid_id = "g"\n[etcd]\nendpoints = ["http://10.0.0.1:2379"]\nlease_ttl_s = 4\n'
    replica = coordinator(tmp_path, toml, "--replica-id", "g2")
    assert replica.endpoints == ("http://10.0.0.1:2379",)
    assert (replica.lease_ttl_s, replica.replica_id) == (4, "g2")
    in_table = '[coordinator]\ngrid_id = "g"\n[etcd]\nendpoints = ["http://a:1"]\n'
    assert coordinator(tmp_path, in_table).endpoints == ("http://a:1",)


@pytest.mark.parametrize(
    ("toml", "flags", "message"),
    [
        ('[etcd]\nendpoints = ["a:1"]\n', (), "etcd.endpoints: 'a:1' is not a URL"),
        ("[etcd]\nlease_ttl_s = 0\nendpoints = ['http://a:1']\n", (), "etcd.lease_ttl_s: 0"),
        ("[etcd]\ncolour = 1\n", (), "etcd: unknown key 'colour'"),
        ("replica = 1\n", (), "unknown key 'replica'"),
        (
            "",
            ("--etcd-endpoints", "http://a:1", "--listen", "0.0.0.0:7600"),
            "etcd.advertise: empty while listen is '0.0.0.0:7600'",
        ),
    ],
)
def test_bad_coordinator_etcd_values_are_one_line_naming_the_key(
    tmp_path: Path, toml: str, flags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        coordinator(tmp_path, toml, *flags)


def test_a_cluster_reports_to_a_list_of_coordinator_replicas(tmp_path: Path) -> None:
    def runtime(value: str) -> str:
        args = cluster_parser().parse_args(
            ["--insecure", "--journal", ":memory:", "--coordinator", value]
        )
        return settings.load(args).runtime.coordinator

    assert runtime("a:1, b:2") == "a:1,b:2"
    with pytest.raises(ConfigError, match="control.coordinator: 'b' is not host:port"):
        runtime("a:1,b")
    uplink = GridUplink("a:1, b:2", None, m.ClusterHello("c1", m.Capacity()), _no_summary)
    assert uplink.coordinator_addr == "a:1"  # dialled first
    assert uplink._next_target() == "b:2"
    uplink.coordinator_addr = "10.0.0.9:7600"  # a leader named by a standby, not in the list
    assert uplink._next_target() == "a:1"


def _no_summary() -> m.ClusterSummary:
    raise AssertionError("no summary is asked for here")


def test_vmgridctl_takes_a_list_of_coordinator_replicas() -> None:
    args = argparse.Namespace(coordinator="a:1, b:2")
    assert grid_cmd.addresses(args) == ["a:1", "b:2"]
    assert grid_cmd.address(args) == "a:1"
    with pytest.raises(ConfigError, match="--coordinator 'b' is not HOST:PORT"):
        grid_cmd.addresses(argparse.Namespace(coordinator="a:1,b"))
