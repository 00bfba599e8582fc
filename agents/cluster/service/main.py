"""`vmgrid-cluster`: run a whole cluster manager (ClusterRuntime).

Agents dial it on NodeLinkService; operators use ClusterService (vmgridctl nodes / vms). Beside
the server it runs the plan journal, the executor, the decision loop and, with --coordinator,
the uplink to the grid coordinator. A manager restarted after a crash finishes the plans its
journal has as running before it decides anything new.
Exit codes: 0 after a clean stop, 2 for a bad flag or config value (one line on stderr), 3 for
a replica whose etcd lease was lost (it stopped acting at once; docs/replication.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vmgrid.agents.cluster.service import runtime_config, settings
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ClusterMetrics
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.common import preflight
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.metrics_http import MetricsEndpoint
from vmgrid.coordinator.web.launch import default_state_dir, load_tokens, serve_cluster_dashboard

EPILOG = """\
examples:
  vmgridctl certs init --dir certs
  vmgrid-cluster --certs certs --listen 0.0.0.0:7443 --cluster-id rack-a --automation partial
  vmgrid-cluster --insecure --listen 127.0.0.1:0 --ready-file /tmp/addr   # tests only
  vmgrid-cluster --config cluster.toml            # keys = field names, e.g.
                                                   #   listen = "0.0.0.0:7443"
                                                   #   [control]
                                                   #   automation = "automatic"
                                                   #   hold_s = 30
                                                   #   journal = "/var/lib/vmgrid/journal.sqlite"
Every link uses mutual TLS unless --insecure is given.
"""


def tune_gc() -> None:
    """Keep garbage-collection pauses out of report latency.

    Ingestion replaces tens of thousands of small objects per second; with the default
    thresholds they survive into the old generation and trigger full collections that stall
    the event loop for tens of milliseconds. Start-up objects are frozen out of collection and
    young collections run less often, so most report objects die by reference counting first.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-cluster",
        description="Cluster manager: collects node agent reports over gRPC, decides and "
        "executes reconfiguration plans (journaled), serves ClusterService (with gRPC health "
        "checking and reflection).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    settings.add_arguments(parser)
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default INFO)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="profile the manager's event loop with cProfile and write its stats to FILE on "
        "exit (pstats format; read with python -m pstats FILE). Slows the manager down.",
    )
    return parser


def build_settings(args: argparse.Namespace) -> tuple[ClusterConfig, RuntimeOptions]:
    """Server and runtime settings (the two branches of the config tree) from the file and
    flags; ConfigError names a bad value."""
    tree = settings.load(args)
    return tree.server, tree.runtime


JOURNAL_TABLES = (
    "plans",
    "actions",
    "powered_off_nodes",
    "rules",
    "grid_commands",
    "grid_reservations",
)
"""Tables of a manager's journal database; one that holds tables but none of these is not
vmgrid's, and is refused rather than written into."""
JOBS_TABLES = ("jobs", "members", "checkpoints", "stale")


def check_environment(config: ClusterConfig, options: RuntimeOptions) -> None:
    """Before anything is served or written: ports free, TLS files loadable and matching,
    databases vmgrid's; ConfigError names the first that is not."""
    preflight.check_server(config)
    if config.web_token_file and config.web_listen:
        load_tokens(Path(config.web_token_file))
    preflight.check_database("journal", options.journal_path, JOURNAL_TABLES)
    if options.fault_tolerance is not None:
        preflight.check_database("jobs_db", options.fault_tolerance.submission.db_path, JOBS_TABLES)


GC_THRESHOLDS = (100_000, 50, 100)
"""The manager's garbage-collector thresholds (Python's defaults are 700, 10, 10).

Every report brings 20-odd new VM objects that live one report period, a little longer than
the collector's youngest generation at the default threshold, so they were promoted and the
oldest generation (the whole heap of a 2,000-node cluster) was collected every 15-20 s, each
time stalling ingestion for 200-300 ms: that, not decoding, set the report latency p99. With a
young generation this large, objects of one period die before they are looked at, and a full
collection becomes rare (see docs/control.md, "Ingestion and the collector")."""


EXIT_DEPOSED = 3
"""Exit code of a replica whose leadership ended (its supervisor starts it again, as a
candidate)."""


async def _serve(config: ClusterConfig, options: RuntimeOptions) -> int:
    runtime = ClusterRuntime(config, options)
    endpoint = None
    if runtime.server.config.metrics_listen:
        metrics = ClusterMetrics(runtime.manager)
        metrics.attach_runtime(runtime)
        endpoint = MetricsEndpoint(
            metrics.registry, runtime.server.config.metrics_listen, "vmgrid-cluster"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger(__name__).info(
        "journal %s, automation %s",
        runtime.options.journal_path,
        runtime.options.control.automation.value,
    )
    dashboard = None
    try:
        gc.set_threshold(*GC_THRESHOLDS)
        await runtime.start()
        if config.web_listen:
            dashboard = await serve_cluster_dashboard(
                runtime, config.web_listen, config.web_token_file, _state_dir(config, options)
            )
        ended = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(runtime.deposed.wait())]
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
        for waiter in ended:
            waiter.cancel()
    finally:
        if dashboard is not None:
            await dashboard.stop()
        if endpoint is not None:
            endpoint.stop()
        await runtime.stop()
    return EXIT_DEPOSED if runtime.deposed.is_set() else 0


def _state_dir(config: ClusterConfig, options: RuntimeOptions) -> Path:
    """Where generated dashboard tokens live: beside the plan journal."""
    if options.journal_path == runtime_config.MEMORY_JOURNAL:
        return default_state_dir(config.cluster_id)
    return Path(options.journal_path).resolve().parent


def _profiled(run: Callable[[], int], path: str) -> int:
    """`run()` under cProfile, its stats written to `path` however it ends."""
    import cProfile  # only when asked for

    profile = cProfile.Profile()
    try:
        return profile.runcall(run)
    finally:
        profile.dump_stats(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config, options = build_settings(args)
        check_environment(config, options)
        if args.profile:
            return _profiled(lambda: asyncio.run(_serve(config, options)), args.profile)
        return asyncio.run(_serve(config, options))
    except ConfigError as exc:
        print(f"vmgrid-cluster: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
