"""Read BtrPlace's instance JSON (plain or gzip) into a checked `BtrInstance`.

Every problem a user can put in a file (a VM listed twice, a negative capacity, a constraint on
an unknown VM, a constraint type we do not know) raises `BtrPlaceError` with one line naming the
element and what is accepted, never a bare KeyError or TypeError. Duplicated constraints, which
BtrPlace's own generators emit (the ``nr`` files list each online node twice), are tolerated.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vmgrid.solver.btrplace.instance import (
    Among,
    BtrInstance,
    Constraint,
    Offline,
    Online,
    Preserve,
    ResourceCapacity,
    Running,
    Spread,
)
from vmgrid.solver.btrplace.kinds import KINDS, read_rule
from vmgrid.solver.btrplace.shared_json import loads
from vmgrid.solver.constraints import ConstraintError
from vmgrid.solver.model import VM, Model, ModelError, Node, NodeState, VMState

DURATION_KEYS = ("boot", "shutdown", "migrate", "halt", "suspend", "resume")


class BtrPlaceError(ModelError):
    """A BtrPlace file that is malformed or inconsistent; the message names the element."""


def read_json(path: str | Path) -> Any:
    """Load JSON from `path`, gunzipping when the file starts with the gzip magic number."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BtrPlaceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise BtrPlaceError(f"{path}: not a complete gzip file: {exc}") from None
    try:
        return loads(raw)
    except ValueError as exc:
        raise BtrPlaceError(f"{path}: not valid JSON: {exc}") from None


def load_instance(path: str | Path) -> BtrInstance:
    """Read and check the BtrPlace instance stored at `path` (``.json`` or ``.json.gz``)."""
    name = Path(path).name.removesuffix(".gz").removesuffix(".json")
    return parse_instance(read_json(path), name)


def parse_instance(data: Any, name: str = "instance") -> BtrInstance:
    """Check and convert an already-decoded BtrPlace instance document."""
    return _Reader(name).read(data)


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BtrPlaceError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BtrPlaceError(f"{where}: expected a JSON list, got {type(value).__name__}")
    return value


