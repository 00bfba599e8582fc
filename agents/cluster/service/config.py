"""Configuration of ``vmgrid-cluster``: a TOML file overridden by command-line flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from vmgrid.agents.common.config import (
    add_endpoint_arguments,
    add_tls_arguments,
    apply_flags,
    check_keys,
    check_listen,
    check_tls_files,
    parse_web_listen,
)
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.metrics_http import parse_metrics_listen


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
        check_listen(self.listen, "127.0.0.1:7443")
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
            check_tls_files(self)
        return self


def server_keys(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The server keys of a read config file (top level or a ``[cluster]`` table; the
    ``[control]``, ``[policy]`` and ``[fault_tolerance]`` tables are the other branches of the
    tree);
    unknown keys and wrong types are errors naming the key."""
    data = dict(document.get("cluster", document))
    data.pop("control", None)
    data.pop("fault_tolerance", None)
    data.pop("policy", None)
    data.pop("etcd", None)
    return check_keys(data, ClusterConfig(), path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of vmgrid-cluster; each overrides the same-named TOML key."""
    d = ClusterConfig()
    parser.add_argument("--config", metavar="FILE", help="TOML file (keys: docs/configuration.md)")
    parser.add_argument("--cluster-id", help=f"name of this cluster (default {d.cluster_id})")
    parser.add_argument("--listen", metavar="HOST:PORT", help=f"bind address (default {d.listen})")
    add_tls_arguments(
        parser,
        None,
        "directory from 'vmgridctl certs init': uses ca.crt, NAME.crt, NAME.key",
        "the cluster id: a manager's certificate names its cluster",
    )
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
    add_endpoint_arguments(parser, "in the state directory")


def from_keys(values: dict[str, Any], args: argparse.Namespace) -> ClusterConfig:
    """The file's server keys overridden by the flags, validated. The certificate in
    ``--certs`` is the cluster id's unless --cert-name names another."""
    if getattr(args, "certs", None) and not getattr(args, "cert_name", None):
        cluster_id = args.cluster_id or values.get("cluster_id") or ClusterConfig().cluster_id
        args = argparse.Namespace(**{**vars(args), "cert_name": cluster_id})
    return ClusterConfig(**apply_flags(values, args, ClusterConfig())).validate()
