"""Configuration of ``vmgrid-cluster``: a TOML file overridden by command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmgrid.agents.errors import ConfigError
from vmgrid.agents.metrics_http import parse_metrics_listen
from vmgrid.coordinator.web.launch import parse_web_listen


@dataclass(frozen=True)
class ClusterConfig:
    """Settings of one cluster manager. Every field can be set in TOML or by its flag."""

    cluster_id: str = "cluster-1"
    """Name of this cluster in events, summaries and the grid."""

    listen: str = "127.0.0.1:7443"
    """host:port the gRPC server binds (port 0 picks a free port)."""

    insecure: bool = False
    """Serve plaintext. Only for loopback tests and benchmarks; needs the explicit flag."""

    tls_ca_file: str = ""
    """PEM CA that signs agent and operator client certificates (mTLS)."""

    tls_cert_file: str = ""
    """PEM certificate of this manager (server and client use)."""

    tls_key_file: str = ""
    """PEM private key of tls_cert_file."""

    report_period_ms: int = 3000
    """Period at which agents are asked to send reports or heartbeats."""

    heartbeat_timeout_ms: int = 10000
    """A node silent for longer than this is marked lost."""

    history_window: int = 60
    """Number of past samples kept per node and per VM."""

    ready_file: str = ""
    """When set, the manager writes its bound host:port there once serving (tests, bench)."""

    metrics_listen: str = ""
    """host:port of the Prometheus /metrics endpoint; empty (default) serves none, port 0
    picks a free port (logged)."""

    web_listen: str = ""
    """host:port of the web dashboard and its JSON API; empty (default) serves none, port 0
    picks a free port (logged)."""

    web_token_file: str = ""
    """TOML file with the dashboard's ``read`` and ``operator`` tokens; empty: generated once
    into web-tokens.toml (0600) in the state directory, and reused."""

    def validate(self) -> ClusterConfig:
        """Raise ConfigError naming the first bad value; return self when valid."""
        if not self.cluster_id.strip():
            raise ConfigError("cluster_id: empty; give a non-empty name, e.g. 'cluster-1'")
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"listen: {self.listen!r} is not host:port (e.g. 127.0.0.1:7443)")
        if self.report_period_ms <= 0:
            raise ConfigError(f"report_period_ms: {self.report_period_ms} must be > 0")
        if self.heartbeat_timeout_ms <= self.report_period_ms:
            raise ConfigError(
                f"heartbeat_timeout_ms: {self.heartbeat_timeout_ms} must exceed "
                f"report_period_ms ({self.report_period_ms})"
            )
        if self.metrics_listen:
            parse_metrics_listen(self.metrics_listen)
        if self.web_listen:
            parse_web_listen(self.web_listen)
        if self.history_window < 1:
            raise ConfigError(f"history_window: {self.history_window} must be >= 1")
        if not self.insecure:
            for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
                value = getattr(self, name)
                if not value:
                    raise ConfigError(
                        f"{name}: not set; give --certs DIR (or the three --tls-* files), "
                        "or --insecure for plaintext"
                    )
                if not Path(value).is_file():
                    raise ConfigError(f"{name}: {value!r} is not a readable file")
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(ClusterConfig)}


def read_toml(path: str) -> dict[str, Any]:
    """The whole TOML file; ConfigError when it is missing or malformed."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config: file {path!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path!r} is not valid TOML ({exc})") from None


def load_toml(path: str) -> dict[str, Any]:
    """Read the server keys of a TOML config file (top level or a ``[cluster]`` table; the
    ``[control]`` table is read by runtime_config); unknown keys and wrong types are errors
    naming the key."""
    data = read_toml(path)
    data = dict(data.get("cluster", data))
    data.pop("control", None)
    data.pop("fault_tolerance", None)
    for key, value in data.items():
        if key not in _FIELDS:
            raise ConfigError(f"config: unknown key {key!r}; accepted: {', '.join(_FIELDS)}")
        expected = type(getattr(ClusterConfig(), key))
        if type(value) is not expected:
            raise ConfigError(
                f"config: {key} = {value!r} must be a {expected.__name__} in {path!r}"
            )
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of vmgrid-cluster; each overrides the same-named TOML key."""
    d = ClusterConfig()
    parser.add_argument("--config", metavar="FILE", help="TOML file (keys = long flag names)")
    parser.add_argument("--cluster-id", help=f"name of this cluster (default {d.cluster_id})")
    parser.add_argument("--listen", metavar="HOST:PORT", help=f"bind address (default {d.listen})")
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="serve plaintext (no TLS)"
    )
    parser.add_argument(
        "--certs",
        metavar="DIR",
        help="directory from 'vmgridctl certs init': uses ca.crt, NAME.crt, NAME.key",
    )
    parser.add_argument(
        "--cert-name", default="cluster", help="component name in --certs (default cluster)"
    )
    parser.add_argument("--tls-ca-file", metavar="PEM", help="CA for client certificates")
    parser.add_argument("--tls-cert-file", metavar="PEM", help="server certificate")
    parser.add_argument("--tls-key-file", metavar="PEM", help="server private key")
    parser.add_argument(
        "--report-period-ms", type=int, help=f"agent report period (default {d.report_period_ms})"
    )
    parser.add_argument(
        "--heartbeat-timeout-ms",
        type=int,
        help=f"node lost after this silence (default {d.heartbeat_timeout_ms})",
    )
    parser.add_argument(
        "--history-window", type=int, help=f"samples kept per node/VM (default {d.history_window})"
    )
    parser.add_argument("--ready-file", metavar="FILE", help="write the bound host:port here")
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics there (default: none; port 0 picks one, logged)",
    )
    parser.add_argument(
        "--web-listen",
        metavar="HOST:PORT",
        help="serve the web dashboard there (default: none; port 0 picks one, logged)",
    )
    parser.add_argument(
        "--web-token-file",
        metavar="FILE",
        help="TOML with read/operator dashboard tokens (default: generated once, 0600, "
        "in the state directory)",
    )


def from_args(args: argparse.Namespace) -> ClusterConfig:
    """Merge defaults, the TOML file and flags, then validate."""
    values: dict[str, Any] = load_toml(args.config) if args.config else {}
    if args.certs:
        base = Path(args.certs)
        values["tls_ca_file"] = str(base / "ca.crt")
        values["tls_cert_file"] = str(base / f"{args.cert_name}.crt")
        values["tls_key_file"] = str(base / f"{args.cert_name}.key")
    for name in _FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return ClusterConfig(**values).validate()