def _int(value: Any, where: str, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _integral(value):
        raise BtrPlaceError(f"{where}: {value!r} is not an integer")
    if minimum is not None and value < minimum:
        raise BtrPlaceError(f"{where}: {value!r} is negative; must be an integer >= {minimum}")
    return int(value)


def _integral(value: float) -> bool:
    try:
        return value == int(value)
    except (OverflowError, ValueError):
        return False


def _id(value: Any, where: str) -> str:
    """BtrPlace ids are integers (strings of digits when they are JSON keys)."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BtrPlaceError(f"{where}: id {value!r} is not an integer")


class _Reader:
    """One pass over a document; holds what later sections are checked against."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.online: list[str] = []
        self.offline: list[str] = []
        self.hosts: dict[str, tuple[VMState, str | None]] = {}
        self.capacity: dict[str, dict[str, int]] = {}
        self.consumption: dict[str, dict[str, int]] = {}
        self.resources: list[str] = []
        self.groups: dict[tuple[Any, ...], frozenset[str]] = {}
        self.shared: dict[int, tuple[Any, frozenset[str]]] = {}  # decoded lists seen, by identity

    def fail(self, message: str) -> BtrPlaceError:
        return BtrPlaceError(f"{self.name}: {message}")

    def read(self, data: Any) -> BtrInstance:
        try:
            doc = _obj(data, "document")
            model = _obj(doc.get("model"), "model")
            self._mapping(_obj(model.get("mapping"), "model.mapping"))
            self._views(_list(model.get("views", []), "model.views"))
            attrs = _obj(model.get("attributes", {}), "model.attributes")
            node_attrs = self._attributes(attrs.get("nodes", {}), "nodes", self.capacity)
            vm_attrs = self._attributes(attrs.get("vms", {}), "vms", self.hosts)
            constraints = self._constraints(_list(doc.get("constraints", []), "constraints"))
            objective = self._objective(doc.get("objective"))
        except BtrPlaceError as exc:
            raise self.fail(str(exc)) from None
        return self._build(node_attrs, vm_attrs, constraints, objective)

    def _mapping(self, mapping: Mapping[str, Any]) -> None:
        where = "model.mapping.onlineNodes"
        for key, content in _obj(mapping.get("onlineNodes", {}), where).items():
            node = self._new_node(key, where)
            self.online.append(node)
            at = f"{where}[{node}]"
            content = _obj(content, at)
            for field, state in (
                ("runningVMs", VMState.RUNNING),
                ("sleepingVMs", VMState.SLEEPING),
            ):
                for vm in _list(content.get(field, []), f"{at}.{field}"):
                    self._new_vm(vm, f"{at}.{field}", state, node)
        for key in _list(mapping.get("offlineNodes", []), "model.mapping.offlineNodes"):
            self.offline.append(self._new_node(key, "model.mapping.offlineNodes"))
        for vm in _list(mapping.get("readyVMs", []), "model.mapping.readyVMs"):
            self._new_vm(vm, "model.mapping.readyVMs", VMState.READY, None)

    def _new_node(self, key: Any, where: str) -> str:
        node = _id(key, where)
        if node in self.capacity:
            raise BtrPlaceError(f"{where}: node {node} is listed twice in the mapping")
        self.capacity[node] = {}
        return node

    def _new_vm(self, key: Any, where: str, state: VMState, host: str | None) -> None:
        vm = _id(key, where)
        if vm in self.hosts:
            raise BtrPlaceError(f"{where}: VM {vm} is listed twice in the mapping")
        self.hosts[vm] = (state, host)
        self.consumption[vm] = {}

    def _views(self, views: list[Any]) -> None:
        for i, raw in enumerate(views):
            view = _obj(raw, f"model.views[{i}]")
            if view.get("id") != "shareableResource":
                continue  # naming services and network views carry nothing we check
            rc = view.get("rcId")
            if not isinstance(rc, str) or not rc:
                raise BtrPlaceError(f"model.views[{i}]: rcId {rc!r} must be a non-empty string")
            if rc in self.resources:
                raise BtrPlaceError(f"model.views[{i}]: resource {rc!r} has two views")
            self.resources.append(rc)
            where = f"model.views[{rc}]"
            self._fill(view, where, "nodes", "defCapacity", self.capacity, "capacity")
            self._fill(view, where, "vms", "defConsumption", self.consumption, "consumption")

    def _fill(
        self,
        view: Mapping[str, Any],
        where: str,
        field: str,
        default_key: str,
        table: dict[str, dict[str, int]],
        what: str,
    ) -> None:
        rc = view["rcId"]
        default = _int(view.get(default_key, 0), f"{where}.{default_key}")
        for element in table.values():
            element[rc] = default
        kind = "node" if field == "nodes" else "VM"
        for key, amount in _obj(view.get(field, {}), f"{where}.{field}").items():
            element_id = _id(key, f"{where}.{field}")
            at = f"{where}.{field}[{element_id}]: {what}"
            if element_id not in table:
                raise BtrPlaceError(f"{where}.{field}: unknown {kind} {element_id}")
            table[element_id][rc] = _int(amount, at)

    def _attributes(
        self, raw: Any, field: str, known: Mapping[str, Any]
    ) -> dict[str, dict[str, str | int | float | bool]]:
        where = f"model.attributes.{field}"
        kind = "node" if field == "nodes" else "VM"
        out: dict[str, dict[str, str | int | float | bool]] = {}
        for key, values in _obj(raw, where).items():
            element = _id(key, where)
            if element not in known:
                raise BtrPlaceError(f"{where}: unknown {kind} {element}")
            attrs = {
                k: v
                for k, v in _obj(values, f"{where}[{element}]").items()
                if isinstance(v, str | int | float | bool)
            }
            for k in DURATION_KEYS:
                if k in attrs:
                    attrs[k] = _int(attrs[k], f"{where}[{element}].{k}: duration")
            out[element] = attrs
        return out

    def _objective(self, raw: Any) -> str:
        if raw is None:
            return "minimizeMTTR"
        value = _obj(raw, "objective").get("id")
        if isinstance(value, Mapping):  # {"objective": {"id": "minimizeMTTR"}}
            value = value.get("id")
        if not isinstance(value, str):
            raise BtrPlaceError(f"objective: id {value!r} must be a string such as 'minimizeMTTR'")
        return value

    def _constraints(self, raw: list[Any]) -> tuple[Constraint, ...]:
        seen: dict[Constraint, None] = {}
        for i, item in enumerate(raw):
            where = f"constraints[{i}]"
            kind = _obj(item, where).get("id")
            parse = _PARSERS.get(kind) if isinstance(kind, str) else None
            if parse is None and kind not in KINDS:
                accepted = ", ".join(sorted([*_PARSERS, *KINDS]))
                raise BtrPlaceError(f"{where}: unknown constraint {kind!r}; accepted: {accepted}")
            at = f"{where} ({kind})"
            try:
                if parse is not None:
                    seen.setdefault(parse(self, item, at), None)
                else:
                    rule = read_rule(str(kind), self, item, at, _flag, _int)
                    seen.setdefault(rule, None)
            except ConstraintError as exc:
                raise BtrPlaceError(f"{at}: {exc}") from None
            except BtrPlaceError:
                raise
            except ValueError as exc:
                raise BtrPlaceError(str(exc)) from None
        return tuple(seen)

    def node(self, value: Any, where: str) -> str:
        node = _id(value, where)
        if node not in self.capacity:
            raise BtrPlaceError(f"{where}: unknown node {node}")
        return node

    def vm(self, value: Any, where: str) -> str:
        vm = _id(value, where)
        if vm not in self.hosts:
            raise BtrPlaceError(f"{where}: unknown VM {vm}")
        return vm

    def vms(self, value: Any, where: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.vm(v, where) for v in _list(value, f"{where}.vms")))

    def nodes(self, value: Any, where: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.node(n, where) for n in _list(value, where)))

    def group(self, value: Any, where: str) -> frozenset[str]:
        """A node group; BtrPlace repeats the same `among` parts across constraints, so cache."""
        shared = self.shared.get(id(value))
        if shared is not None and shared[0] is value:
            return shared[1]
        key = tuple(_list(value, where))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = frozenset(self.nodes(value, where))
        self.shared[id(value)] = (value, group)
        return group

    def resource(self, value: Any, where: str) -> str:
        if value not in self.resources:
            known = ", ".join(self.resources) or "none"
            raise BtrPlaceError(f"{where}: unknown resource {value!r}; views define: {known}")
        return str(value)

    def _build(
        self,
        node_attrs: Mapping[str, Mapping[str, str | int | float | bool]],
        vm_attrs: Mapping[str, Mapping[str, str | int | float | bool]],
        constraints: tuple[Constraint, ...],
        objective: str,
    ) -> BtrInstance:
        nodes = {}
        for names, state in ((self.online, NodeState.ONLINE), (self.offline, NodeState.OFFLINE)):
            for n in names:
                nodes[n] = Node(n, self.capacity[n], state, node_attrs.get(n, {}))
        vms = {
            v: VM(v, self.consumption[v], state, host, vm_attrs.get(v, {}))
            for v, (state, host) in self.hosts.items()
        }
        demands: dict[str, dict[str, int]] = {}
        for c in constraints:
            if isinstance(c, Preserve):
                demand = demands.setdefault(c.vm, dict(self.consumption[c.vm]))
                demand[c.resource] = max(demand.get(c.resource, 0), c.amount)
        return BtrInstance(self.name, Model(nodes, vms), demands, constraints, objective)


