"""Configuration of ``vmgrid-coordinator``: a TOML file overridden by command-line flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmgrid.agents.cluster.service import etcd_config
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.common.config import (
    add_endpoint_arguments,
    add_tls_arguments,
    apply_flags,
    check_keys,
    check_listen,
    check_tls_files,
    parse_web_listen,
    read_toml,
)
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.metrics_http import parse_metrics_listen


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

    replica: ReplicaOptions = field(default_factory=ReplicaOptions)
    """Replication on etcd, from the ``[etcd]`` table (docs/replication.md); no endpoints:
    the only coordinator of its grid, on its SQLite file."""

    def validate(self) -> CoordinatorConfig:
        """Raise ConfigError naming the first bad value; return self when valid."""
        if not self.grid_id.strip():
            raise ConfigError("grid_id: empty; give a non-empty name, e.g. 'grid-1'")
        check_listen(self.listen, "127.0.0.1:7600")
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
            check_tls_files(self)
        return self


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file (top level or a [coordinator] table); bad keys and types are named.
    An ``[etcd]`` table is left to `from_args` (``etcd_config.options``)."""
    data = read_toml(path)
    values = dict(data.get("coordinator", data))
    values.pop(etcd_config.TABLE, None)
    if "replica" in values:  # a field of the config, but not a key of the file
        raise ConfigError(f"config: unknown key 'replica' in {path!r}; use an [etcd] table")
    return check_keys(values, CoordinatorConfig(), path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of vmgrid-coordinator; each overrides the same-named TOML key."""
    d = CoordinatorConfig()
    parser.add_argument("--config", metavar="FILE", help="TOML file (keys: docs/configuration.md)")
    parser.add_argument("--grid-id", help=f"name of this grid (default {d.grid_id})")
    parser.add_argument("--listen", metavar="HOST:PORT", help=f"bind address (default {d.listen})")
    add_tls_arguments(
        parser, "coordinator", "directory from 'vmgridctl certs init' (ca.crt, NAME.*)"
    )
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
    add_endpoint_arguments(parser, "beside --state-db")
    etcd_config.add_arguments(parser, "replicated coordinators")


def from_args(args: argparse.Namespace) -> CoordinatorConfig:
    """Merge defaults, the TOML file and flags, then validate."""
    values: dict[str, Any] = load_toml(args.config) if args.config else {}
    document = read_toml(args.config) if args.config else {}
    replica = etcd_config.options(document, args.config or "flags", args)
    values = apply_flags(values, args, CoordinatorConfig())
    values.pop("replica", None)
    config = CoordinatorConfig(**values, replica=replica).validate()
    etcd_config.check_advertised(replica, config.listen)
    return config
