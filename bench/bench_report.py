"""Write docs/benchmarks.md and the README's results table from `vmgrid-bench` result lines.

    python -m vmgrid.bench.bench_report --results build/bench/results.jsonl \
        [--merge build/bench/new.jsonl] --docs docs --readme README.md

``make bench`` (deploy/scripts/bench-all.sh) runs it after the benchmarks. ``--merge`` folds new
lines into ``--results``, replacing the lines of the same command, so a subset of the benchmarks
can be re-run. Every figure in the output comes with its command and the machine it ran on (the
``machine`` object of ``vmgrid.bench.context``); nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from vmgrid.bench.markdown import replace_section, table

Line = Mapping[str, object]

TARGETS: dict[str, str] = {
    "ingest": "2,000 agents × 20 VMs × 1/s: ≤ 0.35 core, p99 ≤ 20 ms, p50 ≤ 2 ms; "
    "5,000 agents: ≤ 1 core, p99 ≤ 100 ms, none dropped (issue #17)",
    "ingest-path": "no target: the manager's Python per report, in process, without gRPC "
    "(what of ingest's cost is vmgrid's own; issue #17)",
    "agent": "50 VMs, 1 s period: ≤ 50 MB RSS, ≤ 1 % of a core, flat over 30 min (issue #17)",
    "history": "the dashboard's hour: ≤ 2.5 KB per VM; its share of report apply (issue #18)",
    "solver": "BtrPlace: valid, ≤ 30 s, ≤ 4 GB, ≤ min + 5 %; generated: ≤ lower bound + 2 %, ≤ 10 s",
    "grid": "≤ 2 s, no oversubscribed link",
    "reaction": "KVM lab, 3 hosts, hold 2 s: ≤ 6 s p50, ≤ 8 s max over 5 runs, 0 lost, "
    "0 duplicated (issue #17)",
    "makespan": "≥ 25 % shorter than 2-per-node",
    "failover": "≤ 30 s, 0 lost, 0 duplicated",
    "restart-memory": "a failed member of a 2-member group running again from its checkpoint, "
    "memory included, ≤ 30 s after the failure is declared (issue #16)",
    "n-plus-one": "no target: an on-demand view; seconds grow with nodes × HA VMs",
    "replay": "ESV ≥ 20 % below the best reference, energy ≤ LR-MMT-1.2, migrations ≤ ½ "
    "IQR-MMT-1.5, ≤ 120 s (per day: docs/replay.md)",
    "roadef": "ROADEF/EURO 2012 machine reassignment: a valid assignment in ≤ 300 s wall, cost "
    "within 1 % of the best known (issue #13)",
    "fuzz": "0 crashes, 0 tracebacks, 0 unauthorised accepted, 0 state corruptions (issue #14)",
    "demo-stability": "30 min of the demo: 0 ping-pong moves, 0 rules violated, no node above "
    "the band's top longer than the hold time plus one cycle outside relief plans (issue #18)",
    "migration": "256 MiB guest dirtying memory: downtime p99 ≤ 300 ms, duration prediction "
    "error ≤ 15 % p50 and ≤ 30 % max, 0 aborted (issue #16)",
    "submission": "a 2-member group reachable over SSH with the NFS share mounted in ≤ 90 s "
    "from submit (issue #16)",
    "traffic": "≥ 30 % less cross-host traffic than traffic-blind placement, no more migrations "
    "(issue #16)",
}

MEASURES: dict[str, str] = {
    "restart-memory": "KVM lab, 3 hosts, a spread group of 2 counting guests (64 MiB), memory "
    "checkpoints in the lab's NFS export directory; restart_s: from the manager's 'node failed' "
    "log line to the member running on the spare host from the checkpoint's memory (its peer "
    "rolled back in place); checkpoint_s: one coordinated memory checkpoint of both",
    "ingest": "a real vmgrid-cluster and simulated agents (real streams, many per process and "
    "channel, each reporting at its node's phase of the period as real agents do since "
    "2026-12-05; before, the simulated agents reported in step, a period's reports in about "
    "half a second); latency = manager apply time - report sent_at; manager CPU includes its reaped "
    "decision processes, of it the event loop's thread (the rest is gRPC's threads); driver CPU "
    "is the processes playing the agents, on the same cores",
    "ingest-path": "the manager's parse (wire guard), decode (the stream's ReportDecoder) and "
    "apply (handle_report) of the ingest benchmark's report bytes, one report per agent per "
    "simulated period, in process: no gRPC, no event loop between reports (in a running manager "
    "the same code measured about twice as long per report: docs/control.md)",
    "agent": "RSS at the end, at the window's start and its largest sample (the window starts "
    "5 s after the agent's first memory settling, 10 s after its start), peak_rss_mb since the agent started "
    "(start-up included), and the least-squares slope of RSS sampled every 10 s over the window "
    "(flat memory: near 0 MB/h); uss_mb: the agent's private pages, shared_file_mb: "
    "shared library pages it maps (counted in RSS); the agent runs as installed, its vmgrid "
    "modules byte-compiled first (bytecode_compiled: how many were missing or stale)",
    "roadef": "cost and validity by the independent checker on the written assignment; "
    "gap_to_best_known = (cost - best_known) / best_known, best known and lower bound from "
    "reference.csv beside the model; wall_s from reading to the written assignment",
    "migration": "Debian guest under the lab's hypervisor, operator migrations through the "
    "manager; downtime: the 10 ms ping's gap around the source's pause (found with libvirt's "
    "lifecycle events), which holds libvirt's downtime (pause to resume: stop-and-copy and "
    "finish) and the rest (rest_ms: the probe's period, the guest's announcement and first "
    "reply); longest_gap: the longest gap over each whole migration; background_gap: the "
    "longest in the 3 s before it (docs/migration.md)",
    "traffic": "--vms linux: Debian guests on the lab, iperf3 UDP per pair, each lab host its own "
    "bridge and uplink; cross-host: bytes the hosts sent on their uplinks; plans carried out "
    "with vmgridctl migrate (docs/traffic.md)",
    "reaction": "over --runs overloads on one lab and manager (new guests each run): reaction "
    "p50/max (resume to relief: the first of a host's libvirt listing a guest running elsewhere "
    "and the relieving migration's end in the journal), and per stage p50/max: visible (resume "
    "to the manager's /metrics above 85 %), "
    "held (above for the hold time), decided (to the plan's journal row; includes cycles whose "
    "policy saw no host over capacity yet), started (to its first migration's start), migrated "
    "(that migration)",
}
"""What a benchmark's figures cover, where that is not obvious from its command."""

