"""`vmgrid-coordinator`: run the grid coordinator.

Cluster managers dial it on GridLinkService; operators use CoordinatorService (vmgridctl
clusters / topology / status / plan). Exit codes: 0 after a clean stop, 2 for a bad flag,
config value or topology file (one line on stderr), 3 when a replicated coordinator lost its
etcd lease (it stopped at once; its supervisor starts it again as a candidate).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from vmgrid.agents.common import preflight
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.metrics_http import MetricsEndpoint
from vmgrid.coordinator.config import CoordinatorConfig, add_arguments, from_args
from vmgrid.coordinator.metrics import CoordinatorMetrics
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.coordinator.web.launch import (
    default_state_dir,
    load_tokens,
    serve_coordinator_dashboard,
)

EPILOG = """\
examples:
  vmgridctl certs init --dir certs
  vmgrid-coordinator --certs certs --listen 0.0.0.0:7600 \\
      --topology-file deploy/examples/topology-example.graphml --state-db /var/lib/vmgrid/grid.db
  vmgrid-coordinator --insecure --listen 127.0.0.1:0 --ready-file /tmp/addr   # tests only
  vmgrid-coordinator --config coordinator.toml     # keys = field names, e.g.
                                                    #   topology_file = "grid.graphml"
                                                    #   cluster_timeout_s = 30.0
Every link uses mutual TLS unless --insecure is given.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-coordinator",
        description="Grid coordinator: registers cluster managers, keeps their summaries in "
        "SQLite and plans inter-cluster moves on a GraphML topology (gRPC, with health "
        "checking and reflection).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default INFO)",
    )
    return parser


EXIT_DEPOSED = 3
"""Exit code of a replica whose leadership ended (its supervisor starts it again, as a
candidate; docs/replication.md)."""

STATE_TABLES = ("clusters", "grid_moves", "jobs")
"""Tables of the coordinator's state database; one that holds tables but none of these is
not vmgrid's, and is refused rather than written into."""


def check_environment(config: CoordinatorConfig) -> None:
    """Before anything is served or written: ports free, TLS files loadable and matching,
    the state database vmgrid's; ConfigError names the first that is not."""
    preflight.check_server(config)
    if config.web_token_file and config.web_listen:
        load_tokens(Path(config.web_token_file))
    preflight.check_database("state_db", config.state_db, STATE_TABLES)


async def _serve(config: CoordinatorConfig) -> bool:
    """Serve until SIGINT/SIGTERM, or until this replica's leadership ended (returns True)."""
    server = CoordinatorServer(config)
    endpoint = None
    dashboard = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if config.metrics_listen:
            metrics = CoordinatorMetrics(server.coordinator)
            endpoint = MetricsEndpoint(
                metrics.registry, config.metrics_listen, "vmgrid-coordinator"
            )
        await server.start()
        server.deposed_stops(stop)
        if config.web_listen:
            dashboard = await serve_coordinator_dashboard(
                server.coordinator,
                config.web_listen,
                config.web_token_file,
                _state_dir(config),
                jobs=server.jobs,
                mover=server.mover,
            )
        await stop.wait()
        return server.deposed.is_set()
    finally:
        if dashboard is not None:
            await dashboard.stop()
        if endpoint is not None:
            endpoint.stop()
        await server.stop()


def _state_dir(config: CoordinatorConfig) -> Path:
    """Where generated dashboard tokens live: beside the state database."""
    if config.state_db == ":memory:":
        return default_state_dir(config.grid_id)
    return Path(config.state_db).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = from_args(args)
        check_environment(config)
        deposed = asyncio.run(_serve(config))
    except ConfigError as exc:
        print(f"vmgrid-coordinator: {exc}", file=sys.stderr)
        return 2
    return EXIT_DEPOSED if deposed else 0


if __name__ == "__main__":
    sys.exit(main())
