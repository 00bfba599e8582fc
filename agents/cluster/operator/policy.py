"""The operator policy at run time: read it, change some keys, keep it across restarts.

A change is validated as a whole (``operator_policy.updated``: a refused value changes
nothing), saved in the journal's database, handed to the decision loop for its next cycle and
published as a POLICY_CHANGED event saying what changed. At start-up a saved policy wins over
the config file's ``[policy]`` table (the operator changed it after the file was written).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.decide.loop import ControlLoop
from vmgrid.agents.cluster.decide.operator_policy import (
    SETTABLE,
    OperatorPolicy,
    parse_level,
    policy_for,
    updated,
)
from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.errors import InvalidArgument

log = logging.getLogger(__name__)

SETTING = "operator_policy"
"""Key of the saved policy in the journal's settings."""


def encode(policy: OperatorPolicy) -> str:
    """The level and the explicit keys: what the operator chose (the rest follows the level)."""
    overrides = {name: getattr(policy, name) for name in sorted(policy.explicit)}
    return json.dumps({"aggressiveness": policy.aggressiveness.value, "overrides": overrides})


def decode(text: str) -> OperatorPolicy:
    """The policy `encode` wrote; InvalidArgument when it is not one."""
    try:
        data = json.loads(text)
        return policy_for(parse_level(data["aggressiveness"]), dict(data["overrides"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"saved operator policy {text!r} is unreadable ({exc})") from None


def restore(journal: Journal, loop: ControlLoop) -> None:
    """Give `loop` the policy saved in `journal`, if any (an unreadable one is ignored)."""
    text = journal.setting(SETTING)
    if text is None:
        return
    try:
        loop.set_operator_policy(decode(text))
    except InvalidArgument as exc:
        log.warning("%s; the configured policy stays", exc)


def changes_said(before: OperatorPolicy, after: OperatorPolicy) -> str:
    """What changed, e.g. ``cpu_high 0.8 -> 0.75, migrations_per_hour 30 -> 12``."""
    parts = []
    for key in SETTABLE:
        old, new = getattr(before, key), getattr(after, key)
        if old != new:
            shown = [v.value if hasattr(v, "value") else v for v in (old, new)]
            parts.append(f"{key} {shown[0]} -> {shown[1]}")
    return ", ".join(parts) or "no value changed"


class PolicyOperations:
    """``vmgridctl policy`` and ``GET/PUT /policy`` over a running ClusterParts."""

    def __init__(self, runtime: ClusterParts) -> None:
        self._runtime = runtime

    def get(self) -> OperatorPolicy:
        return self._runtime.loop.config.operator_policy

    def set(self, changes: Mapping[str, object]) -> OperatorPolicy:
        """Apply `changes` (key -> value, ``default`` to follow the level again)."""
        if not changes:
            raise InvalidArgument(f"policy: no key given; keys: {', '.join(SETTABLE)}")
        before = self.get()
        after = updated(before, changes)
        self._runtime.journal.save_setting(SETTING, encode(after))
        self._runtime.loop.set_operator_policy(after)
        message = f"operator policy changed: {changes_said(before, after)}"
        log.info("%s", message)
        self._runtime.manager.state.bus.publish(EventKind.POLICY_CHANGED, message=message)
        return after
