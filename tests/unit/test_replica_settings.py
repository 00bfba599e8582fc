"""The `[etcd]` table of vmgrid-cluster, the agent's list of manager replicas, and the
agent's term fence."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents import model
from vmgrid.agents.cluster.service import settings
from vmgrid.agents.cluster.service.main import build_parser
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.node.config import load_config
from vmgrid.agents.node.fencing import TERM_FILE, TermFence


def load(tmp_path: Path, toml: str, *flags: str) -> settings.ClusterSettings:
    path = tmp_path / "cluster.toml"
    path.write_text(toml)
    base = ["--insecure", "--config", str(path), "--journal", ":memory:"]
    return settings.load(build_parser().parse_args([*base, *flags]))


def test_no_etcd_table_is_a_single_replica(tmp_path: Path) -> None:
    assert load(tmp_path, "").runtime.replica == ReplicaOptions()


def test_the_etcd_table_and_its_flags(tmp_path: Path) -> None:
    toml = '[etcd]\nendpoints = ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]\nlease_ttl_s = 4\n'
    replica = load(tmp_path, toml, "--replica-id", "m2", "--lease-ttl-s", "2").runtime.replica
    assert replica.endpoints == ("http://10.0.0.1:2379", "http://10.0.0.2:2379")
    assert (replica.lease_ttl_s, replica.replica_id) == (2, "m2")
    flags = load(tmp_path, "", "--etcd-endpoints", "http://a:1, http://b:2").runtime.replica
    assert flags.endpoints == ("http://a:1", "http://b:2")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[etcd]\nendpoints = ["10.0.0.1:2379"]\n', "etcd.endpoints: '10.0.0.1:2379' is not a URL"),
        (
            '[etcd]\nendpoints = ["http://a:1"]\nlease_ttl_s = 0\n',
            "etcd.lease_ttl_s: 0 must be >= 1",
        ),
        ("[etcd]\nlease_ttl = 3\n", "etcd: unknown key 'lease_ttl'; accepted: endpoints,"),
        ("[etcd]\nlease_ttl_s = '3'\n", "etcd.lease_ttl_s = '3'"),
        ("[etcd]\nprefix = 'vmgrid'\n", "etcd.prefix: 'vmgrid' must start with '/'"),
        ("etcd = 3\n", "etcd: must be a table"),
    ],
)
def test_bad_etcd_values_are_one_line_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, toml)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_replica_listening_everywhere_must_advertise_its_address(tmp_path: Path) -> None:
    toml = 'listen = "0.0.0.0:7443"\n[etcd]\nendpoints = ["http://a:1"]\n'
    with pytest.raises(ConfigError, match="etcd.advertise: empty while listen is '0.0.0.0:7443'"):
        load(tmp_path, toml)
    advertised = load(tmp_path, toml, "--advertise", "10.0.0.1:7443").runtime.replica
    assert advertised.advertise == "10.0.0.1:7443"


def test_the_agent_takes_a_list_of_manager_replicas() -> None:
    assert load_config(None, {"manager": "a:1, b:2", "insecure": True}).manager == "a:1,b:2"
    with pytest.raises(ConfigError, match="manager: 'b' is not HOST:PORT"):
        load_config(None, {"manager": "a:1,b", "insecure": True})


def test_the_fence_refuses_lower_terms_and_remembers_the_highest() -> None:
    fence = TermFence()
    command = model.ListSnapshotsCommand("c1", "vm")
    assert fence.refusal(command, 0) is None  # a single replica before any leader
    assert fence.refusal(command, 12) is None and fence.highest == 12
    assert fence.refusal(command, 12) is None  # the same leader again
    refused = fence.refusal(command, 11)
    assert refused is not None and refused.state is model.CommandState.FAILED
    assert "term 11, below term 12" in refused.message
    assert fence.refusal(command, 0) is not None  # a single replica after a leader: refused
    assert (fence.highest, fence.refused) == (12, 2)


def test_the_fence_keeps_the_highest_term_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / TERM_FILE
    command = model.ListSnapshotsCommand("c1", "vm")
    fence = TermFence(path)
    assert fence.highest == 0 and not path.exists()  # nothing stored before a leader
    assert fence.refusal(command, 12) is None
    assert path.read_text() == "12\n"  # stored before the command is admitted
    assert fence.refusal(command, 9) is not None
    assert path.read_text() == "12\n"  # a refused term is not stored
    restarted = TermFence(path)  # the agent after a restart
    assert restarted.highest == 12
    refused = restarted.refusal(command, 11)
    assert refused is not None and "term 11, below term 12" in refused.message
    assert not list(tmp_path.glob("*.partial"))


def test_a_term_file_that_holds_no_term_stops_the_agent(tmp_path: Path) -> None:
    path = tmp_path / TERM_FILE
    path.write_text("garbage")
    with pytest.raises(ConfigError, match=r"manager-term' holds 'garbage', not a leadership term"):
        TermFence(path)
    with pytest.raises(ConfigError, match="state_dir: '/nonexistent' is not a directory"):
        load_config(None, {"state_dir": "/nonexistent", "insecure": True})
    config = load_config(None, {"state_dir": str(tmp_path), "insecure": True})
    assert config.state_dir == tmp_path


def test_a_term_that_cannot_be_stored_refuses_the_command(tmp_path: Path) -> None:
    fence = TermFence(tmp_path / "gone" / TERM_FILE)  # its directory was removed
    refused = fence.refusal(model.ListSnapshotsCommand("c1", "vm"), 4)
    assert refused is not None and refused.state is model.CommandState.FAILED
    assert "of leadership term 4 not run: the term cannot be stored" in refused.message
    assert fence.highest == 0
