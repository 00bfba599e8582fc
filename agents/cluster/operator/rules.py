"""The operator's placement rules: list, add, delete and check, over the cluster's rule store.

A rule is validated against what the cluster knows now (its VMs, by uuid or unique name, and its
nodes, connected or not) and against the rules already stored before it is added: a refused
rule leaves the store unchanged and the error names the bad element (VMs by name where they
have one, in errors as in check reasons). Rules a job brought
(origin ``job:<id>``) go with their job, so they are not deleted here. ``check`` reports which
rules the current placement breaks and which no placement of the connected nodes can keep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.rules.check import Violation, violations
from vmgrid.agents.cluster.rules.feasibility import impossible
from vmgrid.agents.cluster.rules.store import OPERATOR, Rule
from vmgrid.agents.cluster.rules.validate import Known, RuleRequest, validate
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """What ``rules check`` reports."""

    violations: tuple[Violation, ...]
    impossible: tuple[Violation, ...]
    checked: int


class RuleOperations:
    """Rule actions over a running ClusterParts (call from its event loop)."""

    def __init__(self, runtime: ClusterParts) -> None:
        self._runtime = runtime

    def list(self, origin: str = "") -> list[Rule]:
        """Every rule (or those of one origin), oldest first."""
        rules = self._runtime.manager.state.rules.rules()
        return [r for r in rules if not origin or r.origin == origin]

    def get(self, rule_id: str) -> Rule:
        return self._runtime.manager.state.rules.get(rule_id)

    def known(self) -> Known:
        """The VMs and nodes a rule may name now."""
        state = self._runtime.manager.state
        uuids: set[str] = set()
        names: dict[str, list[str]] = {}
        for view in state.views():
            for vm in view.vms:
                uuids.add(vm.uuid)
                if vm.name:
                    names.setdefault(vm.name, []).append(vm.uuid)
        by_name = {name: tuple(sorted(set(ids))) for name, ids in names.items()}
        return Known(uuids, set(state.node_ids()), by_name)

    def add(self, request: RuleRequest) -> Rule:
        """Validate and store an operator rule; nothing is stored when it is refused."""
        store = self._runtime.manager.state.rules
        try:
            constraint = validate(request, self.known(), store.rules())
        except (InvalidArgument, NotFound, AlreadyExists) as exc:
            if type(exc) not in (InvalidArgument, NotFound, AlreadyExists):
                raise
            raise type(exc)(_with_names(str(exc), self._names())) from None
        rule = store.add(request.rule_id, constraint, OPERATOR)
        self._tell(f"rule {rule.rule_id} added: {constraint.label()}")
        return rule

    def delete(self, rule_id: str) -> Rule:
        """Drop an operator rule; NotFound names the ids there are."""
        store = self._runtime.manager.state.rules
        rule = store.get(rule_id)
        if rule.origin != OPERATOR:
            raise FailedPrecondition(
                f"rule {rule_id} belongs to {rule.origin}; it goes when that job is deleted"
            )
        store.delete(rule_id)
        self._tell(f"rule {rule_id} deleted: {rule.constraint.label()}")
        return rule

    def _tell(self, message: str) -> None:
        log.info("%s", message)
        self._runtime.manager.state.bus.publish(EventKind.RULE_CHANGED, message=message)

    def _names(self) -> dict[str, str]:
        views = self._runtime.manager.state.views()
        return {vm.uuid: vm.name for view in views for vm in view.vms if vm.name}

    def check(self) -> RuleCheck:
        """Rules the current placement breaks, and rules no placement can keep now; the
        reasons name VMs by name where they have one."""
        state = self._runtime.manager.state
        rules = state.rules.rules()
        model = to_model(state.snapshot())
        names = self._names()
        found = impossible(rules, model)
        seen = {v.rule.rule_id for v in found}
        # rules a decider could not keep (an HA restart with no node left, say)
        reported = [
            Violation(rule, state.rules.impossible[rule.rule_id])
            for rule in rules
            if rule.rule_id in state.rules.impossible and rule.rule_id not in seen
        ]
        return RuleCheck(
            tuple(_named(v, names) for v in violations(rules, model)),
            tuple(_named(v, names) for v in (*found, *reported)),
            len(rules),
        )


def _with_names(text: str, names: dict[str, str]) -> str:
    for uuid, name in names.items():
        if uuid in text:
            text = text.replace(uuid, name)
    return text


def _named(violation: Violation, names: dict[str, str]) -> Violation:
    return Violation(violation.rule, _with_names(violation.reason, names))