HEADLINE: dict[str, tuple[str, ...]] = {
    "ingest": (
        "agents",
        "reports_per_s",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "manager_cpu_cores",
        "decision_process_cpu_cores",
        "manager_loop_thread_cpu_cores",
        "driver_cpu_cores",
        "manager_rss_mb",
        "rejected",
        "not_applied",
        "decisions",
    ),
    "ingest-path": (
        "agents",
        "us_per_report",
        "parse_us_per_report",
        "decode_us_per_report",
        "apply_us_per_report",
        "cores_at_period",
        "rss_mb",
    ),
    "agent": (
        "vms",
        "rss_mb",
        "rss_first_mb",
        "rss_max_mb",
        "peak_rss_mb",
        "rss_slope_mb_per_h",
        "uss_mb",
        "cpu_percent",
        "seconds",
    ),
    "history": (
        "vms",
        "apply_us_per_report",
        "apply_us_per_report_without_hour",
        "hour_share_of_ingest",
        "hour_bytes_per_vm",
        "read_ms_node_and_vm",
    ),
    "solver": (
        "instance",
        "status",
        "valid",
        "wall_s",
        "max_rss_mb",
        "migrations",
        "nodes_used",
        "nodes_lower_bound",
    ),
    "grid": ("plan_s", "moves", "link_oversubscribed"),
    "roadef": (
        "instance",
        "valid",
        "cost",
        "best_known",
        "gap_to_best_known",
        "wall_s",
        "max_rss_mb",
    ),
    "reaction": (
        "reaction_s",
        "reaction_max_s",
        "relieved_runs",
        "held_s_p50",
        "decided_s_p50",
        "started_s_p50",
        "migration_s",
        "lost_vms",
        "duplicated_vms",
        "domain_type",
    ),
    "makespan": (
        "gain",
        "gain_min",
        "vmgrid_makespan_s",
        "baseline_makespan_s",
        "vmgrid_mttr_s",
        "cpsat_mttr_s",
        "cpsat_valid",
    ),
    "migration": (
        "migrations",
        "max_downtime_ms",
        "downtime_ms_p50",
        "downtime_ms_p99",
        "duration_s_p50",
        "prediction_error_p50",
        "prediction_error_max",
        "aborted",
        "domain_type",
    ),
    "traffic": (
        "cross_host_mbps_blind",
        "cross_host_mbps_aware",
        "reduction",
        "migrations",
        "migrations_blind",
        "same_packing",
        "vms",
    ),
    "failover": ("failover_s", "lost_vms", "duplicated_vms", "domain_type"),
    "restart-memory": ("restart_s", "memory_restored", "checkpoint_s", "domain_type"),
    "demo-stability": (
        "migrations_per_hour",
        "ping_pong_moves",
        "max_node_cpu_above_band_s",
        "rules_violated",
        "most_moves_of_one_vm",
        "hold_s",
        "cycle_s",
    ),
    "n-plus-one": ("nodes", "members", "rules", "seconds", "per_node_ms", "ok"),
    "replay": (
        "trace",
        "energy_kwh",
        "esv",
        "migrations",
        "unmet_share",
        "replay_s",
    ),
    "fuzz": (
        "calls",
        "crashes",
        "tracebacks",
        "unauthorised_accepted",
        "state_corruptions",
        "stream_resets",
        "methods_covered",
    ),
}

