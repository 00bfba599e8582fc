"""Plans in the JSON shape an external BtrPlace checker reads, with the instance's own ids.

``{"actions": [{"type": "migrate", "vm": 3, "src": 1, "dst": 2, "start": 0, "end": 5}, ...]}``;
``boot_vm`` carries ``vm`` and ``node``, ``boot_node`` / ``shutdown_node`` carry ``node``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vmgrid.solver.btrplace.instance import BtrInstance
from vmgrid.solver.btrplace.reader import BtrPlaceError
from vmgrid.solver.plan import Action, ActionKind

EXPORTED = (ActionKind.MIGRATE, ActionKind.BOOT_VM, ActionKind.BOOT_NODE, ActionKind.SHUTDOWN_NODE)


def _wire_id(name: str | None) -> int | str | None:
    """vmgrid names of BtrPlace elements are decimal strings; give the integer back."""
    if name is not None and name.lstrip("-").isdigit():
        return int(name)
    return name


def action_to_json(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"type": a.kind.value}
    if a.kind is ActionKind.MIGRATE:
        out |= {"vm": _wire_id(a.subject), "src": _wire_id(a.src), "dst": _wire_id(a.dst)}
    elif a.kind is ActionKind.BOOT_VM:
        out |= {"vm": _wire_id(a.subject), "node": _wire_id(a.dst)}
    elif a.kind in EXPORTED:
        out["node"] = _wire_id(a.subject)
    else:
        accepted = ", ".join(k.value for k in EXPORTED)
        raise BtrPlaceError(
            f"action {a.id} ({a.kind.value} {a.subject}): cannot export; {accepted}"
        )
    out |= {"start": a.start_s, "end": a.end_s}
    return out


def plan_to_json(actions: Iterable[Action]) -> dict[str, Any]:
    """The plan document, actions sorted by start time."""
    ordered = sorted(actions, key=lambda a: (a.start_s, a.end_s, a.id))
    return {"actions": [action_to_json(a) for a in ordered]}


def write_plan(path: str | Path, actions: Iterable[Action]) -> None:
    Path(path).write_text(json.dumps(plan_to_json(actions), separators=(",", ":")) + "\n")


def _field(item: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in item:
        raise BtrPlaceError(f"{where}: missing {key!r}")
    return item[key]


def _name(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BtrPlaceError(f"{where}: id {value!r} must be an integer or a string")
    return str(value)


def _time(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BtrPlaceError(f"{where}: time {value!r} must be an integer number of seconds")
    return value


def plan_from_json(doc: Any, instance: BtrInstance | None = None) -> list[Action]:
    """Read a plan document back into actions (ids become names as in `instance`)."""
    del instance  # names are the decimal ids whatever the instance; kept for symmetry
    if not isinstance(doc, Mapping) or not isinstance(doc.get("actions"), list):
        raise BtrPlaceError('plan: expected {"actions": [...]}')
    out = []
    for i, item in enumerate(doc["actions"]):
        where = f"actions[{i}]"
        if not isinstance(item, Mapping):
            raise BtrPlaceError(f"{where}: expected a JSON object")
        kind_name = _field(item, "type", where)
        try:
            kind = ActionKind(kind_name)
        except ValueError:
            accepted = ", ".join(k.value for k in EXPORTED)
            raise BtrPlaceError(
                f"{where}: unknown type {kind_name!r}; accepted: {accepted}"
            ) from None
        src = dst = None
        if kind is ActionKind.MIGRATE:
            subject = _name(_field(item, "vm", where), where)
            src = _name(_field(item, "src", where), where)
            dst = _name(_field(item, "dst", where), where)
        elif kind is ActionKind.BOOT_VM:
            subject = _name(_field(item, "vm", where), where)
            dst = _name(_field(item, "node", where), where)
        else:
            subject = _name(_field(item, "node", where), where)
        start = _time(_field(item, "start", where), f"{where}.start")
        end = _time(_field(item, "end", where), f"{where}.end")
        out.append(Action(i, kind, subject, src, dst, start, end, "read from plan file"))
    return out
