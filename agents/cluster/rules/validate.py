"""A rule as an operator writes it, checked field by field before anything is stored.

`RuleRequest` is what the CLI, the HTTP API and ClusterService carry: a rule id, a kind, the VMs
and nodes it covers and the kind's other parameters. `validate` turns one into a solver
constraint, or raises the error that names the bad element: an unknown kind or parameter, a
value of the wrong type, an unknown VM or node, or a rule that contradicts one already stored
(`feasibility.contradiction`). Pure: the caller gives what the cluster knows.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vmgrid.agents.cluster.rules.feasibility import contradiction
from vmgrid.agents.cluster.rules.store import Rule, constraint_fields
from vmgrid.agents.errors import AlreadyExists, InvalidArgument, NotFound
from vmgrid.solver.constraints import REGISTRY, Constraint, ConstraintError, make
from vmgrid.solver.model import CPU, MEMORY, NET

OPERATOR_KINDS = (
    "spread",
    "gather",
    "ban",
    "fence",
    "among",
    "lonely",
    "split",
    "quarantine",
    "root",
    "maxOnline",
    "runningCapacity",
    "resourceCapacity",
    "networkAffinity",
)
"""The kinds an operator may add (the solver's state and power constraints are its own)."""
RESOURCES = (CPU, MEMORY, NET)
MAX_ID = 128
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_AT_LEAST_TWO = frozenset({"spread", "gather"})


@dataclass(frozen=True, slots=True)
class Known:
    """What the cluster knows: VM uuids, node ids, and VM names to uuids (a VM may be named
    by its name where that name is unique)."""

    vms: Collection[str]
    nodes: Collection[str]
    vm_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleRequest:
    """A rule to add: ``parameters`` holds the kind's fields other than ``vms`` and ``nodes``."""

    rule_id: str
    kind: str
    vms: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)


def rule_parts(rule: Rule) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """A stored rule as (vms, nodes, other parameters), the shape a `RuleRequest` has;
    ``continuous`` is shown only where it differs from the kind's default."""
    values = constraint_fields(rule.constraint)
    vms = tuple(values.pop("vms", ()))
    nodes = tuple(values.pop("nodes", ()))
    default = _defaults(rule.constraint.kind).get("continuous")
    if values.get("continuous") == default:
        values.pop("continuous", None)
    return vms, nodes, values


def validate(request: RuleRequest, known: Known, existing: Iterable[Rule]) -> Constraint:
    """The constraint `request` describes (VM names resolved to uuids); raises
    InvalidArgument, NotFound or AlreadyExists naming the bad element."""
    stored = list(existing)
    _check_id(request.rule_id, stored)
    kind = request.kind
    if kind not in OPERATOR_KINDS:
        raise InvalidArgument(
            f"rule kind {kind!r} is unknown; accepted: {', '.join(OPERATOR_KINDS)}"
        )
    names = _field_names(kind)
    args: dict[str, Any] = {}
    for key, given in (("vms", request.vms), ("nodes", request.nodes)):
        if key in names:
            args[key] = _names(kind, key, list(given), known)
        elif given:
            raise InvalidArgument(
                f"rule kind {kind} takes no {key} (got {', '.join(given)}); "
                f"its fields: {', '.join(sorted(names))}"
            )
    for key, value in request.parameters.items():
        if key in ("vms", "nodes"):
            raise InvalidArgument(
                f"parameter {key!r}: give {key} in the rule's {key} list (vmgridctl: --{key})"
            )
        if key not in names:
            accepted = ", ".join(sorted(names - {"vms", "nodes"})) or "none"
            raise InvalidArgument(
                f"rule kind {kind} has no parameter {key!r}; its parameters: {accepted}"
            )
        args[key] = _parameter(kind, key, value, known)
    missing = sorted(names - set(args) - set(_defaults(kind)))
    if missing:
        raise InvalidArgument(f"rule kind {kind} needs {', '.join(missing)}")
    try:
        constraint = make(kind, **args)
    except ConstraintError as exc:
        raise InvalidArgument(str(exc)) from None
    reason = contradiction(request.rule_id, constraint, stored, known.nodes)
    if reason:
        raise InvalidArgument(reason)
    return constraint


