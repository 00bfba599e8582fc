"""`vmgrid-bench`: every benchmark behind one command; the last line of stdout is JSON.

Each benchmark lives in its own module of this package, which defines
``add_arguments(parser)`` and ``run(args) -> dict``. Progress goes to stderr so that
stdout stays machine-readable. Every result line ends with a ``machine`` object (cores, CPU
model, a calibration loop timed in the same run, load, the command: ``vmgrid.bench.context``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Sequence

from vmgrid.bench.context import MachineContext

# name -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ingest": ("vmgrid.bench.ingest", "report ingestion by a cluster manager from N agents"),
    "ingest-path": (
        "vmgrid.bench.ingest_path",
        "the cluster manager's Python per report (parse, decode, apply), in process, no gRPC",
    ),
    "agent": (
        "vmgrid.bench.agent",
        "footprint of one node agent on a test-driver node or a lab host",
    ),
    "solver": ("vmgrid.bench.solver", "CP-SAT reconfiguration on a BtrPlace instance"),
    "solver-peers": (
        "vmgrid.bench.solver_peers",
        "vmgrid's solver beside ProxLB's and Watcher's on the same instances",
    ),
    "replay": ("vmgrid.bench.replay", "PlanetLab trace replay through the decision loop"),
    "grid": ("vmgrid.bench.grid", "inter-cluster planning on a generated grid"),
    "reaction": ("vmgrid.bench.reaction", "overload-to-relief time on the KVM lab"),
    "makespan": ("vmgrid.bench.makespan", "plan makespan versus capped parallelism"),
    "failover": ("vmgrid.bench.failover", "restart time after a host failure on the lab"),
    "restart-memory": (
        "vmgrid.bench.restart_memory",
        "a group member back from a memory checkpoint after its lab host died",
    ),
    "roadef": ("vmgrid.bench.roadef", "Google machine reassignment (ROADEF/EURO 2012 challenge)"),
    "submission": (
        "vmgrid.bench.submission",
        "submit to SSH + NFS ready for a group of Debian guests on the lab",
    ),
    "migration": (
        "vmgrid.bench.migration",
        "live migrations of a memory-dirtying Debian guest through the manager, vs the estimate",
    ),
    "chaos": ("vmgrid.bench.chaos", "seeded random operations and failures, invariants checked"),
    "fuzz": ("vmgrid.bench.fuzz", "RPC fuzzer on every method of a live TLS grid, every role"),
    "demo-stability": (
        "vmgrid.bench.demo_stability",
        "the demo's loop over M minutes: migrations/hour, ping-pong, time above the band",
    ),
    "traffic": (
        "vmgrid.bench.traffic",
        "cross-host traffic after traffic-blind and -aware placement (Debian guests with iperf3; "
        "--vms netns: namespaces)",
    ),
    "n-plus-one": ("vmgrid.bench.n_plus_one", "time of the N+1 check on a generated cluster"),
    "history": ("vmgrid.bench.history", "cost of the manager's hour of usage history (dashboard)"),
    "manager-failover": (
        "vmgrid.bench.manager_failover",
        "SIGKILL the leader of replicated cluster managers mid-plan (test driver, etcd)",
    ),
    "coordinator-failover": (
        "vmgrid.bench.coordinator_failover",
        "SIGKILL the leader of replicated grid coordinators mid-move (test driver, etcd)",
    ),
}


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module, text) in BENCHMARKS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = (module, text)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-bench",
        description="Run a vmgrid benchmark. The last line of stdout is a JSON object.",
    )
    sub = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module, text) in _available().items():
        sp = sub.add_parser(name, help=text, description=text)
        importlib.import_module(module).add_arguments(sp)
        sp.add_argument("--json", action="store_true", help="print only the JSON result line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(_available()[args.benchmark][0])
    machine = MachineContext(sys.argv[1:] if argv is None else argv)
    machine.start()
    try:
        result = module.run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"vmgrid-bench {args.benchmark}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the benchmark's own clean-up has run; no figures
        print(f"vmgrid-bench {args.benchmark}: interrupted, no figures", file=sys.stderr)
        return 130
    result = {**result, "machine": machine.finish()}
    if not args.json:
        for key, value in result.items():
            print(f"{key}: {value}", file=sys.stderr)
    print(json.dumps(result, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
