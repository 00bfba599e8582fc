"""The leader's plan journal and rule store, written through to etcd.

The journal (SQLite) stays the manager's working copy; every plan and rule the leader changes
is mirrored under ``ROOT/plans/<plan id>`` and ``ROOT/rules/<rule id>`` as JSON, and so is
every node it powered off (``ROOT/powered_off/<node id>``: its hello, whether it drains). Writes are
fenced: each batch is one transaction guarded by the leader's own election key (same create
revision = still this term), so a deposed leader cannot overwrite its successor's records.
``flush()`` runs before every command the leader sends (``ClusterManager.before_command``),
so an action is in etcd as running before its command can reach an agent; a new leader
``restore()``s the records into its own journal and store, then resumes the running plans
(reconciled with what the agents report, re-sending the same command ids, which agents
execute at most once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from vmgrid.agents.cluster.act.journal import (
    ActionRecord,
    ActionState,
    Journal,
    PlanRecord,
    PlanState,
)
from vmgrid.agents.cluster.rules.store import RuleStore, build_constraint, constraint_fields
from vmgrid.agents.cluster.service.replica import Replica, flush_periodically
from vmgrid.agents.common.etcd import Delete, EtcdUnavailable, Put
from vmgrid.agents.errors import InvalidArgument
from vmgrid.solver.plan import Action, ActionKind

log = logging.getLogger(__name__)

BATCH = 100
"""Operations per etcd transaction (etcd accepts 128 by default)."""


def plan_to_json(record: PlanRecord) -> str:
    actions = [
        {
            "id": r.action.id,
            "kind": r.action.kind.value,
            "subject": r.action.subject,
            "src": r.action.src,
            "dst": r.action.dst,
            "start_s": r.action.start_s,
            "end_s": r.action.end_s,
            "reason": r.action.reason,
            "depends_on": list(r.action.depends_on),
            "state": r.state.value,
            "attempt": r.attempt,
            "message": r.message,
            "simulated": r.simulated,
        }
        for r in record.actions
    ]
    head = {
        "plan_id": record.plan_id,
        "state": record.state.value,
        "origin": record.origin,
        "summary": record.summary,
        "created_unix_s": record.created_unix_s,
    }
    return json.dumps(head | {"actions": actions}, sort_keys=True)


def plan_from_json(text: str) -> PlanRecord:
    """The record `plan_to_json` wrote; ValueError/KeyError/TypeError when it is not one."""
    data = json.loads(text)
    actions = tuple(
        ActionRecord(
            plan_id=data["plan_id"],
            action=Action(
                id=int(a["id"]),
                kind=ActionKind(a["kind"]),
                subject=a["subject"],
                src=a["src"],
                dst=a["dst"],
                start_s=int(a["start_s"]),
                end_s=int(a["end_s"]),
                reason=a["reason"],
                depends_on=tuple(a["depends_on"]),
            ),
            state=ActionState(a["state"]),
            attempt=int(a["attempt"]),
            message=a["message"],
            simulated=bool(a["simulated"]),
        )
        for a in data["actions"]
    )
    return PlanRecord(
        plan_id=data["plan_id"],
        state=PlanState(data["state"]),
        origin=data["origin"],
        summary=data["summary"],
        created_unix_s=float(data["created_unix_s"]),
        actions=actions,
    )


def _rule_to_json(rules: RuleStore, rule_id: str) -> str | None:
    rule = next((r for r in rules.rules() if r.rule_id == rule_id), None)
    if rule is None:
        return None
    fields = constraint_fields(rule.constraint)
    body: dict[str, Any] = {"origin": rule.origin, "kind": rule.constraint.kind}
    return json.dumps(body | {"fields": fields, "created_unix_s": rule.created_unix_s})


class EtcdMirror:
    """Mirrors one leader's journal and rule store into etcd."""

    def __init__(self, replica: Replica, journal: Journal, rules: RuleStore) -> None:
        self._replica = replica
        self._journal = journal
        self._rules = rules
        self._plans: dict[str, None] = {}
        self._rule_ids: dict[str, None] = {}
        self._nodes: dict[str, None] = {}
        self._dirty_lock = threading.Lock()
        self._flush_lock = asyncio.Lock()
        self.writes = 0
        self.changes = 0
        """Grows with every change recorded (a call that changed something waits for it)."""
        self.plans_prefix = f"{replica.root}/plans/"
        self.rules_prefix = f"{replica.root}/rules/"
        self.nodes_prefix = f"{replica.root}/powered_off/"

    def attach(self) -> None:
        """Start recording changes (after `restore`, so restored records are not echoed)."""
        self._journal.listeners.append(self._plan_changed)
        self._rules.listeners.append(self._rule_changed)
        self._journal.node_listeners.append(self._node_changed)

    def _plan_changed(self, plan_id: str) -> None:
        with self._dirty_lock:
            self._plans[plan_id] = None
            self.changes += 1

    def _rule_changed(self, rule_id: str) -> None:
        with self._dirty_lock:
            self._rule_ids[rule_id] = None
            self.changes += 1

    def _node_changed(self, node_id: str) -> None:
        with self._dirty_lock:
            self._nodes[node_id] = None
            self.changes += 1

    @property
    def dirty(self) -> bool:
        return bool(self._plans or self._rule_ids or self._nodes)

    async def flush(self) -> None:
        """Write every changed plan and rule to etcd, fenced by this leader's term.
        EtcdUnavailable when etcd does not answer; a refused fence marks the replica
        deposed (and raises EtcdUnavailable)."""
        async with self._flush_lock:
            with self._dirty_lock:
                plans, self._plans = list(self._plans), {}
                rule_ids, self._rule_ids = list(self._rule_ids), {}
                nodes, self._nodes = list(self._nodes), {}
            operations: list[Put | Delete] = []
            for plan_id in plans:
                record = self._journal.plan(plan_id)
                if record is not None:
                    operations.append(Put(self.plans_prefix + plan_id, plan_to_json(record)))
            for rule_id in rule_ids:
                text = _rule_to_json(self._rules, rule_id)
                key = self.rules_prefix + rule_id
                operations.append(Delete(key) if text is None else Put(key, text))
            powered_off = {n: (h, d) for n, h, d in self._journal.powered_off_nodes()}
            for node_id in nodes:
                key = self.nodes_prefix + node_id
                if node_id in powered_off:
                    hello, draining = powered_off[node_id]
                    operations.append(Put(key, json.dumps({"hello": hello, "draining": draining})))
                else:
                    operations.append(Delete(key))
            try:
                for start in range(0, len(operations), BATCH):
                    await self._fenced(operations[start : start + BATCH])
            except EtcdUnavailable:
                with self._dirty_lock:  # written again by the next flush
                    self._plans = dict.fromkeys(plans) | self._plans
                    self._rule_ids = dict.fromkeys(rule_ids) | self._rule_ids
                    self._nodes = dict.fromkeys(nodes) | self._nodes
                raise

    async def _fenced(self, operations: list[Put | Delete]) -> None:
        await self._replica.write_fenced(operations)
        self.writes += len(operations)

    async def run(self, period_s: float = 0.5) -> None:
        """Flush what changed without a command to carry it (plan ends, rules)."""
        await flush_periodically(self, "journal mirror", period_s)

    async def restore(self) -> tuple[int, int]:
        """Read the plans and rules in etcd into this replica's journal and rule store (etcd
        wins); returns how many plans and rules were read."""
        plans = await self._replica.client.range(self.plans_prefix)
        for kv in plans:
            try:
                self._journal.replace_plan(plan_from_json(kv.value))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("etcd plan %s unreadable (%s); left out", kv.key, exc)
                self._replica.client.errors["unreadable"] += 1
        stored = await self._replica.client.range(self.rules_prefix)
        wanted = {}
        for kv in stored:
            try:
                data = json.loads(kv.value)
                constraint = build_constraint(data["kind"], data["fields"])
            except (ValueError, KeyError, TypeError, InvalidArgument) as exc:
                log.error("etcd rule %s unreadable (%s); left out", kv.key, exc)
                self._replica.client.errors["unreadable"] += 1
                continue
            wanted[kv.key[len(self.rules_prefix) :]] = (data, constraint)
        for rule in self._rules.rules():
            if rule.rule_id not in wanted:
                self._rules.delete(rule.rule_id)
        for rule_id, (data, constraint) in wanted.items():
            existing = next((r for r in self._rules.rules() if r.rule_id == rule_id), None)
            if existing is not None and existing.constraint != constraint:
                self._rules.delete(rule_id)
                existing = None
            if existing is None:
                self._rules.add(rule_id, constraint, data["origin"], data["created_unix_s"])
        await self._restore_powered_off()
        return len(plans), len(wanted)

    async def _restore_powered_off(self) -> None:
        """etcd's powered-off nodes replace the journal's (a standby's own rows are stale)."""
        stored = await self._replica.client.range(self.nodes_prefix)
        wanted: dict[str, tuple[str, bool]] = {}
        for kv in stored:
            try:
                data = json.loads(kv.value)
                wanted[kv.key[len(self.nodes_prefix) :]] = (
                    str(data["hello"]),
                    bool(data["draining"]),
                )
            except (ValueError, KeyError, TypeError) as exc:
                log.error("etcd node %s unreadable (%s); left out", kv.key, exc)
                self._replica.client.errors["unreadable"] += 1
        for node_id, _, _ in self._journal.powered_off_nodes():
            if node_id not in wanted:
                self._journal.forget_powered_off(node_id)
        for node_id, (hello, draining) in wanted.items():
            self._journal.remember_powered_off(node_id, hello, draining)