def _flag(item: Mapping[str, Any], where: str, default: bool) -> bool:
    value = item.get("continuous", default)
    if not isinstance(value, bool):
        raise BtrPlaceError(f"{where}: continuous {value!r} must be true or false")
    return value


def _online(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    return Online(r.node(item.get("node"), f"{where}.node"))


def _offline(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    return Offline(r.node(item.get("node"), f"{where}.node"))


def _running(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    return Running(r.vm(item.get("vm"), f"{where}.vm"))


def _preserve(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    vm = r.vm(item.get("vm"), f"{where}.vm")
    rc = r.resource(item.get("rc"), f"{where}.rc")
    return Preserve(vm, rc, _int(item.get("amount"), f"{where}.amount"))


def _spread(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    return Spread(r.vms(item.get("vms"), where), _flag(item, where, True))


def _among(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    parts = tuple(
        r.group(p, f"{where}.parts[{i}]")
        for i, p in enumerate(_list(item.get("parts"), f"{where}.parts"))
    )
    if not parts:
        raise BtrPlaceError(f"{where}.parts: empty; must list at least one group of nodes")
    return Among(r.vms(item.get("vms"), where), parts, _flag(item, where, False))


def _capacity(r: _Reader, item: Mapping[str, Any], where: str) -> Constraint:
    return ResourceCapacity(
        r.nodes(item.get("nodes"), f"{where}.nodes"),
        r.resource(item.get("rc"), f"{where}.rc"),
        _int(item.get("amount"), f"{where}.amount"),
        _flag(item, where, False),
    )


_PARSERS: dict[str, Callable[[_Reader, Mapping[str, Any], str], Constraint]] = {
    "online": _online,
    "offline": _offline,
    "running": _running,
    "preserve": _preserve,
    "spread": _spread,
    "among": _among,
    "resourceCapacity": _capacity,
}
