"""`vmgrid-bench roadef`: Google's machine-reassignment problem (ROADEF/EURO challenge 2012).

``vmgrid-bench roadef MODEL ASSIGNMENT --timeout 300 --out NEW_ASSIGNMENT --json`` reads a
challenge instance (plain or gzip), improves the initial assignment with local search and CP-SAT
large-neighbourhood search within the timeout, writes the new assignment in the challenge's own
format (one machine index per process), and re-checks it with the independent checker
(`vmgrid.solver.roadef.checker`), which recomputes validity and cost from the definition.

`wall_s` runs from the start of reading to the written assignment, like the challenge's limit;
the search gets the timeout minus the reading time and a margin for writing. `lower_bound` and
`best_known` come from a ``reference.csv`` beside the model (or ``--reference``) when it lists
the instance, else null; `gap_to_best_known` is ``(cost - best_known) / best_known``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.instance import format_assignment, parse_assignment, parse_model
from vmgrid.solver.roadef.solve import TRANSIENT_DESCENTS, RoadefOptions, solve_roadef

WRITE_MARGIN_S = 1.0
MAX_LOCK = 10.0
"""Largest lock weight `--locks` takes: at 1 a move away from home is charged the load cost of
the transient capacity it holds there (`local.lock_weight`)."""

THREAD_FLAGS: dict[str, tuple[str, str]] = {
    "walk_threads": (
        "annealing walks run side by side, each with its own heat and seed, the cheapest kept; "
        "1 runs one at a time",
        str(RoadefOptions().walk_threads),
    ),
    "descent_threads": (
        "zero-temperature walks run side by side in each chunk of the first local search's "
        "plain part, the lowest kept",
        f"{TRANSIENT_DESCENTS} on an instance with a transient resource, else 1",
    ),
    "locked_descent_threads": (
        "the same in each of its locked parts, which instances with a transient resource have",
        str(TRANSIENT_DESCENTS),
    ),
}
"""RoadefOptions fields set by a flag of the same name (`_flag`), each a count of at least 1:
what the flag's help says of it, and of its default (`solve.descents_for` chooses the
descents' by instance)."""


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model file (model_<inst>.txt, may be .gz)")
    parser.add_argument(
        "assignment", type=Path, help="initial assignment file (assignment_<inst>.txt, may be .gz)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="wall budget in seconds, reading and writing included (default 300, the challenge's)",
    )
    parser.add_argument("--out", type=Path, help="write the new assignment to this file")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT workers (default 2)")
    parser.add_argument(
        "--walk-step",
        type=float,
        default=RoadefOptions().walk_step,
        help="seconds of one compiled annealing walk step; 0 turns the walk off "
        f"(default {RoadefOptions().walk_step})",
    )
    parser.add_argument(
        "--walk-chains",
        type=float,
        default=RoadefOptions().walk_chains,
        help="share of a walk's attempts that are ejection chains, 0 to 1; 0 walks by shifts "
        f"and swaps only (default {RoadefOptions().walk_chains})",
    )
    defaults = RoadefOptions()
    for field, (what, default) in THREAD_FLAGS.items():
        parser.add_argument(
            _flag(field),
            type=int,
            default=getattr(defaults, field),
            help=f"{what} (default {default})",
        )
    parser.add_argument(
        "--first-share",
        type=float,
        default=RoadefOptions().first_share,
        help="share of the budget, 0 to 0.5, that first local searches from the original "
        "assignment may take together, the cheapest end kept (default 0: one search)",
    )
    parser.add_argument(
        "--locks",
        type=_locks,
        default=RoadefOptions().locks,
        metavar="W[,W...]",
        help="lock weights of the first local search's locked parts, one part each, before its "
        "plain part, on instances with a transient resource; 'none' runs no locked part "
        f"(default {','.join(map(str, RoadefOptions().locks))})",
    )
    parser.add_argument(
        "--first-search",
        choices=("walk", "python"),
        default="walk",
        help="the first local search: compiled zero-temperature walks (walk, the default; "
        "Python's when no C compiler is found) or Python's shifts and swaps (python)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="CSV with columns instance, lower_bound, best_known "
        "(default: reference.csv beside MODEL, if any)",
    )
    parser.add_argument(
        "--name", help="instance name in the reference table (default: taken from MODEL's name)"
    )


def read_text(path: Path) -> str:
    """A file's text, gunzipped when it starts with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file of integers") from None


def instance_name(model: Path) -> str:
    name = model.name
    for suffix in (".gz", ".txt"):
        name = name.removesuffix(suffix)
    return re.sub(r"^model_", "", name)


def _locks(text: str) -> tuple[float, ...]:
    """`--locks`: comma-separated weights above 0 and at most 10, or 'none'."""
    if text.strip().lower() == "none":
        return ()
    weights = []
    for word in text.split(","):
        try:
            weight = float(word)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{word.strip()!r} in {text!r} is not a number; give weights such as 1,0.5,0.25 "
                "or none"
            ) from None
        if not 0 < weight <= MAX_LOCK:
            raise argparse.ArgumentTypeError(
                f"{word.strip()} in {text!r} is not a weight above 0 and at most {MAX_LOCK:g}"
            )
        weights.append(weight)
    return tuple(weights)


def reference_row(path: Path | None, model: Path, name: str) -> dict[str, int | None]:
    """Lower bound and best known value of `name`, or nulls when no table lists it."""
    table = path or model.parent / "reference.csv"
    empty: dict[str, int | None] = {"lower_bound": None, "best_known": None}
    if not table.exists():
        if path is not None:
            raise FileNotFoundError(f"reference table {path} does not exist")
        return empty
    with table.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("instance") == name:
                return {key: _int_or_none(row.get(key), table, key) for key in empty}
    return empty


def _int_or_none(value: str | None, table: Path, key: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{table}: {key} is {value!r}, expected an integer") from None


def _progress(message: str) -> None:
    print(f"[roadef] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.timeout <= 0:
        raise ValueError(f"--timeout is {args.timeout}, expected a positive number of seconds")
    if args.walk_step < 0:
        raise ValueError(f"--walk-step is {args.walk_step}, expected 0 or more seconds")
    if not 0 <= args.walk_chains <= 1:
        raise ValueError(f"--walk-chains is {args.walk_chains}, expected a share from 0 to 1")
    if args.workers < 1:
        raise ValueError(f"--workers is {args.workers}, expected at least 1")
    if not 0 <= args.first_share <= 0.5:
        raise ValueError(f"--first-share is {args.first_share}, expected a share from 0 to 0.5")
    for field in THREAD_FLAGS:
        count = getattr(args, field)  # None: left to the solver (solve.descents_for)
        if count is not None and count < 1:
            raise ValueError(f"{_flag(field)} is {count}, expected at least 1")
    start = time.monotonic()
    name = args.name or instance_name(args.model)
    reference = reference_row(args.reference, args.model, name)
    instance = parse_model(read_text(args.model))
    initial = parse_assignment(read_text(args.assignment), instance)
    read_s = time.monotonic() - start
    _progress(
        f"{name}: {instance.processes} processes, {instance.machines} machines, "
        f"{instance.resources} resources, {instance.services} services (read in {read_s:.1f} s)"
    )
    budget = max(0.5, args.timeout - read_s - WRITE_MARGIN_S)
    options = RoadefOptions(
        workers=args.workers,
        seed=args.seed,
        walk_step=args.walk_step,
        walk_chains=args.walk_chains,
        first_walk=args.first_search == "walk",
        first_share=args.first_share,
        locks=args.locks,
        **{field: getattr(args, field) for field in THREAD_FLAGS},
    )
    result = solve_roadef(instance, initial, budget, options, _progress)
    if args.out is not None:
        args.out.write_text(format_assignment(result.assignment))
    wall = time.monotonic() - start
    report = check(instance, initial, result.assignment)
    if not report.valid:
        _progress(f"checker: {len(report.violations)} violations, first {report.violations[0]}")
    best = reference["best_known"]
    cost = report.cost.total
    status = (
        "invalid" if not report.valid else "improved" if cost < result.original_cost else "original"
    )
    return {
        "instance": name,
        "processes": instance.processes,
        "machines": instance.machines,
        "status": status,
        "cost": cost,
        "original_cost": result.original_cost,
        "lower_bound": reference["lower_bound"],
        "best_known": best,
        "gap_to_best_known": round((cost - best) / best, 6) if best else None,
        "wall_s": round(wall, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "valid": report.valid,
    }
