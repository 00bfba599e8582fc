"""The operator's policy for the decision loop, in the words operators use.

- A target utilisation band per resource (``cpu_low``..``cpu_high``, ``memory_low``..
  ``memory_high``, fractions of a node): a node above ``high`` for the hold time is relieved; the
  loop never packs a node above ``high``; only nodes below ``low`` are emptied by consolidation,
  so consolidation stops once the nodes are in the band.
- A migration budget: per cycle, per hour cluster-wide and per hour per node (a migration counts
  for its source and its destination). 0 means no limit.
- A minimum time before a VM moves again (``min_move_interval_s``) and before it moves back to a
  node it left (``return_after_s``). Only an overload or a hard rule may break them, and the plan
  then says so in the action's reason.
- An ``aggressiveness`` level (conservative, moderate, aggressive) that sets all of the above at
  once; a field given explicitly overrides its level's value (and keeps doing so when the level
  changes, until it is set back to ``default``).

The policy is part of ``[control]``'s tree (``ControlConfig.operator_policy``, TOML table
``[policy]``), readable and settable at run time (``vmgridctl policy``, ``GET/PUT /policy``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from vmgrid.agents.errors import InvalidArgument


class Aggressiveness(enum.Enum):
    """How eagerly the loop moves VMs; each level sets the band, the budgets and the times."""

    CONSERVATIVE = "conservative"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"


PRESETS: dict[Aggressiveness, dict[str, float | int]] = {
    Aggressiveness.CONSERVATIVE: {
        "cpu_low": 0.30,
        "cpu_high": 0.70,
        "memory_low": 0.30,
        "memory_high": 0.75,
        "migrations_per_cycle": 2,
        "migrations_per_hour": 12,
        "migrations_per_node_hour": 4,
        "min_move_interval_s": 3600.0,
        "return_after_s": 7200.0,
    },
    Aggressiveness.MODERATE: {
        "cpu_low": 0.40,
        "cpu_high": 0.80,
        "memory_low": 0.40,
        "memory_high": 0.85,
        "migrations_per_cycle": 5,
        "migrations_per_hour": 30,
        "migrations_per_node_hour": 8,
        "min_move_interval_s": 1800.0,
        "return_after_s": 1800.0,
    },
    Aggressiveness.AGGRESSIVE: {
        "cpu_low": 0.50,
        "cpu_high": 0.90,
        "memory_low": 0.50,
        "memory_high": 0.90,
        "migrations_per_cycle": 20,
        "migrations_per_hour": 120,
        "migrations_per_node_hour": 30,
        "min_move_interval_s": 600.0,
        "return_after_s": 900.0,
    },
}
"""What each aggressiveness level sets (the default level is moderate)."""

_DEFAULT = PRESETS[Aggressiveness.MODERATE]
RESET = "default"
"""The value that removes an explicit setting: the field follows the level again."""


@dataclass(frozen=True)
class OperatorPolicy:
    """The band, budgets and times the deciders keep (defaults: the moderate level)."""

    aggressiveness: Aggressiveness = Aggressiveness.MODERATE
    """conservative, moderate or aggressive: sets every field not given explicitly."""

    cpu_low: float = float(_DEFAULT["cpu_low"])
    """Nodes below this CPU fraction (and below ``memory_low``) are emptied by consolidation."""

    cpu_high: float = float(_DEFAULT["cpu_high"])
    """No plan packs a node above this CPU fraction; a node above it is relieved."""

    memory_low: float = float(_DEFAULT["memory_low"])
    """Memory fraction below which a node may be emptied (with ``cpu_low``)."""

    memory_high: float = float(_DEFAULT["memory_high"])
    """No plan packs a node above this memory fraction; a node above it is relieved."""

    migrations_per_cycle: int = int(_DEFAULT["migrations_per_cycle"])
    """Most migrations one decision cycle plans (drains excepted); 0: no limit."""

    migrations_per_hour: int = int(_DEFAULT["migrations_per_hour"])
    """Most migrations the loop starts in any hour, cluster-wide; 0: no limit."""

    migrations_per_node_hour: int = int(_DEFAULT["migrations_per_node_hour"])
    """Most migrations leaving or reaching one node in any hour; 0: no limit."""

    min_move_interval_s: float = float(_DEFAULT["min_move_interval_s"])
    """A VM that moved stays where it is this long, unless an overload or a rule needs it."""

    return_after_s: float = float(_DEFAULT["return_after_s"])
    """A VM does not move back to a node it left for this long (same exceptions)."""

    explicit: frozenset[str] = field(default_factory=frozenset)
    """The fields set explicitly (they override the level)."""

    def __post_init__(self) -> None:
        for resource in ("cpu", "memory"):
            low, high = getattr(self, f"{resource}_low"), getattr(self, f"{resource}_high")
            for name, value in ((f"{resource}_low", low), (f"{resource}_high", high)):
                if not 0.0 < value <= 1.0:
                    raise InvalidArgument(f"policy.{name}: {value!r} must be in (0, 1]")
            if low >= high:
                raise InvalidArgument(
                    f"policy.{resource}_low: {low!r} must be below {resource}_high ({high!r})"
                )
        for name in ("migrations_per_cycle", "migrations_per_hour", "migrations_per_node_hour"):
            if getattr(self, name) < 0:
                raise InvalidArgument(
                    f"policy.{name}: {getattr(self, name)!r} must be >= 0 (0: no limit)"
                )
        for name in ("min_move_interval_s", "return_after_s"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"policy.{name}: {getattr(self, name)!r} must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        """The policy as a JSON object (``explicit`` lists the overriding fields)."""
        out: dict[str, Any] = {"aggressiveness": self.aggressiveness.value}
        for name in SETTABLE[1:]:
            out[name] = getattr(self, name)
        out["explicit"] = sorted(self.explicit)
        return out

    def band(self, resource: str) -> tuple[float, float]:
        """(low, high) of ``cpu`` or ``memory``."""
        return getattr(self, f"{resource}_low"), getattr(self, f"{resource}_high")


SETTABLE: tuple[str, ...] = tuple(f.name for f in fields(OperatorPolicy) if f.name != "explicit")
"""Keys of ``[policy]``, ``vmgridctl policy set`` and ``PUT /policy``."""
_INTS = {"migrations_per_cycle", "migrations_per_hour", "migrations_per_node_hour"}
HELP: dict[str, str] = {
    "aggressiveness": "conservative, moderate or aggressive (sets every other key's default)",
    "cpu_low": "consolidate nodes below this CPU fraction",
    "cpu_high": "never pack a node above this CPU fraction; relieve nodes above it",
    "memory_low": "consolidate nodes below this memory fraction",
    "memory_high": "never pack a node above this memory fraction; relieve nodes above it",
    "migrations_per_cycle": "migrations one cycle may plan (drains excepted); 0: no limit",
    "migrations_per_hour": "migrations in any hour, cluster-wide; 0: no limit",
    "migrations_per_node_hour": "migrations leaving or reaching a node in any hour; 0: no limit",
    "min_move_interval_s": "seconds a moved VM stays put (unless overload or a rule)",
    "return_after_s": "seconds before a VM may move back to a node it left",
}


def policy_for(level: Aggressiveness, overrides: Mapping[str, float | int]) -> OperatorPolicy:
    """The level's values with `overrides` on top (those fields are then explicit)."""
    values: dict[str, Any] = dict(PRESETS[level])
    values.update(overrides)
    return OperatorPolicy(level, explicit=frozenset(overrides), **values)


