"""The demo's operator policy: the moderate level with visible headroom, and ``--policy``."""

from __future__ import annotations

from collections.abc import Sequence

from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy, updated
from vmgrid.agents.errors import InvalidArgument

DEMO_POLICY = OperatorPolicy(
    cpu_high=0.75,
    memory_high=0.75,
    min_move_interval_s=600.0,
    explicit=frozenset({"cpu_high", "memory_high", "min_move_interval_s"}),
)
"""The moderate level with visible headroom (a quarter of each node kept free) and a VM moved
at most once in any 10 minutes. The demo plays 5 minutes of trace every 5 seconds, so
production's 30 min would pin a moved VM for 30 hours of trace; 10 min is 10 hours of trace
and 120 decision cycles. A VM still does not move back to a node it left for 30 min."""


def demo_policy(settings: Sequence[str]) -> OperatorPolicy:
    """DEMO_POLICY with the ``--policy KEY=VALUE`` settings on top; RuntimeError names a bad
    one."""
    changes: dict[str, object] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise RuntimeError(f"--policy {setting!r}: expected KEY=VALUE")
        changes[key.strip()] = value.strip()
    try:
        return updated(DEMO_POLICY, changes)
    except InvalidArgument as exc:
        raise RuntimeError(f"--policy: {exc}") from None
