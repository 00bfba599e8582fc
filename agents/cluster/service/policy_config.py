"""The ``[policy]`` table of ``vmgrid-cluster``: the operator policy's band, budget and times.

Keys are ``operator_policy.SETTABLE`` (flags ``--aggressiveness``, ``--cpu-high``, ...; a flag
overrides its key). ``aggressiveness`` sets every other key's value (operator_policy.PRESETS);
a key given explicitly overrides its level's value. A policy set at run time (``vmgridctl policy
set``, ``PUT /policy``) is kept in the journal's database and wins over this table after a
restart. Each bad value is one ConfigError line naming the key and the value.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from vmgrid.agents.cluster.decide.operator_policy import (
    HELP,
    PRESETS,
    SETTABLE,
    Aggressiveness,
    OperatorPolicy,
    from_table,
)
from vmgrid.agents.errors import ConfigError, InvalidArgument

TABLE = "policy"
_DEFAULT = OperatorPolicy()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(f"operator policy: band, migration budget ([{TABLE}] table)")
    for key in SETTABLE:
        flag = "--" + key.replace("_", "-")
        if key == "aggressiveness":
            choices = [a.value for a in Aggressiveness]
            text = f"{HELP[key]} (default {_DEFAULT.aggressiveness.value!r})"
            group.add_argument(flag, choices=choices, default=None, help=text)
            continue
        levels = ", ".join(f"{a.value} {PRESETS[a][key]}" for a in Aggressiveness)
        kind = int if isinstance(getattr(_DEFAULT, key), int) else float
        text = f"{HELP[key]} (default by level: {levels})"
        group.add_argument(flag, type=kind, default=None, metavar=key.upper(), help=text)


def table(document: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The ``[policy]`` table of a read config file (empty when it has none)."""
    found = document.get(TABLE, {})
    if not isinstance(found, dict):
        raise ConfigError(f"{TABLE}: must be a table ([{TABLE}]) in {path!r}, got {found!r}")
    return dict(found)


def operator_policy(values: Mapping[str, Any], args: argparse.Namespace) -> OperatorPolicy:
    """The policy from the table, overridden by the flags given."""
    merged = dict(values)
    for key in SETTABLE:
        value = getattr(args, key, None)
        if value is not None:
            merged[key] = value
    try:
        return from_table(merged)
    except InvalidArgument as exc:
        raise ConfigError(str(exc)) from None
