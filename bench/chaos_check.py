"""The chaos run's invariants, checked on what the agents report.

No VM lost (every VM the run expects shows on some connected node), none running twice (one
uuid active on two nodes, of one cluster or of two), and every rule of c1's store holds unless
the manager has reported it as impossible. Pure functions over placements and a model, so that
each check is tested on its own.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vmgrid.agents.cluster.rules.check import violations
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.bench.chaos_grid import Placement
from vmgrid.solver.model import Model

KNOWN_CONCURRENT = "moved at once by plan"
"""Marks a broken rule the applier let two running actions of one plan break together."""
KNOWN_HA_RESTART = "placed by an HA restart of"
"""Marks a broken rule over a VM that HA restarted (restarts do not plan under the store)."""
KNOWN_GRID_MOVE_IN = "placed by a grid move into c1 of"
"""Marks a broken rule over a VM a grid move brought in (arrivals do not plan under the store)."""
KNOWN_STALE_MEMBER = "HA's member record was stale"
"""Annotates a job member lost or run twice after a node failure while HA's member record named
another node than the one it ran on (a clue for the reader; it excuses nothing)."""

ACTIVE = frozenset({"running", "blocked", "paused", "migrating"})
"""States in which a copy of a VM holds the VM (a second one would run it twice)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken invariant, first seen at `step` (kind: lost, duplicated or rule)."""

    kind: str
    step: int
    subject: str
    detail: str


def duplicated(placements: Iterable[Placement]) -> dict[str, list[str]]:
    """uuid -> 'cluster/node' of each active copy, for VMs active on more than one node."""
    where: dict[str, list[str]] = {}
    for p in placements:
        if p.state in ACTIVE:
            where.setdefault(p.uuid, []).append(f"{p.cluster}/{p.node}")
    return {uuid: sorted(nodes) for uuid, nodes in where.items() if len(nodes) > 1}


def missing(expected: Mapping[str, str], placements: Iterable[Placement]) -> dict[str, str]:
    """uuid -> name of expected VMs that no connected node reports (in any state)."""
    seen = {p.uuid for p in placements}
    return {uuid: name for uuid, name in expected.items() if uuid not in seen}


def broken_rules(
    rules: Iterable[Rule], model: Model, impossible: Iterable[str] = ()
) -> dict[str, str]:
    """rule id -> why, for rules `model` breaks that the manager has not called impossible."""
    excused = set(impossible)
    return {
        v.rule.rule_id: v.reason for v in violations(rules, model) if v.rule.rule_id not in excused
    }


def concurrent_moves(journal: Path, vms: Iterable[str], since_unix_s: float) -> str:
    """The plan, if any, that moved two of `vms` at the same time after `since_unix_s` (each
    action checked against a placement where the other had not moved yet); '' if none did."""
    names = sorted(set(vms))
    if len(names) < 2:
        return ""
    marks = ",".join("?" for _ in names)
    query = (
        "SELECT a.plan_id FROM actions a JOIN actions b ON a.plan_id = b.plan_id "
        f"AND a.subject < b.subject WHERE a.subject IN ({marks}) AND b.subject IN ({marks}) "
        "AND a.kind = 'migrate' AND b.kind = 'migrate' AND a.started_unix_s IS NOT NULL "
        "AND b.started_unix_s IS NOT NULL AND a.started_unix_s > ? AND b.started_unix_s > ? "
        "AND a.started_unix_s < COALESCE(b.ended_unix_s, 1e12) "
        "AND b.started_unix_s < COALESCE(a.ended_unix_s, 1e12) "
        "ORDER BY a.started_unix_s DESC LIMIT 1"
    )
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        row = db.execute(query, [*names, *names, since_unix_s, since_unix_s]).fetchone()
    return str(row[0]) if row else ""


@dataclass
class Ledger:
    """Every finding of a run, one per subject and kind (the first time it was seen)."""

    findings: list[Finding] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    samples: int = 0

    def note(self, kind: str, step: int, subject: str, detail: str) -> bool:
        """Record a finding; False when this subject already broke this invariant."""
        if (kind, subject) in self._seen:
            return False
        self._seen.add((kind, subject))
        self.findings.append(Finding(kind, step, subject, detail))
        return True

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)