FALLBACK_FIELDS = 8


def read_lines(path: Path) -> list[dict[str, object]]:
    """The JSON result lines of a file (blank lines skipped); one clear error for a bad one."""
    out = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number} is not a JSON result line: {exc.msg}") from None
        if not isinstance(line, dict):
            raise ValueError(f"{path}:{number} is not a JSON object")
        out.append(line)
    return out


def command_of(line: Line) -> str:
    machine = line.get("machine")
    if isinstance(machine, dict) and isinstance(machine.get("command"), str):
        return str(machine["command"])
    return "(command not recorded)"


def merge(old: Sequence[Line], new: Sequence[Line]) -> list[Line]:
    """``old`` with each line whose command reappears in ``new`` replaced, then the rest of new."""
    fresh = {command_of(n): n for n in new}
    out = [fresh.pop(command_of(o), o) for o in old]
    return out + list(fresh.values())


def benchmark_of(line: Line) -> str:
    words = command_of(line).split()
    return words[1] if len(words) > 1 and words[0] == "vmgrid-bench" else "?"


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


def _scalars(line: Line) -> dict[str, object]:
    return {
        k: v for k, v in line.items() if k != "machine" and isinstance(v, str | int | float | bool)
    }


def figures(line: Line, full: bool = False) -> str:
    """The line's figures as ``key value`` pairs: the benchmark's headline fields (or every
    scalar field with ``full``)."""
    scalars = _scalars(line)
    keys = [k for k in HEADLINE.get(benchmark_of(line), ()) if k in scalars]
    if full or not keys:
        keys = list(scalars) if full else list(scalars)[:FALLBACK_FIELDS]
    return ", ".join(f"{k} {_value(scalars[k])}" for k in keys)


def machine_of(line: Line) -> str:
    m = line.get("machine")
    if not isinstance(m, dict):
        return "not recorded"
    return (
        f"{m.get('cores')} cores, {m.get('cpu_model')}; calibration "
        f"{m.get('calibration_s')} → {m.get('calibration_after_s')} s; load "
        f"{m.get('load_1m_before')} → {m.get('load_1m_after')}; {m.get('at')}"
    )


def readme_table(lines: Sequence[Line]) -> str:
    rows = [
        [
            f"`{command_of(line)}`",
            TARGETS.get(benchmark_of(line), "—"),
            figures(line),
            machine_of(line),
        ]
        for line in lines
    ]
    missing = [b for b in TARGETS if b not in {benchmark_of(line) for line in lines}]
    rows += [[f"`vmgrid-bench {b} ...`", TARGETS[b], "not in this run", "—"] for b in missing]
    return table(["command", "target", "measured", "machine (calibration, load, when)"], rows)


def benchmarks_page(lines: Sequence[Line], results: Path) -> str:
    parts = [
        "# Benchmark results",
        "",
        f"Generated by `python -m vmgrid.bench.bench_report` from `{results}` (written by "
        "`make bench`, i.e. `deploy/scripts/bench-all.sh`); do not edit. Each result is the last "
        "line of the command shown; its `machine` object says where and when it ran: cores, CPU "
        "model, a fixed pure-Python loop timed before and after the run (`calibration`, seconds: "
        "lower is a faster core; a rise during the run means other load), and the 1-minute load "
        "average. Divide CPU-bound figures by the calibration ratio to compare two machines.",
        "",
    ]
    for line in lines:
        parts += [
            f"## `{command_of(line)}`",
            "",
            f"* target: {TARGETS.get(benchmark_of(line), '—')}",
            *(
                [f"* measures: {MEASURES[benchmark_of(line)]}"]
                if benchmark_of(line) in MEASURES
                else []
            ),
            f"* machine: {machine_of(line)}",
            f"* figures: {figures(line, full=True)}",
            "",
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("build/bench/results.jsonl"))
    p.add_argument("--merge", type=Path, default=None, help="new lines to fold into --results")
    p.add_argument("--docs", type=Path, default=Path("docs"))
    p.add_argument("--readme", type=Path, default=Path("README.md"))
    args = p.parse_args(argv)
    try:
        lines: list[Line] = list(read_lines(args.results)) if args.results.exists() else []
        if args.merge is not None:
            lines = merge(lines, read_lines(args.merge))
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text("".join(json.dumps(line) + "\n" for line in lines))
        if not lines:
            raise ValueError(f"no result lines in {str(args.results)!r}; run make bench first")
        (args.docs / "benchmarks.md").write_text(benchmarks_page(lines, args.results))
        readme = args.readme.read_text()
        args.readme.write_text(replace_section(readme, "bench-results", readme_table(lines)))
    except (OSError, ValueError) as exc:
        print(f"bench_report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.docs / 'benchmarks.md'} and {args.readme}'s results table", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
