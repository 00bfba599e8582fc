"""The rule store: every placement rule of the cluster, with where it came from.

Rules are the solver's constraint plugins (BtrPlace vocabulary: spread, gather, ban, fence,
among, lonely, split, quarantine, root, ...). They are kept in SQLite beside the plan journal,
one row per rule, so a restarted manager keeps every rule it had.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmgrid.agents.errors import AlreadyExists, InvalidArgument, NotFound
from vmgrid.agents.wire_limits import MAX_RULES
from vmgrid.solver.constraints import REGISTRY, Constraint, ConstraintError, make

OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: its id, who brought it (``operator`` or ``job:<id>``) and the constraint."""

    rule_id: str
    origin: str
    constraint: Constraint
    created_unix_s: float

    def label(self) -> str:
        return f"{self.rule_id} {self.constraint.label()}"


def constraint_fields(constraint: Constraint) -> dict[str, Any]:
    """The constraint's fields as JSON-ready values (tuples, nested too, become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(constraint):  # type: ignore[arg-type]
        value = getattr(constraint, f.name)
        out[f.name] = _lists(value)
    return out


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def build_constraint(kind: str, fields: dict[str, Any]) -> Constraint:
    """A constraint from its kind and JSON fields; InvalidArgument names what is wrong."""
    if kind not in REGISTRY:
        raise InvalidArgument(
            f"rule kind {kind!r} is unknown; known: {', '.join(sorted(REGISTRY))}"
        )
    args = {k: _tuples(v) for k, v in fields.items()}
    try:
        return make(kind, **args)
    except ConstraintError as exc:
        raise InvalidArgument(str(exc)) from None


class RuleStore:
    """Rules by id, persisted in SQLite (``path`` ``":memory:"`` keeps them in memory only)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rules (rule_id TEXT PRIMARY KEY, origin TEXT NOT NULL, "
            "kind TEXT NOT NULL, fields TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._rules: dict[str, Rule] = {}
        for rule_id, origin, kind, fields, created in self._db.execute(
            "SELECT rule_id, origin, kind, fields, created FROM rules ORDER BY created"
        ):
            constraint = build_constraint(kind, json.loads(fields))
            self._rules[rule_id] = Rule(rule_id, origin, constraint, created)
        self.version = 0
        """Bumped on every change, so deciders can tell their copy is current."""
        self.listeners: list[Callable[[str], None]] = []
        """Called with a rule id after it is added or deleted (the etcd mirror of a
        replicated manager)."""
        self.impossible: dict[str, str] = {}
        """rule id -> why it cannot be kept now (reported by whoever found it: an HA restart
        with no node left for a spread member, say). The applier does not hold a VM back
        for such a rule; the rule is checked again as the cluster changes."""

    def close(self) -> None:
        self._db.close()

    def rules(self) -> tuple[Rule, ...]:
        return tuple(self._rules.values())

    def constraints(self) -> tuple[Constraint, ...]:
        return tuple(r.constraint for r in self._rules.values())

    def get(self, rule_id: str) -> Rule:
        rule = self._rules.get(rule_id)
        if rule is None:
            known = ", ".join(sorted(self._rules)) or "none"
            raise NotFound(f"rule {rule_id!r} does not exist (known: {known})")
        return rule

    def add(
        self,
        rule_id: str,
        constraint: Constraint,
        origin: str = OPERATOR,
        created_unix_s: float | None = None,
    ) -> Rule:
        """Store a rule; AlreadyExists when the id is taken by a different rule."""
        if not rule_id:
            raise InvalidArgument("rule id is empty; give a name such as 'web-spread'")
        existing = self._rules.get(rule_id)
        if existing is not None:
            if existing.constraint == constraint and existing.origin == origin:
                return existing  # a retried request
            raise AlreadyExists(f"rule {rule_id!r} already exists: {existing.constraint.label()}")
        if len(self._rules) >= MAX_RULES:
            raise InvalidArgument(
                f"rule {rule_id!r}: the cluster has {len(self._rules)} rules, at most {MAX_RULES}"
            )
        created = time.time() if created_unix_s is None else created_unix_s
        rule = Rule(rule_id, origin, constraint, created)
        self._db.execute(
            "INSERT INTO rules VALUES (?, ?, ?, ?, ?)",
            (
                rule_id,
                origin,
                constraint.kind,
                json.dumps(constraint_fields(constraint)),
                rule.created_unix_s,
            ),
        )
        self._rules[rule_id] = rule
        self.version += 1
        for listener in self.listeners:
            listener(rule_id)
        return rule

    def mark_impossible(self, rule_id: str, reason: str) -> bool:
        """Record that `rule_id` cannot be kept; True when this is news."""
        if rule_id not in self._rules or self.impossible.get(rule_id) == reason:
            return False
        self.impossible[rule_id] = reason
        self.version += 1
        return True

    def mark_possible(self, rule_id: str) -> bool:
        """The rule holds again; True when it had been reported impossible."""
        if self.impossible.pop(rule_id, None) is None:
            return False
        self.version += 1
        return True

    def kept(self) -> tuple[Rule, ...]:
        """The rules deciders and the applier must keep: all but those reported impossible."""
        return tuple(r for r in self._rules.values() if r.rule_id not in self.impossible)

    def delete(self, rule_id: str) -> Rule:
        rule = self.get(rule_id)
        self._db.execute("DELETE FROM rules WHERE rule_id = ?", (rule_id,))
        del self._rules[rule_id]
        self.impossible.pop(rule_id, None)
        self.version += 1
        for listener in self.listeners:
            listener(rule_id)
        return rule

    def delete_origin(self, origin: str) -> list[Rule]:
        """Drop every rule a job brought (the job is gone)."""
        gone = [r for r in self._rules.values() if r.origin == origin]
        for rule in gone:
            self.delete(rule.rule_id)
        return gone
