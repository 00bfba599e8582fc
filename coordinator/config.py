"""Configuration of ``vmgrid-coordinator``: a TOML file overridden by command-line flags."""

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
class CoordinatorConfig:
    """Settings of the grid coordinator. Every field can be set in TOML or by its flag."""

    grid_id: str = "grid-1"
    """Name of this grid, sent to clusters in the hello acknowledgement."""

    listen: str = "127.0.0.1:7600"
    """host:port the gRPC server binds (port 0 picks a free port)."""

    insecure: bool = False
    """Serve plaintext. Only for loopback tests and demos; needs the explicit flag."""

    tls_ca_file: str = ""
    """PEM CA that signs cluster manager and operator client certificates (mTLS)."""

    tls_cert_file: str = ""
    """PEM certificate of this coordinator."""

    tls_key_file: str = ""
    """PEM private key of tls_cert_file."""

    topology_file: str = ""
    """GraphML topology of clusters, switches, routers and links; required for planning."""

    state_db: str = "vmgrid-coordinator.sqlite"
    """SQLite file of the cluster registry; it survives restarts (':memory:' for none)."""

    cluster_timeout_s: float = 30.0
    """A cluster silent for longer than this is declared lost."""

    summary_period_s: float = 5.0
    """Period at which cluster managers are asked to send summaries."""

    ready_file: str = ""
    """When set, the coordinator writes its bound host:port there once serving (tests)."""

    metrics_listen: str = ""
    """host:port of the Prometheus /metrics endpoint; empty (default) serves none, port 0
    picks a free port (logged)."""

    web_listen: str = ""
    """host:port of the web dashboard and its JSON API; empty (default) serves none, port 0
    picks a free port (logged)."""

    web_token_file: str = ""
    """TOML file with the dashboard's ``read`` and ``operator`` tokens; empty: generated once
    into web-tokens.toml (0600) beside state_db, and reused."""

    def validate(self) -> CoordinatorConfig:
        """Raise ConfigError naming the first bad value; return self when valid."""
        if not self.grid_id.strip():
            raise ConfigError("grid_id: empty; give a non-empty name, e.g. 'grid-1'")
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"listen: {self.listen!r} is not host:port (e.g. 127.0.0.1:7600)")
        if self.metrics_listen:
            parse_metrics_listen(self.metrics_listen)
        if self.web_listen:
            parse_web_listen(self.web_listen)
        if self.summary_period_s <= 0:
            raise ConfigError(f"summary_period_s: {self.summary_period_s} must be > 0 seconds")
        if self.cluster_timeout_s <= self.summary_period_s:
            raise ConfigError(
                f"cluster_timeout_s: {self.cluster_timeout_s} must exceed "
                f"summary_period_s ({self.summary_period_s})"
            )
        if self.topology_file and not Path(self.topology_file).is_file():
            raise ConfigError(f"topology_file: {self.topology_file!r} is not a readable file")
        if not self.state_db:
            raise ConfigError("state_db: empty; give a file path, or ':memory:' to keep nothing")
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


_FIELDS = {f.name: f for f in dataclasses.fields(CoordinatorConfig)}


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file (top level or a [coordinator] table); bad keys and types are named."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config: file {path!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path!r} is not valid TOML ({exc})") from None
    data = data.get("coordinator", data)
    defaults = CoordinatorConfig()
    for key, value in data.items():
        if key not in _FIELDS:
            raise ConfigError(f"config: unknown key {key!r}; accepted: {', '.join(_FIELDS)}")
        expected = type(getattr(defaults, key))
        if expected is float and type(value) is int:
            data[key] = float(value)
        elif type(value) is not expected:
            raise ConfigError(
                f"config: {key} = {value!r} must be a {expected.__name__} in {path!r}"
            )
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of vmgrid-coordinator; each overrides the same-named TOML key."""
    d = CoordinatorConfig()
    parser.add_argument("--config", metavar="FILE", help="TOML file (keys = field names)")
    parser.add_argument("--grid-id", help=f"name of this grid (default {d.grid_id})")
    parser.add_argument("--listen", metavar="HOST:PORT", help=f"bind address (default {d.listen})")
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="serve plaintext (no TLS)"
    )
    parser.add_argument(
        "--certs", metavar="DIR", help="directory from 'vmgridctl certs init' (ca.crt, NAME.*)"
    )
    parser.add_argument(
        "--cert-name", default="coordinator", help="component name in --certs (default coordinator)"
    )
    parser.add_argument("--tls-ca-file", metavar="PEM", help="CA for client certificates")
    parser.add_argument("--tls-cert-file", metavar="PEM", help="server certificate")
    parser.add_argument("--tls-key-file", metavar="PEM", help="server private key")
    parser.add_argument("--topology-file", metavar="GRAPHML", help="grid topology (GraphML)")
    parser.add_argument(
        "--state-db", metavar="FILE", help=f"SQLite registry (default {d.state_db})"
    )
    parser.add_argument(
        "--cluster-timeout-s",
        type=float,
        help=f"cluster lost after this silence (default {d.cluster_timeout_s})",
    )
    parser.add_argument(
        "--summary-period-s",
        type=float,
        help=f"summary period asked of clusters (default {d.summary_period_s})",
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
        "beside --state-db)",
    )


def from_args(args: argparse.Namespace) -> CoordinatorConfig:
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
    return CoordinatorConfig(**values).validate()