def _check_id(rule_id: str, stored: list[Rule]) -> None:
    if not rule_id:
        raise InvalidArgument("rule id is empty; give a name such as 'web-spread'")
    if len(rule_id) > MAX_ID or not _ID.match(rule_id):
        raise InvalidArgument(
            f"rule id {rule_id!r} must be 1 to {MAX_ID} letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    for rule in stored:
        if rule.rule_id == rule_id:
            raise AlreadyExists(
                f"rule {rule_id!r} already exists ({rule.constraint.label()}, from "
                f"{rule.origin}); delete it first or pick another id"
            )


def _field_names(kind: str) -> set[str]:
    return {f.name for f in dataclasses.fields(REGISTRY[kind])}  # type: ignore[arg-type]


def _defaults(kind: str) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(REGISTRY[kind])  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING
    }


def _names(kind: str, key: str, values: list[Any], known: Known) -> tuple[str, ...]:
    what = "VM" if key == "vms" else "node"
    ids = known.vms if key == "vms" else known.nodes
    if not values:
        raise InvalidArgument(f"rule kind {kind} needs at least one {what} ({key} is empty)")
    if kind in _AT_LEAST_TWO and key == "vms" and len(values) < 2:
        raise InvalidArgument(f"rule kind {kind} needs at least two VMs (got {values[0]!r})")
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"{key}: {value!r} is not a {what} name")
        if key == "vms" and value not in ids:
            value = _by_name(value, known)
        if value not in ids:
            raise _unknown(what, value, ids)
        if value in out:
            raise InvalidArgument(f"{key}: {what} {value!r} is given twice")
        out.append(value)
    return tuple(out)


def _by_name(name: str, known: Known) -> str:
    uuids = known.vm_names.get(name, ())
    if len(uuids) > 1:
        raise InvalidArgument(
            f"VM name {name!r} is ambiguous ({', '.join(sorted(uuids))}); give the uuid"
        )
    return uuids[0] if uuids else name


def _unknown(what: str, value: str, known: Collection[str]) -> NotFound:
    shown = sorted(known)
    listed = ", ".join(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")
    where = "known to this cluster" if what == "VM" else "a node of this cluster"
    return NotFound(f"{what} {value!r} is not {where} (known: {listed or 'none'})")


def _whole(kind: str, key: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            f"rule kind {kind}: {key} must be a whole number >= 0 (got {value!r})"
        )
    return value


def _parameter(kind: str, key: str, value: Any, known: Known) -> Any:
    if key == "amount":
        return _whole(kind, key, value)
    if key == "max_crossing_mbit":
        return _whole(kind, key, value, allow_none=True)
    if key == "continuous":
        if not isinstance(value, bool):
            raise InvalidArgument(
                f"rule kind {kind}: continuous must be true or false (got {value!r})"
            )
        return value
    if key == "rc":
        if value not in RESOURCES:
            raise InvalidArgument(
                f"rule kind {kind}: rc {value!r} is not a resource; accepted: {', '.join(RESOURCES)}"
            )
        return value
    if key in ("parts", "groups"):
        if not isinstance(value, list) or len(value) < 2:
            raise InvalidArgument(f"rule kind {kind}: {key} must be a list of at least two lists")
        inner = "nodes" if key == "parts" else "vms"
        out = tuple(_names(kind, inner, _list(kind, key, v), known) for v in value)
        _disjoint(kind, key, out)
        return out
    if key == "pairs":
        return _pairs(kind, value, known)
    raise InvalidArgument(f"rule kind {kind}: parameter {key!r} cannot be set")  # pragma: no cover


def _list(kind: str, key: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidArgument(
            f"rule kind {kind}: each item of {key} must be a list (got {value!r})"
        )
    return value


def _disjoint(kind: str, key: str, groups: tuple[tuple[str, ...], ...]) -> None:
    seen: dict[str, int] = {}
    for i, group in enumerate(groups):
        for name in group:
            if seen.setdefault(name, i) != i:
                raise InvalidArgument(f"rule kind {kind}: {name!r} is in two {key}")


def _pairs(kind: str, value: Any, known: Known) -> tuple[tuple[str, str, int], ...]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument(f"rule kind {kind}: pairs must be a non-empty list of [vm, vm, mbit]")
    out = []
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise InvalidArgument(f"rule kind {kind}: pair {item!r} is not [vm, vm, mbit]")
        a, b = _names(kind, "vms", item[:2], known)
        out.append((a, b, int(_whole(kind, "pair traffic", item[2]) or 0)))
    return tuple(out)
