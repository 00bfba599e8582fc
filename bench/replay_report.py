"""Regenerate docs/replay.md's tables and docs/img/replay-<day>.png.

    python -m vmgrid.bench.replay_report --data ../shared/data/planetlab \
        --reference ../shared/data/planetlab-cloudsim-reference/results_sorted_file_order.csv \
        --cache build/replay-results.json --docs docs

Results are cached per (day, policy) in ``--cache`` so the runs can be split up; the tables are
printed as Markdown on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import cast

from vmgrid.bench.context import MachineContext
from vmgrid.solver.replay import POLICY_NAMES, make_policy, replay_day

COMPARED = (
    "vmgrid",
    "thr-mmt-1.0",
    "thr-mmt-0.8",
    "iqr-mmt-1.5",
    "mad-mmt-2.5",
    "lrr-mmt-1.2",
    "lr-mmt-1.2",
)


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


def _pct(a: float, b: float) -> str:
    return f"{100 * (a - b) / b:+.1f} %" if b else "n/a"


def fidelity_table(
    days: list[str], res: dict[str, dict[str, object]], ref: dict[tuple[str, str], dict[str, float]]
) -> str:
    lines = [
        "| Day | Policy | Energy kWh (ours / CloudSim, Δ) | Migrations (ours / CloudSim, Δ) | SLAV ×10⁻⁵ (ours / CloudSim, Δ) |",
        "|---|---|---|---|---|",
    ]
    for day in days:
        for name in ("thr-mmt-0.8", "lr-mmt-1.2"):
            r, c = res[f"{day}/{name}"], ref[day, name]
            e, m, s = float(r["energy_kwh"]), float(r["migrations"]), float(r["slav"])  # type: ignore[arg-type]
            lines.append(
                f"| {day} | {name} | {e:.2f} / {c['energy_kwh']:.2f} ({_pct(e, c['energy_kwh'])}) "
                f"| {m:.0f} / {c['migrations']:.0f} ({_pct(m, c['migrations'])}) "
                f"| {s * 1e5:.2f} / {c['slav'] * 1e5:.2f} ({_pct(s, c['slav'])}) |"
            )
    return "\n".join(lines)


def comparison_table(days: list[str], res: dict[str, dict[str, object]]) -> str:
    lines = [
        "| Day | Policy | Energy kWh | SLATAH % | PDM % | SLAV ×10⁻⁵ | ESV ×10⁻³ | Migrations | Replay s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for day in days:
        for name in COMPARED:
            r = res.get(f"{day}/{name}")
            if r is None:
                continue
            lines.append(
                f"| {day} | {name} | {float(r['energy_kwh']):.2f} | {100 * float(r['slatah']):.2f} "  # type: ignore[arg-type]
                f"| {100 * float(r['pdm']):.3f} | {1e5 * float(r['slav']):.2f} | {1e3 * float(r['esv']):.2f} "  # type: ignore[arg-type]
                f"| {r['migrations']} | {float(r['replay_s']):.1f} |"  # type: ignore[arg-type]
            )
    return "\n".join(lines)


def plot_day(day: str, res: dict[str, dict[str, object]], best_ref: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, style in (("vmgrid", "-"), (best_ref, "--")):
        r = res[f"{day}/{name}"]
        active = cast(list[int], r["active_hosts"])
        sla = cast(list[float], r["step_slatah"])
        hours = [(k + 1) * 300 / 3600 for k in range(len(active))]
        ax1.plot(hours, active, style, label=name)
        ax2.plot(hours, [100 * x for x in sla], style, label=name)
    ax1.set_ylabel("active hosts")
    ax1.set_ylim(0, 200)
    ax2.set_ylabel("SLA violation (% of active-host time)")
    ax2.set_xlabel("hour of the day")
    ax1.legend()
    ax1.set_title(f"PlanetLab {day}: vmgrid vs {best_ref} (best CloudSim reference by ESV)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--reference", required=True, type=Path)
    p.add_argument("--cache", default=Path("build/replay-results.json"), type=Path)
    p.add_argument("--docs", default=Path("docs"), type=Path)
    p.add_argument("--policies", default=",".join(COMPARED), help="policies to run if not cached")
    p.add_argument("--days", default="", help="comma-separated days (default: all in --data)")
    args = p.parse_args()
    days = sorted(d for d in args.data.iterdir() if d.is_dir())
    if args.days:
        days = [d for d in days if d.name in args.days.split(",")]
    policies = [x for x in args.policies.split(",") if x in POLICY_NAMES]
    res = _run_missing(days, policies, args.cache)
    ref = _reference(args.reference)
    names = [d.name for d in days]
    if all(f"{d}/{n}" in res for d in names for n in ("thr-mmt-0.8", "lr-mmt-1.2")):
        print(fidelity_table(names, res, ref))
        print()
    print(comparison_table(names, res))
    for day in names:
        refs = [n for n in COMPARED[1:] if (day, n) in ref]
        if f"{day}/vmgrid" in res and refs:
            best = min(refs, key=lambda n: ref[day, n]["esv"])
            if f"{day}/{best}" in res:
                plot_day(day, res, best, args.docs / "img" / f"replay-{day}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
