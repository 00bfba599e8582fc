"""Configuration of `vmgrid-agent`: a TOML file, with command-line flags taking precedence.

Every value is checked once, here, so that the rest of the agent can trust it; a bad value
stops the agent before it dials anything, with one line naming the value and what would be
accepted (exit code 2).
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vmgrid.agents.errors import ConfigError
from vmgrid.agents.metrics_http import parse_metrics_listen

DEFAULT_LIBVIRT_URI = "test:///default"
DEFAULT_MANAGER = "127.0.0.1:7443"


@dataclass(frozen=True)
class LoadConfig:
    """Synthetic load for test-driver nodes; see `vmgrid.agents.node.load`."""

    default: Mapping[str, Any] = field(default_factory=dict)
    """Profiles applied to every VM without its own entry."""
    vms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Profiles by VM name."""
    seed: int = 0
    """Seed of the random walks, so that a run can be replayed."""
    base_dir: Path = Path(".")
    """Directory against which relative trace paths are resolved (the config file's)."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything `vmgrid-agent` needs to run; built by `load_config`."""

    node_id: str = ""
    """Stable id of this node within its cluster; defaults to the host name."""
    libvirt_uri: str = DEFAULT_LIBVIRT_URI
    """libvirt URI; ``test:///<abs path to node.xml>`` runs a simulated node."""
    manager: str = DEFAULT_MANAGER
    """HOST:PORT of the cluster manager's NodeLinkService; with replicated managers, every
    replica's HOST:PORT separated by commas (the agent finds the leader)."""
    report_period_s: float = 3.0
    """Seconds between two full reports."""
    heartbeat_period_s: float = 1.0
    """Longest silence on the stream before a heartbeat is sent."""
    tls_dir: Path | None = None
    """Directory written by 'vmgridctl certs init' (ca.crt, NAME.crt, NAME.key); required
    unless insecure."""
    tls_name: str = ""
    """Component name of this agent's certificate in tls_dir; defaults to the node id."""
    insecure: bool = False
    """Dial the manager without TLS (loopback tests and demos only)."""
    nic_bandwidth_mbps: int = 1000
    """Bandwidth of the node's NIC, in Mbit/s, announced as capacity."""
    migration_uri: str = ""
    """Data URI QEMU's migration stream is sent to on this node (tcp://HOST[:PORT]); empty:
    libvirt derives it from the peer URI's host."""
    peer_uri: str = ""
    """libvirt URI other nodes' libvirtd dial for a peer-to-peer migration here (e.g.
    qemu+tcp://10.0.0.2/system); empty: libvirt_uri, unless it is a test:/// node."""
    cpu_millicores: int = 0
    """Declared CPU capacity in millicores; 0 takes the host's CPU count x 1000."""
    host_cpu_from_guests: bool = False
    """Report the host's CPU use as the sum of its guests' (lab hosts share one machine)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """Synthetic load, used only on simulated (test-driver) nodes."""
    traffic_window_s: float = 30.0
    """Window over which measured VM-to-VM traffic is averaged (nftables on the host's
    bridges); 0 turns metering off (reported as unavailable)."""
    metrics_listen: str = ""
    """HOST:PORT of the Prometheus /metrics endpoint; empty (default) serves none, port 0
    picks a free port (logged)."""
    state_dir: Path | None = None
    """Directory of the agent's own state: the highest manager leadership term seen
    (``manager-term``), kept across restarts so a deposed manager stays refused; unset:
    kept in memory only (set it when the managers are replicated)."""

    @property
    def simulated(self) -> bool:
        return self.libvirt_uri.startswith("test:")

    @property
    def effective_peer_uri(self) -> str:
        """The libvirt URI announced to peers: peer_uri, else libvirt_uri for real hypervisors."""
        if self.peer_uri or self.simulated:
            return self.peer_uri
        return self.libvirt_uri


_FILE_KEYS = {f.name for f in fields(AgentConfig)}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc


def load_config(path: Path | None, overrides: Mapping[str, Any]) -> AgentConfig:
    """Merge the file (if any) and the flags that were given (non-None values win)."""
    raw: dict[str, Any] = read_toml(path) if path is not None else {}
    unknown = set(raw) - _FILE_KEYS
    if unknown:
        accepted = ", ".join(sorted(_FILE_KEYS))
        raise ConfigError(f"config key {sorted(unknown)[0]!r} is unknown; accepted: {accepted}")
    raw.update({key: value for key, value in overrides.items() if value is not None})
    base_dir = path.parent if path is not None else Path.cwd()
    insecure = _bool(raw, "insecure")
    return AgentConfig(
        node_id=_text(raw, "node_id", socket.gethostname()),
        libvirt_uri=_libvirt_uri(raw.get("libvirt_uri", DEFAULT_LIBVIRT_URI)),
        manager=_address(raw.get("manager", DEFAULT_MANAGER)),
        report_period_s=_seconds(raw, "report_period_s", 3.0),
        heartbeat_period_s=_seconds(raw, "heartbeat_period_s", 1.0),
        tls_dir=_tls_dir(raw.get("tls_dir"), insecure),
        tls_name=_text(raw, "tls_name", "") or _text(raw, "node_id", socket.gethostname()),
        insecure=insecure,
        nic_bandwidth_mbps=_positive_int(raw, "nic_bandwidth_mbps", 1000),
        migration_uri=_text(raw, "migration_uri", ""),
        peer_uri=_text(raw, "peer_uri", ""),
        cpu_millicores=_non_negative_int(raw, "cpu_millicores", 0),
        host_cpu_from_guests=_bool(raw, "host_cpu_from_guests"),
        load=_load(raw.get("load", {}), base_dir),
        metrics_listen=_metrics_listen(raw.get("metrics_listen", "")),
        state_dir=_state_dir(raw.get("state_dir"), base_dir),
        traffic_window_s=_traffic_window(raw.get("traffic_window_s", 30.0)),
    )


def _traffic_window(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ConfigError(f"traffic_window_s: {value!r} is not a number of seconds in [0, 3600]")
    return float(value)


def _text(raw: Mapping[str, Any], key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {value!r} is not a string")
    value = value.strip() or default
    if key == "node_id" and (not value or any(c.isspace() for c in value)):
        raise ConfigError(f"node_id: {value!r} must be a non-empty name without spaces")
    return value


def _libvirt_uri(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(
            f"libvirt_uri: {value!r} is not a libvirt URI; expected e.g. qemu:///system "
            "or test:///abs/path/node.xml"
        )
    if value.startswith("test://") and value != DEFAULT_LIBVIRT_URI:
        node_file = Path(value[len("test://") :])
        if not node_file.is_absolute() or not node_file.is_file():
            raise ConfigError(
                f"libvirt_uri: {value!r} names no node XML file; expected test:///default "
                "or test:///<absolute path to an existing node XML>"
            )
    return value


def _address(value: Any) -> str:
    """One manager's HOST:PORT, or the replicas' addresses separated by commas (a TOML list
    is accepted too)."""
    parts = value if isinstance(value, list) else str(value).split(",")
    for part in parts:
        host, _, port = str(part).strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"manager: {str(part).strip()!r} is not HOST:PORT with a port 1-65535 "
                "(replicas: HOST:PORT,HOST:PORT)"
            )
    return ",".join(str(part).strip() for part in parts)


def _metrics_listen(value: Any) -> str:
    if value == "":
        return ""
    parse_metrics_listen(str(value))  # raises ConfigError naming the value
    return str(value)


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.05 <= value <= 3600:
        raise ConfigError(f"{key}: {value!r} is not a number of seconds between 0.05 and 3600")
    return float(value)


def _positive_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: {value!r} is not a positive integer")
    return value


def _non_negative_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key}: {value!r} is not an integer >= 0")
    return value


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is not true or false")
    return value


def _tls_dir(value: Any, insecure: bool) -> Path | None:
    if insecure:
        return None  # the explicit flag wins over a certs dir from the file
    if value is None:
        if not insecure:
            raise ConfigError("tls_dir is not set; pass --tls-dir DIR, or --insecure for loopback")
        return None
    path = Path(str(value))
    if not path.is_dir():
        raise ConfigError(f"tls_dir: {str(path)!r} is not a directory")
    return path


def _state_dir(value: Any, base_dir: Path) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, Path)):
        raise ConfigError(f"state_dir: {value!r} is not a path")
    path = base_dir / Path(value)
    if not path.is_dir():
        raise ConfigError(f"state_dir: {str(path)!r} is not a directory")
    return path


def _load(value: Any, base_dir: Path) -> LoadConfig:
    if not isinstance(value, Mapping):
        raise ConfigError(f"load: {value!r} is not a table")
    unknown = set(value) - {"default", "vms", "seed"}
    if unknown:
        raise ConfigError(f"load: unknown key {sorted(unknown)[0]!r}; accepted: default, vms, seed")
    default, vms, seed = value.get("default", {}), value.get("vms", {}), value.get("seed", 0)
    if not isinstance(default, Mapping) or not isinstance(vms, Mapping):
        raise ConfigError("load.default and load.vms must be tables")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"load.seed: {seed!r} is not an integer")
    return LoadConfig(default=default, vms=vms, seed=seed, base_dir=base_dir)
