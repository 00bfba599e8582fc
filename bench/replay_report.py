"""Regenerate docs/replay.md's tables and docs/img/replay-<day>.png from replays.

    python -m vmgrid.bench.replay_report --data ../shared/data/planetlab \
        --reference ../shared/data/planetlab-cloudsim-reference/results_sorted_file_order.csv \
        --cache build/replay-results.json --docs docs

Results are cached per (day, policy) in ``--cache`` so the runs can be split up; each carries the
machine it ran on. The page's generated sections (fidelity, all policies, the ESV breakdown, the
targets, the machine) are rewritten in ``--docs``/replay.md; the tables also go to stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from vmgrid.bench import replay_tables as tables
from vmgrid.bench.context import MachineContext
from vmgrid.bench.markdown import replace_section
from vmgrid.solver.replay import POLICY_NAMES, make_policy, replay_day

RUN_BY_DEFAULT = (*tables.COMPARED, "dvfs")


def _reference(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    out = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            out[row["date"], row["policy"].lower()] = {
                "energy_kwh": float(row["energy_kwh"]),
                "migrations": float(row["vm_migrations"]),
                "slav": float(row["slav"]),
                "esv": float(row["esv"]),
            }
    return out


def _run_missing(
    days: list[Path], policies: list[str], cache: Path
) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = json.loads(cache.read_text()) if cache.exists() else {}
    for day in days:
        for name in policies:
            key = f"{day.name}/{name}"
            if key in results:
                continue
            print(f"replaying {key}", file=sys.stderr)
            machine = MachineContext(["replay", "--trace", str(day), "--policy", name, "--json"])
            machine.start()
            r = replay_day(day, make_policy(name))
            results[key] = r.as_json() | {
                "machine": machine.finish(),
                "active_hosts": r.active_hosts,
                "step_slatah": r.step_slatah,
                "step_unmet": r.step_unmet,
            }
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(results))
    return results


def machine_summary(res: Mapping[str, Mapping[str, object]]) -> str:
    """Where and when the cached replays ran, from the machine object of each."""
    machines = [cast(dict[str, object], r["machine"]) for r in res.values() if "machine" in r]
    if not machines:
        return "The machine of these replays was not recorded."
    kinds = sorted({f"{m['cores']} cores, {m['cpu_model']}" for m in machines})
    calib = [float(cast(float, m["calibration_s"])) for m in machines]
    loads = [float(cast(float, m["load_1m_before"])) for m in machines if m["load_1m_before"]]
    at = sorted(str(m["at"]) for m in machines)
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "unknown"
    return (
        f"{len(machines)} replays on {'; '.join(kinds)} between {at[0]} and {at[-1]}; "
        f"calibration loop {min(calib):.3f}-{max(calib):.3f} s "
        f"(`vmgrid.bench.context`), 1-minute load average {load} before the runs."
    )


def plot_day(day: str, res: Mapping[str, Mapping[str, object]], best_ref: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for name, style in (("vmgrid", "-"), (best_ref, "--")):
        r = res[f"{day}/{name}"]
        active = cast(list[int], r["active_hosts"])
        sla = cast(list[float], r["step_slatah"])
        unmet = cast(list[float], r.get("step_unmet", []))
        hours = [(k + 1) * 300 / 3600 for k in range(len(active))]
        ax1.plot(hours, active, style, label=name)
        ax2.plot(hours, [100 * x for x in sla], style, label=name)
        if unmet:
            ax3.plot(hours, [100 * x for x in unmet], style, label=name)
    ax1.set_ylabel("active hosts")
    ax1.set_ylim(0, 200)
    ax2.set_ylabel("SLATAH (% of active-host time)")
    ax3.set_ylabel("unmet CPU (% of demand)")
    ax3.set_xlabel("hour of the day")
    ax1.legend()
    ax1.set_title(f"PlanetLab {day}: vmgrid vs {best_ref} (best CloudSim reference by ESV)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def sections(
    days: list[str],
    res: Mapping[str, Mapping[str, object]],
    ref: Mapping[tuple[str, str], Mapping[str, float]],
) -> dict[str, str]:
    """Every generated section of docs/replay.md, by name."""
    targets, targets_summary = tables.targets_table(days, res, ref)
    return {
        "replay-fidelity-summary": tables.fidelity_summary(days, res, ref),
        "replay-fidelity": tables.fidelity_table(days, res, ref),
        "replay-policies": tables.comparison_table(days, res),
        "replay-esv-breakdown": tables.esv_breakdown_table(days, res, ref),
        "replay-unmet-summary": tables.unmet_summary(days, res),
        "replay-targets-summary": targets_summary,
        "replay-targets": targets,
        "replay-machine": machine_summary(res),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--reference", required=True, type=Path)
    p.add_argument("--cache", default=Path("build/replay-results.json"), type=Path)
    p.add_argument("--docs", default=Path("docs"), type=Path)
    p.add_argument(
        "--policies", default=",".join(RUN_BY_DEFAULT), help="policies to run if not cached"
    )
    p.add_argument("--days", default="", help="comma-separated days (default: all in --data)")
    p.add_argument(
        "--cached-only", action="store_true", help="replay nothing; write what the cache holds"
    )
    args = p.parse_args(argv)
    unknown = [x for x in args.policies.split(",") if x not in POLICY_NAMES]
    if unknown:
        print(
            f"replay_report: unknown policy {unknown[0]!r}; expected one of: "
            f"{', '.join(POLICY_NAMES)}",
            file=sys.stderr,
        )
        return 2
    if not args.data.is_dir():
        print(f"replay_report: data folder {str(args.data)!r} does not exist", file=sys.stderr)
        return 2
    days = sorted(d for d in args.data.iterdir() if d.is_dir())
    if args.days:
        days = [d for d in days if d.name in args.days.split(",")]
    res = _run_missing(days, [] if args.cached_only else args.policies.split(","), args.cache)
    ref = _reference(args.reference)
    names = [d.name for d in days]
    generated = sections(names, res, ref)
    for name, body in generated.items():
        print(f"## {name}\n\n{body}\n")
    page = args.docs / "replay.md"
    if page.exists():
        text = page.read_text()
        for name, body in generated.items():
            text = replace_section(text, name, body)
        page.write_text(text)
        print(f"rewrote the generated sections of {page}", file=sys.stderr)
    for day in names:
        best = tables.best_reference(day, ref)
        if best is not None and f"{day}/vmgrid" in res and f"{day}/{best}" in res:
            plot_day(day, res, best, args.docs / "img" / f"replay-{day}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