def updated(policy: OperatorPolicy, changes: Mapping[str, object]) -> OperatorPolicy:
    """`policy` with `changes` (values as typed JSON or as text); ``default`` makes a field
    follow the level again. InvalidArgument names the first bad key or value."""
    level = policy.aggressiveness
    overrides: dict[str, float | int] = {n: getattr(policy, n) for n in policy.explicit}
    for key, raw in changes.items():
        if key not in SETTABLE:
            raise InvalidArgument(f"policy: unknown key {key!r}; accepted: {', '.join(SETTABLE)}")
        if key == "aggressiveness":
            level = parse_level(raw)
            continue
        if isinstance(raw, str) and raw.strip().lower() == RESET:
            overrides.pop(key, None)
            continue
        overrides[key] = parse_number(key, raw)
    return policy_for(level, overrides)


def parse_level(raw: object) -> Aggressiveness:
    try:
        return Aggressiveness(str(raw).strip().lower())
    except ValueError:
        accepted = ", ".join(a.value for a in Aggressiveness)
        raise InvalidArgument(f"policy.aggressiveness: {raw!r} is not one of {accepted}") from None


def parse_number(key: str, raw: object) -> float | int:
    """A key's value from JSON or text: a whole number for the budgets, a number otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InvalidArgument(f"policy.{key}: {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(f"policy.{key}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidArgument(f"policy.{key}: {raw!r} is not a finite number")
    if key in _INTS:
        if value != int(value):
            raise InvalidArgument(f"policy.{key}: {raw!r} is not a whole number")
        return int(value)
    return value


def from_table(table: Mapping[str, object], base: OperatorPolicy | None = None) -> OperatorPolicy:
    """The policy of a ``[policy]`` table (keys as in SETTABLE), on top of `base`."""
    start = base or OperatorPolicy()
    if "aggressiveness" in table and base is None:
        start = policy_for(parse_level(table["aggressiveness"]), {})
    return updated(start, table)


def same_values(a: OperatorPolicy, b: OperatorPolicy) -> bool:
    """Whether two policies decide alike (whatever was explicit in either)."""
    return replace(a, explicit=frozenset()) == replace(b, explicit=frozenset())


def above_band(policy: OperatorPolicy, cpu: float, memory: float) -> bool:
    return cpu > policy.cpu_high or memory > policy.memory_high


def below_band(policy: OperatorPolicy, cpu: float, memory: float) -> bool:
    return cpu < policy.cpu_low and memory < policy.memory_low
