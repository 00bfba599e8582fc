"""`vmgrid-agent`: the node agent, one per compute node.

It reads its host through libvirt and streams reports to its cluster manager, and executes
the manager's commands. Flags override the config file; a bad value stops it at once with
one line naming the value (exit code 2). SIGTERM or SIGINT ends it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from vmgrid.agents.common import preflight
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.node import footprint
from vmgrid.agents.node.agent import NodeAgent
from vmgrid.agents.node.config import DEFAULT_LIBVIRT_URI, DEFAULT_MANAGER, AgentConfig, load_config
from vmgrid.agents.node.libvirt_hypervisor import LibvirtHypervisor
from vmgrid.agents.node.load import LoadSource
from vmgrid.agents.tls import TlsFiles, channel_credentials

if TYPE_CHECKING:
    from vmgrid.agents.metrics_http import MetricsEndpoint

EPILOG = """examples:
  vmgrid-agent --insecure --manager 127.0.0.1:7443 --node-id n1 \\
      --libvirt-uri test://$PWD/deploy/examples/node-small.xml --period 1
  vmgrid-agent --config /etc/vmgrid/agent.toml
  python -m vmgrid.agents.node.testnode /tmp/n1.xml --prefix n1 --vms 20   # a test node
"""


def _columns() -> int:
    """The terminal width as shutil.get_terminal_size() reads it (COLUMNS, then stdout's
    terminal, else 80), without importing shutil, which brings bz2 and lzma (~0.3 MB)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
            columns = 80
    return columns or 80


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        # argparse's own default width imports shutil, for every parser, help or not
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-agent",
        description="Node agent: streams libvirt usage to a cluster manager and runs its commands.",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    add = parser.add_argument
    add(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML config file (keys: docs/configuration.md); flags override it",
    )
    add(
        "--manager",
        metavar="HOST:PORT",
        help=f"cluster manager address (default {DEFAULT_MANAGER})",
    )
    add(
        "--libvirt-uri",
        metavar="URI",
        help=f"libvirt URI, e.g. qemu:///system or test:///abs/node.xml (default {DEFAULT_LIBVIRT_URI})",
    )
    add("--node-id", metavar="ID", help="stable node id within the cluster (default: host name)")
    add(
        "--period",
        type=float,
        metavar="S",
        dest="report_period_s",
        help="report period, s (default 3); each node reports at its own phase of it",
    )
    add(
        "--heartbeat",
        type=float,
        metavar="S",
        dest="heartbeat_period_s",
        help="heartbeat period, s (default 1)",
    )
    add("--tls-dir", metavar="DIR", help="certs dir from 'vmgridctl certs init'")
    add("--tls-name", metavar="NAME", help="certificate name in --tls-dir (default: node id)")
    add("--insecure", action="store_true", default=None, help="plaintext gRPC (loopback only)")
    add(
        "--nic-mbps",
        type=int,
        dest="nic_bandwidth_mbps",
        metavar="MBPS",
        help="NIC bandwidth (default 1000)",
    )
    add("--migration-uri", metavar="URI", help="data URI of incoming migrations (tcp://HOST)")
    add(
        "--peer-uri",
        metavar="URI",
        help="libvirt URI peers dial to migrate here (default: the libvirt URI)",
    )
    add(
        "--cpu-millicores",
        type=int,
        metavar="MC",
        help="declared CPU capacity (default: host CPUs x 1000)",
    )
    add(
        "--host-cpu-from-guests",
        action="store_true",
        default=None,
        help="host CPU use = sum of its guests' (lab hosts sharing one machine)",
    )
    add(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics there (default: none; port 0 picks one, logged)",
    )
    add(
        "--state-dir",
        metavar="DIR",
        help="directory where the agent keeps the highest manager term seen (default: none)",
    )
    add(
        "--metrics-url-file",
        type=Path,
        metavar="FILE",
        help="once /metrics serves, write its URL to FILE (how a launcher learns port 0)",
    )
    add("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    keys = (
        "manager",
        "libvirt_uri",
        "node_id",
        "report_period_s",
        "heartbeat_period_s",
        "tls_dir",
        "tls_name",
        "insecure",
        "nic_bandwidth_mbps",
        "migration_uri",
        "peer_uri",
        "cpu_millicores",
        "host_cpu_from_guests",
        "metrics_listen",
        "state_dir",
    )
    return {key: getattr(args, key) for key in keys}


def build_agent(config: AgentConfig) -> NodeAgent:
    """The agent for a validated config; ConfigError for a bad load spec or TLS file."""
    load = None
    if config.simulated:
        spec = config.load
        load = LoadSource(spec.default, spec.vms, seed=spec.seed, base_dir=spec.base_dir)
    credentials: grpc.ChannelCredentials | None = None
    if config.tls_dir is not None:
        files = TlsFiles.from_dir(config.tls_dir, config.tls_name)
        credentials = channel_credentials(files)
        # A certificate gRPC cannot load would fail every dial, and the agent would retry for
        # ever: refuse it here, in one line.
        preflight.check_tls(
            "tls_dir", files.ca_file, "tls_dir", files.cert_file, "tls_dir", files.key_file
        )
    return NodeAgent(config, LibvirtHypervisor(config.libvirt_uri), load, credentials)


async def _serve(agent: NodeAgent, endpoint: MetricsEndpoint | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.run(stop)
    finally:
        if endpoint is not None:
            endpoint.stop()


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a URL."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    except OSError as exc:
        raise ConfigError(
            f"metrics_url_file: cannot write {str(path)!r} ({exc.strerror})"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    footprint.limit_arenas()  # before gRPC and libvirt start their threads
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="vmgrid-agent: %(levelname)s: %(message)s", stream=sys.stderr
    )
    try:
        config = load_config(args.config, _overrides(args))
        agent = build_agent(config)
        endpoint = None
        if config.metrics_listen:
            # Imported here: an agent without metrics does not pay prometheus_client's memory.
            from vmgrid.agents.metrics_http import MetricsEndpoint
            from vmgrid.agents.node.metrics import AgentMetrics

            registry = AgentMetrics(agent, config.node_id).registry
            endpoint = MetricsEndpoint(registry, config.metrics_listen, "vmgrid-agent")
            if args.metrics_url_file is not None:
                _write_atomically(args.metrics_url_file, endpoint.url + "\n")
    except ConfigError as exc:
        print(f"vmgrid-agent: {exc}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).info(
        "node %s on %s reporting to %s every %.1f s",
        config.node_id,
        config.libvirt_uri,
        config.manager,
        config.report_period_s,
    )
    asyncio.run(_serve(agent, endpoint))
    return 0


if __name__ == "__main__":
    sys.exit(main())
