"""Readers for the BtrPlace constraints that map straight onto a solver rule.

`online`, `offline`, `running`, `preserve`, `spread`, `among` and `resourceCapacity` keep their
own values in `vmgrid.solver.btrplace.instance` (the benchmark vocabulary); every other kind the
solver has is read here into its solver rule, with BtrPlace's field names: ``vms``, ``nodes``,
``vm`` or ``node`` for single-element rules, ``parts`` (lists of VMs) for ``split``, ``amount``,
``continuous``; vmgrid's ``networkAffinity`` reads ``pairs`` ([vm, vm, Mbit/s]) and an optional
``maxCrossingMbit``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from vmgrid.solver import constraints as rules


class Reader(Protocol):
    def vm(self, value: Any, where: str) -> str: ...

    def node(self, value: Any, where: str) -> str: ...

    def vms(self, value: Any, where: str) -> tuple[str, ...]: ...

    def nodes(self, value: Any, where: str) -> tuple[str, ...]: ...


Flag = Callable[[Mapping[str, Any], str, bool], bool]
Int = Callable[[Any, str], int]


def _members(r: Reader, item: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if "vm" in item and "vms" not in item:
        return (r.vm(item["vm"], f"{where}.vm"),)
    return r.vms(item.get("vms"), where)


def _hosts(r: Reader, item: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if "node" in item and "nodes" not in item:
        return (r.node(item["node"], f"{where}.node"),)
    return r.nodes(item.get("nodes"), f"{where}.nodes")


def read_rule(
    kind: str, r: Reader, item: Mapping[str, Any], where: str, flag: Flag, integer: Int
) -> rules.Constraint:
    """The solver rule for one constraint object of a kind listed in `KINDS`."""
    cls = rules.REGISTRY[kind]
    default = rules.base.CONTINUOUS in cls.semantics and rules.base.DISCRETE not in cls.semantics
    continuous = flag(item, where, bool(cls.continuous) or default)
    if kind in ("ban", "fence"):
        return cls(_members(r, item, where), _hosts(r, item, where), continuous)  # type: ignore[call-arg]
    if kind in ("gather", "lonely", "root", "ready", "sleeping"):
        return cls(_members(r, item, where), continuous)  # type: ignore[call-arg]
    if kind in ("quarantine", "capacity"):
        return cls(_hosts(r, item, where), continuous)  # type: ignore[call-arg]
    if kind in ("maxOnline", "runningCapacity"):
        amount = integer(item.get("amount"), f"{where}.amount")
        return cls(_hosts(r, item, where), amount, continuous)  # type: ignore[call-arg]
    if kind == "split":
        parts = item.get("parts")
        if not isinstance(parts, list) or not parts:
            raise ValueError(f"{where}.parts: {parts!r} must be a non-empty list of VM lists")
        groups = tuple(r.vms(p, f"{where}.parts[{i}]") for i, p in enumerate(parts))
        return rules.Split(groups, continuous)
    pairs = item.get("pairs")
    if not isinstance(pairs, list):
        raise ValueError(f"{where}.pairs: {pairs!r} must be a list of [vm, vm, Mbit/s]")
    out = []
    for i, pair in enumerate(pairs):
        at = f"{where}.pairs[{i}]"
        if not isinstance(pair, list) or len(pair) != 3:
            raise ValueError(f"{at}: {pair!r} must be [vm, vm, Mbit/s]")
        out.append((r.vm(pair[0], at), r.vm(pair[1], at), integer(pair[2], at)))
    cap = item.get("maxCrossingMbit")
    limit = None if cap is None else integer(cap, f"{where}.maxCrossingMbit")
    return rules.NetworkAffinity(tuple(out), limit, continuous)


KINDS = (
    "ban",
    "capacity",
    "fence",
    "gather",
    "lonely",
    "maxOnline",
    "networkAffinity",
    "quarantine",
    "ready",
    "root",
    "runningCapacity",
    "sleeping",
    "split",
)
"""The solver kinds read here; with the seven of the instance module, every registered kind."""
