"""Agent configuration: file plus flags, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.node.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'node_id = "a"\nreport_period_s = 5\ninsecure = true\n')
    config = load_config(path, {"node_id": "b", "report_period_s": None})
    assert (config.node_id, config.report_period_s, config.insecure) == ("b", 5.0, True)
    assert config.tls_dir is None and config.simulated


def test_defaults_are_a_three_second_period_and_a_gigabit_nic() -> None:
    config = load_config(None, {"insecure": True})
    assert config.report_period_s == 3.0
    assert config.nic_bandwidth_mbps == 1000
    assert config.tls_name == config.node_id


def test_load_table_is_kept_with_the_config_dir_as_base(tmp_path: Path) -> None:
    path = write(tmp_path, "insecure = true\n[load]\nseed = 3\ndefault = { cpu = 20 }\n")
    load = load_config(path, {}).load
    assert (load.seed, dict(load.default), load.base_dir) == (3, {"cpu": 20}, tmp_path)


def test_tls_dir_must_exist(tmp_path: Path) -> None:
    config = load_config(None, {"tls_dir": str(tmp_path)})
    assert config.tls_dir == tmp_path
    with pytest.raises(ConfigError, match="tls_dir: '/nonexistent' is not a directory"):
        load_config(None, {"tls_dir": "/nonexistent"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "colour = 1",
            "config key 'colour' is unknown; accepted: cpu_millicores, heartbeat_period_s",
        ),
        ("report_period_s = 'fast'", "report_period_s: 'fast' is not a number of seconds"),
        ("heartbeat_period_s = 0", "heartbeat_period_s: 0 is not a number of seconds"),
        ("nic_bandwidth_mbps = -1", "nic_bandwidth_mbps: -1 is not a positive integer"),
        ("manager = 'host:99999'", "manager: 'host:99999' is not HOST:PORT"),
        ("libvirt_uri = 'qemu'", "libvirt_uri: 'qemu' is not a libvirt URI"),
        ("node_id = 'a b'", "node_id: 'a b' must be a non-empty name without spaces"),
        ("insecure = 'yes'", "insecure: 'yes' is not true or false"),
        ("[load]\nseed = 1.5", "load.seed: 1.5 is not an integer"),
        ("[load]\nburst = 1", "load: unknown key 'burst'; accepted: default, vms, seed"),
        ("report_period_s = [", "is not valid TOML"),
    ],
)
def test_bad_values_are_named_with_what_is_accepted(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path, {} if text.startswith("insecure") else {"insecure": True})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="agent.toml' cannot be read"):
        load_config(tmp_path / "agent.toml", {})
